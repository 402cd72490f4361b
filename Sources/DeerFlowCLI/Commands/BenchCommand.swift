import ArgumentParser
import DeerFlow
import DeerFlowCore
import DeerFlowServer
import Foundation
import Logging
import Synchronization
import DeerFlowPostgres
import DeerFlowSQLite
import DeerFlowObservability

/// `deerflow bench`: throughput and latency figures of the embedded engine.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine: W1 throughput, W2 per-hop latency, W3 fan-out/fan-in, peak memory.",
        discussion: """
            Runs on a fresh SQLite file (in a temp directory) in this process, with metrics on, like `deerflow server`.

            W1: 10,000 runs of a one-task no-op workflow, triggered as fast as possible while workers run them \
            (enqueue/s = triggers per second; end-to-end = tasks finished per second from first trigger to last finish).

            W2: a chain of 200 no-op tasks; per hop = from a task's code returning to the next task's code starting.

            W3: 20 runs of 1 → 100 → 1 tasks, all triggered at once; total seconds until all finished.

            W3m: one run of 1 → a mapped task (for_each) over 1,000 items → 1; per-task time beside W3's.

            metrics: custom-metrics API costs, rendering 10,000 series, W1 with metrics off vs on.

            logging: lines/s through the JSON file handler with redaction; W1 with logging off vs info to a JSON file.

            tracing: W1 with tracing off, ratio 1.0 and ratio 0.01, each in a fresh process exporting OTLP/HTTP \
            to a loopback receiver in another process (medians of four rounds in rotated order).

            With --database postgres://...: the same workloads on PostgreSQL, distributed — this process triggers \
            (API off, scheduler on) and --worker-processes worker processes (default 2, each a `deerflow worker` \
            with the benchmark's workflows and --slots slots) execute. Use an empty, throwaway database.

            With --server: the figures users get. A `deerflow server` child process with its default flags (a fresh \
            SQLite file, or --database) is driven over HTTP from this process, one keep-alive connection and one \
            request at a time: W1 (--w1-runs one-task runs, with the trigger's latency; then again from --connections \
            connections at once, and through the batch trigger, 1,000 runs a request), W2 (total time of the chain / \
            its length), W3, the UI (runs, workflows, a 500-task run's page, a 1,000-task DAG's layout, page weight, \
            W1 with 100 live pages open), and the server's peak memory. --history N first puts N finished runs in the \
            store (in bulk), then times the runs list and pages over them and purges them.

            Build with `swift build -c release` for meaningful figures.
            """
    )

    @Option(help: "Worker slots (no-op tasks: more slots mean bigger batches); per worker process with --database.")
    var slots = 64

    @Option(help: "Runs in W1.")
    var w1Runs = 10_000

    @Option(help: "Chain length in W2.")
    var w2Length = 200

    @Option(help: "Only run these workloads (comma-separated: w1, w2, w3, w3m, metrics, logging, tracing; the last three are SQLite only; logline: the log observer's cost alone; with --server: w1, w1c, batch, w2, w3, ui).")
    var only: String?

    @Option(help: ArgumentHelp("Run on this PostgreSQL database (postgres://user:password@host:port/db) with worker processes.", valueName: "url"))
    var database: String?

    @Option(help: "Worker processes with --database.")
    var workerProcesses = 2

    @Flag(help: "Drive a real `deerflow server` with its default flags over HTTP (W1, W2, W3).")
    var server = false

    @Option(help: "With --server: the keep-alive connections of the concurrent W1 (w1c).")
    var connections = 16

    @Option(help: "With --server: put this many finished runs into the store first (in bulk), time the runs list over them, then purge them.")
    var history = 0

    /// Internal: run as one of the worker processes of a --database benchmark.
    @Flag(help: .private)
    var workerProcess = false

    /// Internal: run W1 alone with tracing off or at this sampling ratio (the tracing workload).
    @Option(help: .private)
    var tracingChild: String?

    /// Internal: where a tracing child exports spans.
    @Option(help: .private)
    var tracingEndpoint: String?

    /// Internal: run the loopback OTLP receiver of the tracing workload.
    @Flag(help: .private)
    var otlpSink = false

    func run() async throws {
        if otlpSink {
            try await OTLPSinkProcess.serve()
            return
        }
        if let tracingChild {
            try await TracingChild.serve(ratio: tracingChild, endpoint: tracingEndpoint, w1Runs: w1Runs, slots: slots)
            return
        }
        if workerProcess {
            guard let database else { throw CLIError("--worker-process needs --database") }
            try await DistributedBenchmark.serveWorker(database: database, slots: slots, w2Length: w2Length)
            return
        }
        let selected = Set((only ?? (server ? "w1,w1c,batch,w2,w3,ui" : "w1,w2,w3,w3m,metrics,logging,tracing")).split(separator: ",").map { String($0).lowercased() })
        if server {
            var benchmark = ServerBenchmark(database: database, w1Runs: w1Runs, w2Length: w2Length)
            benchmark.history = history
            benchmark.connections = connections
            print(try await benchmark.run(workloads: selected))
            return
        }
        if let database {
            guard database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") else {
                throw CLIError("--database takes a postgres:// URL (without it, the benchmark runs on embedded SQLite)")
            }
            guard workerProcesses >= 1 else { throw CLIError("--worker-processes must be at least 1") }
            let benchmark = DistributedBenchmark(database: database, slots: slots, workerProcesses: workerProcesses)
            print(try await benchmark.run(w1Runs: w1Runs, w2Length: w2Length, workloads: selected))
            return
        }
        let report = try await EngineBenchmark(slots: slots).run(w1Runs: w1Runs, w2Length: w2Length, workloads: selected)
        print(report)
    }
}

