import ArgumentParser
import DeerFlow
import DeerFlowAPI
import DeerFlowCore
import DeerFlowServer
import Foundation
import NIOCore
import OpenAPIRuntime

/// `deerflow run`: triggers a run through the API.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Trigger a run of a workflow through the API.",
        discussion: """
            Example: deerflow run etl --param day=2024-06-02 --param rows=10 --wait --timeout 10m

            Parameter values are converted to the types the workflow declares. With --wait the command prints \
            each task transition as it happens and its exit code says how the run ended:

              0    the run succeeded
              1    the run failed or was cancelled (or the command itself failed: API unreachable, unknown workflow)
              64   bad usage (an unknown option, a --param the workflow does not declare or of the wrong type)
              124  --timeout passed before the run finished (as timeout(1) does); the run goes on
            """
    )

    /// Exit code of `--wait` when `--timeout` passes first (the one `timeout(1)` uses).
    static let timedOut = ExitCode(124)

    @Argument(help: "Name of the workflow.")
    var workflow: String

    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter as name=value; repeat for several.", valueName: "name=value"))
    var params: [String] = []

    @Flag(help: "Wait for the run to finish, showing task progress.")
    var wait = false

    @Option(help: ArgumentHelp(
        "A key for this request (a UUID): run the command again with the same key, after a timeout say, and it answers the run the first one created instead of creating another.",
        valueName: "key"))
    var idempotencyKey: String?

    @Option(
        help: ArgumentHelp("With --wait: stop waiting after this long (30s, 5m, 1h30m) and exit 124; the run goes on.", valueName: "duration"),
        transform: { text in
            guard let duration = DurationText.parse(text), duration > .zero else {
                throw ValidationError("--timeout '\(text)' is not a duration above 0 (e.g. 30s, 5m, 1h30m)")
            }
            return duration
        })
    var timeout: Duration?

    @Flag(help: "Print the API's JSON instead of text.")
    var json = false

    @OptionGroup var client: ClientOptions

    func validate() throws {
        if timeout != nil && !wait { throw ValidationError("--timeout limits --wait; add --wait") }
        for pair in params where !pair.contains("=") {
            throw ValidationError("--param '\(pair)' must be name=value")
        }
    }

    func run() async throws {
        let api = client.client
        let workflow = self.workflow
        let parameters = try await typedParams(params, of: workflow, api: api, usage: usage)
        let key = idempotencyKey
        // 200 instead of 201: an earlier request with this key created the run; nothing new was.
        let (run, earlier) = try await api.call {
            let output = try await $0.triggerRun(path: .init(name: workflow), headers: .init(idempotencyKey: key), body: .json(.init(params: parameters)))
            if case .ok(let earlier) = output { return (try earlier.body.json, true) }
            return (try output.created.body.json, false)
        }
        let id = run.id
        let created = earlier ? "created earlier with this --idempotency-key" : "created"
        if !wait {
            print(json ? api.lastText : "run \(id) of \(workflow) \(created) (status \(run.status.rawValue))")
            return
        }
        if !json { print("run \(id) of \(workflow) \(created); waiting…") }
        let printer = RunProgressPrinter(client: api, quiet: json)
        let limit = timeout
        let final = try await withThrowingTaskGroup(of: RunProgressPrinter.Final?.self) { group in
            group.addTask { try await printer.follow(id) }
            if let limit {
                group.addTask {
                    try await Sleep.for(limit)
                    return nil
                }
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let final else {
            let waited = limit.map(DurationText.format) ?? "?"
            FileHandle.standardError.write(Data((
                "deerflow run: stopped waiting after \(waited) (--timeout); run \(id) has not finished and goes on. "
                    + "Follow it with `deerflow status \(id)`, stop it with `deerflow cancel \(id)`.\n").utf8))
            throw Self.timedOut
        }
        if json { print(final.json) }
        guard final.run.status == .success else { throw ExitCode(1) }
    }

    /// A usage error found only after asking the API (what the workflow declares): printed with
    /// this command's usage, as the parser prints its own, and exit code 64.
    private func usage(_ message: String) -> ExitCode {
        let text = """
            Error: \(message)
            Usage: \(DeerFlowCommand.usageString(for: Self.self))
              See 'deerflow run --help' for more information.

            """
        FileHandle.standardError.write(Data(text.utf8))
        return .validationFailure
    }
}

/// Prints task transitions of a run until it finishes.
struct RunProgressPrinter {
    let client: APIClient
    var quiet = false

    /// The finished run and the API's JSON of it.
    struct Final: Sendable {
        let run: Components.Schemas.RunDetail
        let json: String
    }

    func follow(_ id: String) async throws -> Final {
        var seen: [String: String] = [:]
        while true {
            let run = try await client.call { try await $0.getRun(path: .init(id: id)).ok.body.json }
            if !quiet {
                for task in run.tasks {
                    let status = task.status.rawValue
                    let attempts = task.attempts.count
                    let lastError = task.attempts.last?.error.value
                    let key = "\(status)#\(attempts)"
                    if seen[task.id] != key {
                        seen[task.id] = key
                        var line = "  \(task.id): \(status)"
                        if attempts > 1 { line += " (attempt \(attempts))" }
                        if let lastError, status != "success", status != "running" { line += " — \(lastError)" }
                        print(line)
                    }
                }
            }
            if let parsed = RunStatus(rawValue: run.status.rawValue), parsed.isFinished {
                if !quiet { print("run \(id): \(run.status.rawValue)") }
                return Final(run: run, json: client.lastText)
            }
            try await Sleep.for(.milliseconds(300))
        }
    }
}

/// `deerflow status RUN_ID`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a run with its tasks and attempts.")

    @Argument(help: "Run id.") var runID: String
    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let id = runID
        let run = try await api.call { try await $0.getRun(path: .init(id: id)).ok.body.json }
        if json {
            print(api.lastText)
            return
        }
        print(TextTable.runSummary(id: run.id, workflow: run.workflow, status: run.status.rawValue, createdAt: run.createdAt, finishedAt: run.finishedAt.value))
        print("trigger \(run.trigger.rawValue), logical time \(Timestamp.rfc3339(run.logicalTime))" + (run.backfillId.value.map { ", backfill \($0)" } ?? ""))
        var notes: [String] = []
        if let reason = run.reason.value { notes.append("reason: \(reason)") }
        if run.retries > 0 { notes.append("retried \(run.retries) time\(run.retries == 1 ? "" : "s")") }
        if let original = run.rerunOf.value { notes.append("rerun of \(original)") }
        if let parent = run.parent.value { notes.append("started by task \(parent.taskId) (attempt \(parent.attempt)) of run \(parent.runId)") }
        if !notes.isEmpty { print(notes.joined(separator: "; ")) }
        var rows = [["TASK", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "ERROR"]]
        for task in run.tasks {
            var duration = ""
            var error = ""
            if let last = task.attempts.last {
                duration = TextTable.duration(from: last.startedAt.value, to: last.finishedAt.value)
                error = last.error.value ?? ""
            }
            rows.append([task.id, task._type, task.status.rawValue, String(task.attempts.count), duration, String(error.prefix(60))])
        }
        print(TextTable.render(rows))
        for task in run.tasks {
            guard let map = task.map else { continue }
            let failed = map.instances.filter { !["success", "pending", "queued", "running"].contains($0.status.rawValue) }.map { String($0.index) }
            let which = failed.isEmpty ? "" : " (index \(failed.prefix(20).joined(separator: ", "))\(failed.count > 20 ? ", …" : ""))"
            print("\(task.id): \(map.count) instances, \(map.succeeded) succeeded, \(map.failed) failed\(which), \(map.running) running, "
                + "\(map.queued) queued, \(map.waiting) waiting; logs: deerflow logs \(run.id) '\(task.id)[N]'")
        }
        if !run.children.isEmpty {
            print("\nchild runs:")
            let children = [["RUN", "WORKFLOW", "STATUS", "STARTED BY"]] + run.children.map { child in
                [child.runId, child.workflow, child.status.rawValue, "\(child.taskId) (attempt \(child.attempt))"]
            }
            print(TextTable.render(children))
        }
    }
}

