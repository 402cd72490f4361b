import Logging
import Synchronization
import Tracing
import InMemoryTracing

/// Keeps the lines logged through its `logger` from `level` up, each with the trace id of the
/// context it was logged in (what a tracing metadata provider adds as `trace_id`).
final class LogRecorder: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
        /// The in-memory tracer's trace id of `ServiceContext.current`; nil outside any trace.
        var traceID: String?
    }

    private let lines = Mutex<[Line]>([])
    let level: Logger.Level

    /// - Parameter level: the lowest level kept; default warning (the engine's warnings and errors,
    ///   for a failing test to show).
    init(level: Logger.Level = .warning) {
        self.level = level
    }

    var logger: Logger {
        Logger(label: "deerflow.test") { _ in Handler(recorder: self, logLevel: self.level) }
    }

    /// Every line as `level: message metadata`.
    var messages: [String] { lines.withLock { $0.map { "\($0.level): \($0.message) \($0.metadata)" } } }

    /// The trace ids of the lines with this message.
    func traceIDs(of message: String) -> [String?] {
        lines.withLock { $0.filter { $0.message == message }.map(\.traceID) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var logLevel: Logger.Level
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let line = Line(
                level: event.level, message: event.message.description, metadata: event.metadata ?? [:],
                traceID: ServiceContext.current?.inMemorySpanContext?.traceID)
            recorder.lines.withLock { $0.append(line) }
        }
    }
}
