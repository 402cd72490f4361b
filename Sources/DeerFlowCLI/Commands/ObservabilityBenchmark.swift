import AsyncHTTPClient
import DeerFlow
import DeerFlowCore
import DeerFlowLogging
import DeerFlowObservability
import DeerFlowServer
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// The costs of logging and tracing, for `deerflow bench --only logging,tracing`.
extension EngineBenchmark {
    /// Two variants of a workload in alternating rounds, the order flipped every round so that
    /// neither always runs first; the median of each (one pair alone differed by up to 9 % with
    /// nothing changed between them).
    func alternating(rounds: Int = 3, _ first: () async throws -> Double, _ second: () async throws -> Double) async throws -> (first: Double, second: Double) {
        var firsts: [Double] = []
        var seconds: [Double] = []
        for round in 0..<rounds {
            if round % 2 == 0 {
                firsts.append(try await first())
                seconds.append(try await second())
            } else {
                seconds.append(try await second())
                firsts.append(try await first())
            }
        }
        return (ObservabilityBenchmark.median(firsts), ObservabilityBenchmark.median(seconds))
    }

    /// Log lines per second through the JSON file handler with redaction, and W1 with the engine's
    /// logger at info writing JSON to a file vs logging off (throughput and CPU per task, medians
    /// of five alternating rounds).
    func loggingFigures(w1Runs: Int) async throws -> [String] {
        _ = LoggingBenchmark.run(lines: 50_000)
        let handler = LoggingBenchmark.run(lines: 500_000)
        var written = 0
        // CPU time per task too: throughput on this shared machine moves by ±10 % between rounds,
        // the process's CPU per task much less.
        var cpuOff: [Double] = []
        var cpuOn: [Double] = []
        /// Runs `body`, adding this process's CPU time per W1 task (µs) to `samples`.
        func cpuPerTask<T>(_ samples: inout [Double], _ body: () async throws -> T) async throws -> T {
            let before = processCPUSeconds()
            let result = try await body()
            samples.append((processCPUSeconds() - before) / Double(w1Runs) * 1e6)
            return result
        }
        let medians = try await alternating(rounds: 5) {
            try await cpuPerTask(&cpuOff) { try await w1(runs: w1Runs).endToEnd }
        } _: {
            let (perSecond, lines) = try await cpuPerTask(&cpuOn) {
                try await withFileLogging { logger in try await w1(runs: w1Runs, logger: logger).endToEnd }
            }
            written = lines
            return perSecond
        }
        let (offCPU, onCPU) = (ObservabilityBenchmark.median(cpuOff), ObservabilityBenchmark.median(cpuOn))
        // Shell tasks printing a line, their output also logged (task_output) or not; both with
        // the engine's logger at info to a JSON file. Processes cost milliseconds: fewer runs.
        let shellRuns = min(w1Runs, 2_000)
        let hello = TaskAction.shell(ShellAction(command: ["echo", "hello, world"]))
        var shellLines = 0
        let shell = try await alternating {
            try await withFileLogging { logger in try await w1(runs: shellRuns, logger: logger, action: hello).endToEnd }.0
        } _: {
            let (perSecond, lines) = try await withFileLogging { logger in
                try await w1(runs: shellRuns, logger: logger, action: hello, taskOutput: true).endToEnd
            }
            shellLines = lines
            return perSecond
        }
        return [
            try await observerFigure(),
            String(format: "logging: W1 with %d shell tasks printing a line: %.0f tasks/s with task_output off, %.0f with it on (%d lines to the JSON file; %+.1f%%)",
                   shellRuns, shell.first, shell.second, shellLines, (shell.second - shell.first) / shell.first * 100),
            String(format: "logging: JSON file handler with redaction: %.0f lines/s on one thread, %d bytes/line (target ≥ 200,000)",
                   handler.linesPerSecond, handler.bytes / max(handler.lines, 1)),
            String(format: "logging: W1 %.0f tasks/s with logging off, %.0f with info to a JSON file (%d lines per W1; %+.1f%%; target within 5%%); CPU %.0f → %.0f µs/task (%+.1f%%) (medians of 5 alternating rounds)",
                   medians.first, medians.second, written, (medians.second - medians.first) / medians.first * 100,
                   offCPU, onCPU, (onCPU - offCPU) / offCPU * 100),
        ]
    }