/// `deerflow runs`.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "List runs, newest first.")

    @Option(help: "Only runs of this workflow.") var workflow: String?
    @Option(help: "Only runs with this status (pending, running, success, failed, cancelled).") var status: String?
    @Option(help: "How many runs (1-1000).") var limit: Int = 20
    @Option(help: "Continue after this run id (the next_cursor of a previous page).") var cursor: String?
    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        var status: Components.Schemas.RunStatus?
        if let text = self.status {
            guard let parsed = Components.Schemas.RunStatus(rawValue: text) else {
                throw CLIError("unknown status '\(text)'; use one of \(Components.Schemas.RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = parsed
        }
        let query = Operations.ListRuns.Input.Query(workflow: workflow, status: status, limit: limit, cursor: cursor)
        let api = client.client
        let page = try await api.call { try await $0.listRuns(query: query).ok.body.json }
        if json {
            print(api.lastText)
            return
        }
        var rows = [["RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"]]
        for run in page.runs {
            rows.append([run.id, run.workflow, run.status.rawValue, Timestamp.rfc3339(run.createdAt), TextTable.duration(from: run.createdAt, to: run.finishedAt.value)])
        }
        print(TextTable.render(rows))
        if let next = page.nextCursor.value { print("more: --cursor \(next)") }
    }
}

