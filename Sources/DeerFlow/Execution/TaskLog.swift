import DeerFlowCore
import Foundation
import Logging
import Synchronization

/// What one attempt wrote: its log lines and a shell task's output, kept up to a size limit
/// (a marker line says how much was dropped) until flushed to the store.
///
/// With secret values, text is redacted a line at a time before it is kept, so a value split
/// across two writes is still found: a partial line waits for its end (or for the final drain;
/// past 8 KiB without a newline, all but its last characters move on).
final class TaskLog: Sendable {
    private let limit: Int
    private let secrets: SecretValues
    private struct State {
        var text = ""
        var bytes = 0
        var dropped = 0
        /// The end of everything kept, across flushes, for error messages.
        var tail: Substring = ""
        /// A line not yet ended (only with secrets).
        var partial = ""
    }
    private let state = Mutex(State())

    init(limit: Int, secrets: SecretValues = SecretValues([String]())) {
        self.limit = limit
        self.secrets = secrets
    }

    func append(_ text: String) {
        state.withLock { state in
            guard !secrets.isEmpty else { return Self.keep(text, in: &state, limit: limit) }
            state.partial += text
            if let newline = state.partial.lastIndex(of: "\n") {
                let complete = state.partial[...newline]
                state.partial = String(state.partial[state.partial.index(after: newline)...])
                Self.keep(secrets.redact(String(complete)), in: &state, limit: limit)
            }
            if state.partial.utf8.count > 8192 {
                // A value may straddle the cut: its last characters stay behind.
                let cut = state.partial.index(state.partial.endIndex, offsetBy: -max(0, secrets.longest - 1))
                let head = String(state.partial[..<cut])
                state.partial = String(state.partial[cut...])
                Self.keep(secrets.redact(head), in: &state, limit: limit)
            }
        }
    }

    private static func keep(_ text: String, in state: inout State, limit: Int) {
        state.tail = (state.tail + text).suffix(4096)
        let size = text.utf8.count
        if state.bytes + size <= limit {
            state.text += text
            state.bytes += size
        } else {
            state.dropped += size
        }
    }

    /// The collected text (with a truncation marker), or nil when nothing was written; clears it.
    /// - Parameter final: the attempt is over: a line not yet ended is included.
    func drain(final: Bool = false) -> String? {
        state.withLock { state in
            if final, !state.partial.isEmpty {
                Self.keep(secrets.redact(state.partial), in: &state, limit: limit)
                state.partial = ""
            }
            guard state.bytes > 0 || state.dropped > 0 else { return nil }
            var text = state.text
            if state.dropped > 0 {
                if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                text += "[deerflow] log truncated: \(state.dropped) more bytes dropped (limit \(limit) bytes per attempt)\n"
            }
            state.text = ""
            state.bytes = 0
            state.dropped = 0
            return text
        }
    }

    /// `text` with the attempt's secret values masked.
    func redact(_ text: String) -> String {
        secrets.redact(text)
    }

    /// Puts back text taken by ``drain()`` that could not be stored, ahead of anything written since.
    func restore(_ text: String) {
        state.withLock { state in
            state.text = text + state.text
            state.bytes += text.utf8.count
        }
    }

    /// The last non-empty line written (also when already flushed), redacted, for error messages.
    var lastLine: String? {
        state.withLock { state in
            let text = state.partial.isEmpty ? state.tail : Substring(String(state.tail) + secrets.redact(state.partial))
            return text.split(whereSeparator: \.isNewline).last { !$0.allSatisfy(\.isWhitespace) }.map { String($0.prefix(300)) }
        }
    }
}

/// Sends a task's log records both to the process's log handler and to the attempt's task log.
struct TaskLogHandler: LogHandler {
    var primary: any LogHandler
    let log: TaskLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level {
        get { primary.logLevel }
        set { primary.logLevel = newValue }
    }
    var metadataProvider: Logger.MetadataProvider? {
        get { primary.metadataProvider }
        set { primary.metadataProvider = newValue }
    }

    let secrets: SecretValues

    init(primary: any LogHandler, log: TaskLog, secrets: SecretValues) {
        self.primary = primary
        self.log = log
        self.secrets = secrets
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var forwarded = event
        if !secrets.isEmpty {
            // Task code may log a secret parameter: the process log must not show it either.
            forwarded.message = "\(secrets.redact(event.message.description))"
            merged = merged.mapValues { .string(secrets.redact("\($0)")) }
        }
        forwarded.metadata = merged
        primary.log(event: forwarded)
        let taskKeys: Set<String> = ["workflow", "workflow_id", "run_id", "task_id", "execution_id", "attempt"]
        let extras = (event.metadata ?? [:]).filter { !taskKeys.contains($0.key) }.sorted { $0.key < $1.key }
        var line = "\(Timestamp.rfc3339(Date())) \(event.level.rawValue.uppercased()) \(event.message)"
        for (key, value) in extras { line += " \(key)=\(value)" }
        log.append(line + "\n")
    }
}