    /// The line of ``observerCost(runs:)``; alone with `--only logline` (short enough to run under
    /// `valgrind --tool=callgrind`, whose instruction counts are repeatable on this noisy machine).
    func observerFigure() async throws -> String {
        let observer = try await observerCost()
        return String(
            format: "logging: the engine's log observer per one-task run (its four events), one thread: %.2f µs with info to a JSON file (2 lines), %.2f µs with the level at error (no line)",
            observer.info, observer.quiet)
    }

    /// CPU time per run (µs) of the engine's ``LoggingObserver`` on one thread, given the events of
    /// a one-task run (created, attempt started and finished, run finished): with the logger at
    /// info writing JSON lines with redaction to a file, and with it at error, where nothing is
    /// written and the observer should cost next to nothing. Steadier than W1's comparison, whose
    /// rounds on this shared machine move by more than the whole cost of logging.
    func observerCost(runs: Int = 200_000) async throws -> (info: Double, quiet: Double) {
        let now = Date()
        let batches = (0..<1_000).map { index -> [EngineEvent] in
            let runID = RunID.generate(at: now)
            let info = AttemptInfo(
                attemptID: AttemptID(index), runID: runID, workflow: "w1", taskID: "task", type: "noop", queue: "default", number: 1, worker: "w")
            return [
                .runCreated(runID: runID, workflow: "w1", trigger: .api, at: now),
                .attemptStarted(info, queuedAt: now, startedAt: now),
                .attemptFinished(info, status: .success, metricStatus: .success, startedAt: now, finishedAt: now, error: nil),
                .runFinished(runID: runID, workflow: "w1", status: .success, createdAt: now, startedAt: now, finishedAt: now),
            ]
        }
        func measure(_ logger: Logger) -> Double {
            let observer = LoggingObserver(logger: logger)
            let before = processCPUSeconds()
            for index in 0..<runs { observer.engine(didEmit: batches[index % batches.count]) }
            return (processCPUSeconds() - before) / Double(runs) * 1e6
        }
        // The first pass warms up; the second is measured.
        let (info, _) = try await withFileLogging { logger in
            _ = measure(logger)
            return measure(logger)
        }
        var quiet = Logger(label: "deerflow.bench")
        quiet.logLevel = .error
        return (info, measure(quiet))
    }

    /// Runs `body` with a logger at info that writes JSON lines with redaction to a file in a
    /// temporary directory; returns its result and the number of lines written.
    private func withFileLogging<T: Sendable>(_ body: (Logger) async throws -> T) async throws -> (T, Int) {
        let directory = NSTemporaryDirectory() + "deerflow-bench-log-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/deerflow.log"
        let redactor = try Redactor(patterns: ["password", "api_key", "secret", "token"])
        let backend = LoggingBackend(level: .info, redactor: redactor, sinks: [FileSink(path: path, format: .json)])
        var logger = Logger(label: "deerflow", factory: { backend.makeHandler(label: $0) })
        logger.logLevel = .info
        let result = try await body(logger)
        backend.shutdown()
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return (result, text.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) })
    }

    /// W1 with tracing off, on with ratio 1.0 and with ratio 0.01, each in a fresh process of this
    /// executable (a process installs one tracer) exporting OTLP/HTTP to a loopback receiver in a
    /// third process.
    func tracingFigures(w1Runs: Int) async throws -> [String] {
        return try await OTLPSinkProcess.withSink { endpoint, totals in
            let variants = ["off", "1.0", "0.01"]
            var results: [String: [TracingChildResult]] = [:]
            var received: [String: (requests: Int, bytes: Int)] = [:]
            // Four rounds, the order rotated each round, so no variant always runs first or last.
            for round in 0..<4 {
                for offset in 0..<variants.count {
                    let variant = variants[(round + offset) % variants.count]
                    let before = try await totals()
                    let result = try await TracingChild.run(ratio: variant, endpoint: endpoint, w1Runs: w1Runs, slots: slots)
                    let after = try await totals()
                    results[variant, default: []].append(result)
                    let total = received[variant] ?? (0, 0)
                    received[variant] = (total.requests + after.requests - before.requests, total.bytes + after.bytes - before.bytes)
                }
            }
            func median(_ name: String, _ value: (TracingChildResult) -> Double) -> Double {
                ObservabilityBenchmark.median((results[name] ?? []).map(value))
            }
            let unsampledSpanCost = median("0.01") { $0.libraryMicrosecondsPerRunSpan ?? 0 }
            let sampledSpanCost = median("1.0") { $0.libraryMicrosecondsPerRunSpan ?? 0 }
            let offThroughput = median("off", \.tasksPerSecond)
            let offCPU = median("off", \.cpuMicrosecondsPerTask)
            guard offThroughput > 0 else { throw CLIError("the tracing benchmark produced no result") }
            func line(_ name: String, target: String) -> String {
                let throughput = median(name, \.tasksPerSecond)
                let cpu = median(name, \.cpuMicrosecondsPerTask)
                let delivered = received[name] ?? (0, 0)
                let dropped = (results[name] ?? []).map(\.spansDropped).reduce(0, +)
                return String(format: "tracing: W1 %.0f tasks/s with ratio %@ (%+.1f%%; target %@), CPU %.0f µs/task (%+.1f%%); %d export requests, %d KiB received, %d spans dropped in all rounds",
                              throughput, name, (throughput - offThroughput) / offThroughput * 100, target, cpu, (cpu - offCPU) / offCPU * 100,
                              delivered.requests, delivered.bytes / 1024, dropped)
            }
            return [
                String(format: "tracing: W1 %.0f tasks/s with tracing off, CPU %.0f µs/task (medians of 4 rounds in rotated order, each run in a fresh process)",
                       offThroughput, offCPU),
                line("1.0", target: "≥ -15%"),
                line("0.01", target: "≥ -3%"),
                String(format: "tracing: the tracer alone, per run span (start, W3C context for the run row, end; one thread, export not included): %.1f µs CPU at ratio 0.01 = %.1f%% of W1's CPU per task with tracing off; %.1f µs at ratio 1.0",
                       unsampledSpanCost, unsampledSpanCost / offCPU * 100, sampledSpanCost),
            ]
        }
    }
}