/// The workloads of `deerflow bench`.
struct EngineBenchmark {
    let slots: Int
    /// The process's logging and tracing for the runtimes the benchmark starts; nil: none.
    var observability: ProcessObservability? = nil

    func run(w1Runs: Int, w2Length: Int, workloads: Set<String>) async throws -> String {
        var lines = ["DeerFlow bench — embedded SQLite, metrics on, \(slots) worker slots, \(ProcessInfo.processInfo.activeProcessorCount) cores"]
        if workloads.contains("sql") {
            lines.append(try await sqlRoundTrip())
        }
        if workloads.contains("w1") {
            let (enqueue, endToEnd) = try await w1(runs: w1Runs)
            lines.append(String(format: "W1  %d independent no-op tasks: enqueue %.0f/s, end-to-end %.0f tasks/s (target ≥ 5,000)", w1Runs, enqueue, endToEnd))
        }
        if workloads.contains("metrics") {
            lines += try await metricsFigures(w1Runs: w1Runs)
        }
        if workloads.contains("logging") {
            lines += try await loggingFigures(w1Runs: w1Runs)
        }
        if workloads.contains("logline") {
            lines.append(try await observerFigure())
        }
        if workloads.contains("tracing") {
            lines += try await tracingFigures(w1Runs: w1Runs)
        }
        if workloads.contains("w2") {
            let hops = try await w2(length: w2Length)
            lines.append(String(format: "W2  chain of %d: per-hop p50 %.3f ms, p99 %.3f ms, max %.3f ms (targets ≤ 1 ms, ≤ 5 ms)", w2Length, hops.p50 * 1000, hops.p99 * 1000, hops.max * 1000))
        }
        var w3PerTask: Double?
        if workloads.contains("w3") {
            let seconds = try await w3()
            w3PerTask = seconds / 2040
            lines.append(String(format: "W3  20 × (1 → 100 → 1): %.3f s (target ≤ 1 s), %.3f ms per task", seconds, seconds / 2040 * 1000))
        }
        if workloads.contains("w3m") {
            lines.append(Self.w3MappedLine(seconds: try await w3Mapped(), w3PerTask: w3PerTask))
        }
        lines.append(String(format: "peak RSS %.1f MiB", Double(MemoryUsage.peakResidentBytes()) / 1_048_576))
        return lines.joined(separator: "\n")
    }

