import Logging
import Synchronization

/// Where a shell task's output lines go besides its task log: the process's log handlers
/// (console, file, Elasticsearch), so they can be searched with every other log line.
public struct TaskOutputLogging: Sendable {
    /// Lines of one attempt logged at most; the rest stay in the task log only and are counted.
    public var maxLinesPerAttempt: Int
    /// Told how many lines of an attempt were over the budget (at its end).
    public var onDropped: @Sendable (Int) -> Void

    public init(maxLinesPerAttempt: Int = 10_000, onDropped: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.maxLinesPerAttempt = maxLinesPerAttempt
        self.onDropped = onDropped
    }
}

/// Splits one attempt's output into lines, per stream, and logs each as a record carrying the
/// task's ids (`workflow`, `run_id`, `task_id`, `execution_id`, `attempt`, `trace_id`, ...),
/// `stream` and the line as its message, redacted of the attempt's secret values (the handlers
/// apply the key filters of `logging.yaml` too).
final class TaskOutputForwarder: Sendable {
    private let logger: Logger
    private let secrets: SecretValues
    private let settings: TaskOutputLogging
    private struct State {
        var partial: [ChildProcess.Stream: String] = [:]
        var logged = 0
        var dropped = 0
    }
    private let state = Mutex(State())
    /// A line longer than this is logged in pieces rather than held.
    static let longestLine = 16_384

    /// - Parameter logger: carries the attempt's ids as metadata.
    init(logger: Logger, secrets: SecretValues, settings: TaskOutputLogging) {
        self.logger = logger
        self.secrets = secrets
        self.settings = settings
    }

    func append(_ stream: ChildProcess.Stream, _ text: String) {
        let lines = state.withLock { state -> [String] in
            let newline = UInt8(ascii: "\n")
            if state.logged >= settings.maxLinesPerAttempt {
                // Over the budget: only count what ends, without building lines.
                state.dropped += text.utf8.reduce(0) { $0 + ($1 == newline ? 1 : 0) }
                return []
            }
            // Split on the bytes (a "\r\n" is one Character, and a search from the start of
            // the remainder for each line would copy it each time).
            let pending = (state.partial[stream] ?? "") + text
            let bytes = pending.utf8
            var complete: [String] = []
            var start = bytes.startIndex
            while let end = bytes[start...].firstIndex(of: newline) {
                complete.append(String(decoding: bytes[start..<end], as: UTF8.self))
                start = bytes.index(after: end)
            }
            var rest = String(decoding: bytes[start...], as: UTF8.self)
            if rest.utf8.count > Self.longestLine {
                complete.append(rest)
                rest = ""
            }
            state.partial[stream] = rest
            return admit(complete, in: &state)
        }
        emit(lines, stream: stream)
    }

    /// Logs the lines not yet ended and reports what was over the budget.
    func finish() {
        let (byStream, dropped) = state.withLock { state -> ([(ChildProcess.Stream, [String])], Int) in
            var byStream: [(ChildProcess.Stream, [String])] = []
            for stream in [ChildProcess.Stream.stdout, .stderr] {
                if let partial = state.partial[stream], !partial.isEmpty { byStream.append((stream, admit([partial], in: &state))) }
            }
            state.partial = [:]
            defer { state.dropped = 0 }
            return (byStream, state.dropped)
        }
        for (stream, lines) in byStream { emit(lines, stream: stream) }
        if dropped > 0 {
            logger.warning(
                "task output over the budget of \(settings.maxLinesPerAttempt) lines per attempt: \(dropped) more lines are in the task log only",
                metadata: ["dropped_lines": "\(dropped)"])
            settings.onDropped(dropped)
        }
    }

    private func admit(_ lines: [String], in state: inout State) -> [String] {
        let room = max(0, settings.maxLinesPerAttempt - state.logged)
        let admitted = lines.prefix(room)
        state.logged += admitted.count
        state.dropped += lines.count - admitted.count
        return Array(admitted)
    }

    private func emit(_ lines: [String], stream: ChildProcess.Stream) {
        for line in lines {
            let text = line.hasSuffix("\r") ? String(line.dropLast()) : line
            logger.info("\(secrets.redact(text))", metadata: ["stream": .string(stream.rawValue)])
        }
    }
}
