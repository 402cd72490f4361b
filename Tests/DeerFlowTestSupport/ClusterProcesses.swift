public import DeerFlowCore
import Foundation
import DeerFlowTesting
public import Testing

/// `deerflow` processes of a cluster test — servers without workers, worker processes — sharing
/// one database, with the HTTP calls such tests make.
///
/// ```swift
/// let server = try ServerProcess.server(database: url, workflows: directory)
/// let api = try await server.apiPort()
/// let worker = try ServerProcess.worker(database: url, workflows: directory, slots: 8)
/// let id = try await ClusterAPI.trigger(api: api, workflow: "dag")
/// let detail = try await ClusterAPI.waitForRun(api: api, id: id)
/// ```
extension ServerProcess {
    /// `deerflow server` on free API and metrics ports; `--no-workers` unless `workers`.
    /// `environment` is added to the test's own.
    public static func server(
        database: String, workflows: String, config: String? = nil, workers: Bool = false, extra: [String] = [], environment: [String: String] = [:]
    ) throws -> ServerProcess {
        var arguments = ["server", "--workflows", workflows, "--database", database, "--api-port", "0", "--metrics-port", "0"]
        if let config { arguments += ["--config", config] }
        if !workers { arguments.append("--no-workers") }
        return try ServerProcess(arguments + extra, environment: environment.merging(["DEERFLOW_DATABASE_URL": ""]) { _, new in new })
    }

    /// `deerflow worker` with `slots` slots on a free metrics port.
    public static func worker(
        database: String, workflows: String, config: String? = nil, slots: Int = 4, extra: [String] = [], environment: [String: String] = [:]
    ) throws -> ServerProcess {
        var arguments = ["worker", "--workflows", workflows, "--database", database, "--metrics-port", "0", "--slots", String(slots)]
        if let config { arguments += ["--config", config] }
        return try ServerProcess(arguments + extra, environment: environment.merging(["DEERFLOW_DATABASE_URL": ""]) { _, new in new })
    }

    /// Occurrences of `text` in the process output.
    public func count(_ text: String) -> Int {
        log.components(separatedBy: text).count - 1
    }
}

/// HTTP calls of cluster tests against `deerflow server` processes.
public enum ClusterAPI {
    /// GET a JSON document.
    public static func get(_ url: String) async throws -> (status: Int, json: JSONValue?) {
        let answer = try await TestServer.send("GET", url, body: nil, headers: [:])
        return (answer.status, answer.json)
    }

    /// Triggers a run through the API of the server on `api`; returns its id.
    public static func trigger(api: Int, workflow: String, params: String = "{}") async throws -> String {
        let answer = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/\(workflow)/runs", body: "{\"params\": \(params)}", headers: [:])
        guard answer.status == 201, case .object(let run)? = answer.json, let id = run["id"]?.stringValue else {
            throw ProcessFailure("triggering \(workflow) answered \(answer.status): \(answer.text)")
        }
        return id
    }

    /// The run with its tasks and attempts (`GET /api/v1/runs/{id}`).
    public static func run(api: Int, id: String) async throws -> [String: JSONValue] {
        let (status, json) = try await get("http://127.0.0.1:\(api)/api/v1/runs/\(id)")
        guard status == 200, case .object(let run)? = json else { throw ProcessFailure("GET run \(id) answered \(status)") }
        return run
    }