    func sqlRoundTrip() async throws -> String {
        let directory = NSTemporaryDirectory() + "deerflow-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = SQLiteWorkflowStore(path: directory + "/x.sqlite")
        try await store.prepare()
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<2000 { try await store.ping() }
        let perPing = (clock.now - start).seconds / 2000
        try await store.close()
        return String(format: "SQL round trip (SELECT 1 through sqlite-nio): %.1f µs", perPing * 1e6)
    }

    /// Custom-metrics API costs, scrape time at 10,000 series, and W1 with metrics off vs on.
    func metricsFigures(w1Runs: Int) async throws -> [String] {
        let backend = PrometheusBackend()
        let registry = MetricsRegistry(backend: backend, seriesBudget: 20_000)
        let counter = try registry.counter("bench_increments_total", help: "Benchmark counter.", labels: ["kind"]).labels("a")
        let histogram = try registry.histogram("bench_observations_seconds", help: "Benchmark histogram.", labels: ["kind"], buckets: MetricsRegistry.Histogram.defaultBuckets).labels("a")
        let clock = ContinuousClock()
        let iterations = 2_000_000
        var start = clock.now
        for _ in 0..<iterations { counter.inc() }
        let increment = (clock.now - start).seconds / Double(iterations) * 1e9
        start = clock.now
        for index in 0..<iterations { histogram.observe(Double(index & 1023) / 1000) }
        let observation = (clock.now - start).seconds / Double(iterations) * 1e9
        let wide = try registry.gauge("bench_series", help: "Benchmark gauge with many series.", labels: ["series"])
        for index in 0..<10_000 { try wide.labels(String(index)).set(Double(index)) }
        var renders: [Double] = []
        var bytes = 0
        for _ in 0..<20 {
            start = clock.now
            bytes = backend.render().utf8.count
            renders.append((clock.now - start).seconds * 1000)
        }
        renders.sort()
        let (off, on) = try await alternating {
            try await w1(runs: w1Runs, metricsEnabled: false).endToEnd
        } _: {
            try await w1(runs: w1Runs, metricsEnabled: true).endToEnd
        }
        return [
            String(format: "metrics: counter increment %.1f ns, histogram observation %.1f ns (target ≤ 100 ns)", increment, observation),
            String(format: "metrics: rendering 10,000 series (%d KiB) p50 %.2f ms (target ≤ 20 ms)", bytes / 1024, renders[renders.count / 2]),
            String(format: "metrics: W1 %.0f tasks/s with metrics off, %.0f with metrics on (medians of 3 alternating rounds; %+.1f%%; target within 5%%)", off, on, (on - off) / off * 100),
        ]
    }

    private func options(_ directory: String) -> RuntimeOptions {
        var options = RuntimeOptions()
        options.databaseURL = "sqlite://" + directory + "/bench.sqlite"
        options.runAPI = false
        options.metricsPort = 0
        options.worker.slots = slots
        options.worker.pollInterval = .seconds(1)
        return options
    }

