import DeerFlowCore
import Foundation
import Logging

/// Throughput of the logging path on one thread: swift-log `Logger` → redaction (the chapter's
/// patterns) → JSON line → buffered file in a temporary directory, flushed and closed at the end.
///
/// ```swift
/// let result = LoggingBenchmark.run(lines: 500_000)
/// print("\(Int(result.linesPerSecond)) lines/s")
/// ```
public enum LoggingBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var lines: Int
        public var seconds: Double
        public var bytes: Int
        public var linesPerSecond: Double { seconds > 0 ? Double(lines) / seconds : 0 }
        public var description: String {
            "\(lines) lines in \(String(format: "%.3f", seconds)) s: \(Int(linesPerSecond)) lines/s, \(bytes / max(lines, 1)) bytes/line"
        }
    }

    /// Logs `lines` task records (a quarter of them with a `password=` fragment to redact) and
    /// measures the time including the final flush.
    public static func run(lines: Int) -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-log-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("app.log").path
        let sink = FileSink(path: path, rotation: .daily, retention: nil)
        let redactor = (try? Redactor(patterns: ["password", "api_key", "secret"])) ?? .urlCredentialsOnly
        let backend = LoggingBackend(level: .info, redactor: redactor, sinks: [sink])
        var logger = Logger(label: "deerflow.worker", factory: { backend.makeHandler(label: $0) })
        logger[metadataKey: "workflow"] = "daily_etl"
        logger[metadataKey: "workflow_id"] = "wf_01HZX3K9"
        logger[metadataKey: "run_id"] = "run_01HZX3KA9Q"
        logger[metadataKey: "task_id"] = "extract"
        logger[metadataKey: "execution_id"] = "exe_01HZX3KB"
        logger[metadataKey: "attempt"] = "1"

        let clock = ContinuousClock()
        let start = clock.now
        for index in 0..<lines {
            switch index & 3 {
            case 0:
                logger.info("Starting task processing", metadata: ["params": ["date": "2024-06-01", "limit": "100"]])
            case 1:
                logger.info("connecting with password=hunter2 to warehouse", metadata: ["host": "db.internal"])
            case 2:
                logger.info("Task completed successfully", metadata: ["result_count": "\(index)", "duration_ms": "12"])
            default:
                logger.info("fetched page", metadata: ["url": "https://api.example.com/v1/items?page=3", "api_key": "abc123"])
            }
        }
        backend.shutdown()
        let elapsed = clock.now - start
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        return Result(lines: lines, seconds: elapsed.seconds, bytes: bytes)
    }
}
