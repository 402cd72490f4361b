import AsyncHTTPClient
import DeerFlow
import DeerFlowCore
import DeerFlowPostgres
import DeerFlowServer
import DeerFlowSQLite
import Foundation
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// `deerflow bench --server`: the figures users get. A real `deerflow server` child process with
/// its default flags (only the workflows, database and ports given) is driven over HTTP from this
/// process, one keep-alive connection and one request at a time, as a client script would.
struct ServerBenchmark {
    /// SQLite in a temp directory when nil.
    let database: String?
    let w1Runs: Int
    let w2Length: Int
    /// Finished runs put into the store before the server starts (ending a day ago), then the
    /// runs list and pages are timed and a purge deletes them.
    var history = 0

    static func workflows(w2Length: Int) -> [String: String] {
        var chain = "name: chain\ntasks:\n"
        for index in 0..<w2Length {
            chain += "  - id: t\(index)\n    type: noop\n" + (index == 0 ? "" : "    depends_on: [t\(index - 1)]\n")
        }
        var fan = "name: fan\ntasks:\n  - id: start\n    type: noop\n"
        for index in 0..<100 { fan += "  - id: m\(index)\n    type: noop\n    depends_on: [start]\n" }
        fan += "  - id: end\n    type: noop\n    depends_on: [\((0..<100).map { "m\($0)" }.joined(separator: ", "))]\n"
        return [
            "one.yaml": "name: one\ntasks:\n  - id: noop\n    type: noop\n",
            "chain.yaml": chain,
            "fan.yaml": fan,
        ]
    }