    private func withRuntime<T: Sendable>(
        _ workflows: [Workflow], metricsEnabled: Bool = true, logger: Logger? = nil, taskOutput: Bool = false,
        _ body: @Sendable (DeerFlowEngine) async throws -> T
    ) async throws -> T {
        let directory = NSTemporaryDirectory() + "deerflow-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var quiet = Logger(label: "deerflow.bench")
        quiet.logLevel = .error
        var runtimeOptions = options(directory)
        runtimeOptions.metrics.enabled = metricsEnabled
        if taskOutput { runtimeOptions.engine.taskOutputLogging = TaskOutputLogging() }
        let runtime = try await DeerFlowRuntime.make(
            options: runtimeOptions, workflows: workflows, observability: observability ?? .none(logger: logger ?? quiet))
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await runtime.run()
                return nil
            }
            if metricsEnabled { _ = await runtime.ports.metrics() }
            let result = try await body(runtime.engine)
            await runtime.shutdown()
            var value: T? = result
            while let next = try await group.next() { if let next { value = next } }
            guard let value else { throw CLIError("benchmark produced no result") }
            return value
        }
    }

    /// W1: returns (enqueue per second, tasks per second end to end).
    /// - Parameters:
    ///   - action: the one task's action; default a no-op.
    ///   - taskOutput: send shell output lines to the logger's handlers too.
    func w1(
        runs: Int, metricsEnabled: Bool = true, logger: Logger? = nil, action: TaskAction = .noop, taskOutput: Bool = false
    ) async throws -> (enqueue: Double, endToEnd: Double) {
        let flow = Workflow(name: "w1")
        flow.task(TaskDefinition(id: "task", action: action))
        return try await withRuntime([flow], metricsEnabled: metricsEnabled, logger: logger, taskOutput: taskOutput) { engine in
            let finished = RunCounter(expected: runs)
            engine.addObserver(finished)
            let clock = ContinuousClock()
            let start = clock.now
            try await triggerConcurrently(engine, workflow: "w1", runs: runs)
            let enqueued = clock.now - start
            await finished.wait()
            let total = clock.now - start
            return (Double(runs) / enqueued.seconds, Double(runs) / total.seconds)
        }
    }

    /// W2: per-hop latencies in seconds.
    func w2(length: Int) async throws -> (p50: Double, p99: Double, max: Double) {
        let marks = Mutex<[Int: (start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([:])
        let flow = Workflow(name: "w2")
        for index in 0..<length {
            flow.task(id: "t\(index)", type: "noop", dependsOn: index == 0 ? [] : ["t\(index - 1)"]) { _ in
                let start = ContinuousClock.now
                marks.withLock { $0[index] = (start, ContinuousClock.now) }
            }
        }
        try await withRuntime([flow]) { engine in
            let run = try await engine.trigger("w2")
            _ = try await engine.waitForRun(run.id, pollInterval: .milliseconds(100))
        }
        let recorded = marks.withLock { $0 }
        var hops: [Double] = []
        for index in 1..<length {
            guard let previous = recorded[index - 1], let current = recorded[index] else { continue }
            hops.append((current.start - previous.end).seconds)
        }
        hops.sort()
        guard !hops.isEmpty else { throw CLIError("W2 recorded no hops") }
        func percentile(_ p: Double) -> Double { hops[min(hops.count - 1, Int((Double(hops.count) * p).rounded(.up)) - 1)] }
        return (percentile(0.5), percentile(0.99), hops.last ?? 0)
    }

    /// W3m: seconds for one run of start → a mapped no-op task over 1,000 items → end (the
    /// dynamic counterpart of W3: the instances are created when the mapped task is ready).
    func w3Mapped() async throws -> Double {
        try await withRuntime([Self.w3MappedWorkflow()]) { engine in
            let finished = RunCounter(expected: 1)
            engine.addObserver(finished)
            let clock = ContinuousClock()
            let start = clock.now
            try await engine.trigger("w3m")
            await finished.wait()
            return (clock.now - start).seconds
        }
    }

    /// W3m's workflow: start → a no-op task mapped over 1,000 items (a parameter) → end.
    static func w3MappedWorkflow() -> Workflow {
        Workflow(definition: WorkflowDefinition(
            name: "w3m", params: [ParamDefinition("items", type: .json, default: .array((0..<1000).map { .int($0) }))], tasks: [
                TaskDefinition(id: "start", action: .noop),
                TaskDefinition(id: "process", type: "noop", action: .noop, dependsOn: ["start"], map: MapDefinition(forEach: "{{ params.items }}")),
                TaskDefinition(id: "end", action: .noop, dependsOn: ["process"]),
            ]))
    }

    /// W3m's report line: its time per task (1,002 tasks) beside W3's (2,040 tasks), when W3 ran.
    static func w3MappedLine(seconds: Double, w3PerTask: Double?) -> String {
        let perTask = seconds / 1002
        var line = String(format: "W3m 1 → for_each over 1,000 items → 1: %.3f s, %.3f ms per task", seconds, perTask * 1000)
        if let w3PerTask { line += String(format: " (%.2f× W3's per task; target ≤ 2×)", perTask / w3PerTask) }
        return line
    }

    /// W3: seconds for 20 runs of 1 → 100 → 1.
    func w3() async throws -> Double {
        let flow = Workflow(name: "w3")
        flow.task(TaskDefinition(id: "start", action: .noop))
        let middle = (0..<100).map { "m\($0)" }
        for id in middle { flow.task(TaskDefinition(id: id, type: "noop", action: .noop, dependsOn: ["start"])) }
        flow.task(TaskDefinition(id: "end", action: .noop, dependsOn: middle))
        return try await withRuntime([flow]) { engine in
            let finished = RunCounter(expected: 20)
            engine.addObserver(finished)
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<20 { try await engine.trigger("w3") }
            await finished.wait()
            return (clock.now - start).seconds
        }
    }
}

/// Counts finished runs and wakes a waiter when all expected ones finished.
final class RunCounter: EngineObserver, Sendable {
    private let state: Mutex<(count: Int, waiter: CheckedContinuation<Void, Never>?)>
    private let expected: Int

    init(expected: Int) {
        self.expected = expected
        state = Mutex((0, nil))
    }

    func engine(didEmit events: [EngineEvent]) {
        var finished = 0
        for event in events { if case .runFinished = event { finished += 1 } }
        guard finished > 0 else { return }
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.count += finished
            guard state.count >= expected else { return nil }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.count >= expected { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }
}

/// W1's load: `runs` triggers of `workflow` from 64 concurrent callers.
func triggerConcurrently(_ engine: DeerFlowEngine, workflow: String, runs: Int, producers: Int = 64) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for producer in 0..<producers {
            group.addTask {
                for _ in stride(from: producer, to: runs, by: producers) {
                    try await engine.trigger(workflow)
                }
            }
        }
        try await group.waitForAll()
    }
}

