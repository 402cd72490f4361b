import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built-in task types (`shell`, `http`, `sleep`, `noop`) and Swift tasks, executed by a real
/// worker on a real SQLite store.
@Suite("Task execution")
struct TaskExecutionTests {
    /// A logger that drops everything but lets `info` through to task logs (the harness's default
    /// no-op logger reports level `critical`, which filters task log lines out).
    static let infoLogger = Logger(label: "deerflow.test.tasks", factory: { _ in InfoLevelDiscardingLogHandler() })

    static func flow(_ name: String, params: [ParamDefinition] = [], _ tasks: TaskDefinition...) -> Workflow {
        let workflow = Workflow(name: name, params: params)
        for task in tasks { workflow.task(task) }
        return workflow
    }

    static func shell(_ id: String = "sh", script: String) -> TaskDefinition {
        TaskDefinition(id: id, action: .shell(ShellAction(script: script)))
    }

    static func shell(_ id: String = "sh", command: [String]) -> TaskDefinition {
        TaskDefinition(id: id, action: .shell(ShellAction(command: command)))
    }

    /// Triggers a run and waits (at most 30 s) until it finishes.
    static func runToEnd(_ engine: DeerFlowEngine, _ workflow: String, params: [String: JSONValue] = [:]) async throws -> RunDetail {
        let run = try await engine.trigger(workflow, params: params)
        return try await withDeadline(.seconds(30), "run of \(workflow)") {
            try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
        }
    }

    /// The concatenated log text of every attempt of a task.
    static func log(_ engine: DeerFlowEngine, _ run: RunID, _ task: String) async throws -> String {
        (try await engine.store.taskLogs(run: run, task: task, attempt: nil) ?? []).map(\.text).joined()
    }

    // MARK: shell

