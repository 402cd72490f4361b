public import Foundation
public import Logging
import DeerFlowCore

/// DeerFlow's logging backend: redacts every record once, formats it once per format in use and
/// hands it to the sinks (console, file, and any sink added, such as an Elasticsearch shipper).
///
/// ```swift
/// let config = try LoggingConfigFile.load(path: "config/logging.yaml", environment: ProcessInfo.processInfo.environment)
/// let backend = try LoggingBackend(configuration: config, onDropped: { sink, count in dropped.increment(by: count) })
/// LoggingSystem.bootstrap(backend.makeHandler)
/// // in a Service: await backend.run()   (flushes every second, flushes and closes when cancelled)
/// ```
public final class LoggingBackend: Sendable {
    /// Root level: the level of every handler made (raised to the lowest level any sink takes).
    public let level: Logger.Level
    public let redactor: Redactor
    public let sinks: [any LogSink]
    private let clock: @Sendable () -> Date

    /// - Parameters:
    ///   - level: Root level. Default info.
    ///   - redactor: Applied to every record before any sink sees it. Default: URL passwords only.
    ///   - sinks: Where lines go.
    ///   - clock: Time stamps of records. Default the system clock.
    public init(
        level: Logger.Level = .info, redactor: Redactor = .urlCredentialsOnly, sinks: [any LogSink],
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        let lowestSinkLevel = sinks.map { $0.level ?? .trace }.min() ?? level
        self.level = max(level, lowestSinkLevel)
        self.redactor = redactor
        self.sinks = sinks
        self.clock = clock
    }

    /// The backend a `logging.yaml` describes: its console and file handlers, plus `extraSinks`
    /// (the Elasticsearch handler is not made here: pass its sink in `extraSinks`).
    ///
    /// - Parameters:
    ///   - configuration: The parsed file.
    ///   - extraSinks: Further sinks.
    ///   - onDropped: Called with a sink's name and a number of lines it could not write.
    /// - Throws: ``Redactor/PatternError`` for a pattern that does not compile (a parsed file has none).
    public convenience init(
        configuration: LoggingConfigFile, extraSinks: [any LogSink] = [], onDropped: @escaping DroppedLinesHandler = { _, _ in }
    ) throws(Redactor.PatternError) {
        var sinks: [any LogSink] = []
        if let console = configuration.console, console.enabled {
            sinks.append(ConsoleSink(level: console.level, format: console.format ?? configuration.format, onDropped: onDropped))
        }
        if let file = configuration.file, file.enabled {
            sinks.append(FileSink(configuration: file, defaultFormat: configuration.format, onDropped: onDropped))
        }
        self.init(
            level: configuration.level, redactor: try Redactor(patterns: configuration.redactionPatterns), sinks: sinks + extraSinks)
    }

    /// A handler for `LoggingSystem.bootstrap(backend.makeHandler)`.
    public func makeHandler(label: String) -> DeerFlowLogHandler {
        DeerFlowLogHandler(label: label, backend: self, metadataProvider: LoggingSystem.metadataProvider)
    }

    /// A handler for `LoggingSystem.bootstrap(backend.makeHandler, metadataProvider: provider)`.
    public func makeHandler(label: String, metadataProvider: Logger.MetadataProvider?) -> DeerFlowLogHandler {
        DeerFlowLogHandler(label: label, backend: self, metadataProvider: metadataProvider)
    }

    /// Writes out what every sink buffers.
    public func flush() {
        for sink in sinks { sink.flush() }
    }

    /// Flushes and closes every sink.
    public func shutdown() {
        for sink in sinks { sink.close() }
    }

    /// Flushes every `flushInterval` until the task is cancelled, then shuts down: the body of the
    /// logging service, which goes first in the service group so that it stops last.
    public func run(flushInterval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            do {
                try await Sleep.for(flushInterval)
            } catch {
                break
            }
            flush()
        }
        shutdown()
    }

    /// A logger's own metadata, ordered and (unless a value is `.stringConvertible`, whose text may
    /// change) redacted once when it is set rather than at every statement.
    struct PreparedFields: Sendable {
        var fields: [LogRecord.Field]
        /// Redact at every statement: some value is `.stringConvertible`.
        var dynamic: Bool
        /// The fields as JSON (`,"key":value` each), unless dynamic.
        var json: [UInt8]?

        static let empty = PreparedFields(fields: [], dynamic: false, json: [])
    }

    func prepare(_ metadata: Logger.Metadata) -> PreparedFields {
        var fields = metadata.map { LogRecord.Field(key: $0.key, value: $0.value) }
        LogRecord.order(&fields)
        let dynamic = fields.contains { Self.isDynamic($0.value) }
        guard !dynamic else { return PreparedFields(fields: fields, dynamic: true, json: nil) }
        redactor.redact(&fields)
        var writer = LineWriter(capacity: fields.count * 40)
        for field in fields { writer.jsonField(field) }
        return PreparedFields(fields: fields, dynamic: false, json: writer.bytes)
    }

    private static func isDynamic(_ value: Logger.MetadataValue) -> Bool {
        switch value {
        case .string: return false
        case .stringConvertible: return true
        case .array(let values): return values.contains(where: isDynamic)
        case .dictionary(let values): return values.values.contains(where: isDynamic)
        }
    }

    /// Redacts, formats and writes one record.
    ///
    /// - Parameters:
    ///   - base: The logger's metadata.
    ///   - extra: The metadata provider's and the statement's, the statement's last (it wins).
    func emit(label: String, level: Logger.Level, message: String, base: PreparedFields, extra: consuming [LogRecord.Field]) {
        // Consumed, so that sorting and redacting in place do not copy the handler's array.
        LogRecord.order(&extra)
        redactor.redact(&extra)
        var baseFields = base.fields
        if base.dynamic { redactor.redact(&baseFields) }
        let record: LogRecord
        if let last = baseFields.last, let first = extra.first, !last.precedes(first) {
            // Keys interleave or repeat: one merged list.
            record = LogRecord(
                timestamp: clock(), level: level, label: label, message: redactor.redact(message),
                orderedFields: LogRecord.merge(baseFields, overriding: extra))
        } else {
            // The usual case: the logger's task keys, then the statement's own keys.
            record = LogRecord(
                timestamp: clock(), level: level, label: label, message: redactor.redact(message),
                orderedFields: baseFields, trailingFields: extra, leadingJSON: base.json)
        }
        var json: String?
        var text: String?
        for sink in sinks {
            if let minimum = sink.level, level < minimum { continue }
            let line: String
            switch sink.format {
            case .json:
                line = json ?? LogLineFormatter.json(record)
                json = line
            case .text:
                line = text ?? LogLineFormatter.text(record)
                text = line
            }
            sink.write(line, record: record)
        }
    }
}