    func run(workloads: Set<String>) async throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("workflows"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text) in Self.workflows(w2Length: w2Length) {
            try text.write(to: directory.appendingPathComponent("workflows/\(name)"), atomically: true, encoding: .utf8)
        }
        let databaseURL = database ?? "sqlite://" + directory.appendingPathComponent("bench.sqlite").path
        var seeding: String?
        if history > 0 { seeding = try await Self.insertHistory(history, databaseURL: databaseURL) }
        var free: Int?
        for candidate in 18_300..<18_400 where await ListenerCheck.problem(host: "127.0.0.1", port: candidate) == nil {
            free = candidate
            break
        }
        guard let port = free else { throw CLIError("no free port in 18300-18399 for the server") }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: BenchProcess.executable)
        server.arguments = [
            "server", "--workflows", directory.appendingPathComponent("workflows").path, "--database", databaseURL,
            "--api-port", String(port), "--metrics-port", "0", "--log-level", "warning",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let api = APIDriver(client: client, base: "http://127.0.0.1:\(port)")
        do {
            var report = try await measure(api, server: server, databaseURL: databaseURL, workloads: workloads)
            if let seeding { report += "\n" + seeding + "\n" + (try await measureHistory(api)) }
            try await client.shutdown()
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
            return report
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func measure(_ api: APIDriver, server: Process, databaseURL: String, workloads: Set<String>) async throws -> String {
        try await api.waitUntilReady()
        let store = databaseURL.hasPrefix("sqlite://") ? "SQLite" : "PostgreSQL"
        var lines = [
            "DeerFlow bench --server — `deerflow server` with default flags on \(store), driven over HTTP "
                + "(one keep-alive connection, one request at a time), \(ProcessInfo.processInfo.activeProcessorCount) cores",
        ]
        let clock = ContinuousClock()
        if workloads.contains("w1") {
            var latencies: [Double] = []
            latencies.reserveCapacity(w1Runs)
            let start = clock.now
            for _ in 0..<w1Runs {
                let sent = clock.now
                _ = try await api.trigger("one")
                latencies.append((clock.now - sent).seconds)
            }
            let triggered = clock.now - start
            try await api.waitUntilIdle()
            let total = clock.now - start
            latencies.sort()
            lines.append(String(
                format: "W1  %d one-task runs: %.0f tasks/s end to end; triggers %.0f/s, POST p50 %.3f ms, p99 %.3f ms",
                w1Runs, Double(w1Runs) / total.seconds, Double(w1Runs) / triggered.seconds,
                Self.percentile(latencies, 0.5) * 1000, Self.percentile(latencies, 0.99) * 1000))
        }
        if workloads.contains("w2") {
            let start = clock.now
            let id = try await api.trigger("chain")
            try await api.waitForRun(id)
            let total = clock.now - start
            lines.append(String(format: "W2  chain of %d: %.3f ms per hop (total %.3f s / %d, run polled every 5 ms)",
                                w2Length, total.seconds * 1000 / Double(w2Length), total.seconds, w2Length))
        }
        if workloads.contains("w3") {
            let start = clock.now
            for _ in 0..<20 { _ = try await api.trigger("fan") }
            try await api.waitUntilIdle()
            lines.append(String(format: "W3  20 × (1 → 100 → 1): %.3f s", (clock.now - start).seconds))
        }
        lines.append(String(format: "server peak RSS %.1f MiB", Double(MemoryUsage.peakResidentBytes(pid: server.processIdentifier)) / 1_048_576))
        return lines.joined(separator: "\n")
    }

    /// Puts `count` finished runs into the store, in bulk, before the server opens it.
    static func insertHistory(_ count: Int, databaseURL: String) async throws -> String {
        let store = try DeerFlowRuntime.makeStore(url: databaseURL, logger: Logger(label: "deerflow.bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await store.prepare()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let end = Date().addingTimeInterval(-86_400)
            if let sqlite = store as? SQLiteWorkflowStore {
                try await sqlite.insertHistory(count: count, workflow: "history", endingAt: end)
            } else if let postgres = store as? PostgresWorkflowStore {
                try await postgres.withRunning { try await $0.insertHistory(count: count, workflow: "history", endingAt: end) }
            }
            let bytes = try await store.storageSize()
            try await store.close()
            return String(format: "history: %d finished runs (1 task, 1 attempt, 1 log line each) inserted in %.1f s before the server started; database %.1f MB",
                          count, (clock.now - start).seconds, Double(bytes) / 1e6)
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Times the runs list and pages over the history, then purges it through the API.
    private func measureHistory(_ api: APIDriver) async throws -> String {
        var lines: [String] = []
        let clock = ContinuousClock()
        for (name, path) in [
            ("GET /api/v1/runs?limit=50", "/api/v1/runs?limit=50"),
            ("GET /api/v1/runs?workflow=one&limit=50", "/api/v1/runs?workflow=one&limit=50"),
            ("GET /api/v1/runs?status=failed&limit=50", "/api/v1/runs?status=failed&limit=50"),
            ("GET / (UI overview)", "/"),
            ("GET /runs (UI runs page)", "/runs"),
        ] {
            var latencies: [Double] = []
            for _ in 0..<50 {
                let sent = clock.now
                let (status, _) = try await api.send(.GET, path)
                guard status == 200 else { throw CLIError("\(name) answered HTTP \(status)") }
                latencies.append((clock.now - sent).seconds)
            }
            latencies.sort()
            lines.append(String(format: "  %@: p50 %.2f ms, p99 %.2f ms", name, Self.percentile(latencies, 0.5) * 1000, Self.percentile(latencies, 0.99) * 1000))
        }
        let start = clock.now
        let (status, json) = try await api.send(.POST, "/api/v1/maintenance/purge", body: #"{"older_than": "12h"}"#)
        guard status == 200, case .object(let report)? = json else { throw CLIError("the purge answered HTTP \(status)") }
        lines.append(String(
            format: "  purge (older_than 12h): %d runs and %d task logs in %.1f s; database %.1f MB before, %.1f MB after",
            report["runs"]?.intValue ?? 0, report["task_logs"]?.intValue ?? 0, (clock.now - start).seconds,
            Double(report["database_bytes_before"]?.intValue ?? 0) / 1e6, Double(report["database_bytes_after"]?.intValue ?? 0) / 1e6))
        return "history reads (50 requests each):\n" + lines.joined(separator: "\n")
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }
}

/// The API calls of the server benchmark.
struct APIDriver {
    let client: HTTPClient
    let base: String

    func send(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> (status: UInt, json: JSONValue?) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (response.status.code, try? JSONValue(parsing: String(buffer: bytes)))
    }

    func trigger(_ workflow: String) async throws -> String {
        let (status, json) = try await send(.POST, "/api/v1/workflows/\(workflow)/runs", body: "{}")
        guard status == 201, case .object(let run)? = json, let id = run["id"]?.stringValue else {
            throw CLIError("triggering \(workflow) answered HTTP \(status)")
        }
        return id
    }

    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let (status, _) = try? await send(.GET, "/health/ready"), status == 200 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CLIError("the benchmark's server did not become ready within 60 s")
    }

    /// Polls every 5 ms until the run finished.
    func waitForRun(_ id: String) async throws {
        while true {
            let (_, json) = try await send(.GET, "/api/v1/runs/\(id)")
            if case .object(let run)? = json, let status = run["status"]?.stringValue, status != "pending", status != "running" {
                guard status == "success" else { throw CLIError("run \(id) ended \(status)") }
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Polls every 5 ms until no run is pending or running.
    func waitUntilIdle() async throws {
        while true {
            var active = false
            for status in ["pending", "running"] {
                let (_, json) = try await send(.GET, "/api/v1/runs?status=\(status)&limit=1")
                if case .object(let page)? = json, case .array(let runs)? = page["runs"], !runs.isEmpty { active = true }
            }
            if !active { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
