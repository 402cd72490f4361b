import DeerFlowCore
import Foundation
import Logging
import Synchronization
import Testing

@testable import DeerFlowLogging

@Suite("Log handler")
struct LogHandlerTests {
    let clock = ManualClock("2024-06-01T12:00:00.123Z")

    func makeLogger(_ backend: LoggingBackend, label: String = "deerflow.worker") -> Logger {
        Logger(label: label) { backend.makeHandler(label: $0, metadataProvider: nil) }
    }

    func backend(level: Logger.Level = .info, patterns: [String] = ["password", "api_key", "secret"], sinks: [any LogSink]) -> LoggingBackend {
        let clock = self.clock
        return LoggingBackend(level: level, redactor: try! Redactor(patterns: patterns), sinks: sinks, clock: { clock.now })
    }

    @Test("a task record: every field, redacted once before every sink")
    func taskRecord() throws {
        let json = MemorySink(name: "json")
        let text = MemorySink(name: "text", format: .text)
        var logger = makeLogger(backend(sinks: [json, text]))
        logger[metadataKey: "workflow"] = "daily_etl"
        logger[metadataKey: "workflow_id"] = "wf_1"
        logger[metadataKey: "run_id"] = "run_1"
        logger[metadataKey: "task_id"] = "extract"
        logger[metadataKey: "execution_id"] = "exe_1"
        logger[metadataKey: "attempt"] = "1"
        logger.info(
            "connecting with password=hunter2", metadata: ["params": ["date": "2024-06-01", "api_key": "k"], "dsn": "postgres://u:pw@db/x"])
        let object = try parseJSON(try #require(json.lines.first))
        #expect(object["timestamp"] as? String == "2024-06-01T12:00:00.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "deerflow.worker")
        #expect(object["message"] as? String == "connecting with password=[REDACTED]")
        #expect(object["workflow"] as? String == "daily_etl")
        #expect(object["execution_id"] as? String == "exe_1")
        #expect(object["attempt"] as? String == "1")
        #expect(object["params"] as? [String: String] == ["date": "2024-06-01", "api_key": "[REDACTED]"])
        #expect(object["dsn"] as? String == "postgres://u:[REDACTED]@db/x")
        #expect(try #require(json.lines.first).hasPrefix(#"{"timestamp":"2024-06-01T12:00:00.123Z","level":"info","logger":"deerflow.worker","message":"connecting with password=[REDACTED]","workflow":"daily_etl","workflow_id":"wf_1","run_id":"run_1","task_id":"extract","execution_id":"exe_1","attempt":"1","dsn":"#))
        // The record handed to sinks is the redacted one, and both formats come from it.
        let record = try #require(json.records.first)
        #expect(record.message == "connecting with password=[REDACTED]")
        #expect(record.metadata["params"] == ["date": "2024-06-01", "api_key": "[REDACTED]"])
        #expect(record.fields.map(\.key) == ["workflow", "workflow_id", "run_id", "task_id", "execution_id", "attempt", "dsn", "params"])
        #expect(text.lines == [
            #"2024-06-01T12:00:00.123Z INFO [deerflow.worker] connecting with password=[REDACTED] workflow=daily_etl workflow_id=wf_1 run_id=run_1 task_id=extract execution_id=exe_1 attempt=1 dsn=postgres://u:[REDACTED]@db/x params={"api_key":"[REDACTED]","date":"2024-06-01"}"#
        ])
    }

    @Test("the statement's metadata wins over the provider's, which wins over the logger's")
    func precedence() throws {
        let sink = MemorySink()
        let provider = Logger.MetadataProvider { ["trace_id": "t-provider", "run_id": "run-provider", "span_id": "s1"] }
        let backend = backend(sinks: [sink])
        var logger = Logger(label: "l") { backend.makeHandler(label: $0, metadataProvider: provider) }
        logger[metadataKey: "run_id"] = "run-logger"
        logger[metadataKey: "task_id"] = "task-logger"
        logger[metadataKey: "zone"] = "a"
        logger.info("m", metadata: ["task_id": "task-statement", "alpha": "1"])
        let record = try #require(sink.records.first)
        #expect(record.metadata == ["run_id": "run-provider", "task_id": "task-statement", "trace_id": "t-provider", "span_id": "s1", "zone": "a", "alpha": "1"])
        #expect(record.fields.map(\.key) == ["run_id", "task_id", "trace_id", "span_id", "alpha", "zone"])
        let line = try #require(sink.lines.first)
        #expect(line.hasSuffix(#""run_id":"run-provider","task_id":"task-statement","trace_id":"t-provider","span_id":"s1","alpha":"1","zone":"a"}"#))
    }

    @Test("the logger's metadata is redacted when set, and .stringConvertible values at every statement")
    func loggerMetadata() throws {
        final class Counter: CustomStringConvertible, Sendable {
            let value = Mutex(0)
            var description: String { "password=\(value.withLock { $0 })" }
        }
        let sink = MemorySink()
        var logger = makeLogger(backend(sinks: [sink]))
        let counter = Counter()
        logger[metadataKey: "secret_token"] = "abc"
        logger[metadataKey: "state"] = .stringConvertible(counter)
        logger.info("one")
        counter.value.withLock { $0 = 7 }
        logger.info("two")
        logger[metadataKey: "state"] = nil
        logger.info("three")
        let objects = try sink.lines.map(parseJSON)
        #expect(objects.map { $0["secret_token"] as? String } == ["[REDACTED]", "[REDACTED]", "[REDACTED]"])
        #expect(objects.map { $0["state"] as? String } == ["password=[REDACTED]", "password=[REDACTED]", nil])
        #expect(sink.records[1].metadata["state"] == "password=[REDACTED]")
    }

    @Test("levels: the root level, then each sink's")
    func levels() {
        let all = MemorySink(name: "all")
        let warnings = MemorySink(name: "warnings", level: .warning)
        let backend = backend(level: .info, sinks: [all, warnings])
        #expect(backend.level == .info)
        let logger = makeLogger(backend)
        #expect(logger.logLevel == .info)
        logger.debug("hidden")
        logger.info("info")
        logger.warning("warning")
        logger.critical("critical")
        #expect(all.records.map(\.message) == ["info", "warning", "critical"])
        #expect(warnings.records.map(\.message) == ["warning", "critical"])
        // A logger set lower sends more, within what each sink takes.
        var verbose = makeLogger(backend)
        verbose.logLevel = .trace
        verbose.debug("debug")
        #expect(all.records.last?.message == "debug")
        #expect(warnings.records.count == 2)
        // When every sink wants less, the handler starts higher, so nothing is formatted in vain.
        let quiet = LoggingBackend(level: .debug, sinks: [MemorySink(level: .error), MemorySink(level: .warning)])
        #expect(quiet.level == .warning)
    }

    @Test("an error passed with the statement becomes error.message and error.type")
    func errors() throws {
        struct ConnectionError: Error, CustomStringConvertible {
            var description: String { "cannot reach postgres://app:pw@db/x" }
        }
        let sink = MemorySink()
        let backend = backend(sinks: [sink])
        let handler = backend.makeHandler(label: "l")
        handler.log(event: LogEvent(
            level: .error, message: "failed", error: ConnectionError(), metadata: nil, source: nil, file: #fileID, function: #function, line: #line))
        let object = try parseJSON(try #require(sink.lines.first))
        #expect(object["error.message"] as? String == "cannot reach postgres://app:[REDACTED]@db/x")
        #expect((object["error.type"] as? String)?.hasSuffix("ConnectionError") == true)
    }

    @Test("without filters, URL passwords are still hidden")
    func urlOnly() throws {
        let sink = MemorySink()
        let logger = makeLogger(LoggingBackend(sinks: [sink]))
        logger.info("using postgres://app:pw@db/x", metadata: ["password": "visible without filters"])
        let object = try parseJSON(try #require(sink.lines.first))
        #expect(object["message"] as? String == "using postgres://app:[REDACTED]@db/x")
        #expect(object["password"] as? String == "visible without filters")
    }

    @Test("the backend of a logging.yaml writes JSON lines to its file, redacted, flushed at shutdown")
    func fromConfiguration() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let yaml = LoggingConfigFileTests.seed
            .replacingOccurrences(of: "/var/log/deerflow/app.log", with: directory.file("logs/app.log"))
            .replacingOccurrences(of: "enabled: true\n      level: INFO", with: "enabled: false\n      level: INFO")
        let config = try LoggingConfigFile.parse(yaml: yaml, file: "logging.yaml", environment: [:])
        #expect(config.console?.enabled == false)
        let recorder = Recorder()
        let extra = MemorySink(name: "elasticsearch")
        let backend = try LoggingBackend(configuration: config, extraSinks: [extra], onDropped: { recorder.dropped($0, $1) })
        #expect(backend.sinks.map(\.name) == ["file", "elasticsearch"])
        let logger = Logger(label: "deerflow") { backend.makeHandler(label: $0) }
        logger.debug("not written")
        logger.info("task started", metadata: ["api_key": "k", "run_id": "r1"])
        #expect(directory.lines("logs/app.log").isEmpty) // buffered
        backend.shutdown()
        let lines = directory.lines("logs/app.log")
        #expect(lines.count == 1)
        let object = try parseJSON(lines[0])
        #expect(object["api_key"] as? String == "[REDACTED]")
        #expect(object["run_id"] as? String == "r1")
        #expect(extra.lines == lines)
        #expect(recorder.droppedTotal == 0)
    }

    @Test("run() flushes periodically and shuts down when cancelled")
    func run() async throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let backend = LoggingBackend(sinks: [FileSink(path: directory.file("app.log"))])
        let logger = Logger(label: "deerflow") { backend.makeHandler(label: $0) }
        let task = Task { await backend.run(flushInterval: .milliseconds(20)) }
        logger.info("one")
        var waited = 0
        while directory.lines("app.log").isEmpty, waited < 200 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(directory.lines("app.log").count == 1)
        logger.info("two")
        task.cancel()
        await task.value
        #expect(directory.lines("app.log").count == 2)
    }

    @Test("makeHandler fits both LoggingSystem.bootstrap signatures")
    func bootstrapSignatures() {
        let backend = LoggingBackend(sinks: [MemorySink()])
        let plain: @Sendable (String) -> any LogHandler = backend.makeHandler
        let withProvider: @Sendable (String, Logger.MetadataProvider?) -> any LogHandler = backend.makeHandler
        #expect(plain("a").logLevel == .info)
        #expect(withProvider("b", nil).logLevel == .info)
    }

    @Test("the benchmark runs")
    func benchmark() {
        let result = LoggingBenchmark.run(lines: 2000)
        #expect(result.lines == 2000)
        #expect(result.linesPerSecond > 0)
        #expect(result.bytes > 2000 * 100)
    }
}
