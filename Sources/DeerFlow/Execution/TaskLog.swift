import DeerFlowCore
import Foundation
import Logging
import Synchronization

/// What one attempt wrote: its log lines and a shell task's output, kept up to a size limit
/// (a marker line says how much was dropped) until flushed to the store.
final class TaskLog: Sendable {
    private let limit: Int
    /// `tail`: the end of everything written, kept across flushes, for error messages.
    private let state = Mutex<(text: String, bytes: Int, dropped: Int, tail: Substring)>(("", 0, 0, ""))

    init(limit: Int) {
        self.limit = limit
    }

    func append(_ text: String) {
        state.withLock { state in
            state.tail = (state.tail + text).suffix(4096)
            let size = text.utf8.count
            if state.bytes + size <= limit {
                state.text += text
                state.bytes += size
            } else {
                state.dropped += size
            }
        }
    }

    /// The collected text (with a truncation marker), or nil when nothing was written; clears it.
    func drain() -> String? {
        state.withLock { state in
            guard state.bytes > 0 || state.dropped > 0 else { return nil }
            var text = state.text
            if state.dropped > 0 {
                if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                text += "[deerflow] log truncated: \(state.dropped) more bytes dropped (limit \(limit) bytes per attempt)\n"
            }
            state = ("", 0, 0, state.tail)
            return text
        }
    }

    /// Puts back text taken by ``drain()`` that could not be stored, ahead of anything written since.
    func restore(_ text: String) {
        state.withLock { state in
            state.text = text + state.text
            state.bytes += text.utf8.count
        }
    }

    /// The last non-empty line written (also when already flushed), for error messages.
    var lastLine: String? {
        state.withLock { state in
            state.tail.split(whereSeparator: \.isNewline).last { !$0.allSatisfy(\.isWhitespace) }.map { String($0.prefix(300)) }
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

    init(primary: any LogHandler, log: TaskLog) {
        self.primary = primary
        self.log = log
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var forwarded = event
        forwarded.metadata = merged
        primary.log(event: forwarded)
        let taskKeys: Set<String> = ["workflow", "workflow_id", "run_id", "task_id", "execution_id", "attempt"]
        let extras = (event.metadata ?? [:]).filter { !taskKeys.contains($0.key) }.sorted { $0.key < $1.key }
        var line = "\(Timestamp.rfc3339(Date())) \(event.level.rawValue.uppercased()) \(event.message)"
        for (key, value) in extras { line += " \(key)=\(value)" }
        log.append(line + "\n")
    }
}
