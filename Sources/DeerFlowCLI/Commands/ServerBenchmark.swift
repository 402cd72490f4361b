import AsyncHTTPClient
import DeerFlow
import DeerFlowAlerting
import DeerFlowCore
import DeerFlowPostgres
import DeerFlowServer
import DeerFlowSQLite
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `deerflow bench --server`: the figures users get. A real `deerflow server` child process with
/// its default flags (only the workflows, database and ports given) is driven over HTTP from this
/// process, one keep-alive connection and one request at a time, as a client script would; W1
/// also from `connections` connections at once, and through the batch trigger.
struct ServerBenchmark {
    /// SQLite in a temp directory when nil.
    let database: String?
    let w1Runs: Int
    let w2Length: Int
    /// Keep-alive connections of the concurrent W1 (`w1c`).
    var connections = 16
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
        // The UI workload's big DAGs: 1 → 498 → 1 (a 500-task run page), and 20 layers of 50
        // tasks, each depending on two of the layer before (the workflow page lays out 1,000 tasks).
        var wide = "name: wide500\ntasks:\n  - id: start\n    type: noop\n"
        for index in 0..<498 { wide += "  - id: m\(index)\n    type: noop\n    depends_on: [start]\n" }
        wide += "  - id: end\n    type: noop\n    depends_on: [\((0..<498).map { "m\($0)" }.joined(separator: ", "))]\n"
        var dag = "name: dag1000\ntasks:\n"
        for layer in 0..<20 {
            for index in 0..<50 {
                dag += "  - id: l\(layer)n\(index)\n    type: noop\n"
                if layer > 0 { dag += "    depends_on: [l\(layer - 1)n\(index), l\(layer - 1)n\((index * 7 + 3) % 50)]\n" }
            }
        }
        return [
            "wide500.yaml": wide,
            "dag1000.yaml": dag,
            "one.yaml": "name: one\ntasks:\n  - id: noop\n    type: noop\n",
            // The workflow of `--history`'s runs (task `work`), so its pages show that history.
            "history.yaml": "name: history\ntasks:\n  - id: work\n    type: noop\n",
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
        let port = try await Self.freePort(in: 18_300..<18_400, for: "the server's API")
        // A known metrics port: the server's own request times are read from its histogram.
        let metricsPort = try await Self.freePort(in: 18_400..<18_500, for: "the server's metrics")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: BenchProcess.executable)
        server.arguments = [
            "server", "--workflows", directory.appendingPathComponent("workflows").path, "--database", databaseURL,
            "--api-port", String(port), "--metrics-port", String(metricsPort), "--log-level", "warning",
        ]
        server.standardOutput = FileHandle.nullDevice
        server.standardInput = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL) } }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let api = APIDriver(client: client, base: "http://127.0.0.1:\(port)", metrics: "http://127.0.0.1:\(metricsPort)/metrics")
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
                + "(one keep-alive connection, one request at a time, unless a line says otherwise), \(ProcessInfo.processInfo.activeProcessorCount) cores",
        ]
        let clock = ContinuousClock()
        // Idle: ready, the bench's workflows loaded, nothing triggered yet.
        try await Sleep.for(.seconds(5))
        let idle = MemoryUsage.residentBytes(pid: server.processIdentifier)
        lines.append(String(format: "server RSS idle (5 s after ready) %.1f MiB, of which its own memory (heap, stacks) %.1f MiB",
                            Double(idle.total) / 1_048_576, Double(idle.anonymous) / 1_048_576))
        if workloads.contains("w1") {
            lines.append(try await measureW1(api, connections: 1, title: "\(w1Runs) one-task runs"))
        }
        if workloads.contains("w1c") { lines.append(try await measureConcurrentW1(api)) }
        if workloads.contains("batch") { lines.append(try await measureBatchW1(api)) }
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
        if workloads.contains("ui") { lines += try await measureUI(api) }
        lines.append(String(format: "server peak RSS %.1f MiB", Double(MemoryUsage.peakResidentBytes(pid: server.processIdentifier)) / 1_048_576))
        return lines.joined(separator: "\n")
    }

    /// W1 from `connections` keep-alive connections at once (a client of its own, whose pool
    /// allows that many).
    private func measureConcurrentW1(_ api: APIDriver) async throws -> String {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let line = try await measureW1(
                APIDriver(client: client, base: api.base, metrics: api.metrics), connections: connections,
                title: "over \(connections) connections at once")
            try await client.shutdown()
            return line
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// W1 through `driver` from `connections` tasks at once (1: the sequential client), each
    /// sending its share of the runs one request at a time: tasks/s end to end, triggers/s, and
    /// the trigger's latency at the client and in the server.
    private func measureW1(_ driver: APIDriver, connections: Int, title: String) async throws -> String {
        let trigger = "/api/v1/workflows/{name}/runs"
        let clock = ContinuousClock()
        let before = try await driver.requestTimes(endpoint: trigger)
        let start = clock.now
        var latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for connection in 0..<connections {
                let share = w1Runs / connections + (connection < w1Runs % connections ? 1 : 0)
                group.addTask {
                    var latencies: [Double] = []
                    latencies.reserveCapacity(share)
                    for _ in 0..<share {
                        let sent = ContinuousClock.now
                        _ = try await driver.trigger("one")
                        latencies.append((ContinuousClock.now - sent).seconds)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let triggered = clock.now - start
        let server = ServerTimes(before: before, after: try await driver.requestTimes(endpoint: trigger))
        try await driver.waitUntilIdle()
        let total = clock.now - start
        latencies.sort()
        return "W1  \(title): " + String(
            format: "%.0f tasks/s end to end; triggers %.0f/s, POST p50 %.3f ms, p99 %.3f ms at the client, p50 %.3f ms, p99 %.3f ms in the server",
            Double(w1Runs) / total.seconds, Double(w1Runs) / triggered.seconds,
            Self.percentile(latencies, 0.5) * 1000, Self.percentile(latencies, 0.99) * 1000,
            server.quantile(0.5) * 1000, server.quantile(0.99) * 1000)
    }

    /// W1's runs through the batch trigger (`POST …/runs:batch`, 1,000 runs a request, one
    /// request at a time): runs/s enqueued, each batch's time, and tasks/s end to end.
    private func measureBatchW1(_ api: APIDriver) async throws -> String {
        let batchSize = 1_000
        let body = "{\"runs\": [" + repeatElement("{}", count: batchSize).joined(separator: ", ") + "]}"
        let batches = max(1, w1Runs / batchSize)
        let clock = ContinuousClock()
        var times: [Double] = []
        let start = clock.now
        for _ in 0..<batches {
            let sent = clock.now
            // The answer (1,000 runs, ~430 kB) is read but not parsed: parsing it here would take
            // the server's CPU on a small machine.
            let (status, _) = try await api.exchange(.POST, "/api/v1/workflows/one/runs:batch", body: body)
            guard status == 201 else { throw CLIError("the batch trigger answered HTTP \(status)") }
            times.append((clock.now - sent).seconds)
        }
        let enqueued = clock.now - start
        try await api.waitUntilIdle()
        let total = clock.now - start
        times.sort()
        return String(
            format: "W1  %d runs in batches of %d (runs:batch): %.0f runs/s enqueued (a batch p50 %.1f ms, max %.1f ms), %.0f tasks/s end to end",
            batches * batchSize, batchSize, Double(batches * batchSize) / enqueued.seconds,
            Self.percentile(times, 0.5) * 1000, (times.last ?? 0) * 1000, Double(batches * batchSize) / total.seconds)
    }

    /// The UI's pages as a browser gets them (gzip-compressed): the time of each (50 requests, one at a time), the
    /// weight of a run page with its stylesheet and script, and what 100 open live pages cost W1.
    private func measureUI(_ api: APIDriver) async throws -> [String] {
        var lines = ["UI (50 requests each, server time as the client sees it):"]
        let clock = ContinuousClock()
        let wide = try await api.trigger("wide500")
        try await api.waitForRun(wide)
        func time(_ name: String, _ path: String) async throws -> Int {
            var latencies: [Double] = []
            var bytes = 0
            for _ in 0..<50 {
                let sent = clock.now
                let (status, body) = try await api.fetch(path)
                guard status == 200 else { throw CLIError("\(name) answered HTTP \(status)") }
                latencies.append((clock.now - sent).seconds)
                bytes = body
            }
            latencies.sort()
            lines.append(String(format: "  %@: p50 %.2f ms, p99 %.2f ms, %d bytes as sent", name, Self.percentile(latencies, 0.5) * 1000, Self.percentile(latencies, 0.99) * 1000, bytes))
            return bytes
        }
        _ = try await time("GET /runs", "/runs")
        _ = try await time("GET /workflows", "/workflows")
        let runPage = try await time("GET /runs/{id} of a 500-task run (DAG, timeline, attempts)", "/runs/\(wide)")
        _ = try await time("GET /workflows/dag1000 (layout of 1,000 tasks)", "/workflows/dag1000")
        let stylesheet = try await api.fetch("/static/deerflow.css").bytes
        let script = try await api.fetch("/static/deerflow.js").bytes
        let sizes = (
            page: try await api.fetch("/runs/\(wide)", compressed: false).bytes,
            css: try await api.fetch("/static/deerflow.css", compressed: false).bytes,
            js: try await api.fetch("/static/deerflow.js", compressed: false).bytes)
        lines.append(String(format: "  weight of that run page with stylesheet and script: %.1f KB gzip-compressed as sent (page %d, css %d, js %d bytes), %.1f KB uncompressed",
                            Double(runPage + stylesheet + script) / 1000, runPage, stylesheet, script, Double(sizes.page + sizes.css + sizes.js) / 1000))

        // 100 open pages, each fetching its page again on every change its stream reports, as
        // the script does, while W1 runs: first 100 run pages (of the first 100 runs W1 creates),
        // then 100 overviews (the stream of every change, the widest).
        let runs = min(w1Runs, 2_000)
        var followerConfiguration = HTTPClient.Configuration()
        // A connection per open page and its refreshes, as 100 browser tabs have.
        followerConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 200)
        let followers = HTTPClient(eventLoopGroupProvider: .singleton, configuration: followerConfiguration)
        let refreshes = Counter()
        @Sendable func follow(stream: String, page: String) async throws {
            let response = try await followers.execute(HTTPClientRequest(url: api.base + stream), timeout: .seconds(600))
            for try await chunk in response.body where String(buffer: chunk).contains("event: change") {
                let answer = try await followers.execute(APIDriver.browserRequest(api.base + page), timeout: .seconds(60))
                _ = try await answer.body.collect(upTo: 64 << 20)
                refreshes.add()
            }
        }
        /// W1's tasks/s; `opened` is called with each of the first 100 runs' ids as W1 creates it.
        func w1(_ opened: (String) -> Void = { _ in }) async throws -> Double {
            let start = clock.now
            for index in 0..<runs {
                let id = try await api.trigger("one")
                if index < 100 { opened(id) }
            }
            try await api.waitUntilIdle()
            return Double(runs) / (clock.now - start).seconds
        }
        var results: [(String, Double)] = [("no page open", try await w1())]
        let runPages = try await withThrowingTaskGroup(of: Void.self) { group in
            let rate = try await w1 { id in group.addTask { try await follow(stream: "/live?run=\(id)", page: "/runs/\(id)") } }
            group.cancelAll()
            return rate
        }
        results.append(("100 run pages open", runPages))
        let runPageRefreshes = refreshes.value
        let overviews = try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 { group.addTask { try await follow(stream: "/live", page: "/") } }
            try await Sleep.for(.milliseconds(500))
            let rate = try await w1()
            group.cancelAll()
            return rate
        }
        results.append(("100 overviews open", overviews))
        try await followers.shutdown()
        let quiet = results[0].1
        lines.append("  W1 (\(runs) runs) with " + results.map { name, rate in
            String(format: "%@ %.0f tasks/s (%+.1f %%)", name, rate, (rate / quiet - 1) * 100)
        }.joined(separator: "; ") + "; page refreshes: \(runPageRefreshes) run pages, \(refreshes.value - runPageRefreshes) overviews")
        return lines
    }

    /// Puts `count` finished runs into the store, in bulk, before the server opens it.
    static func insertHistory(_ count: Int, databaseURL: String) async throws -> String {
        let store = try DeerFlowRuntime.makeStore(url: databaseURL, logger: Logger(label: "deerflow.bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await store.prepare()
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let end = Date().addingTimeInterval(-86_400)
            var bytes: Int64 = 0
            if let sqlite = store as? SQLiteWorkflowStore {
                try await sqlite.insertHistory(count: count, workflow: "history", endingAt: end)
                bytes = try await sqlite.storageSize()
            } else if let postgres = store as? PostgresWorkflowStore {
                // Measured while its client runs: outside `withRunning` the pool is shut down.
                bytes = try await postgres.withRunning { store in
                    try await store.insertHistory(count: count, workflow: "history", endingAt: end)
                    return try await store.storageSize()
                }
            }
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
            ("GET /workflows (UI workflows page)", "/workflows"),
            ("GET /workflows/history (UI workflow page of the history's workflow)", "/workflows/history"),
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
        let (status, json) = try await api.send(.POST, "/api/v1/maintenance/purge", body: #"{"older_than": "12h"}"#, timeout: .hours(1))
        guard status == 200, case .object(let report)? = json else { throw CLIError("the purge answered HTTP \(status)") }
        lines.append(String(
            format: "  purge (older_than 12h): %d runs and %d task logs in %.1f s; database %.1f MB before, %.1f MB after",
            report["runs"]?.intValue ?? 0, report["task_logs"]?.intValue ?? 0, (clock.now - start).seconds,
            Double(report["database_bytes_before"]?.intValue ?? 0) / 1e6, Double(report["database_bytes_after"]?.intValue ?? 0) / 1e6))
        return "history reads (50 requests each):\n" + lines.joined(separator: "\n")
    }

    /// The first port of `range` nothing listens on.
    static func freePort(in range: Range<Int>, for use: String) async throws -> Int {
        for candidate in range where await ListenerCheck.problem(host: "127.0.0.1", port: candidate) == nil {
            return candidate
        }
        throw CLIError("no free port in \(range.lowerBound)-\(range.upperBound - 1) for \(use)")
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }
}

/// A count shared by concurrent tasks.
final class Counter: Sendable {
    private let storage = Mutex(0)
    func add() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}

/// The API calls of the server benchmark.
struct APIDriver {
    let client: HTTPClient
    let base: String
    /// The server's `/metrics` URL.
    let metrics: String

    /// The cumulative bucket counts (`le` → count) of `deerflow_api_request_duration_seconds`
    /// for one route template, from the server's metrics now.
    func requestTimes(endpoint: String) async throws -> [HistogramQuantile.Bucket] {
        let response = try await client.execute(HTTPClientRequest(url: metrics), timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
        return try ExpositionParser.parse(text).compactMap { sample in
            guard sample.name == "deerflow_api_request_duration_seconds_bucket", sample.labels["endpoint"] == endpoint,
                  let bound = sample.labels["le"].flatMap(GoNumbers.parseFloat) else { return nil }
            return HistogramQuantile.Bucket(upperBound: bound, count: sample.value)
        }
    }

    /// Sends a request (with a JSON body, if given); answers the status and the answer, parsed as JSON.
    func send(_ method: HTTPMethod, _ path: String, body: String? = nil, timeout: TimeAmount = .seconds(60)) async throws -> (status: UInt, json: JSONValue?) {
        let (status, bytes) = try await exchange(method, path, body: body, timeout: timeout, upTo: 16 << 20)
        return (status, try? JSONValue(parsing: String(buffer: bytes)))
    }

    /// Sends a request (with a JSON body, if given); answers the status and the answer's bytes
    /// (at most `limit`).
    func exchange(_ method: HTTPMethod, _ path: String, body: String? = nil, timeout: TimeAmount = .seconds(60), upTo limit: Int = 64 << 20) async throws -> (status: UInt, bytes: ByteBuffer) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: timeout)
        return (response.status.code, try await response.body.collect(upTo: limit))
    }

    /// GETs a page or asset as a browser does (`Accept-Encoding: gzip`, unless `compressed` is
    /// false); answers the status and the size of the body as sent.
    func fetch(_ path: String, compressed: Bool = true) async throws -> (status: UInt, bytes: Int) {
        let response = try await client.execute(Self.browserRequest(base + path, compressed: compressed), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        return (response.status.code, body.readableBytes)
    }

    /// A GET as a browser sends it: accepting gzip.
    static func browserRequest(_ url: String, compressed: Bool = true) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        if compressed { request.headers.add(name: "Accept-Encoding", value: "gzip") }
        return request
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
            try await Sleep.for(.milliseconds(20))
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
            try await Sleep.for(.milliseconds(5))
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
            try await Sleep.for(.milliseconds(5))
        }
    }
}

/// Requests' times in the server between two readings of its histogram.
struct ServerTimes {
    let buckets: [HistogramQuantile.Bucket]

    init(before: [HistogramQuantile.Bucket], after: [HistogramQuantile.Bucket]) {
        let earlier = Dictionary(before.map { ($0.upperBound, $0.count) }, uniquingKeysWith: +)
        buckets = after.map { .init(upperBound: $0.upperBound, count: $0.count - (earlier[$0.upperBound] ?? 0)) }
    }

    /// The `q` quantile in seconds, interpolated inside its bucket as `histogram_quantile` does.
    func quantile(_ q: Double) -> Double { HistogramQuantile.bucketQuantile(q, buckets) }
}