/// `deerflow cancel RUN_ID`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a pending or running run.")

    @Argument(help: "Run id.") var runID: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = runID
        let run = try await client.client.call { try await $0.cancelRun(path: .init(id: id)).ok.body.json }
        print("run \(runID): \(run.status.rawValue)")
    }
}

/// `--param name=value` pairs typed as `workflow` declares its parameters; a problem is thrown as
/// the command's usage error (`usage`).
func typedParams(_ pairs: [String], of workflow: String, api: APIClient, usage: (String) -> any Error) async throws -> [String: JSONValue] {
    guard !pairs.isEmpty else { return [:] }
    let definition = try await api.call { try await $0.getWorkflow(path: .init(name: workflow)).ok.body.json }
    var types: [String: ParamType] = [:]
    for param in definition.params {
        if let type = ParamType(rawValue: param._type.rawValue) { types[param.name] = type }
    }
    var values: [String: JSONValue] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "=") else { throw usage("--param '\(pair)' must be name=value") }
        let name = String(pair[..<equals])
        let text = String(pair[pair.index(after: equals)...])
        guard let type = types[name] else {
            let known = types.keys.sorted().joined(separator: ", ")
            throw usage("workflow '\(workflow)' has no parameter '\(name)'" + (known.isEmpty ? " (it declares none)" : " (declared: \(known))"))
        }
        guard let value = type.parse(commandLine: text) else {
            throw usage("--param \(name)=\(text): expected a value of type \(type.rawValue)")
        }
        values[name] = value
    }
    return values
}

/// `deerflow retry RUN_ID [--task T ...]`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Retry a finished run's failed, timed-out, cancelled and upstream-failed tasks in the same run.",
        discussion: """
            Successful tasks keep their outputs; attempts are numbered on. With --task, re-runs those tasks \
            and everything downstream of them (successful ones too). Example: deerflow retry 01J2XK... --task transform
            """
    )

    @Argument(help: "Run id.") var runID: String
    @Option(name: .customLong("task"), help: ArgumentHelp("A task to re-run with everything downstream; repeat for several.", valueName: "task"))
    var tasks: [String] = []
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = runID
        let body = Operations.RetryRun.Input.Body.json(.init(tasks: tasks.isEmpty ? nil : tasks))
        let run = try await client.client.call { try await $0.retryRun(path: .init(id: id), body: body).ok.body.json }
        print("run \(runID): \(run.status.rawValue) again (retry \(run.retries)); follow it with `deerflow status \(runID)`")
    }
}

/// `deerflow rerun RUN_ID [--param k=v ...]`.
struct RerunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun",
        abstract: "Start a new run of a finished run's workflow with the same parameters.",
        discussion: "Example: deerflow rerun 01J2XK... --param day=2024-06-02"
    )

    @Argument(help: "Run id.") var runID: String
    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter to override, as name=value; repeat for several.", valueName: "name=value"))
    var params: [String] = []
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let id = runID
        var overrides: [String: JSONValue] = [:]
        if !params.isEmpty {
            let original = try await api.call { try await $0.getRun(path: .init(id: id)).ok.body.json }
            overrides = try await typedParams(params, of: original.workflow, api: api) { message in
                FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
                return ExitCode.validationFailure
            }
        }
        let parameters = overrides
        let run = try await api.call {
            try await $0.rerunRun(path: .init(id: id), body: .json(.init(params: parameters))).created.body.json
        }
        print("run \(run.id) of \(run.workflow) created as a rerun of \(runID) (status \(run.status.rawValue))")
    }
}

/// `deerflow logs RUN_ID [TASK_ID]`.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the logs of a run's tasks (all attempts), or of one task.",
        discussion: "Example: deerflow logs 01J2XK... extract --attempt 2"
    )

    @Argument(help: "Run id.") var runID: String
    @Argument(help: "Task id; default: every task of the run.") var taskID: String?
    @Option(help: "Only this attempt number.") var attempt: Int?
    @Flag(help: "Keep printing new lines while the task runs (each task in turn when no TASK_ID is given).") var follow = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let id = runID
        var tasks: [String] = []
        if let taskID {
            tasks = [taskID]
        } else {
            tasks = try await api.call { try await $0.getRun(path: .init(id: id)).ok.body.json }.tasks.map(\.id)
        }
        for task in tasks {
            let input = Operations.GetTaskLog.Input(
                path: .init(id: id, taskId: task),
                query: .init(attempt: attempt, follow: follow ? "true" : nil),
                headers: .init(accept: [.init(contentType: .textPlainCharsetUtf8)]))
            if taskID == nil { print("### task \(task)") }
            // A followed log streams until the task finishes: wait for it up to a day.
            try await api.call(timeout: follow ? .hours(24) : .seconds(30)) { client in
                let body = try await client.getTaskLog(input).ok.body.textPlainCharsetUtf8
                if follow {
                    for try await chunk in body { FileHandle.standardOutput.write(Data(chunk)) }
                } else {
                    let text = try await String(collecting: body, upTo: 64 << 20)
                    print(text, terminator: text.hasSuffix("\n") || text.isEmpty ? "" : "\n")
                }
            }
        }
    }
}