/// The benchmark's helper processes are this executable again.
enum BenchProcess {
    /// This executable's path.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// Resident memory of a process (this one when `pid` is nil), from `/proc/PID/status`.
enum MemoryUsage {
    /// The most the process has had resident (`VmHWM`).
    static func peakResidentBytes(pid: Int32? = nil) -> Int {
        statusBytes("VmHWM:", pid: pid)
    }

    /// What the process has resident now (`VmRSS`), and of that its own memory (`RssAnon`: heap,
    /// stacks), the rest being pages of its executable and libraries.
    static func residentBytes(pid: Int32? = nil) -> (total: Int, anonymous: Int) {
        (statusBytes("VmRSS:", pid: pid), statusBytes("RssAnon:", pid: pid))
    }

    private static func statusBytes(_ field: String, pid: Int32?) -> Int {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let status = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            let digits = line.filter(\.isNumber)
            return (Int(digits) ?? 0) * 1024
        }
        return 0
    }
}

/// `deerflow bench --database postgres://...`: W1–W3 on PostgreSQL with worker processes. This
/// process triggers runs (API off, scheduler on, no workers); each worker process is a worker-only
/// runtime (what `deerflow worker` runs) with the benchmark's workflows, so W2's task code can
/// report when it started and finished (its output), from which the hops are computed.
struct DistributedBenchmark {
    let database: String
    let slots: Int
    let workerProcesses: Int

