import DeerFlowCore
import Foundation
import Logging
import Synchronization

@testable import DeerFlowLogging

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let current: Mutex<Date>

    init(_ text: String) {
        current = Mutex(Timestamp.parse(text)!)
    }

    var now: Date { current.withLock { $0 } }

    func set(_ text: String) {
        current.withLock { $0 = Timestamp.parse(text)! }
    }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }
}

/// Collects what a sink reports or drops.
final class Recorder: Sendable {
    private let state = Mutex<(messages: [String], dropped: [(String, Int)])>(([], []))

    var messages: [String] { state.withLock { $0.messages } }
    var droppedTotal: Int { state.withLock { $0.dropped.reduce(0) { $0 + $1.1 } } }
    var droppedNames: Set<String> { state.withLock { Set($0.dropped.map(\.0)) } }

    func report(_ message: String) { state.withLock { $0.messages.append(message) } }
    func dropped(_ name: String, _ count: Int) { state.withLock { $0.dropped.append((name, count)) } }
}

/// A sink keeping every line and record.
final class MemorySink: LogSink {
    let name: String
    let level: Logger.Level?
    let format: LogFormat
    private let state = Mutex<[(line: String, record: LogRecord)]>([])

    init(name: String = "memory", level: Logger.Level? = nil, format: LogFormat = .json) {
        self.name = name
        self.level = level
        self.format = format
    }

    var lines: [String] { state.withLock { $0.map(\.line) } }
    var records: [LogRecord] { state.withLock { $0.map(\.record) } }

    func write(_ line: String, record: LogRecord) { state.withLock { $0.append((line, record)) } }
    func flush() {}
    func close() {}
}

/// A fresh directory under the system's temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String

    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-logging-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func contents(_ name: String) -> String {
        (try? String(contentsOfFile: file(name), encoding: .utf8)) ?? ""
    }

    func lines(_ name: String) -> [String] {
        contents(name).split(separator: "\n").map(String.init)
    }

    func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func write(_ name: String, _ text: String = "old\n") {
        _ = FileManager.default.createFile(atPath: file(name), contents: Data(text.utf8))
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Parses a JSON line into a dictionary.
func parseJSON(_ line: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    guard let dictionary = object as? [String: Any] else { throw CocoaError(.coderReadCorrupt) }
    return dictionary
}

func record(
    _ message: String, level: Logger.Level = .info, label: String = "deerflow.test", metadata: Logger.Metadata = [:],
    at time: String = "2024-06-01T12:00:00.123Z"
) -> LogRecord {
    LogRecord(timestamp: Timestamp.parse(time)!, level: level, label: label, message: message, metadata: metadata)
}
