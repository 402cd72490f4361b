import DeerFlowCore
public import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes lines to a file, buffered, rotated daily or by size, with old files deleted.
///
/// - The active file is the configured path (`app.log`); its directory is created.
/// - `rotation: daily`: at the first write after midnight UTC the file becomes `app-2024-06-01.log`
///   (the day its lines were written). A file left by an earlier process on an earlier day is rotated
///   when the sink opens it.
/// - `rotation: size`: when a line would take the file past `maxBytes`, it becomes
///   `app-2024-06-01T12-00-00.123Z.log` (the time of rotation).
/// - A name already taken gets `.1`, `.2`... before the extension.
/// - Retention, at every opening and rotation: rotated files (recognised by their names; other files
///   are never touched) whose newest line is older than `retention` are deleted (a daily file's
///   newest line is at the end of its day, a size-rotated file's at its time stamp), then all but the
///   `maxFiles` newest.
/// - Lines are buffered up to `bufferSize` bytes and written when the buffer is full, when a record
///   of level error or above arrives, when the oldest buffered line is a second old at the next write,
///   on ``flush()`` (``LoggingBackend/run(flushInterval:)`` calls it every second) and on ``close()``.
/// - A failure (directory cannot be created, file cannot be opened or written) is reported once to
///   standard error; lines are dropped and counted (``droppedLines``, `onDropped`) until the file can
///   be opened again, which is tried at most every 5 seconds; recovery is reported too. Nothing crashes.
///
/// ```swift
/// let sink = FileSink(path: "/var/log/deerflow/app.log", rotation: .daily, retention: .seconds(30 * 86400))
/// ```
public final class FileSink: LogSink {
    public let name: String
    public let level: Logger.Level?
    public let format: LogFormat
    /// Path of the active file.
    public let path: String
    public let rotation: LoggingConfigFile.File.Rotation
    public let retention: Duration?
    public let maxFiles: Int?
    let bufferSize: Int
    let maxBufferAge: TimeInterval = 1
    let retryInterval: TimeInterval = 5
    private let clock: @Sendable () -> Date
    private let onDropped: DroppedLinesHandler
    private let report: @Sendable (String) -> Void
    private let directory: String
    private let stem: String
    private let fileExtension: String
    private let state = Mutex(State())

    struct State {
        var fd: Int32 = -1
        var buffer: [UInt8] = []
        var bufferedLines = 0
        /// Size of the active file including buffered bytes.
        var fileSize = 0
        /// UTC day number of the active file's lines, for daily rotation.
        var day = 0
        var lastFlush = Date.distantPast
        /// A failure was reported and the sink has not recovered yet.
        var failing = false
        var nextOpenAttempt: Date?
        var dropped = 0
        var droppedWhileFailing = 0
    }

    /// What to tell after the lock is released.
    private struct Outcome {
        var dropped = 0
        var messages: [String] = []
    }

    /// - Parameters:
    ///   - path: The active file (`/var/log/deerflow/app.log`).
    ///   - rotation: `.daily` (the default) or `.size(maxBytes:)`.
    ///   - retention: Rotated files older than this are deleted; nil keeps them. Default 30 days.
    ///   - maxFiles: Keep at most this many rotated files; nil (the default): no limit.
    ///   - level: Minimum level; nil (the default) takes every record the logger lets through.
    ///   - format: Line format. Default json.
    ///   - name: Name in reports and in `onDropped`. Default `file`.
    ///   - bufferSize: Bytes buffered before a write. Default 64 KiB.
    ///   - clock: The current time, for rotation and retention; tests inject one.
    ///   - onDropped: Called with `(name, n)` when `n` lines could not be written.
    public convenience init(
        path: String,
        rotation: LoggingConfigFile.File.Rotation = .daily,
        retention: Duration? = .seconds(30 * 86400),
        maxFiles: Int? = nil,
        level: Logger.Level? = nil,
        format: LogFormat = .json,
        name: String = "file",
        bufferSize: Int = 64 * 1024,
        clock: @escaping @Sendable () -> Date = { Date() },
        onDropped: @escaping DroppedLinesHandler = { _, _ in }
    ) {
        self.init(
            path: path, rotation: rotation, retention: retention, maxFiles: maxFiles, level: level, format: format, name: name,
            bufferSize: bufferSize, clock: clock, onDropped: onDropped, report: FileDescriptorIO.standardError)
    }