/// Helpers of the observability figures.
enum ObservabilityBenchmark {
    /// The median (the mean of the middle two for an even count); 0 for no values.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// What a tracing benchmark process reports on its last line of output.
struct TracingChildResult: Codable, Sendable {
    var tasksPerSecond: Double
    /// CPU time (user + system) of the process per task, including the exporter's final flush:
    /// steadier than throughput on a shared machine.
    var cpuMicrosecondsPerTask: Double
    var spansDropped: Int
    /// CPU µs swift-otel takes for one root span started, its W3C context injected and ended, on
    /// one thread (what every run costs at least; nil with tracing off).
    var libraryMicrosecondsPerRunSpan: Double?
}

/// User + system CPU seconds this process has used.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// `deerflow bench --tracing-child RATIO --tracing-endpoint URL`: one W1 in a process of its own,
/// with tracing off or exporting to `URL` with the given sampling ratio.
enum TracingChild {
    /// Starts the child and reads its result.
    static func run(ratio: String, endpoint: String, w1Runs: Int, slots: Int) async throws -> TracingChildResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BenchProcess.executable)
        process.arguments = [
            "bench", "--tracing-child", ratio, "--tracing-endpoint", endpoint, "--w1-runs", String(w1Runs), "--slots", String(slots),
        ]
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("OTEL_") { environment[key] = nil }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
              let last = text.split(separator: "\n").last,
              let result = try? JSONDecoder().decode(TracingChildResult.self, from: Data(last.utf8))
        else {
            throw CLIError("the tracing benchmark process (ratio \(ratio)) failed with status \(process.terminationStatus): \(text.suffix(500))")
        }
        return result
    }

    /// The child's side: installs the tracer (unless `ratio` is `off`), runs W1, prints the result.
    static func serve(ratio: String, endpoint: String?, w1Runs: Int, slots: Int) async throws {
        var observability: ProcessObservability?
        if ratio != "off" {
            guard let value = Double(ratio), value > 0, value <= 1 else { throw CLIError("--tracing-child takes off or a ratio in (0, 1], not '\(ratio)'") }
            guard let endpoint else { throw CLIError("--tracing-child needs --tracing-endpoint") }
            var configuration = TracingConfigFile()
            configuration.enabled = true
            configuration.endpoint = endpoint
            configuration.sampler = .parentBased
            configuration.ratio = value
            configuration.batchInterval = .seconds(1)
            var diagnostics = Logger(label: "deerflow.bench")
            diagnostics.logLevel = .error
            observability = try ProcessObservability.tracingOnly(configuration, logger: diagnostics)
        }
        let cpuBefore = processCPUSeconds()
        let (_, endToEnd) = try await EngineBenchmark(slots: slots, observability: observability).w1(runs: w1Runs)
        let cpu = processCPUSeconds() - cpuBefore
        let result = TracingChildResult(
            tasksPerSecond: endToEnd, cpuMicrosecondsPerTask: cpu / Double(max(1, w1Runs)) * 1e6, spansDropped: observability?.spansDropped ?? 0,
            libraryMicrosecondsPerRunSpan: ratio == "off" ? nil : TracingSetup.runSpanCost(cpuSeconds: processCPUSeconds))
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }
}

