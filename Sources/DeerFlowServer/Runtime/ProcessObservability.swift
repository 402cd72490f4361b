import AsyncHTTPClient
package import DeerFlowCore
import DeerFlowLogging
import DeerFlowObservability
public import Foundation
public import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The logging and tracing of a process: `logging.yaml` (or JSON lines on stdout), and tracing
/// when `tracing.yaml`, the `tracing:` section of `deerflow.yaml` or `OTEL_*` variables enable it.
///
/// swift-log and swift-distributed-tracing are bootstrapped once per process, so
/// ``bootstrap(level:configDirectory:environment:)`` sets them up on its first call and hands
/// the same value back afterwards. The value is passed to ``DeerFlowRuntime/make(options:workflows:observability:logger:)``
/// explicitly: the runtime runs the logging, log shipping and span export services and counts
/// what they drop.
public struct ProcessObservability: Sendable {
    /// The process's logger (label `deerflow`).
    public let logger: Logger
    let logging: LoggingBackend?
    let elasticsearch: ElasticsearchSink?
    let tracing: (any Service)?
    let droppedLogLines: DroppedLinesCounter
    let droppedSpans: DroppedLinesCounter
    /// Lines of one attempt's output sent to the log handlers (`logging.yaml`'s
    /// `task_output_lines`); nil: task output stays in the task log (`task_output: false`).
    var taskOutputLines: Int?

    /// No process-wide logging or tracing (a library embedding the engine, tests): records go
    /// to `logger`, nothing is shipped or exported.
    public static func none(logger: Logger) -> ProcessObservability {
        ProcessObservability(
            logger: logger, logging: nil, elasticsearch: nil, tracing: nil, droppedLogLines: DroppedLinesCounter(), droppedSpans: DroppedLinesCounter(),
            taskOutputLines: nil)
    }

    private static let installed = Mutex<ProcessObservability?>(nil)

