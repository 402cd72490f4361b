public import Logging

/// The swift-log handler of DeerFlow: merges the logger's metadata, the metadata provider's and the
/// statement's (the statement wins), adds `error.message` and `error.type` for an error passed
/// with the statement, and hands the record to its ``LoggingBackend``.
///
/// ```swift
/// LoggingSystem.bootstrap(backend.makeHandler)
/// var logger = Logger(label: "deerflow.worker")
/// logger[metadataKey: "run_id"] = "\(runID)"
/// logger.info("task started", metadata: ["task_id": "extract"])
/// ```
public struct DeerFlowLogHandler: LogHandler {
    public let label: String
    public let backend: LoggingBackend
    public var metadata: Logger.Metadata = [:] {
        didSet { prepared = backend.prepare(metadata) }
    }
    private var prepared = LoggingBackend.PreparedFields.empty
    public var metadataProvider: Logger.MetadataProvider?
    /// Starts at the backend's level.
    public var logLevel: Logger.Level

    public init(label: String, backend: LoggingBackend, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.backend = backend
        self.metadataProvider = metadataProvider
        logLevel = backend.level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let provided = metadataProvider?.get() ?? [:]
        var fields: [LogRecord.Field] = []
        fields.reserveCapacity(provided.count + (event.metadata?.count ?? 0) + 2)
        for (key, value) in provided { fields.append(LogRecord.Field(key: key, value: value)) }
        if let explicit = event.metadata {
            for (key, value) in explicit { fields.append(LogRecord.Field(key: key, value: value)) }
        }
        if let error = event.error {
            fields.append(LogRecord.Field(key: "error.message", value: .string("\(error)")))
            fields.append(LogRecord.Field(key: "error.type", value: .string(String(reflecting: type(of: error)))))
        }
        backend.emit(label: label, level: event.level, message: event.message.description, base: prepared, extra: consume fields)
    }
}
