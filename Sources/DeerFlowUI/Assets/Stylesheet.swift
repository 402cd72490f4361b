/// The UI's one stylesheet: system fonts, light and dark themes from `prefers-color-scheme`, every
/// state with a colour and a glyph.
enum Stylesheet {
    static let text = #"""
:root {
  color-scheme: light dark;
  --bg: #f7f8fa; --panel: #ffffff; --fg: #1c2330; --muted: #5b6576; --line: #d9dee6; --accent: #1f5fbf;
  --row: #f1f3f7; --focus: #f0a500;
  --ok: #1d7a3a; --ok-bg: #e3f4e8; --bad: #b42318; --bad-bg: #fde7e4; --run: #1f5fbf; --run-bg: #e2ecfb;
  --wait: #7a5a00; --wait-bg: #fcf2d2; --idle: #5b6576; --idle-bg: #eceff3; --skip: #8a3ffc; --skip-bg: #efe6fe;
  --t-wait: #c9ced6; --t-queue: #e0b030; --t-backoff: #d1608a;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #11151c; --panel: #191f29; --fg: #e3e7ee; --muted: #9aa4b4; --line: #2c3543; --accent: #7fb0ff;
    --row: #1e2531; --focus: #ffc23d;
    --ok: #5fd38a; --ok-bg: #14321f; --bad: #ff8b7e; --bad-bg: #3d1a17; --run: #7fb0ff; --run-bg: #17294a;
    --wait: #f0c95a; --wait-bg: #3a2f10; --idle: #aab3c2; --idle-bg: #262d39; --skip: #c4a1ff; --skip-bg: #2c2042;
    --t-wait: #46505f; --t-queue: #b8902a; --t-backoff: #c0577e;
  }
}
* { box-sizing: border-box; }
html { font-size: 15px; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 1rem/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible, main:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: .5rem; }
.top { display: flex; align-items: center; gap: 1.5rem; padding: .55rem 1.25rem; background: var(--panel); border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; display: flex; align-items: center; gap: .4rem; }
.brand svg { width: 22px; height: 22px; fill: var(--accent); }
.top nav { display: flex; gap: .25rem; flex-wrap: wrap; flex: 1; }
.top nav a { padding: .3rem .65rem; border-radius: 6px; color: var(--fg); text-decoration: none; }
.top nav a:hover { background: var(--row); }
.top nav a[aria-current="page"] { background: var(--run-bg); color: var(--run); font-weight: 600; }
.logout { margin: 0; }
main { max-width: 1320px; margin: 0 auto; padding: 1.1rem 1.25rem 2rem; }
.foot { max-width: 1320px; margin: 0 auto; padding: 0 1.25rem 1.5rem; color: var(--muted); font-size: .85rem; }
h1 { font-size: 1.45rem; margin: .2rem 0 .8rem; display: flex; align-items: center; gap: .6rem; flex-wrap: wrap; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
.sub { color: var(--muted); margin: -.5rem 0 1rem; }
.mono, code, pre, .tasks td:nth-child(1), .tasks td:nth-child(3) { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .9em; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; margin-bottom: 1rem; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: var(--panel); }
.tablewrap { border: 1px solid var(--line); border-radius: 8px; overflow-x: auto; background: var(--panel); }
th, td { text-align: left; padding: .42rem .65rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .82rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--row); }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num, .tasks td:nth-child(5) { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.err { color: var(--bad); max-width: 28rem; overflow-wrap: anywhere; }
.nowrap { white-space: nowrap; }
.muted { color: var(--muted); }
.empty { color: var(--muted); padding: 1rem; }
.state { display: inline-flex; align-items: center; gap: .3rem; padding: .05rem .5rem .05rem .4rem; border-radius: 999px; font-size: .85rem; font-weight: 600; white-space: nowrap; border: 1px solid transparent; }
.glyph { font-weight: 700; min-width: 1em; text-align: center; }
.s-success, .s-delivered, .s-active { color: var(--ok); background: var(--ok-bg); border-color: var(--ok); }
.s-failed, .s-timeout, .s-firing, .s-lost { color: var(--bad); background: var(--bad-bg); border-color: var(--bad); }
.s-running { color: var(--run); background: var(--run-bg); border-color: var(--run); }
.s-queued, .s-pending, .s-retrying { color: var(--wait); background: var(--wait-bg); border-color: var(--wait); }
.s-cancelled, .s-stopped, .s-none { color: var(--idle); background: var(--idle-bg); border-color: var(--idle); }
.s-upstream_failed { color: var(--skip); background: var(--skip-bg); border-color: var(--skip); }
form.filters, form.inline { display: flex; gap: .6rem .9rem; flex-wrap: wrap; align-items: flex-end; margin: 0 0 1rem; }
label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .2rem; }
input, select, button { font: inherit; color: var(--fg); background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .35rem .55rem; }
button, .button { background: var(--accent); color: var(--panel); border-color: var(--accent); font-weight: 600; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: var(--panel); color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
.toolbar { display: flex; gap: .8rem; align-items: center; flex-wrap: wrap; margin: .5rem 0 1rem; }
.error { color: var(--bad); background: var(--bad-bg); border: 1px solid var(--bad); border-radius: 6px; padding: .5rem .75rem; }
.notice { color: var(--ok); background: var(--ok-bg); border: 1px solid var(--ok); border-radius: 6px; padding: .5rem .75rem; }
.read-only main form[method="post"], .read-only main details.trigger { display: none; }
.read-only-note { border: 1px solid var(--line); background: var(--panel); border-radius: 6px; padding: .5rem .75rem; margin: 0 0 1rem; }
.field-error { color: var(--bad); font-size: .85rem; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: .8rem; margin-bottom: 1rem; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .7rem .9rem; }
.card .label { color: var(--muted); font-size: .82rem; }
.card .value { font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: .82rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: .8rem; }
.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .6rem .8rem; margin: 0; }
.chart h3 { font-size: .9rem; margin: 0 0 .3rem; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .line { fill: none; stroke: var(--accent); stroke-width: 1.6; }
.chart .area { fill: var(--run-bg); }
.chart .axis { stroke: var(--line); }
.promql summary { cursor: pointer; color: var(--muted); font-size: .8rem; }
.promql code { display: block; font-size: .8rem; overflow-wrap: anywhere; margin-top: .2rem; }
.chart text, .timeline text, .dag text { fill: var(--muted); font-size: 11px; font-family: system-ui, "DejaVu Sans", sans-serif; }
.strip { display: flex; gap: 2px; flex-wrap: nowrap; }
.cell { display: inline-flex; width: 1.35rem; height: 1.35rem; align-items: center; justify-content: center; border-radius: 3px; font-size: .75rem; font-weight: 700; text-decoration: none; border: 1px solid transparent; }
table.grid { width: auto; }
.grid td, .grid th { padding: .25rem .3rem; }
.grid th.run { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: 500; text-transform: none; letter-spacing: 0; font-size: .75rem; }
.grid td.task { white-space: nowrap; max-width: 16rem; overflow: hidden; text-overflow: ellipsis; }
details.trigger { margin-top: .4rem; }
details.trigger summary { cursor: pointer; color: var(--accent); font-weight: 600; }
details.trigger form { margin-top: .6rem; display: grid; gap: .6rem; max-width: 34rem; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
.kv dt { color: var(--muted); }
.kv dd { margin: 0; overflow-wrap: anywhere; }
.summary { display: flex; flex-wrap: wrap; gap: 1rem 3rem; align-items: flex-start; }
.dag svg, .timeline svg { display: block; }
.dag use { fill: var(--panel); stroke: var(--line); stroke-width: 1.5; }
.dag a text { fill: var(--fg); font-size: 12px; }
.dag a:focus-visible use, .dag a:hover use { stroke: var(--focus); stroke-width: 3; }
.dag .edge { fill: none; stroke: var(--muted); stroke-width: 1.2; opacity: .7; }
.dag .n-success use { fill: var(--ok-bg); stroke: var(--ok); } .dag .n-success text { fill: var(--ok); }
.dag .n-failed use, .dag .n-timeout use { fill: var(--bad-bg); stroke: var(--bad); } .dag .n-failed text, .dag .n-timeout text { fill: var(--bad); }
.dag .n-running use { fill: var(--run-bg); stroke: var(--run); } .dag .n-running text { fill: var(--run); }
.dag .n-queued use { fill: var(--wait-bg); stroke: var(--wait); } .dag .n-queued text { fill: var(--wait); }
.dag .n-cancelled use { fill: var(--idle-bg); stroke: var(--idle); stroke-dasharray: 4 3; } .dag .n-cancelled text { fill: var(--idle); }
.dag .n-upstream_failed use { fill: var(--skip-bg); stroke: var(--skip); stroke-dasharray: 4 3; } .dag .n-upstream_failed text { fill: var(--skip); }
.timeline .folded { color: var(--muted); margin: .6rem 0 0; }
.timeline .critical-lane { fill: var(--run-bg); opacity: .55; }
.timeline .ticks line { stroke: var(--line); }
.timeline .ticks text { text-anchor: middle; }
.timeline .label { fill: var(--fg); font-size: 12px; text-anchor: end; }
.timeline .label.critical { font-weight: 700; }
.timeline .waiting { fill: var(--t-wait); }
.timeline .queued { fill: var(--t-queue); }
.timeline .backoff { fill: var(--t-backoff); }
.timeline .ran-success { fill: var(--ok); } .timeline .ran-failed, .timeline .ran-timeout { fill: var(--bad); }
.timeline .ran-running { fill: var(--run); } .timeline .ran-cancelled { fill: var(--idle); }
.timeline .critical-mark { fill: var(--run); font-weight: 700; }
.legend { display: flex; flex-wrap: wrap; gap: .4rem 1rem; font-size: .85rem; color: var(--muted); margin: .3rem 0 .5rem; }
.legend span::before { content: ""; display: inline-block; width: .9rem; height: .7rem; margin-right: .3rem; border-radius: 2px; vertical-align: -1px; }
.legend .waiting::before { background: var(--t-wait); } .legend .queued::before { background: var(--t-queue); }
.legend .backoff::before { background: var(--t-backoff); } .legend .running::before { background: var(--ok); }
.legend .crit::before { background: var(--run-bg); border: 1px solid var(--run); }
.log { background: #0e1218; color: #d8dee9; border-radius: 8px; padding: .75rem 1rem; max-height: 32rem; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font-size: .85rem; line-height: 1.4; }
.tabs { display: flex; gap: .3rem; flex-wrap: wrap; align-items: center; }
.tabs a { padding: .2rem .6rem; border: 1px solid var(--line); border-radius: 6px; text-decoration: none; }
.tabs a[aria-current="true"] { background: var(--run-bg); border-color: var(--run); font-weight: 600; }
.bar { display: inline-block; vertical-align: middle; }
.bar rect.track { fill: var(--row); } .bar rect.fill { fill: var(--accent); }
.login { max-width: 26rem; margin: 3rem auto; }
.login form { display: grid; gap: .8rem; }
.js-only { display: none; }
.has-js .js-only { display: inline; }
@media (max-width: 700px) { main { padding: .8rem; } .top { gap: .6rem; } }
"""#
}
