import Foundation
public import Logging
import Synchronization

/// Writes lines to standard output, each line whole (lines from concurrent threads never mix).
///
/// Lines are written as they come, so what a terminal or `docker logs` shows is never behind.
/// A failed write (a closed pipe, a full disk behind a redirect) is reported once to standard error
/// and the lines are counted as dropped; logging goes on.
///
/// ```swift
/// let console = ConsoleSink(level: .info, format: .text)
/// ```
public final class ConsoleSink: LogSink {
    public let name: String
    public let level: Logger.Level?
    public let format: LogFormat
    private let fileDescriptor: Int32
    private let onDropped: DroppedLinesHandler
    private let report: @Sendable (String) -> Void
    /// Dropped lines in total, and whether the current failure has been reported.
    private let state = Mutex<(dropped: Int, failing: Bool)>((0, false))

    /// - Parameters:
    ///   - level: Minimum level; nil (the default) takes every record the logger lets through.
    ///   - format: Line format. Default json.
    ///   - onDropped: Called with `("console", n)` when lines could not be written.
    public convenience init(level: Logger.Level? = nil, format: LogFormat = .json, onDropped: @escaping DroppedLinesHandler = { _, _ in }) {
        self.init(name: "console", fileDescriptor: 1, level: level, format: format, onDropped: onDropped, report: FileDescriptorIO.standardError)
    }

    /// A console sink writing to any open file descriptor (tests use a file).
    init(
        name: String, fileDescriptor: Int32, level: Logger.Level?, format: LogFormat,
        onDropped: @escaping DroppedLinesHandler, report: @escaping @Sendable (String) -> Void
    ) {
        self.name = name
        self.fileDescriptor = fileDescriptor
        self.level = level
        self.format = format
        self.onDropped = onDropped
        self.report = report
    }

    /// Lines that could not be written since the sink was made.
    public var droppedLines: Int { state.withLock { $0.dropped } }

    public func write(_ line: String, record: LogRecord) {
        var line = line
        line.append("\n")
        let failure: (code: Int32, first: Bool)? = state.withLock { state in
            let code = line.withUTF8 { FileDescriptorIO.writeAll(fileDescriptor, UnsafeRawBufferPointer($0)) }
            guard let code else {
                state.failing = false
                return nil
            }
            state.dropped += 1
            let first = !state.failing
            state.failing = true
            return (code, first)
        }
        guard let failure else { return }
        if failure.first {
            report("deerflow: cannot write log lines to \(name): \(FileDescriptorIO.describe(failure.code)); dropping them (counted in deerflow_log_lines_dropped_total)")
        }
        onDropped(name, 1)
    }

    public func flush() {}

    public func close() {}
}
