import ArgumentParser
import DeerFlow
import DeerFlowCore
import DeerFlowServer
import Foundation

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
        let definition = try await api.get("/api/v1/workflows/\(workflow.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? workflow)")
        var types: [String: ParamType] = [:]
        if case .object(let object)? = definition.json, case .array(let declared)? = object["params"] {
            for case .object(let param) in declared {
                if let name = param["name"]?.stringValue, let type = param["type"]?.stringValue.flatMap(ParamType.init(rawValue:)) {
                    types[name] = type
                }
            }
        }
        var values: [String: JSONValue] = [:]
        for pair in params {
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
        let response = try await api.post("/api/v1/workflows/\(workflow)/runs", body: ["params": .object(values)])
        guard case .object(let run)? = response.json, let id = run["id"]?.stringValue else {
            throw CLIError("unexpected answer from the API: \(response.text.prefix(300))")
        }
        if !wait {
            print(json ? response.text.trimmingCharacters(in: .newlines) : "run \(id) of \(workflow) created (status \(run["status"]?.stringValue ?? "?"))")
            return
        }
        if !json { print("run \(id) of \(workflow) created; waiting…") }
        let printer = RunProgressPrinter(client: api, quiet: json)
        let limit = timeout
        let final = try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            group.addTask { try await printer.follow(id) }
            if let limit {
                group.addTask {
                    try await Task.sleep(for: limit)
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
        if json { print(final.compactJSON) }
        guard case .object(let object) = final, object["status"]?.stringValue == RunStatus.success.rawValue else {
            throw ExitCode(1)
        }
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

    func follow(_ id: String) async throws -> JSONValue {
        var seen: [String: String] = [:]
        while true {
            let response = try await client.get("/api/v1/runs/\(id)")
            guard let run = response.json, case .object(let object) = run else { throw CLIError("unexpected answer: \(response.text.prefix(200))") }
            if case .array(let tasks)? = object["tasks"], !quiet {
                for case .object(let task) in tasks {
                    let taskID = task["id"]?.stringValue ?? "?"
                    let status = task["status"]?.stringValue ?? "?"
                    var attempts = 0
                    var lastError: String?
                    if case .array(let list)? = task["attempts"] {
                        attempts = list.count
                        if case .object(let last)? = list.last { lastError = last["error"]?.stringValue }
                    }
                    let key = "\(status)#\(attempts)"
                    if seen[taskID] != key {
                        seen[taskID] = key
                        var line = "  \(taskID): \(status)"
                        if attempts > 1 { line += " (attempt \(attempts))" }
                        if let lastError, status != "success", status != "running" { line += " — \(lastError)" }
                        print(line)
                    }
                }
            }
            let status = object["status"]?.stringValue ?? ""
            if let parsed = RunStatus(rawValue: status), parsed.isFinished {
                if !quiet { print("run \(id): \(status)") }
                return run
            }
            try await Task.sleep(for: .milliseconds(300))
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
        let response = try await client.client.get("/api/v1/runs/\(runID)")
        if json {
            print(response.text.trimmingCharacters(in: .newlines))
            return
        }
        guard case .object(let run)? = response.json else { throw CLIError("unexpected answer: \(response.text.prefix(200))") }
        print(TextTable.runSummary(run))
        var rows = [["TASK", "TYPE", "STATUS", "ATTEMPTS", "DURATION", "ERROR"]]
        if case .array(let tasks)? = run["tasks"] {
            for case .object(let task) in tasks {
                var attempts: [JSONValue] = []
                if case .array(let list)? = task["attempts"] { attempts = list }
                var duration = ""
                var error = ""
                if case .object(let last)? = attempts.last {
                    duration = TextTable.duration(from: last["started_at"], to: last["finished_at"])
                    error = last["error"]?.stringValue ?? ""
                }
                rows.append([
                    task["id"]?.stringValue ?? "", task["type"]?.stringValue ?? "", task["status"]?.stringValue ?? "",
                    String(attempts.count), duration, String(error.prefix(60)),
                ])
            }
        }
        print(TextTable.render(rows))
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
        var query: [String] = ["limit=\(limit)"]
        if let workflow { query.append("workflow=\(workflow.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? workflow)") }
        if let status { query.append("status=\(status)") }
        if let cursor { query.append("cursor=\(cursor)") }
        let response = try await client.client.get("/api/v1/runs?" + query.joined(separator: "&"))
        if json {
            print(response.text.trimmingCharacters(in: .newlines))
            return
        }
        guard case .object(let page)? = response.json, case .array(let runs)? = page["runs"] else {
            throw CLIError("unexpected answer: \(response.text.prefix(200))")
        }
        var rows = [["RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"]]
        for case .object(let run) in runs {
            rows.append([
                run["id"]?.stringValue ?? "", run["workflow"]?.stringValue ?? "", run["status"]?.stringValue ?? "",
                run["created_at"]?.stringValue ?? "", TextTable.duration(from: run["created_at"], to: run["finished_at"]),
            ])
        }
        print(TextTable.render(rows))
        if let next = page["next_cursor"]?.stringValue { print("more: --cursor \(next)") }
    }
}

/// `deerflow cancel RUN_ID`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a pending or running run.")

    @Argument(help: "Run id.") var runID: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let response = try await client.client.post("/api/v1/runs/\(runID)/cancel", body: nil)
        guard case .object(let run)? = response.json else { throw CLIError("unexpected answer: \(response.text.prefix(200))") }
        print("run \(runID): \(run["status"]?.stringValue ?? "?")")
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
        var tasks: [String] = []
        if let taskID {
            tasks = [taskID]
        } else {
            let response = try await api.get("/api/v1/runs/\(runID)")
            if case .object(let run)? = response.json, case .array(let list)? = run["tasks"] {
                for case .object(let task) in list { if let id = task["id"]?.stringValue { tasks.append(id) } }
            }
        }
        for task in tasks {
            var query: [String] = []
            if let attempt { query.append("attempt=\(attempt)") }
            if follow { query.append("follow=true") }
            let path = "/api/v1/runs/\(runID)/tasks/\(task)/log" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
            if taskID == nil { print("### task \(task)") }
            if follow {
                try await api.stream(path) { chunk in
                    FileHandle.standardOutput.write(Data(chunk.utf8))
                }
            } else {
                let response = try await api.get(path)
                print(response.text, terminator: response.text.hasSuffix("\n") || response.text.isEmpty ? "" : "\n")
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
        let response = try await client.client.get("/api/v1/workflows")
        if json {
            print(response.text.trimmingCharacters(in: .newlines))
            return
        }
        guard case .object(let object)? = response.json, case .array(let workflows)? = object["workflows"] else {
            throw CLIError("unexpected answer: \(response.text.prefix(200))")
        }
        var rows = [["WORKFLOW", "TASKS", "SCHEDULE", "NEXT FIRE", "DESCRIPTION"]]
        for case .object(let workflow) in workflows {
            var taskCount = 0
            if case .array(let tasks)? = workflow["tasks"] { taskCount = tasks.count }
            var schedule = ""
            var next = ""
            if case .object(let declared)? = workflow["schedule"] {
                schedule = "\(declared["cron"]?.stringValue ?? "") \(declared["timezone"]?.stringValue ?? "")"
                next = declared["next_fire_at"]?.stringValue ?? ""
            }
            rows.append([workflow["name"]?.stringValue ?? "", String(taskCount), schedule, next, String((workflow["description"]?.stringValue ?? "").prefix(50))])
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
        let response = try await client.client.get("/api/v1/workers")
        if json {
            print(response.text.trimmingCharacters(in: .newlines))
            return
        }
        guard case .object(let object)? = response.json, case .array(let workers)? = object["workers"] else {
            throw CLIError("unexpected answer: \(response.text.prefix(200))")
        }
        var rows = [["WORKER", "STATE", "SLOTS", "BUSY", "QUEUES", "LAST SEEN"]]
        for case .object(let worker) in workers {
            var queues = ""
            if case .array(let list)? = worker["queues"] { queues = list.compactMap(\.stringValue).joined(separator: ",") }
            rows.append([
                worker["id"]?.stringValue ?? "", worker["state"]?.stringValue ?? "", String(worker["slots"]?.intValue ?? 0),
                String(worker["busy"]?.intValue ?? 0), queues, worker["last_seen"]?.stringValue ?? "",
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
        let response = try await client.client.get("/api/v1/alerts")
        if json {
            print(response.text.trimmingCharacters(in: .newlines))
            return
        }
        guard case .object(let document)? = response.json, case .array(let alerts)? = document["alerts"] else {
            throw CLIError("unexpected answer: \(response.text.prefix(200))")
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
            let value = alert["value"]?.doubleValue.map { String(format: "%g", $0) } ?? ""
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

    static func duration(from start: JSONValue?, to end: JSONValue?) -> String {
        guard let start = start?.stringValue.flatMap(Timestamp.parse) else { return "" }
        let finish = end?.stringValue.flatMap(Timestamp.parse) ?? Date()
        let seconds = finish.timeIntervalSince(start)
        if seconds < 1 { return String(format: "%.0fms", seconds * 1000) }
        if seconds < 120 { return String(format: "%.1fs", seconds) }
        return String(format: "%.1fm", seconds / 60)
    }

    static func runSummary(_ run: [String: JSONValue]) -> String {
        let id = run["id"]?.stringValue ?? "?"
        let workflow = run["workflow"]?.stringValue ?? "?"
        let status = run["status"]?.stringValue ?? "?"
        let took = duration(from: run["created_at"], to: run["finished_at"])
        return "run \(id) of \(workflow): \(status) (created \(run["created_at"]?.stringValue ?? "?"), \(took))"
    }
}