    @Test("shell: params arrive as DEERFLOW_PARAM_<NAME> variables and are never interpreted by a shell")
    func shellParamsAreEnvironmentOnly() async throws {
        let marker = "/tmp/pwned-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let payload = "$(touch \(marker)); rm -rf x; `touch \(marker)` \"quoted\" 'single' *"
        let flow = Self.flow(
            "params",
            params: [.init("payload", type: .string), .init("other-name", type: .string, default: "dash ok")],
            Self.shell("script", script: "printf '%s\\n' \"$DEERFLOW_PARAM_PAYLOAD\"; printf 'other=%s\\n' \"$DEERFLOW_PARAM_OTHER_NAME\""),
            Self.shell("argv", command: ["printenv", "DEERFLOW_PARAM_PAYLOAD"])
        )
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "params", params: ["payload": .string(payload)])
            #expect(detail.run.status == .success, "\(detail.tasks.map { $0.attempts.map(\.error) })")
            #expect(!FileManager.default.fileExists(atPath: marker), "the parameter value was executed")
            let scriptLines = try await Self.log(engine, detail.run.id, "script").split(separator: "\n").map(String.init)
            #expect(scriptLines.contains(payload), "\(scriptLines)")
            #expect(scriptLines.contains("other=dash ok"), "\(scriptLines)")
            let argvLines = try await Self.log(engine, detail.run.id, "argv").split(separator: "\n").map(String.init)
            #expect(argvLines.contains(payload), "\(argvLines)")
        }
    }

    @Test("shell: the command form is an argv list, run without a shell; the attempt's ids are in the environment")
    func shellCommandArgv() async throws {
        let flow = Self.flow(
            "argv",
            Self.shell("literal", command: ["echo", "$HOME", "a;b", "*", "two words"]),
            Self.shell("ids", command: ["sh", "-c", "echo \"$DEERFLOW_WORKFLOW/$DEERFLOW_TASK_ID/$DEERFLOW_ATTEMPT/$DEERFLOW_RUN_ID\""])
        )
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "argv")
            #expect(detail.run.status == .success)
            #expect(detail.tasks.first?.output == ["exit_code": 0])
            let literal = try await Self.log(engine, detail.run.id, "literal")
            #expect(literal.contains("$HOME a;b * two words\n"), "\(literal)")
            let ids = try await Self.log(engine, detail.run.id, "ids")
            #expect(ids.contains("argv/ids/1/\(detail.run.id.rawValue)\n"), "\(ids)")
        }
    }

    @Test("shell: a task process inherits stdin, stdout and stderr only: no socket, database or pipe of the process running it")
    func shellInheritsNoDescriptors() async throws {
        // A descriptor without close-on-exec, as Foundation's pipes and sockets are: a task that
        // inherited it (or DeerFlow's sockets) and left a daemon behind would hold it open.
        var leaky: [Int32] = [0, 0]
        #expect(pipe(&leaky) == 0)
        defer { close(leaky[0]); close(leaky[1]) }
        let flow = Self.flow("descriptors", Self.shell(script: "ls /proc/$$/fd"))
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "descriptors")
            #expect(detail.run.status == .success, "\(detail.tasks.map { $0.attempts.map(\.error) })")
            let descriptors = try await Self.log(engine, detail.run.id, "sh").split(whereSeparator: \.isWhitespace).map(String.init)
            #expect(descriptors == ["0", "1", "2"])
        }
    }

    @Test("shell: stdout and stderr both end up in the task log")
    func shellOutputIsTheTaskLog() async throws {
        let flow = Self.flow("output", Self.shell(script: "echo out-line; echo err-line >&2; echo out-again"))
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "output")
            #expect(detail.run.status == .success)
            let logs = try await engine.store.taskLogs(run: detail.run.id, task: "sh", attempt: nil) ?? []
            #expect(logs.count == 1)
            #expect(logs.first?.attempt == 1)
            let text = logs.first?.text ?? ""
            for line in ["out-line\n", "err-line\n", "out-again\n"] {
                #expect(text.contains(line), "\(line) missing from \(text)")
            }
        }
    }

    @Test("shell: a non-zero exit code fails the attempt with 'exited with code N: <last line>'")
    func shellExitCode() async throws {
        let flow = Self.flow("exits", Self.shell(script: "echo working; echo 'disk full' >&2; exit 3"))
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "exits")
            #expect(detail.run.status == .failed)
            #expect(detail.tasks.first?.status == .failed)
            #expect(detail.tasks.first?.attempts.count == 1)
            #expect(detail.tasks.first?.attempts.first?.error == "exited with code 3: disk full")
            let text = try await Self.log(engine, detail.run.id, "sh")
            #expect(text.contains("working\n") && text.contains("disk full\n"), "\(text)")
        }
    }

    @Test("shell: cancelling the run sends SIGTERM to the running process and the attempt ends cancelled")
    func shellCancelSendsSIGTERM() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ready = directory.file("ready")
        let marker = directory.file("terminated")
        let script = """
            trap 'echo got-term > "\(marker)"; exit 0' TERM
            echo started
            echo $$ > "\(ready)"
            while true; do sleep 0.05; done
            """
        let flow = Self.flow("cancel-term", Self.shell(script: script))
        let warnings = LogRecorder()
        try await withEngine(workflows: [flow], logger: warnings.logger) { engine in
            let run = try await engine.trigger("cancel-term")
            let pid = try await waitForPID(in: ready)
            // The loop runs until a signal ends it: the watchdog's time only bounds a broken test.
            let watchdog = ProcessWatchdog(pid, after: .seconds(60))
            defer { watchdog.finish() }
            try await engine.cancel(run.id)
            let attempt = try await waitForFinishedAttempt(engine, run.id)
            #expect(attempt.status == .cancelled)
            #expect(try await engine.run(run.id)?.run.status == .cancelled)
            try await eventually("the TERM trap wrote its marker") {
                (try? String(contentsOfFile: marker, encoding: .utf8))?.contains("got-term") ?? false
            }
            try await eventually("the task process exited") { !processExists(pid) }
            // The log reaches the store in pieces while the task runs and in full once it has exited.
            var seen = ""
            do {
                try await eventually("the log was stored") {
                    seen = try await Self.log(engine, run.id, "sh")
                    return seen.contains("[deerflow] run cancelled") && seen.contains("started\n")
                }
            } catch {
                let attempts = try await engine.run(run.id)?.tasks.first?.attempts.map { "#\($0.number) \($0.status)" } ?? []
                Issue.record("stored log: \(seen.debugDescription); attempts: \(attempts); warnings: \(warnings.messages)")
                throw error
            }
            #expect(!watchdog.fired, "the test had to kill the task process")
        }
    }

    @Test("shell: a process that ignores SIGTERM is killed with SIGKILL after the grace period")
    func shellIgnoringSIGTERMIsKilled() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ready = directory.file("ready")
        let marker = directory.file("ignored")
        let script = """
            trap 'echo term-ignored >> "\(marker)"' TERM
            echo $$ > "\(ready)"
            while true; do sleep 0.05; done
            """
        var configuration = DeerFlowEngine.Configuration()
        configuration.killGracePeriod = .milliseconds(300)
        let flow = Self.flow("cancel-kill", Self.shell(script: script))
        try await withEngine(workflows: [flow], configuration: configuration) { engine in
            let run = try await engine.trigger("cancel-kill")
            let pid = try await waitForPID(in: ready)
            // Only SIGKILL ends the loop: the watchdog's time only bounds a broken test.
            let watchdog = ProcessWatchdog(pid, after: .seconds(60))
            defer { watchdog.finish() }
            try await engine.cancel(run.id)
            // The process received SIGTERM, survived it (the trap ran) ...
            try await eventually("the TERM trap ran") {
                (try? String(contentsOfFile: marker, encoding: .utf8))?.contains("term-ignored") ?? false
            }
            // ... and is gone anyway: only SIGKILL ends this loop.
            try await eventually("the process was killed") { !processExists(pid) }
            #expect(!watchdog.fired, "no SIGKILL came from the engine; the test's watchdog killed the process")
            let attempt = try await waitForFinishedAttempt(engine, run.id)
            #expect(attempt.status == .cancelled)
        }
    }

    @Test("shell: a program without a shell of its own (exec sleep) is stopped by SIGTERM, long before the grace period")
    func shellExecProgramGetsSIGTERM() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let ready = directory.file("ready")
        // A grace period far beyond the wait below: if the process goes away, SIGTERM did it.
        var configuration = DeerFlowEngine.Configuration()
        configuration.killGracePeriod = .seconds(120)
        let flow = Self.flow("cancel-exec", Self.shell(script: "echo $$ > \"\(ready)\"; exec sleep 120"))
        try await withEngine(workflows: [flow], configuration: configuration) { engine in
            let run = try await engine.trigger("cancel-exec")
            let pid = try await waitForPID(in: ready)
            try await eventually("sleep replaced the shell") {
                ((try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? "sleep").hasPrefix("sleep")
            }
            // Without SIGTERM the process would live until the 120 s grace period ends; the watchdog
            // (a plain thread, so a starved cooperative pool cannot hold it up) kills it after 60 s
            // and the test fails. (3 s, as before, a loaded machine could need for the cancel.)
            let watchdog = ProcessWatchdog(pid, after: .seconds(60))
            defer { watchdog.finish() }
            try await engine.cancel(run.id)
            let attempt = try await waitForFinishedAttempt(engine, run.id)
            #expect(attempt.status == .cancelled)
            try await eventually("the task process \(pid) ended", timeout: .seconds(90)) { !processExists(pid) }
            #expect(!watchdog.fired, "SIGTERM did not stop the task process; the test's watchdog had to kill it")
        }
    }

    @Test("shell: cancelling a script also stops the processes it started, not only the shell")
    func shellCancelStopsChildren() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let shell = directory.file("shell")
        let child = directory.file("child")
        let flow = Self.flow("cancel-tree", Self.shell(script: "echo $$ > \"\(shell)\"; sleep 120 & echo $! > \"\(child)\"; wait"))
        // A grace period far beyond the watchdogs: if the processes go away, SIGTERM did it, not
        // the SIGKILL at the end of the grace period (5 s by default, closer than a loaded machine
        // may take for the cancel).
        var configuration = DeerFlowEngine.Configuration()
        configuration.killGracePeriod = .seconds(120)
        try await withEngine(workflows: [flow], configuration: configuration) { engine in
            let run = try await engine.trigger("cancel-tree")
            let shellPID = try await waitForPID(in: shell)
            let childPID = try await waitForPID(in: child)
            // If the work outlives the cancelled attempt, the watchdogs kill it after 60 s and the test
            // fails rather than hangs (the shell has them too: the engine must not be left waiting for it).
            let childWatchdog = ProcessWatchdog(childPID, after: .seconds(60))
            let shellWatchdog = ProcessWatchdog(shellPID, after: .seconds(60))
            defer {
                childWatchdog.finish()
                shellWatchdog.finish()
            }
            try await engine.cancel(run.id)
            let attempt = try await waitForFinishedAttempt(engine, run.id)
            #expect(attempt.status == .cancelled)
            try await eventually("the script's child \(childPID) ended", timeout: .seconds(90)) { !processExists(childPID) }
            try await eventually("the shell \(shellPID) ended", timeout: .seconds(90)) { !processExists(shellPID) }
            #expect(!childWatchdog.fired, "the script's child process kept running after the attempt was cancelled")
            #expect(!shellWatchdog.fired, "the shell kept running after the attempt was cancelled")
        }
    }

    #if os(Linux)
    @Test("shell: task processes start with no blocked signals (SIGTERM must reach them)")
    func shellSignalMask() async throws {
        let flow = Self.flow("mask", Self.shell(command: ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]))
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "mask")
            #expect(detail.run.status == .success)
            let log = try await Self.log(engine, detail.run.id, "sh")
            let blocked = log.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }.map(String.init)
            #expect(blocked == "SigBlk:\t0000000000000000", "the task inherited a blocked signal mask: \(log)")
            let ignored = log.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.map(String.init) ?? ""
            let mask = UInt64(ignored.dropFirst("SigIgn:\t".count), radix: 16) ?? 0
            #expect(mask & (1 << (UInt64(SIGTERM) - 1)) == 0, "SIGTERM is ignored by the task: \(log)")
        }
    }
    #endif

    // MARK: sleep, noop

    @Test("sleep and noop tasks succeed; sleep takes at least its duration")
    func sleepAndNoop() async throws {
        let flow = Self.flow(
            "builtins",
            TaskDefinition(id: "nap", action: .sleep(.milliseconds(150))),
            TaskDefinition(id: "nothing", action: .noop, dependsOn: ["nap"])
        )
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "builtins")
            #expect(detail.run.status == .success)
            #expect(detail.tasks.map(\.status) == [.success, .success])
            #expect(detail.tasks.map(\.type) == ["sleep", "noop"])
            let nap = try #require(detail.tasks.first?.attempts.first)
            let started = try #require(nap.startedAt)
            let finished = try #require(nap.finishedAt)
            #expect(finished.timeIntervalSince(started) >= 0.14)
        }
    }

    // MARK: http

    @Test("http: a 200 answer succeeds and its JSON body is the output; expect_status accepts a 404; an unexpected 404 fails")
    func httpTasks() async throws {
        let target = Workflow(name: "x", description: "the HTTP target")
        target.task(id: "only") { _ in }
        try await withTestServer(workflows: [target]) { server in
            let flow = Self.flow(
                "calls",
                TaskDefinition(id: "found", action: .http(HTTPAction(url: "\(server.apiURL)/api/v1/workflows/x"))),
                TaskDefinition(id: "expected-404", action: .http(HTTPAction(url: "\(server.apiURL)/api/v1/workflows/nope", expectStatus: [404]))),
                TaskDefinition(id: "unexpected-404", action: .http(HTTPAction(url: "\(server.apiURL)/api/v1/workflows/nope")))
            )
            try await withEngine(workflows: [flow]) { engine in
                let detail = try await Self.runToEnd(engine, "calls")
                let tasks = Dictionary(uniqueKeysWithValues: detail.tasks.map { ($0.id, $0) })
                #expect(detail.run.status == .failed)

                let found = try #require(tasks["found"])
                #expect(found.status == .success)
                #expect(found.type == "http")
                guard case .object(let body)? = found.output else {
                    Issue.record("the output is not the JSON body: \(String(describing: found.output))")
                    return
                }
                #expect(body["name"] == "x")
                #expect(body["description"] == "the HTTP target")

                let expected = try #require(tasks["expected-404"])
                #expect(expected.status == .success)
                guard case .object(let errorBody)? = expected.output, case .object(let error)? = errorBody["error"] else {
                    Issue.record("the 404 body is not the output: \(String(describing: expected.output))")
                    return
                }
                #expect(error["code"] != nil)

                let unexpected = try #require(tasks["unexpected-404"])
                #expect(unexpected.status == .failed)
                let message = unexpected.attempts.first?.error ?? ""
                #expect(message.contains("answered 404"), "\(message)")
                #expect(message.contains("expected 2xx"), "\(message)")
                #expect(message.contains("/api/v1/workflows/nope"), "\(message)")
                let log = try await Self.log(engine, detail.run.id, "found")
                #expect(log.contains("[deerflow] GET \(server.apiURL)/api/v1/workflows/x"), "\(log)")
                #expect(log.contains("HTTP 200"), "\(log)")
            }
        }
    }

    // MARK: Swift tasks

    @Test("a Swift task that throws fails its attempt with the error's description")
    func swiftTaskThrows() async throws {
        let flow = Workflow(name: "throws")
        flow.task(id: "boom") { _ in throw TestFailure("the warehouse is closed") }
        try await withEngine(workflows: [flow]) { engine in
            let detail = try await Self.runToEnd(engine, "throws")
            #expect(detail.run.status == .failed)
            #expect(detail.tasks.first?.status == .failed)
            #expect(detail.tasks.first?.attempts.first?.error == "the warehouse is closed")
        }
    }

    struct Seen: Codable, Sendable, Equatable {
        var limit: Int
        var rows: Int
        var attempt: Int
        var workflowName: String
        var workflowID: String
        var runID: String
        var taskID: String
        var executionID: String
    }

    @Test("a Swift task reads params, upstream output, its execution and workflow ids, and logs into its task log")
    func swiftTaskContext() async throws {
        let flow = Workflow(name: "context", params: [.init("limit", type: .int, default: 7)])
        flow.task(id: "first") { _ in ["rows": 3] }
        flow.task(id: "second", dependsOn: ["first"], retries: 1, retryDelay: .milliseconds(10)) { context in
            let limit: Int = try context.param("limit")
            let upstream: [String: Int] = try await context.output(of: "first")
            context.logger.info("processing", metadata: ["rows": "\(upstream["rows"] ?? 0)"])
            if context.execution.number == 1 { throw TestFailure("first attempt fails on purpose") }
            return Seen(
                limit: limit, rows: upstream["rows"] ?? 0, attempt: context.execution.number,
                workflowName: context.workflow.name, workflowID: context.workflow.id, runID: context.run.id.rawValue,
                taskID: context.task.id, executionID: context.execution.id
            )
        }
        try await withEngine(workflows: [flow], logger: Self.infoLogger) { engine in
            let detail = try await Self.runToEnd(engine, "context", params: ["limit": 5])
            #expect(detail.run.status == .success)
            let second = try #require(detail.tasks.first { $0.id == "second" })
            #expect(second.attempts.map(\.status) == [.failed, .success])
            let seen = try #require(try second.output?.decode(as: Seen.self))
            let versionID = try #require(engine.workflows["context"]?.versionID)
            #expect(seen == Seen(
                limit: 5, rows: 3, attempt: 2, workflowName: "context", workflowID: versionID,
                runID: detail.run.id.rawValue, taskID: "second", executionID: "\(detail.run.id.rawValue):second:2"
            ))
            #expect(versionID == flow.definition.versionID)
            #expect(detail.run.workflowVersion == versionID)

            let logs = try await engine.store.taskLogs(run: detail.run.id, task: "second", attempt: nil) ?? []
            #expect(logs.map(\.attempt) == [1, 2])
            for log in logs {
                #expect(log.text.contains("INFO processing rows=3"), "attempt \(log.attempt): \(log.text)")
            }
            let onlySecond = try await engine.store.taskLogs(run: detail.run.id, task: "second", attempt: 2) ?? []
            #expect(onlySecond.map(\.attempt) == [2])
        }
    }
}