    /// The workloads' workflows; W2's tasks return `{"start": seconds, "end": seconds}` (wall clock).
    static func workflows(w2Length: Int) -> [Workflow] {
        let w1 = Workflow(name: "w1")
        w1.task(TaskDefinition(id: "noop", action: .noop))
        let w2 = Workflow(name: "w2")
        for index in 0..<w2Length {
            w2.task(id: "t\(index)", type: "noop", dependsOn: index == 0 ? [] : ["t\(index - 1)"]) { _ in
                let start = Date().timeIntervalSince1970
                return ["start": start, "end": Date().timeIntervalSince1970]
            }
        }
        let w3 = Workflow(name: "w3")
        w3.task(TaskDefinition(id: "start", action: .noop))
        let middle = (0..<100).map { "m\($0)" }
        for id in middle { w3.task(TaskDefinition(id: id, type: "noop", action: .noop, dependsOn: ["start"])) }
        w3.task(TaskDefinition(id: "end", action: .noop, dependsOn: middle))
        return [w1, w2, w3, EngineBenchmark.w3MappedWorkflow()]
    }

    static func quietLogger() -> Logger {
        var logger = Logger(label: "deerflow.bench")
        logger.logLevel = .error
        return logger
    }

    /// A worker process: workers only, until SIGTERM.
    static func serveWorker(database: String, slots: Int, w2Length: Int) async throws {
        var options = RuntimeOptions()
        options.databaseURL = database
        options.runAPI = false
        options.runScheduler = false
        options.metricsPort = 0
        options.worker.slots = slots
        options.worker.pollInterval = .seconds(1)
        let runtime = try await DeerFlowRuntime.make(options: options, workflows: workflows(w2Length: w2Length), logger: quietLogger())
        try await runtime.run()
    }