    /// The sink of a `handlers.file` section; `defaultFormat` is the file's `format`.
    public convenience init(
        configuration: LoggingConfigFile.File, defaultFormat: LogFormat, clock: @escaping @Sendable () -> Date = { Date() },
        onDropped: @escaping DroppedLinesHandler = { _, _ in }
    ) {
        self.init(
            path: configuration.path, rotation: configuration.rotation, retention: configuration.retention, maxFiles: configuration.maxFiles,
            level: configuration.level, format: configuration.format ?? defaultFormat, clock: clock, onDropped: onDropped)
    }

    init(
        path: String, rotation: LoggingConfigFile.File.Rotation, retention: Duration?, maxFiles: Int?, level: Logger.Level?,
        format: LogFormat, name: String, bufferSize: Int, clock: @escaping @Sendable () -> Date,
        onDropped: @escaping DroppedLinesHandler, report: @escaping @Sendable (String) -> Void
    ) {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        self.path = absolute
        self.rotation = rotation
        self.retention = retention
        self.maxFiles = maxFiles
        self.level = level
        self.format = format
        self.name = name
        self.bufferSize = max(0, bufferSize)
        self.clock = clock
        self.onDropped = onDropped
        self.report = report
        directory = (absolute as NSString).deletingLastPathComponent
        let fileName = (absolute as NSString).lastPathComponent
        let ext = (fileName as NSString).pathExtension
        fileExtension = ext.isEmpty ? "" : "." + ext
        stem = ext.isEmpty ? fileName : String(fileName.dropLast(ext.count + 1))
    }

    deinit {
        close()
    }

    /// Lines that could not be written since the sink was made.
    public var droppedLines: Int { state.withLock { $0.dropped } }

    public func write(_ line: String, record: LogRecord) {
        var line = line
        let outcome = state.withLock { state -> Outcome in
            var outcome = Outcome()
            let now = clock()
            guard open(&state, now: now, outcome: &outcome) else {
                drop(1, &state, &outcome)
                return outcome
            }
            let size = line.utf8.count + 1
            rotateIfNeeded(&state, now: now, incoming: size, outcome: &outcome)
            guard state.fd >= 0 else {
                drop(1, &state, &outcome)
                return outcome
            }
            if state.buffer.isEmpty { state.lastFlush = now }
            line.withUTF8 { state.buffer.append(contentsOf: $0) }
            state.buffer.append(ASCII.newline)
            state.bufferedLines += 1
            state.fileSize += size
            if state.buffer.count >= bufferSize || record.level >= .error || now.timeIntervalSince(state.lastFlush) >= maxBufferAge {
                flush(&state, now: now, outcome: &outcome)
            }
            return outcome
        }
        deliver(outcome)
    }

    public func flush() {
        let outcome = state.withLock { state -> Outcome in
            var outcome = Outcome()
            flush(&state, now: clock(), outcome: &outcome)
            return outcome
        }
        deliver(outcome)
    }

    public func close() {
        let outcome = state.withLock { state -> Outcome in
            var outcome = Outcome()
            flush(&state, now: clock(), outcome: &outcome)
            if state.fd >= 0 {
                _ = systemClose(state.fd)
                state.fd = -1
            }
            return outcome
        }
        deliver(outcome)
    }

    // MARK: Under the lock