    /// Sets up logging from `logging.yaml` in `configDirectory` (else JSON lines on stdout, text
    /// at a terminal) at `level` (default the file's, else info), and tracing when configured.
    ///
    /// - Throws: ``ConfigurationError`` naming the file for a bad logging or tracing configuration.
    public static func bootstrap(
        level: Logger.Level?, configDirectory: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ProcessObservability {
        if let installed = installed.withLock({ $0 }) { return installed }
        let tracingFile = try tracingConfiguration(configDirectory: configDirectory, environment: environment)
        var configuration = LoggingConfigFile()
        configuration.format = isatty(STDOUT_FILENO) == 1 ? .text : .json
        if let configDirectory {
            let path = (configDirectory as NSString).appendingPathComponent("logging.yaml")
            if FileManager.default.fileExists(atPath: path) {
                do {
                    configuration = try LoggingConfigFile.load(path: path, environment: environment)
                } catch {
                    throw ConfigurationError(error.description)
                }
            }
        }
        if let level { configuration.level = level }
        let droppedLogLines = DroppedLinesCounter()
        let onDropped: DroppedLinesHandler = { sink, count in droppedLogLines.add(sink, count) }
        var elasticsearch: ElasticsearchSink?
        if let settings = configuration.elasticsearch, settings.enabled {
            // Its own client: shutting down the shared one is not ours to do, and this one must
            // not retry connections behind the sink's own backoff across hosts.
            let client = HTTPClient(configuration: ElasticsearchSink.httpClientConfiguration)
            elasticsearch = ElasticsearchSink(configuration: settings, httpClient: client, onDropped: onDropped)
        }
        let backend: LoggingBackend
        do {
            backend = try LoggingBackend(configuration: configuration, extraSinks: elasticsearch.map { [$0] } ?? [], onDropped: onDropped)
        } catch {
            throw ConfigurationError("logging.yaml: \(error)")
        }
        return try installed.withLock { current throws -> ProcessObservability in
            if let current { return current }
            if tracingFile != nil {
                LoggingSystem.bootstrap(
                    { label, provider in backend.makeHandler(label: label, metadataProvider: provider) },
                    metadataProvider: TracingSetup.loggingMetadataProvider)
            } else {
                LoggingSystem.bootstrap(backend.makeHandler)
            }
            var logger = Logger(label: "deerflow")
            logger.logLevel = backend.level
            let droppedSpans = DroppedLinesCounter()
            var tracing: (any Service)?
            if let tracingFile {
                tracing = try startTracing(tracingFile, logger: logger, droppedSpans: droppedSpans, environment: environment)
                let endpoint = tracingFile.endpoint ?? environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
                    ?? "http://localhost:4318/v1/traces"
                logger.info("tracing on", metadata: ["endpoint": "\(endpoint)"])
                if let warning = TracingConfigFile.endpointWarning(endpoint) { logger.warning("tracing: \(warning)") }
            }
            let made = ProcessObservability(
                logger: logger, logging: backend, elasticsearch: elasticsearch, tracing: tracing, droppedLogLines: droppedLogLines,
                droppedSpans: droppedSpans, taskOutputLines: configuration.taskOutput ? configuration.taskOutputLines : nil)
            current = made
            return made
        }
    }

    /// Tracing alone, for `configuration`, without process-wide logging (the tracing
    /// benchmark's child processes); records go to `logger`.
    package static func tracingOnly(_ configuration: TracingConfigFile, logger: Logger) throws -> ProcessObservability {
        let dropped = DroppedLinesCounter()
        let service = try startTracing(configuration, logger: logger, droppedSpans: dropped, environment: ProcessInfo.processInfo.environment)
        return ProcessObservability(
            logger: logger, logging: nil, elasticsearch: nil, tracing: service, droppedLogLines: DroppedLinesCounter(), droppedSpans: dropped,
            taskOutputLines: nil)
    }

    /// Spans the exporter dropped so far.
    package var spansDropped: Int { droppedSpans.total }

    private static func startTracing(
        _ configuration: TracingConfigFile, logger: Logger, droppedSpans: DroppedLinesCounter, environment: [String: String]
    ) throws -> any Service {
        do {
            return try TracingSetup.start(
                file: configuration, environment: environment, diagnostics: logger, onDropped: { droppedSpans.add("spans", $0) }
            ).service
        } catch {
            throw ConfigurationError("tracing: \(error)")
        }
    }

    /// The tracing configuration of a config directory and the environment; nil when tracing is off.
    static func tracingConfiguration(configDirectory: String?, environment: [String: String]) throws -> TracingConfigFile? {
        var file: TracingConfigFile?
        if let configDirectory {
            do {
                file = try tracingFileConfiguration(configDirectory: configDirectory, environment: environment)
            } catch let error as FileErrors {
                throw ConfigurationError(error.description)
            }
        }
        guard TracingSetup.isEnabled(file, environment: environment) else { return nil }
        return file ?? TracingConfigFile()
    }

    /// The `tracing:` section of `tracing.yaml` or of `deerflow.yaml` in a config directory; nil when
    /// neither has one. Both having one is an error rather than one silently winning.
    package static func tracingFileConfiguration(configDirectory: String, environment: [String: String]) throws -> TracingConfigFile? {
        let path = (configDirectory as NSString).appendingPathComponent("tracing.yaml")
        let serverPath = (configDirectory as NSString).appendingPathComponent("deerflow.yaml")
        let file = FileManager.default.fileExists(atPath: path) ? try TracingConfigFile.load(path: path, environment: environment) : nil
        guard FileManager.default.fileExists(atPath: serverPath), let section = try ServerConfigFile.load(path: serverPath, environment: environment).tracing else {
            return file
        }
        guard file == nil else { throw TracingConfiguredTwice(tracingFile: path, serverFile: serverPath) }
        return section
    }

    /// `tracing.yaml` and `deerflow.yaml` in one config directory both configure tracing.
    package struct TracingConfiguredTwice: Error, CustomStringConvertible {
        let tracingFile: String
        let serverFile: String
        package var description: String {
            "tracing is configured twice, in \(tracingFile) and in the tracing: section of \(serverFile); keep one of them"
        }
    }

    /// Writes out what was logged so far (when a start fails before the logging service runs).
    func flush() { logging?.flush() }
}

/// A configuration that cannot be used; the message names the file and says what to change.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