    func run(w1Runs: Int, w2Length: Int, workloads: Set<String>) async throws -> String {
        var options = RuntimeOptions()
        options.databaseURL = database
        options.runAPI = false
        options.runWorkers = false
        options.metricsPort = 0
        // Migrates before the worker processes start.
        let runtime = try await DeerFlowRuntime.make(options: options, workflows: Self.workflows(w2Length: w2Length), logger: Self.quietLogger())
        let children = try (0..<workerProcesses).map { _ in try startWorker(w2Length: w2Length) }
        defer {
            for child in children where child.isRunning { kill(child.processIdentifier, SIGKILL) }
        }
        let engine = runtime.engine
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                try await runtime.run()
                return nil
            }
            var lines = [
                "DeerFlow bench — PostgreSQL (\(PostgresWorkflowStore.Configuration.redact(database))), this process triggers, "
                    + "\(workerProcesses) worker processes × \(slots) slots, metrics on, \(ProcessInfo.processInfo.activeProcessorCount) cores",
            ]
            do {
                try await waitForWorkers(engine, pids: Set(children.map { Int($0.processIdentifier) }))
                if workloads.contains("w1") {
                    let (enqueue, endToEnd) = try await w1(engine, runs: w1Runs)
                    lines.append(String(format: "W1  %d independent no-op tasks: enqueue %.0f/s, end-to-end %.0f tasks/s (target ≥ 3,000)", w1Runs, enqueue, endToEnd))
                }
                if workloads.contains("w2") {
                    let hops = try await w2(engine, length: w2Length)
                    lines.append(String(format: "W2  chain of %d: per-hop p50 %.3f ms, p99 %.3f ms, max %.3f ms (target p50 ≤ 5 ms)", w2Length, hops.p50 * 1000, hops.p99 * 1000, hops.max * 1000))
                }
                var w3PerTask: Double?
                if workloads.contains("w3") {
                    let seconds = try await w3(engine)
                    w3PerTask = seconds / 2040
                    lines.append(String(format: "W3  20 × (1 → 100 → 1): %.3f s, %.3f ms per task", seconds, seconds / 2040 * 1000))
                }
                if workloads.contains("w3m") {
                    let clock = ContinuousClock()
                    let start = clock.now
                    try await engine.trigger("w3m")
                    try await waitUntilIdle(engine)
                    lines.append(EngineBenchmark.w3MappedLine(seconds: (clock.now - start).seconds, w3PerTask: w3PerTask))
                }
                let childPeaks = children.map { MemoryUsage.peakResidentBytes(pid: $0.processIdentifier) }
                lines.append(String(format: "peak RSS: this process %.1f MiB, worker processes %@ MiB",
                                    Double(MemoryUsage.peakResidentBytes()) / 1_048_576,
                                    childPeaks.map { String(format: "%.1f", Double($0) / 1_048_576) }.joined(separator: ", ")))
            } catch {
                for child in children { kill(child.processIdentifier, SIGTERM) }
                await runtime.shutdown()
                while let _ = try? await group.next() {}
                throw error
            }
            for child in children { kill(child.processIdentifier, SIGTERM) }
            for child in children { child.waitUntilExit() }
            await runtime.shutdown()
            while let _ = try await group.next() {}
            return lines.joined(separator: "\n")
        }
    }

    /// Starts `deerflow bench --worker-process` (this executable), output discarded.
    private func startWorker(w2Length: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BenchProcess.executable)
        process.arguments = ["bench", "--worker-process", "--database", database, "--slots", String(slots), "--w2-length", String(w2Length)]
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until every worker process registered its heartbeat row.
    private func waitForWorkers(_ engine: DeerFlowEngine, pids: Set<Int>) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let workers = try await engine.store.workers()
            let active = Set(workers.filter { $0.state == .active }.map(\.pid))
            if pids.isSubset(of: active) { return }
            guard ContinuousClock.now < deadline else { throw CLIError("the benchmark's worker processes did not register within 60 s") }
            try await Sleep.for(.milliseconds(50))
        }
    }

    /// Polls the store until no run is pending or running.
    private func waitUntilIdle(_ engine: DeerFlowEngine, timeout: Duration = .seconds(600)) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await engine.store.statistics(now: Date()).activeRuns > 0 {
            guard ContinuousClock.now < deadline else { throw CLIError("runs did not finish within \(timeout)") }
            try await Sleep.for(.milliseconds(5))
        }
    }

    /// W1: returns (enqueue per second, tasks per second end to end).
    func w1(_ engine: DeerFlowEngine, runs: Int) async throws -> (Double, Double) {
        let clock = ContinuousClock()
        let start = clock.now
        try await triggerConcurrently(engine, workflow: "w1", runs: runs)
        let enqueued = clock.now - start
        try await waitUntilIdle(engine)
        let total = clock.now - start
        return (Double(runs) / enqueued.seconds, Double(runs) / total.seconds)
    }

    /// W2: per-hop latencies in seconds, from the tasks' own start and end times.
    func w2(_ engine: DeerFlowEngine, length: Int) async throws -> (p50: Double, p99: Double, max: Double) {
        let run = try await engine.trigger("w2")
        let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(20))
        guard detail.run.status == .success else { throw CLIError("W2 run ended \(detail.run.status.rawValue)") }
        var marks: [Int: (start: Double, end: Double)] = [:]
        for task in detail.tasks {
            guard case .object(let output)? = task.output, let start = output["start"]?.doubleValue, let end = output["end"]?.doubleValue else { continue }
            marks[task.index] = (start, end)
        }
        var hops: [Double] = []
        for index in 1..<length {
            guard let previous = marks[index - 1], let current = marks[index] else { continue }
            hops.append(current.start - previous.end)
        }
        hops.sort()
        guard !hops.isEmpty else { throw CLIError("W2 recorded no hops") }
        func percentile(_ p: Double) -> Double { hops[min(hops.count - 1, Int((Double(hops.count) * p).rounded(.up)) - 1)] }
        return (percentile(0.5), percentile(0.99), hops.last ?? 0)
    }

    /// W3: seconds for 20 runs of 1 → 100 → 1.
    func w3(_ engine: DeerFlowEngine) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<20 { try await engine.trigger("w3") }
        try await waitUntilIdle(engine)
        return (clock.now - start).seconds
    }
}