    /// Opens the active file unless it is open; false when it cannot be (yet).
    private func open(_ state: inout State, now: Date, outcome: inout Outcome) -> Bool {
        if state.fd >= 0 { return true }
        if let next = state.nextOpenAttempt, now < next { return false }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            fail("cannot create directory '\(directory)': \(Self.reason(of: error))", &state, now: now, outcome: &outcome)
            return false
        }
        let today = Self.day(of: now)
        if case .daily = rotation, let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           let size = attributes[.size] as? NSNumber, size.intValue > 0,
           let modified = attributes[.modificationDate] as? Date, Self.day(of: modified) < today
        {
            // Left by an earlier process on an earlier day.
            moveActiveFile(to: Self.dayStamp(Self.day(of: modified)), outcome: &outcome)
        }
        let fd = systemOpen(path)
        guard fd >= 0 else {
            fail("cannot open: \(FileDescriptorIO.describe(errno))", &state, now: now, outcome: &outcome)
            return false
        }
        var status = stat()
        state.fileSize = fstat(fd, &status) == 0 ? Int(status.st_size) : 0
        state.fd = fd
        state.day = today
        state.nextOpenAttempt = nil
        applyRetention(now: now)
        return true
    }

    private func rotateIfNeeded(_ state: inout State, now: Date, incoming: Int, outcome: inout Outcome) {
        let stamp: String
        switch rotation {
        case .daily:
            guard Self.day(of: now) > state.day else { return }
            stamp = Self.dayStamp(state.day)
        case .size(let maxBytes):
            guard state.fileSize > 0, state.fileSize + incoming > maxBytes else { return }
            stamp = Self.timeStamp(now)
        }
        flush(&state, now: now, outcome: &outcome)
        if state.fd >= 0 {
            _ = systemClose(state.fd)
            state.fd = -1
        }
        moveActiveFile(to: stamp, outcome: &outcome)
        _ = open(&state, now: now, outcome: &outcome)
    }

    /// Renames the active file to `<stem>-<stamp><ext>`, or `<stem>-<stamp>.N<ext>` if that is taken.
    private func moveActiveFile(to stamp: String, outcome: inout Outcome) {
        var target = "\(directory)/\(stem)-\(stamp)\(fileExtension)"
        var sequence = 1
        while FileManager.default.fileExists(atPath: target) {
            target = "\(directory)/\(stem)-\(stamp).\(sequence)\(fileExtension)"
            sequence += 1
        }
        if rename(path, target) != 0, errno != ENOENT {
            outcome.messages.append("deerflow: cannot rotate log file '\(path)' to '\(target)': \(FileDescriptorIO.describe(errno)); appending to it")
        }
    }

    private func flush(_ state: inout State, now: Date, outcome: inout Outcome) {
        defer {
            state.buffer.removeAll(keepingCapacity: true)
            state.bufferedLines = 0
            state.lastFlush = now
        }
        guard !state.buffer.isEmpty else { return }
        guard state.fd >= 0 else {
            drop(state.bufferedLines, &state, &outcome)
            return
        }
        if let code = FileDescriptorIO.writeAll(state.fd, state.buffer) {
            drop(state.bufferedLines, &state, &outcome)
            fail("cannot write: \(FileDescriptorIO.describe(code))", &state, now: now, outcome: &outcome)
        } else if state.failing {
            // Recovered: said once, when lines reach the file again.
            state.failing = false
            outcome.messages.append("deerflow: writing log file '\(path)' again; \(state.droppedWhileFailing) lines were dropped")
            state.droppedWhileFailing = 0
        }
    }

    private func fail(_ reason: String, _ state: inout State, now: Date, outcome: inout Outcome) {
        if state.fd >= 0 {
            _ = systemClose(state.fd)
            state.fd = -1
        }
        state.nextOpenAttempt = now.addingTimeInterval(retryInterval)
        guard !state.failing else { return }
        state.failing = true
        outcome.messages.append(
            "deerflow: log file '\(path)': \(reason); dropping log lines until it can be written (counted in deerflow_log_lines_dropped_total)")
    }

    private func drop(_ count: Int, _ state: inout State, _ outcome: inout Outcome) {
        guard count > 0 else { return }
        state.dropped += count
        state.droppedWhileFailing += count
        outcome.dropped += count
    }

    private func deliver(_ outcome: Outcome) {
        for message in outcome.messages { report(message) }
        if outcome.dropped > 0 { onDropped(name, outcome.dropped) }
    }

    // MARK: Retention

    /// A rotated file of this sink, found by its name.
    struct RotatedFile: Equatable {
        var name: String
        /// When its newest line can have been written.
        var end: Date
        var sequence: Int
    }

    /// Deletes rotated files past `retention`, then all but the `maxFiles` newest.
    func applyRetention(now: Date) {
        guard retention != nil || maxFiles != nil else { return }
        var files = rotatedFiles()
        if let retention {
            let limit = now.addingTimeInterval(-retention.seconds)
            for file in files where file.end < limit { remove(file) }
            files.removeAll { $0.end < limit }
        }
        if let maxFiles, files.count > maxFiles {
            files.sort { ($0.end, $0.sequence) > ($1.end, $1.sequence) }
            for file in files[maxFiles...] { remove(file) }
        }
    }

    private func remove(_ file: RotatedFile) {
        try? FileManager.default.removeItem(atPath: "\(directory)/\(file.name)")
    }

    /// The rotated files of this sink in its directory.
    func rotatedFiles() -> [RotatedFile] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let prefix = stem + "-"
        return names.compactMap { name in
            guard name.hasPrefix(prefix), name.hasSuffix(fileExtension), name.count > prefix.count + fileExtension.count else { return nil }
            let middle = name.dropFirst(prefix.count).dropLast(fileExtension.count)
            return Self.parseStamp(middle).map { RotatedFile(name: name, end: $0.end, sequence: $0.sequence) }
        }
    }

    /// `2024-06-01` (end: the next midnight) or `2024-06-01T12-00-00.123Z` (end: that time), each
    /// optionally followed by `.N`.
    static func parseStamp(_ text: Substring) -> (end: Date, sequence: Int)? {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                let digit = bytes[index] &- 0x30
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
            }
            return value
        }
        guard bytes.count >= 10, bytes[4] == 0x2D, bytes[7] == 0x2D,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        var end: TimeInterval
        var rest: ArraySlice<UInt8>
        if bytes.count >= 24, bytes[10] == 0x54 { // T
            guard bytes[13] == 0x2D, bytes[16] == 0x2D, bytes[19] == 0x2E, bytes[23] == 0x5A,
                  let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19), let millisecond = number(20..<23)
            else { return nil }
            end = TimeInterval(days * 86400 + hour * 3600 + minute * 60 + second) + TimeInterval(millisecond) / 1000
            rest = bytes[24...]
        } else {
            end = TimeInterval((days + 1) * 86400)
            rest = bytes[10...]
        }
        var sequence = 0
        if !rest.isEmpty {
            guard rest.first == 0x2E, rest.count > 1, let value = Int(String(decoding: rest.dropFirst(), as: UTF8.self)), value > 0 else { return nil }
            sequence = value
        }
        return (Date(timeIntervalSince1970: end), sequence)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    /// UTC day number of a date.
    static func day(of date: Date) -> Int {
        Int((date.timeIntervalSince1970 / 86400).rounded(.down))
    }

    /// `2024-06-01` for a UTC day number.
    static func dayStamp(_ day: Int) -> String {
        String(Timestamp.rfc3339(Date(timeIntervalSince1970: TimeInterval(day) * 86400)).prefix(10))
    }

    /// `2024-06-01T12-00-00.123Z`: RFC 3339 without colons, which some file systems refuse.
    static func timeStamp(_ date: Date) -> String {
        Timestamp.rfc3339(date).replacingOccurrences(of: ":", with: "-")
    }

    private static func reason(of error: any Error) -> String {
        if let cocoa = error as? CocoaError, let underlying = cocoa.userInfo[NSUnderlyingErrorKey] as? NSError,
           underlying.domain == NSPOSIXErrorDomain
        {
            return FileDescriptorIO.describe(Int32(underlying.code))
        }
        return (error as NSError).localizedDescription
    }

    private func systemOpen(_ path: String) -> Int32 {
        #if canImport(Darwin)
        return Darwin.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        #elseif canImport(Glibc)
        return Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        #else
        return Musl.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        #endif
    }

    private func systemClose(_ fd: Int32) -> Int32 {
        #if canImport(Darwin)
        return Darwin.close(fd)
        #elseif canImport(Glibc)
        return Glibc.close(fd)
        #else
        return Musl.close(fd)
        #endif
    }
}
