public import Logging

/// A destination for log lines: the console, a file, a log shipper.
///
/// The handler redacts each record once, formats it once per format the sinks ask for, and calls
/// ``write(_:record:)`` on every sink whose ``level`` lets the record through. `write` is called
/// from any thread, concurrently, and must not block for long: a sink that sends lines over the
/// network (an Elasticsearch `_bulk` shipper) appends them to a bounded buffer here and sends them
/// from its own service, counting the lines it has to drop.
///
/// ```swift
/// final class MemorySink: LogSink {
///     let name = "memory"
///     let level: Logger.Level? = nil
///     let format = LogFormat.json
///     let lines = Mutex<[String]>([])
///     func write(_ line: String, record: LogRecord) { lines.withLock { $0.append(line) } }
///     func flush() {}
///     func close() {}
/// }
/// ```
public protocol LogSink: AnyObject, Sendable {
    /// Name used in error reports and in the dropped-lines callback (`console`, `file`, `elasticsearch`).
    var name: String { get }
    /// Minimum level of records this sink takes; nil takes every record the logger lets through.
    var level: Logger.Level? { get }
    /// The format of the lines passed to ``write(_:record:)``.
    var format: LogFormat { get }
    /// Takes one record: `line` is the record in ``format``, without a trailing newline.
    func write(_ line: String, record: LogRecord)
    /// Writes out what is buffered. Called periodically and at shutdown.
    func flush()
    /// Flushes and releases files or connections; a sink may reopen them when written to again.
    func close()
}

/// Called when a sink drops lines it cannot write: the sink's name and how many lines this time
/// (add them up for a `deerflow_log_lines_dropped_total` counter).
public typealias DroppedLinesHandler = @Sendable (_ sink: String, _ count: Int) -> Void