// MARK: - Helpers shared by the test files of this target

/// Runs `body`, failing with a message when it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw TestFailure("\(what) did not finish within \(limit)")
        }
        return value
    }
}

/// Polls `condition` every 20 ms until it holds; throws after `timeout`.
/// The timeout only bounds a broken test: a loaded machine may take seconds for what comes at once.
func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("timed out waiting until \(what)")
}

/// Waits until a task script wrote its process id to `path`.
func waitForPID(in path: String) async throws -> pid_t {
    var pid: pid_t = 0
    try await eventually("the task wrote its pid to \(path)") {
        let text = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard let value = pid_t(text), value > 0 else { return false }
        pid = value
        return true
    }
    return pid
}

/// Kills a task process with SIGKILL from a plain thread if it still runs after a while, so a test
/// fails instead of hanging when the engine cannot stop it (or the cooperative pool is starved).
final class ProcessWatchdog: Sendable {
    private let state = Mutex<(done: Bool, fired: Bool)>((false, false))
    let pid: pid_t

    init(_ pid: pid_t, after limit: Duration) {
        self.pid = pid
        let deadline = ContinuousClock.now + limit
        Thread.detachNewThread { [self] in
            while ContinuousClock.now < deadline {
                if state.withLock({ $0.done }) { return }
                usleep(20_000)
            }
            let shouldKill = state.withLock { state -> Bool in
                guard !state.done, processExists(pid) else { return false }
                state.fired = true
                return true
            }
            if shouldKill { kill(pid, SIGKILL) }
        }
    }