/// `deerflow workflows`.
struct WorkflowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "workflows", abstract: "List the workflows the server knows.")

    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let workflows = try await api.call { try await $0.listWorkflows().ok.body.json }.workflows
        if json {
            print(api.lastText)
            return
        }
        var rows = [["WORKFLOW", "TASKS", "SCHEDULE", "NEXT FIRE", "DESCRIPTION"]]
        for workflow in workflows {
            var schedule = ""
            var next = ""
            if let declared = workflow.schedule.value {
                schedule = "\(declared.cron) \(declared.timezone)"
                next = workflow.paused ? "paused" : declared.nextFireAt.value.map(Timestamp.rfc3339) ?? ""
            }
            rows.append([workflow.name, String(workflow.tasks.count), schedule, next, String(workflow.description.prefix(50))])
        }
        print(TextTable.render(rows))
    }
}

/// `deerflow workers`.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "workers", abstract: "List registered workers with their heartbeat.")

    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let workers = try await api.call { try await $0.listWorkers().ok.body.json }.workers
        if json {
            print(api.lastText)
            return
        }
        var rows = [["WORKER", "STATE", "SLOTS", "BUSY", "QUEUES", "LAST SEEN"]]
        for worker in workers {
            rows.append([
                worker.id, worker.state.rawValue, String(worker.slots), String(worker.busy), worker.queues.joined(separator: ","),
                Timestamp.rfc3339(worker.lastSeen),
            ])
        }
        print(TextTable.render(rows))
    }
}

/// `deerflow alerts`: pending and firing alerts of the server's own rule evaluation.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "List pending and firing alerts of the server's in-process rule evaluation.")

    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let answer = try await api.call { try await $0.listAlerts().ok.body.json }
        if json {
            print(api.lastText)
            return
        }
        guard case .object(let document) = answer, case .array(let alerts)? = document["alerts"] else {
            throw CLIError("unexpected answer: \(api.lastText.prefix(200))")
        }
        if document["evaluating"] == .bool(false) {
            let reason = document["reason"]?.stringValue ?? "this process is not the scheduler leader; ask the leader (deerflow_scheduler_leader == 1)"
            print("not evaluating alert rules: \(reason)")
        }
        guard !alerts.isEmpty else {
            let rules = (document["rules"].flatMap { value -> [JSONValue]? in
                if case .array(let list) = value { return list }
                return nil
            } ?? []).compactMap(\.stringValue)
            print("no alerts pending or firing (rules: \(rules.joined(separator: ", ")))")
            return
        }
        var rows = [["ALERT", "STATE", "SEVERITY", "VALUE", "ACTIVE SINCE", "SUMMARY"]]
        for case .object(let alert) in alerts {
            var labels: [String: JSONValue] = [:]
            if case .object(let object)? = alert["labels"] { labels = object }
            var annotations: [String: JSONValue] = [:]
            if case .object(let object)? = alert["annotations"] { annotations = object }
            let value = alert["value"]?.doubleValue.map(GoFormat.shortest) ?? ""
            rows.append([
                alert["name"]?.stringValue ?? "", alert["state"]?.stringValue ?? "", labels["severity"]?.stringValue ?? "", value,
                alert["active_at"]?.stringValue ?? "", annotations["summary"]?.stringValue ?? "",
            ])
        }
        print(TextTable.render(rows))
    }
}

/// Plain-text tables and durations for the client commands.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func duration(from start: Date?, to end: Date?) -> String {
        guard let start else { return "" }
        let finish = end ?? Date()
        return DurationText.elapsed(seconds: max(0, finish.timeIntervalSince(start)), compact: true)
    }

    static func runSummary(id: String, workflow: String, status: String, createdAt: Date, finishedAt: Date?) -> String {
        let took = duration(from: createdAt, to: finishedAt)
        return "run \(id) of \(workflow): \(status) (created \(Timestamp.rfc3339(createdAt)), \(took))"
    }
}
