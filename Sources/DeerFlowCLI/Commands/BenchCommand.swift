import ArgumentParser
import DeerFlow
import DeerFlowCore
import Foundation
import Logging
import Synchronization
import DeerFlowSQLite
import DeerFlowObservability

/// `deerflow bench`: throughput and latency figures of the embedded engine.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the engine: W1 throughput, W2 per-hop latency, W3 fan-out/fan-in, peak memory.",
        discussion: """
            Runs on a fresh SQLite file (in a temp directory) in this process, with metrics on, like `deerflow server`.
            W1: 10,000 runs of a one-task no-op workflow, triggered as fast as possible while workers run them
                (enqueue/s = triggers per second; end-to-end = tasks finished per second from first trigger to last finish).
            W2: a chain of 200 no-op tasks; per hop = from a task's code returning to the next task's code starting.
            W3: 20 runs of 1 → 100 → 1 tasks, all triggered at once; total seconds until all finished.
            Build with `swift build -c release` for meaningful figures.
            """
    )

    @Option(help: "Worker slots (no-op tasks: more slots mean bigger batches).")
    var slots = 64

    @Option(help: "Runs in W1.")
    var w1Runs = 10_000

    @Option(help: "Chain length in W2.")
    var w2Length = 200

    @Option(help: "Only run these workloads (comma-separated: w1, w2, w3, metrics).")
    var only: String?

    func run() async throws {
        let selected = Set((only ?? "w1,w2,w3,metrics").split(separator: ",").map { String($0).lowercased() })
        let report = try await EngineBenchmark(slots: slots).run(w1Runs: w1Runs, w2Length: w2Length, workloads: selected)
        print(report)
    }
}

/// The workloads of `deerflow bench`.
struct EngineBenchmark {
    let slots: Int

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
        if workloads.contains("w2") {
            let hops = try await w2(length: w2Length)
            lines.append(String(format: "W2  chain of %d: per-hop p50 %.3f ms, p99 %.3f ms, max %.3f ms (targets ≤ 1 ms, ≤ 5 ms)", w2Length, hops.p50 * 1000, hops.p99 * 1000, hops.max * 1000))
        }
        if workloads.contains("w3") {
            let seconds = try await w3()
            lines.append(String(format: "W3  20 × (1 → 100 → 1): %.3f s (target ≤ 1 s)", seconds))
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
        let histogram = try registry.histogram("bench_observations_seconds", help: "Benchmark histogram.", labels: ["kind"], buckets: Histogram.defaultBuckets).labels("a")
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
        let (_, off) = try await w1(runs: w1Runs, metricsEnabled: false)
        let (_, on) = try await w1(runs: w1Runs, metricsEnabled: true)
        return [
            String(format: "metrics: counter increment %.1f ns, histogram observation %.1f ns (target ≤ 100 ns)", increment, observation),
            String(format: "metrics: rendering 10,000 series (%d KiB) p50 %.2f ms (target ≤ 20 ms)", bytes / 1024, renders[renders.count / 2]),
            String(format: "metrics: W1 %.0f tasks/s with metrics off, %.0f with metrics on (%+.1f%%; target within 5%%)", off, on, (on - off) / off * 100),
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

    private func withRuntime<T: Sendable>(_ workflows: [Workflow], metricsEnabled: Bool = true, _ body: @Sendable (DeerFlowEngine) async throws -> T) async throws -> T {
        let directory = NSTemporaryDirectory() + "deerflow-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "deerflow.bench")
        logger.logLevel = .error
        var runtimeOptions = options(directory)
        runtimeOptions.metrics.enabled = metricsEnabled
        let runtime = try await DeerFlowRuntime.make(options: runtimeOptions, workflows: workflows, logger: logger)
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
    func w1(runs: Int, metricsEnabled: Bool = true) async throws -> (Double, Double) {
        let flow = Workflow(name: "w1")
        flow.task(TaskDefinition(id: "noop", action: .noop))
        return try await withRuntime([flow], metricsEnabled: metricsEnabled) { engine in
            let finished = RunCounter(expected: runs)
            engine.addObserver(finished)
            let clock = ContinuousClock()
            let start = clock.now
            let producers = 64
            try await withThrowingTaskGroup(of: Void.self) { group in
                for producer in 0..<producers {
                    group.addTask {
                        for _ in stride(from: producer, to: runs, by: producers) {
                            try await engine.trigger("w1")
                        }
                    }
                }
                try await group.waitForAll()
            }
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

/// Peak resident memory of this process.
enum MemoryUsage {
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let digits = line.filter(\.isNumber)
            return (Int(digits) ?? 0) * 1024
        }
        return 0
    }
}