    /// Waits until every run finished; returns them by id. Transient API errors are retried.
    public static func waitForRuns(api: Int, ids: [String], timeout: Duration = .seconds(120)) async throws -> [String: [String: JSONValue]] {
        let deadline = ContinuousClock.now + timeout
        var finished: [String: [String: JSONValue]] = [:]
        while finished.count < ids.count {
            for id in ids where finished[id] == nil {
                guard let run = try? await run(api: api, id: id) else { continue }
                if let status = run["status"]?.stringValue, status != "pending", status != "running" { finished[id] = run }
            }
            if finished.count == ids.count { break }
            guard ContinuousClock.now < deadline else {
                throw ProcessFailure("\(ids.count - finished.count) of \(ids.count) runs did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return finished
    }

    /// `/health/ready`'s status code (0 when the server does not answer).
    public static func readiness(api: Int) async -> Int {
        (try? await TestServer.send("GET", "http://127.0.0.1:\(api)/health/ready", body: nil, headers: [:]).status) ?? 0
    }

    /// Polls `/health/ready` until it answers `status`.
    public static func waitForReadiness(api: Int, status: Int, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while await readiness(api: api) != status {
            guard ContinuousClock.now < deadline else { throw ProcessFailure("/health/ready on port \(api) did not answer \(status) within \(timeout)") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// A sample of a process's `/metrics` (nil when absent or unreachable).
    public static func metric(port: Int, _ key: String) async -> Double? {
        guard let answer = try? await TestServer.send("GET", "http://127.0.0.1:\(port)/metrics", body: nil, headers: [:]),
              let samples = try? MetricSamples.parse(answer.text) else { return nil }
        return samples[key]
    }

    /// The tasks of a run detail with their attempts: `[(task id, [(status, worker, error)])]`.
    public static func attempts(of run: [String: JSONValue]) -> [(task: String, attempts: [(status: String, worker: String?, error: String?)])] {
        guard case .array(let tasks)? = run["tasks"] else { return [] }
        return tasks.compactMap { task -> (String, [(String, String?, String?)])? in
            guard case .object(let object) = task, let id = object["id"]?.stringValue else { return nil }
            var attempts: [(String, String?, String?)] = []
            if case .array(let list)? = object["attempts"] {
                for case .object(let attempt) in list {
                    attempts.append((attempt["status"]?.stringValue ?? "", attempt["worker"]?.stringValue, attempt["error"]?.stringValue))
                }
            }
            return (id, attempts)
        }
    }
}

/// A fan-out wider than the worker's slots, on real processes with a 1 h poll interval: no
/// queued task may wait for a poll while a slot of a worker serving its queue is free.
public enum FanOutScenario {
    /// `root → width sleep tasks → join`.
    public static func workflow(width: Int, sleep: String = "100ms") -> String {
        var yaml = "name: fan\ntasks:\n  - id: root\n    type: noop\n"
        for index in 0..<width {
            yaml += "  - id: leaf\(index)\n    type: sleep\n    duration: \(sleep)\n    depends_on: [root]\n"
        }
        yaml += "  - id: join\n    type: noop\n    depends_on: [\((0..<width).map { "leaf\($0)" }.joined(separator: ", "))]\n"
        return yaml
    }

    /// `deerflow.yaml` with 2 slots and a 1 h poll interval (the longest allowed): a task that
    /// waits for a poll cannot finish within the check's deadline, however slow the machine.
    public static let config = "worker:\n  slots: 2\n  poll_interval: 1h\n"

    /// The longest time an attempt of the run waited between being queued and starting.
    public static func longestQueueWait(_ run: [String: JSONValue]) -> Double {
        guard case .array(let tasks)? = run["tasks"] else { return .infinity }
        var longest = 0.0
        for case .object(let task) in tasks {
            guard case .array(let attempts)? = task["attempts"] else { continue }
            for case .object(let attempt) in attempts {
                guard let queued = attempt["queued_at"]?.stringValue.flatMap(Timestamp.parse),
                      let started = attempt["started_at"]?.stringValue.flatMap(Timestamp.parse) else { return .infinity }
                longest = max(longest, started.timeIntervalSince(queued))
            }
        }
        return longest
    }

    /// Triggers the fan-out through the API on `api`, waits for it and checks it: it succeeded,
    /// and no attempt waited in the queue anywhere near a poll interval.
    public static func check(api: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let started = ContinuousClock.now
        let id = try await ClusterAPI.trigger(api: api, workflow: "fan")
        // With a 30 s poll, a 25 s deadline and a 5 s bound on the queue wait, a loaded machine
        // could fail a correct worker. With a 1 h poll, the deadline and the bound are far from
        // both: waiting for a poll takes an hour, a slow machine a few seconds.
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(120))
        let elapsed = ContinuousClock.now - started
        let run = try #require(runs[id], sourceLocation: sourceLocation)
        #expect(run["status"]?.stringValue == "success", sourceLocation: sourceLocation)
        let wait = longestQueueWait(run)
        #expect(wait < 60, "an attempt waited \(wait) s in the queue (the poll interval is 1 h); the run took \(elapsed)", sourceLocation: sourceLocation)
    }
}