/// `deerflow bench --otlp-sink`: the loopback receiver in a process of its own, so receiving does
/// not share a process with the benchmark's bookkeeping. Prints `listening on URL`, serves until
/// its stdin closes.
enum OTLPSinkProcess {
    static func serve() async throws {
        try await OTLPCountingReceiver().whileRunning { endpoint in
            FileHandle.standardOutput.write(Data("listening on \(endpoint)\n".utf8))
            _ = await Task.detached { FileHandle.standardInput.readDataToEndOfFile() }.value
        }
    }

    /// Starts the sink; `body` gets the traces endpoint and a way to read the sink's totals.
    static func withSink<T: Sendable>(_ body: (String, @Sendable () async throws -> (requests: Int, bytes: Int)) async throws -> T) async throws -> T {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BenchProcess.executable)
        process.arguments = ["bench", "--otlp-sink"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        defer {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        let line = await Task.detached { () -> String in
            var data = Data()
            while !data.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
            }
            return String(decoding: data, as: UTF8.self)
        }.value
        guard let endpoint = line.split(separator: "\n").first.flatMap({ $0.hasPrefix("listening on ") ? String($0.dropFirst("listening on ".count)) : nil }) else {
            throw CLIError("the OTLP sink process did not start: \(line)")
        }
        let totalsURL = endpoint.replacingOccurrences(of: "/v1/traces", with: "/totals")
        return try await body(endpoint) {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: totalsURL), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 16)
            guard case .object(let totals)? = try? JSONValue(parsing: String(buffer: body)),
                  let requests = totals["requests"]?.intValue, let bytes = totals["bytes"]?.intValue
            else { throw CLIError("the OTLP sink answered \(response.status)") }
            return (requests, bytes)
        }
    }
}

/// A loopback OTLP/HTTP endpoint that accepts export requests (`POST /v1/traces`), answers
/// 200 with an empty export response, and counts requests and bytes.
final class OTLPCountingReceiver: Sendable {
    private let counts = Mutex<(requests: Int, bytes: Int)>((0, 0))

    var totals: (requests: Int, bytes: Int) { counts.withLock { $0 } }

    /// Runs `body` with the receiver listening; its argument is the traces endpoint URL.
    func whileRunning<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let router = Router(context: BasicRequestContext.self)
        router.post("/v1/traces") { request, _ -> Response in
            var size = 0
            for try await chunk in request.body { size += chunk.readableBytes }
            self.counts.withLock { $0.requests += 1; $0.bytes += size }
            return Response(status: .ok, headers: [.contentType: "application/x-protobuf"], body: .init(byteBuffer: ByteBuffer()))
        }
        router.get("/totals") { _, _ -> Response in
            let totals = self.totals
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"requests":\#(totals.requests),"bytes":\#(totals.bytes)}"#)))
        }
        let port = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "deerflow.bench.otlp")
        logger.logLevel = .error
        let application = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "deerflow-bench-otlp"),
            onServerRunning: { channel in
                port.continuation.yield(channel.localAddress?.port ?? 0)
                port.continuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        return try await withThrowingTaskGroup(of: T?.self) { tasks in
            tasks.addTask {
                try await group.run()
                return nil
            }
            var listening = 0
            for await value in port.stream { listening = value }
            guard listening > 0 else { throw CLIError("the loopback OTLP receiver did not start") }
            let result: T
            do {
                result = try await body("http://127.0.0.1:\(listening)/v1/traces")
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            while let _ = try await tasks.next() {}
            return result
        }
    }
}
