public import ArgumentParser
public import DeerFlow
import Foundation
import Logging
import Synchronization
import AsyncHTTPClient
import DeerFlowLogging
import DeerFlowCore
import DeerFlowObservability
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `deerflow` command line. A user's own executable runs it with its Swift workflows:
///
/// ```swift
/// import DeerFlow
/// import DeerFlowCLI
///
/// @main struct MyWorkflows {
///     static func main() async {
///         await DeerFlowCLI.main(workflows: [etl, reports])
///     }
/// }
/// ```
///
/// and gets every subcommand (`server`, `worker`, `run`, ...) with those workflows registered
/// beside the YAML files of `--workflows`.
public enum DeerFlowCLI {
    /// Parses the process arguments and runs the command, registering `workflows` in `server`,
    /// `worker` and `demo`.
    public static func main(workflows: [Workflow] = []) async {
        StandardOutput.flushEachLine()
        SwiftWorkflows.shared.withLock { $0 = workflows }
        await DeerFlowCommand.main()
    }
}

/// Swift workflows registered by `DeerFlowCLI.main(workflows:)`.
enum SwiftWorkflows {
    static let shared = Mutex<[Workflow]>([])
    static var all: [Workflow] { shared.withLock { $0 } }
}

/// Root command.
struct DeerFlowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deerflow",
        abstract: "DeerFlow: workflow orchestration with metrics, logs, traces and alerts built in.",
        discussion: """
            Start with `deerflow demo`, or `deerflow server --workflows DIR` and `deerflow run WORKFLOW --wait`.

            Client commands talk to the API at --api (env DEERFLOW_API_URL, default http://127.0.0.1:8080).
            """,
        version: DeerFlowVersion.current,
        subcommands: [
            ServerCommand.self, WorkerCommand.self, DemoCommand.self, RunCommand.self, StatusCommand.self,
            RunsCommand.self, CancelCommand.self, LogsCommand.self, WorkflowsCommand.self, WorkersCommand.self, AlertsCommand.self,
            ValidateCommand.self, ExportCommand.self, BenchCommand.self,
        ]
    )
}

extension Logger.Level: @retroactive ExpressibleByArgument {
    public init?(argument: String) {
        let lowered = argument.lowercased()
        self.init(rawValue: lowered == "warn" ? "warning" : lowered)
    }

    public static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
}

/// Sets up process-wide logging once: `logging.yaml` from the config directory when there is one,
/// else JSON lines on stdout (text when stdout is a terminal). `--log-level` overrides the level.
enum ProcessLogging {
    private static let backend = Mutex<LoggingBackend?>(nil)
    /// Lines sinks could not write, until the metrics exist to count them.
    static let dropped = DroppedLinesCounter()

    private static let shipping = Mutex<ElasticsearchSink?>(nil)

    /// The backend set up by `bootstrap`, if any.
    static var current: LoggingBackend? { backend.withLock { $0 } }

    /// The Elasticsearch handler, when `logging.yaml` enables one: a service that ships its
    /// batches; it runs next to the logging service and flushes within its deadline at shutdown.
    static var elasticsearch: ElasticsearchSink? { shipping.withLock { $0 } }

    static func bootstrap(level: Logger.Level?, configDirectory: String? = nil, metadataProvider: Logger.MetadataProvider? = nil) throws -> Logger {
        var configuration = LoggingConfigFile()
        configuration.format = isatty(STDOUT_FILENO) == 1 ? .text : .json
        if let configDirectory {
            let path = (configDirectory as NSString).appendingPathComponent("logging.yaml")
            if FileManager.default.fileExists(atPath: path) {
                do {
                    configuration = try LoggingConfigFile.load(path: path, environment: ProcessInfo.processInfo.environment)
                } catch {
                    throw CLIError(error.description)
                }
            }
        }
        if let level { configuration.level = level }
        let made: LoggingBackend
        let onDropped: DroppedLinesHandler = { sink, count in dropped.add(sink, count) }
        var extraSinks: [any LogSink] = []
        if let settings = configuration.elasticsearch, settings.enabled, shipping.withLock({ $0 == nil }) {
            // Its own client: shutting down the shared one is not ours to do, and this one must
            // not retry connections behind the sink's own backoff across hosts.
            let client = HTTPClient(configuration: ElasticsearchSink.httpClientConfiguration)
            let sink = ElasticsearchSink(configuration: settings, httpClient: client, onDropped: onDropped)
            shipping.withLock { $0 = sink }
            extraSinks.append(sink)
        }
        do {
            made = try LoggingBackend(configuration: configuration, extraSinks: extraSinks, onDropped: onDropped)
        } catch {
            throw CLIError("logging.yaml: \(error)")
        }
        let installed = backend.withLock { current -> LoggingBackend in
            if let current { return current }
            current = made
            if let metadataProvider {
                LoggingSystem.bootstrap({ label, provider in made.makeHandler(label: label, metadataProvider: provider) }, metadataProvider: metadataProvider)
            } else {
                LoggingSystem.bootstrap(made.makeHandler)
            }
            return made
        }
        var logger = Logger(label: "deerflow")
        logger.logLevel = installed.level
        return logger
    }
}

/// Sets up tracing once, when `tracing.yaml` or `OTEL_*` variables enable it.
enum ProcessTracing {
    /// Spans the exporter dropped, until the metrics exist to count them.
    static let dropped = DroppedLinesCounter()
    private static let started = Mutex<(done: Bool, service: (any Service)?)>((false, nil))

    /// The tracing configuration of a config directory (`tracing.yaml`, or the `tracing:` section of
    /// `deerflow.yaml`) and the environment; nil when tracing is off.
    static func configuration(configDirectory: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TracingConfigFile? {
        var file: TracingConfigFile?
        if let configDirectory {
            do {
                file = try fileConfiguration(configDirectory: configDirectory, environment: environment)
            } catch let error as FileErrors {
                throw CLIError(error.description)
            }
        }
        guard TracingSetup.isEnabled(file, environment: environment) else { return nil }
        return file ?? TracingConfigFile()
    }

    /// The `tracing:` section of `tracing.yaml` or of `deerflow.yaml` in a config directory; nil when
    /// neither has one. Both having one is an error rather than one silently winning.
    static func fileConfiguration(configDirectory: String, environment: [String: String]) throws -> TracingConfigFile? {
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
    struct TracingConfiguredTwice: Error, CustomStringConvertible {
        let tracingFile: String
        let serverFile: String
        var description: String {
            "tracing is configured twice, in \(tracingFile) and in the tracing: section of \(serverFile); keep one of them"
        }
    }

    /// Starts the exporter and installs the tracer; returns its service.
    static func start(_ configuration: TracingConfigFile, logger: Logger) throws -> any Service {
        try started.withLock { state throws -> any Service in
            if let service = state.service { return service }
            do {
                let made = try TracingSetup.start(
                    file: configuration, environment: ProcessInfo.processInfo.environment, diagnostics: logger,
                    onDropped: { dropped.add("spans", $0) })
                state = (true, made.service)
                return made.service
            } catch {
                throw CLIError("tracing: \(error)")
            }
        }
    }

    /// The exporter's service, once started.
    static var service: (any Service)? { started.withLock { $0.service } }
}