    /// Whether the watchdog had to kill the process.
    var fired: Bool { state.withLock { $0.fired } }

    /// Stops watching and kills the process if it still runs (clean-up at the end of a test).
    func finish() {
        state.withLock { $0.done = true }
        if processExists(pid) { kill(pid, SIGKILL) }
    }
}

/// Whether a process still runs (a zombie counts as ended).
func processExists(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 || errno != ESRCH else { return false }
    #if os(Linux)
    // A zombie has ended; whether its (possibly adoptive) parent reaped it yet does not matter.
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
       let close = stat.lastIndex(of: ")") {
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        if state == "Z" { return false }
    }
    #endif
    return true
}

/// Waits until the first task's latest attempt of a run is no longer queued or running.
func waitForFinishedAttempt(_ engine: DeerFlowEngine, _ run: RunID) async throws -> AttemptRecord {
    var found: AttemptRecord?
    try await eventually("the attempt finished") {
        guard let attempt = try await engine.run(run)?.tasks.first?.attempts.last else { return false }
        guard attempt.status != .running, attempt.status != .queued else { return false }
        found = attempt
        return true
    }
    return try #require(found)
}

/// Drops log records but keeps `info` as its level, so task loggers write their lines to task logs.
struct InfoLevelDiscardingLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {}
}
