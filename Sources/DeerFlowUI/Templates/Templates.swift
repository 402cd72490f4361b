import Mustache

/// The pages' Mustache templates. `{{name}}` escapes for HTML (swift-mustache's default content
/// type), so everything user-controlled goes through `{{…}}`; `{{{…}}}` is used only for markup
/// these templates rendered themselves (a page's content inside the layout).
///
/// They live in the binary rather than in a resource folder, so a copied `deerflow` executable
/// serves the UI with nothing beside it.
enum Templates {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in all {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("UI template '\(name)' does not parse: \(error)")
            }
        }
        return library
    }()

    static func render(_ name: String, _ context: [String: Any]) -> String {
        library.render(context, withTemplate: name) ?? ""
    }

    static let all: [(String, String)] = [
        ("layout", layout), ("state", state), ("time", time), ("login", login), ("error", error),
        ("runs", runs), ("run", run),
        ("workflows", workflows), ("workflow", workflow), ("trigger", trigger), ("strip", strip),
        ("overview", overview), ("chart", chart), ("workers", workers), ("alerts", alerts), ("dashboard", dashboard),
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <link rel="icon" href="data:,">
        <title>{{title}} · DeerFlow</title>
        <link rel="stylesheet" href="/static/deerflow.css?v={{version}}">
        <script src="/static/deerflow.js?v={{version}}" defer></script>
        </head>
        <body{{#live}} data-live="{{live}}"{{/live}}{{#readOnly}} class="read-only"{{/readOnly}}>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <a class="brand" href="/"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3l3 5-3 2 5 1 3 10 3-10 5-1-3-2 3-5-5 4h-6z"/></svg>DeerFlow</a>
        <nav aria-label="Pages">{{#nav}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/nav}}</nav>
        {{#logout}}<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary">Log out</button></form>{{/logout}}
        </header>
        <main id="main" tabindex="-1">
        {{#readOnly}}<p class="read-only-note">Signed in with a <strong>viewer</strong> token: everything can be seen, nothing triggered, cancelled, retried or paused. Log in with an operator or admin token for that.</p>{{/readOnly}}
        {{{content}}}
        </main>
        <footer class="foot">DeerFlow {{version}} · times are UTC<span class="js-only">, shown in your time zone (hover a time for UTC)</span></footer>
        </body>
        </html>
        """

    static let state = """
        <span class="state s-{{status}}"><span class="glyph" aria-hidden="true">{{glyph}}</span>{{label}}</span>
        """

    static let time = """
        {{#iso}}<time datetime="{{iso}}">{{utc}}</time>{{/iso}}{{^iso}}<span class="muted">—</span>{{/iso}}
        """

    static let login = """
        <section class="login panel">
        <h1>Log in</h1>
        <p>This DeerFlow needs an API token (from <code>api.tokens</code> or <code>DEERFLOW_API_TOKENS</code>). It is asked once; the browser then keeps a session cookie, never the token.</p>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form method="post" action="/login">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input type="hidden" name="next" value="{{next}}">
        <label for="token">API token <input id="token" name="token" type="password" autocomplete="current-password" required autofocus></label>
        <button type="submit">Log in</button>
        </form>
        </section>
        """

    static let error = """
        <h1>{{heading}}</h1>
        <p class="error" role="alert">{{message}}</p>
        <p><a href="{{back}}">{{backLabel}}</a></p>
        """

    static let runs = """
        <h1>Runs</h1>
        <div class="toolbar">
        <form class="filters" method="get" action="/runs" role="search" aria-label="Filter runs">
        <label>Workflow <select name="workflow"><option value="">all</option>{{#workflowOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/workflowOptions}}</select></label>
        <label>Status <select name="status"><option value="">all</option>{{#statusOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/statusOptions}}</select></label>
        <label>Trigger <select name="trigger"><option value="">all</option>{{#triggerOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/triggerOptions}}</select></label>
        <label>Created from (UTC) <input type="datetime-local" name="from" value="{{from}}" step="1"></label>
        <label>to (UTC) <input type="datetime-local" name="to" value="{{to}}" step="1"></label>
        <button type="submit">Filter</button>
        <a class="button secondary" href="/runs">Clear</a>
        </form>
        <form class="filters" method="get" action="/runs/jump" aria-label="Open a run by id">
        <label>Run id <input name="id" size="28" placeholder="01J…" spellcheck="false" autocomplete="off"></label>
        <button type="submit" class="secondary">Open</button>
        </form>
        </div>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <div id="runs-table" data-live>
        <div class="tablewrap">
        <table>
        <thead><tr><th scope="col">Run</th><th scope="col">Workflow</th><th scope="col">Status</th><th scope="col">Trigger</th><th scope="col">Created</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Tasks done</th></tr></thead>
        <tbody>
        {{#runs}}<tr><td><a class="mono" href="/runs/{{id}}">{{id}}</a></td><td><a href="/workflows/{{workflow}}">{{workflow}}</a></td><td>{{#state}}{{>state}}{{/state}}</td><td>{{trigger}}</td><td class="nowrap">{{#created}}{{>time}}{{/created}}</td><td class="num">{{duration}}</td><td class="num">{{progress}}</td></tr>
        {{/runs}}
        </tbody>
        </table>
        {{^runs}}<p class="empty">No runs match these filters.</p>{{/runs}}
        </div>
        </div>
        <nav class="toolbar" aria-label="Pages of runs">{{#newest}}<a class="button secondary" href="{{newest}}">« Newest</a>{{/newest}}{{#older}}<a class="button secondary" href="{{older}}" rel="next">Older »</a>{{/older}}</nav>
        """

    static let run = """
        <h1>Run <span class="mono">{{id}}</span> <span id="run-state" data-live>{{#state}}{{>state}}{{/state}}</span></h1>
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <div id="run-summary" data-live class="panel summary">
        <dl class="kv">
        <dt>Workflow</dt><dd><a href="/workflows/{{workflow}}">{{workflow}}</a> <span class="muted mono">{{version}}</span></dd>
        <dt>Trigger</dt><dd>{{trigger}}{{#scheduledFor}} · due {{>time}}{{/scheduledFor}}{{#backfillID}} · <span class="mono">{{backfillID}}</span>{{/backfillID}}</dd>
        <dt>Logical time</dt><dd>{{#logicalTime}}{{>time}}{{/logicalTime}}</dd>
        <dt>Created</dt><dd>{{#created}}{{>time}}{{/created}}</dd>
        <dt>Started</dt><dd>{{#started}}{{>time}}{{/started}}</dd>
        <dt>Finished</dt><dd>{{#finished}}{{>time}}{{/finished}}</dd>
        {{#reason}}<dt>Reason</dt><dd class="reason">{{reason}}</dd>{{/reason}}
        {{#deadline}}<dt>Times out</dt><dd>{{>time}}</dd>{{/deadline}}
        </dl>
        <dl class="kv">
        {{#rerunOf}}<dt>Rerun of</dt><dd class="mono"><a href="/runs/{{rerunOf}}">{{rerunOf}}</a></dd>{{/rerunOf}}
        {{#parent}}<dt>Started by</dt><dd class="mono"><a href="/runs/{{runID}}">{{runID}}</a> · task <a href="{{taskHref}}">{{taskID}}</a> · attempt {{attempt}}</dd>{{/parent}}
        {{#retries}}<dt>Retries</dt><dd>{{retries}}</dd>{{/retries}}
        <dt>Duration</dt><dd>{{duration}}</dd>
        <dt>Tasks</dt><dd>{{progress}}</dd>
        {{#waiting}}<dt>Waiting</dt><dd class="waiting-reason">{{waiting}}</dd>{{/waiting}}
        {{#traceID}}<dt>Trace</dt><dd class="mono">{{#traceURL}}<a href="{{traceURL}}" rel="noopener">{{traceID}}</a>{{/traceURL}}{{^traceURL}}{{traceID}}{{/traceURL}}</dd>{{/traceID}}
        </dl>
        {{#cancellable}}<form method="post" action="/runs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger">Cancel run</button></form>{{/cancellable}}
        {{#retryable}}<form method="post" action="/runs/{{id}}/retry"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Retry failed tasks</button></form>{{/retryable}}
        {{#rerunnable}}<form method="post" action="/runs/{{id}}/rerun"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Rerun</button></form>{{/rerunnable}}
        </div>
        {{#hasParams}}<h2>Parameters</h2>
        <div class="tablewrap"><table><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>
        {{#params}}<tr><td class="mono">{{name}}</td><td class="mono">{{#secret}}<span class="muted">[REDACTED] (secret)</span>{{/secret}}{{^secret}}{{value}}{{/secret}}</td></tr>{{/params}}
        </tbody></table></div>{{/hasParams}}
        {{#hasChildren}}<h2>Child runs</h2>
        <div id="run-children" data-live class="tablewrap"><table><thead><tr><th scope="col">Run</th><th scope="col">Workflow</th><th scope="col">Status</th><th scope="col">Started by</th></tr></thead><tbody>
        {{#children}}<tr><td class="mono"><a href="/runs/{{id}}">{{id}}</a></td><td><a href="/workflows/{{workflow}}">{{workflow}}</a></td><td>{{#state}}{{>state}}{{/state}}</td><td class="mono"><a href="{{taskHref}}">{{task}}</a> · attempt {{attempt}}</td></tr>{{/children}}
        </tbody></table></div>{{/hasChildren}}
        <h2>Graph</h2>
        <div id="run-dag" data-live class="panel dag">{{{dag}}}</div>
        <h2>Timeline</h2>
        <p class="sub">Where each task's time went; the critical path (the chain that set the run's length) is highlighted and marked ★.</p>
        <div class="legend"><span class="waiting">waiting for dependencies</span><span class="queued">queued for a worker</span><span class="running">running (colour: outcome)</span><span class="backoff">retry back-off</span><span class="crit">critical path ★</span></div>
        <div id="run-timeline" data-live class="panel timeline">{{{timeline}}}{{#folded}}<p class="folded">{{folded}} <a href="{{all}}">Show all {{total}} tasks</a></p>{{/folded}}</div>
        <h2>Tasks and attempts</h2>
        <div id="run-tasks" data-live class="tablewrap">
        <table>
        <thead><tr><th scope="col">Task</th><th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Worker</th><th scope="col" class="num">Queued</th><th scope="col" class="num">Ran</th><th scope="col" class="num">Exit</th><th scope="col">Error</th><th scope="col">Log</th></tr></thead>
        <tbody>
        {{#attempts}}<tr><td class="mono">{{#first}}<a href="?task={{task}}#log">{{task}}</a>{{/first}}</td><td class="num">{{number}}</td><td>{{#state}}{{>state}}{{/state}}</td><td class="mono">{{worker}}</td><td class="num">{{queued}}</td><td class="num">{{ran}}</td><td class="num">{{exit}}</td><td class="err">{{error}}</td><td>{{#hasLog}}<a href="?task={{task}}&amp;attempt={{number}}#log">log</a>{{/hasLog}}</td></tr>
        {{/attempts}}
        </tbody>
        </table>
        </div>
        {{#maps}}
        <section id="instances-{{anchor}}" data-live class="instances">
        <h3>Instances of <span class="mono">{{task}}</span></h3>
        <p class="sub">{{summary}}</p>
        <details{{#open}} open{{/open}}><summary>{{count}} instances, in index order</summary>
        <div class="tablewrap"><table>
        <thead><tr><th scope="col" class="num">Index</th><th scope="col">Instance</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Error</th><th scope="col">Log</th></tr></thead>
        <tbody>
        {{#instances}}<tr><td class="num">{{index}}</td><td class="mono">{{id}}</td><td>{{#state}}{{>state}}{{/state}}</td><td class="num">{{attempts}}</td><td class="err">{{error}}</td><td>{{#hasLog}}<a href="/runs/{{runID}}?task={{href}}#log">log</a>{{/hasLog}}</td></tr>
        {{/instances}}
        </tbody>
        </table></div>
        </details>
        </section>
        {{/maps}}
        {{#log}}
        <h2 id="log-heading">Log of <span class="mono">{{task}}</span></h2>
        <div class="toolbar">
        <nav class="tabs" aria-label="Attempts">{{#attempts}}<a href="/runs/{{runID}}?task={{task}}&amp;attempt={{number}}#log"{{#current}} aria-current="true"{{/current}}>attempt {{number}} {{#state}}{{>state}}{{/state}}</a>{{/attempts}}</nav>
        <form class="inline" method="get" action="/runs/{{runID}}#log" role="search" aria-label="Search the log"><input type="hidden" name="task" value="{{task}}"><input type="hidden" name="attempt" value="{{attempt}}"><label>Search <input type="search" name="q" value="{{query}}"></label><button type="submit" class="secondary">Search</button></form>
        <a class="button secondary" href="/runs/{{runID}}/tasks/{{task}}/log.txt?attempt={{attempt}}" download>Download</a>
        {{#followable}}<label id="follow" class="nowrap" hidden><span>Follow live</span> <input type="checkbox" checked></label>{{/followable}}
        </div>
        {{#searching}}<p class="sub">{{matches}} of {{lines}} lines contain “{{query}}”. <a href="/runs/{{runID}}?task={{task}}&amp;attempt={{attempt}}#log">Show all</a></p>{{/searching}}
        {{#truncated}}<p class="sub">The log was longer than the limit; earlier text was dropped.</p>{{/truncated}}
        <pre id="log" class="log" tabindex="0" aria-labelledby="log-heading"{{#followURL}} data-follow="{{followURL}}" data-bytes="{{bytes}}"{{/followURL}}>{{text}}</pre>
        {{#output}}<h3 id="output-heading">Output of <span class="mono">{{task}}</span></h3>
        <pre class="log output" tabindex="0" aria-labelledby="output-heading">{{output}}</pre>{{/output}}
        {{/log}}
        """

    static let strip = """
        <span class="strip">{{#cells}}<a class="cell s-{{status}}" href="/runs/{{id}}" title="{{title}}" aria-label="{{title}}"><span aria-hidden="true">{{glyph}}</span></a>{{/cells}}{{^cells}}<span class="muted">no runs yet</span>{{/cells}}</span>
        """

    static let trigger = """
        <form method="post" action="{{action}}" novalidate>
        <input type="hidden" name="csrf" value="{{csrf}}">
        {{#fields}}<label for="p-{{formName}}-{{name}}">{{name}} <span class="muted">({{type}}{{#required}}, required{{/required}}{{#secret}}, secret{{/secret}})</span>
        {{#isBool}}<select id="p-{{formName}}-{{name}}" name="param[{{name}}]"><option value="">default{{#defaultText}} ({{defaultText}}){{/defaultText}}</option><option value="true"{{#isTrue}} selected{{/isTrue}}>true</option><option value="false"{{#isFalse}} selected{{/isFalse}}>false</option></select>{{/isBool}}
        {{^isBool}}<input id="p-{{formName}}-{{name}}" name="param[{{name}}]" type="{{inputType}}" value="{{value}}" placeholder="{{placeholder}}" {{#fieldError}}aria-invalid="true" aria-describedby="e-{{formName}}-{{name}}"{{/fieldError}} autocomplete="off">{{/isBool}}
        {{#description}}<span class="muted">{{description}}</span>{{/description}}
        {{#fieldError}}<span class="field-error" id="e-{{formName}}-{{name}}" role="alert">✗ {{fieldError}}</span>{{/fieldError}}
        </label>{{/fields}}
        {{^fields}}<p class="muted">This workflow declares no parameters.</p>{{/fields}}
        {{#formError}}<p class="error" role="alert">{{formError}}</p>{{/formError}}
        <div><button type="submit">Trigger run</button></div>
        </form>
        """

    static let workflows = """
        <h1>Workflows</h1>
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        <div id="workflows-table" data-live class="tablewrap">
        <table>
        <thead><tr><th scope="col">Workflow</th><th scope="col">Schedule</th><th scope="col">Last runs (newest left)</th><th scope="col" class="num">Success</th><th scope="col" class="num">Avg duration</th></tr></thead>
        <tbody>
        {{#workflows}}<tr><td><a href="/workflows/{{name}}"><strong>{{name}}</strong></a>{{#description}}<div class="muted">{{description}}</div>{{/description}}
        <details class="trigger"{{#open}} open{{/open}}><summary>Trigger a run</summary>{{#form}}{{>trigger}}{{/form}}</details></td>
        <td>{{#cron}}<code>{{cron}}</code> <span class="muted">{{zone}}</span><div class="muted">{{#paused}}<strong class="paused">⏸ paused</strong>{{/paused}}{{^paused}}next {{#next}}{{>time}}{{/next}}{{/paused}}</div>{{/cron}}{{^cron}}<span class="muted">manual</span>{{/cron}}</td>
        <td>{{#strip}}{{>strip}}{{/strip}}</td><td class="num">{{successRate}}</td><td class="num">{{averageDuration}}</td></tr>
        {{/workflows}}
        </tbody>
        </table>
        {{^workflows}}<p class="empty">No workflows are loaded: start the server with <code>--workflows DIR</code>.</p>{{/workflows}}
        </div>
        """

    static let workflow = """
        <h1>{{name}}</h1>
        {{#description}}<p class="sub">{{description}}</p>{{/description}}
        {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
        <div class="panel summary">
        <dl class="kv">
        <dt>Version</dt><dd class="mono">{{version}}</dd>
        <dt>Tasks</dt><dd>{{taskCount}}</dd>
        <dt>Schedule</dt><dd>{{#cron}}<code>{{cron}}</code> {{zone}} · {{#paused}}<strong class="paused">⏸ paused</strong>{{/paused}}{{^paused}}next {{#next}}{{>time}}{{/next}}{{/paused}}{{/cron}}{{^cron}}manual{{/cron}}</dd>
        <dt>Recent runs</dt><dd>{{#strip}}{{>strip}}{{/strip}} <a href="/runs?workflow={{name}}">all runs</a></dd>
        {{#hooks}}<dt>Webhook</dt><dd><code>POST {{url}}</code> · signed with the secret in <code>{{secretEnv}}</code> · delivery id <code>{{deliveryHeader}}</code></dd>{{/hooks}}
        </dl>
        {{#cron}}{{#paused}}<form method="post" action="/workflows/{{encodedName}}/unpause" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><label class="nowrap"><input type="checkbox" name="catch_up" value="true"> fire the times missed while paused</label> <button type="submit">Unpause schedule</button></form>{{/paused}}
        {{^paused}}<form method="post" action="/workflows/{{encodedName}}/pause"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="secondary">Pause schedule</button></form>{{/paused}}{{/cron}}
        </div>
        <details class="trigger panel"{{#open}} open{{/open}}><summary>Trigger a run</summary>{{#form}}{{>trigger}}{{/form}}</details>
        {{#cron}}<details class="trigger panel"><summary>Backfill</summary>
        <form method="post" action="/workflows/{{encodedName}}/backfills">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <p class="sub">One run per fire time from <em>from</em> through <em>to</em>, both inclusive; a date means 00:00 UTC. At most 10,000 fire times; <em>to</em> not after now.</p>
        <label for="bf-from">from <input id="bf-from" name="from" type="text" placeholder="2024-06-01" required autocomplete="off"></label>
        <label for="bf-to">to <input id="bf-to" name="to" type="text" placeholder="2024-07-01" required autocomplete="off"></label>
        <label for="bf-max">at most active at once <input id="bf-max" name="max_active" type="number" min="1" max="1000" value="1"></label>
        <div><button type="submit">Create backfill</button></div>
        </form></details>{{/cron}}
        {{#hasBackfills}}<h2>Backfills under way</h2>
        <div class="tablewrap"><table><thead><tr><th scope="col">Backfill</th><th scope="col">From</th><th scope="col">To</th><th scope="col" class="num">Fire times handled</th><th scope="col" class="num">Already present</th><th scope="col" class="num">Active (max)</th><th scope="col" class="num">Succeeded</th><th scope="col" class="num">Failed</th><th scope="col"></th></tr></thead><tbody>
        {{#backfills}}<tr><td class="mono">{{id}}</td><td>{{#from}}{{>time}}{{/from}}</td><td>{{#to}}{{>time}}{{/to}}</td><td class="num">{{handled}}</td><td class="num">{{present}}</td><td class="num">{{active}} ({{maxActive}})</td><td class="num">{{succeeded}}</td><td class="num">{{failed}}</td><td><form method="post" action="/backfills/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger">Cancel</button></form></td></tr>{{/backfills}}
        </tbody></table></div>{{/hasBackfills}}
        <h2>Recent runs × tasks</h2>
        <div id="workflow-grid" data-live class="tablewrap">
        {{#hasRuns}}<table class="grid">
        <thead><tr><th scope="col">Task</th>{{#gridRuns}}<th scope="col" class="run"><a href="/runs/{{id}}" title="{{title}}">{{label}}</a></th>{{/gridRuns}}</tr></thead>
        <tbody>{{{gridRows}}}</tbody>
        </table>{{/hasRuns}}
        {{^hasRuns}}<p class="empty">No runs yet.</p>{{/hasRuns}}
        </div>
        <h2>Graph</h2>
        <div class="panel dag">{{{dag}}}</div>
        <h2>Tasks</h2>
        <div class="tablewrap"><table class="tasks"><thead><tr><th scope="col">Task</th><th scope="col">Type</th><th scope="col">Depends on</th><th scope="col">Queue</th><th scope="col" class="num">Retries</th><th scope="col">Description</th></tr></thead><tbody>
        {{{tasks}}}
        </tbody></table></div>
        """

    static let overview = """
        <h1>Overview</h1>
        <div id="overview-cards" data-live>
        <div class="cards">
        <div class="card"><div class="label">Active runs</div><div class="value">{{active}}</div><div class="detail">pending or running now</div></div>
        <div class="card"><div class="label">Runs succeeded, last hour</div><div class="value">{{hourSucceeded}}</div><div class="detail">{{hourFailed}} failed · success rate {{hourRate}}</div></div>
        <div class="card"><div class="label">Runs succeeded, last 24 hours</div><div class="value">{{daySucceeded}}</div><div class="detail">{{dayFailed}} failed · success rate {{dayRate}}</div></div>
        <div class="card"><div class="label">Queued tasks</div><div class="value">{{queued}}</div><div class="detail">oldest waiting {{oldest}}</div></div>
        <div class="card"><div class="label">Workers busy</div><div class="value">{{busy}} / {{slots}}</div><div class="detail">{{workers}} live workers</div></div>
        <div class="card"><div class="label">Scheduler lag</div><div class="value">{{lag}}</div><div class="detail">behind the oldest due item</div></div>
        <div class="card"><div class="label">Firing alerts</div><div class="value"><a href="/alerts">{{firing}}</a> {{#anyFiring}}<span class="state s-firing"><span class="glyph" aria-hidden="true">▲</span>firing</span>{{/anyFiring}}</div><div class="detail">{{pendingAlerts}} pending</div></div>
        </div>
        {{#hasQueues}}<h2>Queues</h2>
        <div class="tablewrap"><table><thead><tr><th scope="col">Queue</th><th scope="col" class="num">Ready tasks</th><th scope="col" class="num">Oldest waiting</th></tr></thead><tbody>
        {{#queues}}<tr><td>{{name}}</td><td class="num">{{depth}}</td><td class="num">{{oldest}}</td></tr>{{/queues}}
        </tbody></table></div>{{/hasQueues}}
        </div>
        <h2>The last hour</h2>
        {{#charts}}<div class="charts">{{#items}}{{>chart}}{{/items}}</div>{{/charts}}
        {{^charts}}<p class="muted">{{noHistory}}</p>{{/charts}}
        <h2>Recent runs</h2>
        <div id="overview-runs" data-live class="tablewrap"><table><thead><tr><th scope="col">Run</th><th scope="col">Workflow</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col" class="num">Duration</th></tr></thead><tbody>
        {{#recent}}<tr><td><a class="mono" href="/runs/{{id}}">{{id}}</a></td><td><a href="/workflows/{{workflow}}">{{workflow}}</a></td><td>{{#state}}{{>state}}{{/state}}</td><td class="nowrap">{{#created}}{{>time}}{{/created}}</td><td class="num">{{duration}}</td></tr>{{/recent}}
        </tbody></table>{{^recent}}<p class="empty">No runs yet: trigger one on <a href="/workflows">Workflows</a>.</p>{{/recent}}</div>
        """

    static let chart = """
        <figure class="chart"><h3>{{title}}</h3>
        <svg viewBox="0 0 {{width}} {{height}}" role="img" aria-label="{{title}}: now {{current}}, max {{max}}">
        <line class="axis" x1="{{left}}" x2="{{right}}" y1="{{bottom}}" y2="{{bottom}}"/>
        {{#area}}<path class="area" d="{{area}}"/>{{/area}}{{#line}}<path class="line" d="{{line}}"/>{{/line}}
        <text x="{{left}}" y="{{labelY}}">−60 min</text><text x="{{right}}" y="{{labelY}}" text-anchor="end">now {{current}}</text><text x="{{left}}" y="10">max {{max}}</text>
        </svg>{{#promql}}<details class="promql"><summary>PromQL</summary>{{#items}}<code>{{text}}</code>{{#problem}}<span class="field-error">✗ {{problem}}</span>{{/problem}}{{/items}}</details>{{/promql}}</figure>
        """

    static let workers = """
        <h1>Workers</h1>
        <div id="workers-table" data-live class="tablewrap">
        <table>
        <thead><tr><th scope="col">Worker</th><th scope="col">State</th><th scope="col">Host</th><th scope="col">Queues</th><th scope="col">Slots busy</th><th scope="col" class="num">Heartbeat</th><th scope="col">Version</th><th scope="col">Started</th></tr></thead>
        <tbody>
        {{#workers}}<tr><td class="mono">{{id}}</td><td>{{#state}}{{>state}}{{/state}}</td><td>{{host}} <span class="muted">pid {{pid}}</span></td><td>{{queues}}</td>
        <td class="nowrap"><svg class="bar" width="80" height="10" aria-hidden="true"><rect class="track" width="80" height="10" rx="2"/><rect class="fill" width="{{barWidth}}" height="10" rx="2"/></svg> {{busy}} / {{slots}}</td>
        <td class="num">{{heartbeat}} ago</td><td>{{version}}</td><td class="nowrap">{{#started}}{{>time}}{{/started}}</td></tr>
        {{/workers}}
        </tbody>
        </table>
        {{^workers}}<p class="empty">No worker has registered: start <code>deerflow server</code> (with workers) or <code>deerflow worker</code>.</p>{{/workers}}
        </div>
        """

    static let alerts = """
        <h1>Alerts</h1>
        <p class="sub">{{evaluation}}</p>
        <div id="alerts-active" data-live>
        <div class="tablewrap">
        <table>
        <thead><tr><th scope="col">Alert</th><th scope="col">State</th><th scope="col">Labels</th><th scope="col">Summary</th><th scope="col" class="num">Value</th><th scope="col">Since</th></tr></thead>
        <tbody>
        {{#alerts}}<tr><td><strong>{{name}}</strong></td><td>{{#state}}{{>state}}{{/state}}</td><td class="mono">{{labels}}</td><td>{{summary}}{{#description}}<div class="muted">{{description}}</div>{{/description}}</td><td class="num">{{value}}</td><td class="nowrap">{{#since}}{{>time}}{{/since}}</td></tr>
        {{/alerts}}
        </tbody>
        </table>
        {{^alerts}}<p class="empty"><span class="state s-success"><span class="glyph" aria-hidden="true">✓</span>none</span> No alert is pending or firing.</p>{{/alerts}}
        </div>
        </div>
        <h2>Notification deliveries</h2>
        <div id="alerts-outbox" data-live class="tablewrap">
        <table>
        <thead><tr><th scope="col">Created</th><th scope="col">Channel</th><th scope="col">Message</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Delivered / next try</th><th scope="col">Error</th></tr></thead>
        <tbody>
        {{#deliveries}}<tr><td class="nowrap">{{#created}}{{>time}}{{/created}}</td><td>{{channel}}</td><td class="mono">{{key}}</td><td>{{#state}}{{>state}}{{/state}}</td><td class="num">{{attempts}}</td><td class="nowrap">{{#when}}{{>time}}{{/when}}</td><td class="err">{{error}}</td></tr>
        {{/deliveries}}
        </tbody>
        </table>
        {{^deliveries}}<p class="empty">{{noDeliveries}}</p>{{/deliveries}}
        </div>
        """

    static let dashboard = """
        <h1>Metrics</h1>
        <p class="sub">The panels of the shipped Grafana dashboard (<code>deploy/grafana/deerflow-overview.json</code>), with the same PromQL evaluated by DeerFlow's own evaluator over this process's sampled history (the last hour).{{#grafanaOnly}} Drawn only in Grafana (heatmaps): {{grafanaOnly}}.{{/grafanaOnly}}</p>
        {{#charts}}<div class="charts">{{#items}}{{>chart}}{{/items}}</div>{{/charts}}
        {{^charts}}<p class="muted">{{noHistory}}</p>{{/charts}}
        """
}
