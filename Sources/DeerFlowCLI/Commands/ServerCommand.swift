import ArgumentParser
import DeerFlow
import DeerFlowCore
import DeerFlowServer
import Foundation
import Logging
import DeerFlowObservability

/// Options shared by the commands that run DeerFlow services.
struct ProcessOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Directory of YAML workflow files, one workflow per file. Default: ./workflows when that directory exists.", valueName: "dir"))
    var workflows: String?

    /// `workflows` in the current directory: loaded when `--workflows` is not given.
    static let defaultWorkflowsDirectory = "workflows"

    @Option(help: ArgumentHelp("Config directory, read by file name: \(ConfigDirectory.fileNames.joined(separator: ", ")) (each optional; see the README, Configuration).", valueName: "dir"))
    var config: String?

    @Option(help: ArgumentHelp("Database URL: sqlite://PATH or postgres://user:password@host:5432/db?sslmode=require (env DEERFLOW_DATABASE_URL). Default: \(RuntimeOptions.defaultDatabaseURL)", valueName: "url"))
    var database: String?

    @Option(help: ArgumentHelp("Port of the Prometheus endpoint; 0 picks a free port. Default: metrics.yaml's port, else 9090.", valueName: "port"))
    var metricsPort: Int?

    @Option(help: ArgumentHelp("Address to listen on (API and metrics). Default 127.0.0.1; 0.0.0.0 accepts remote clients.", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical. Default: logging.yaml's level, else info.", valueName: "level"))
    var logLevel: Logger.Level?

    /// Logging (logging.yaml) and, when tracing.yaml or OTEL_* variables enable it, tracing.
    func bootstrapObservability() throws -> ProcessObservability {
        do {
            return try ProcessObservability.bootstrap(level: logLevel, configDirectory: config)
        } catch let error as ConfigurationError {
            throw CLIError(error.description)
        }
    }

    /// Options from the config directory and environment, with these flags applied on top.
    func runtimeOptions() throws -> RuntimeOptions {
        var options = RuntimeOptions()
        options.configDirectory = config
        try options.applyConfigFiles(environment: ProcessInfo.processInfo.environment)
        if let workflows {
            options.workflowsDirectory = workflows
        } else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: Self.defaultWorkflowsDirectory, isDirectory: &isDirectory), isDirectory.boolValue {
                options.workflowsDirectory = Self.defaultWorkflowsDirectory
            }
        }
        if let database { options.databaseURL = database }
        if let metricsPort { options.metricsPort = metricsPort }
        if let host { options.api.host = host }
        return options
    }
}

/// Options of the worker part of a process.
struct WorkerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Concurrent task attempts. Default: deerflow.yaml's worker.slots, else 64 (tasks mostly wait on I/O; a slot is a Swift task, not a thread).", valueName: "n"))
    var slots: Int?

    @Option(help: ArgumentHelp("Comma-separated queues to serve. Default: deerflow.yaml's worker.queues, else 'default'.", valueName: "names"))
    var queues: String?

    @Option(help: ArgumentHelp("Seconds running attempts may finish after SIGTERM before they are released for retry.", valueName: "seconds"))
    var drainTimeout: Int?

    func apply(to options: inout RuntimeOptions) throws {
        if let slots {
            if let problem = Limits.problem(slots, outside: Limits.slots) { throw ValidationError("--slots \(problem)") }
            options.worker.slots = slots
        }
        if let queues {
            let names = queues.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw ValidationError("--queues needs at least one queue name") }
            options.worker.queues = names
        }
        if let drainTimeout {
            let upper = Int(Limits.drainTimeout.upperBound.components.seconds)
            guard (0...upper).contains(drainTimeout) else {
                throw ValidationError("--drain-timeout must be between 0 and \(upper) seconds, got \(drainTimeout)")
            }
            options.worker.drainTimeout = .seconds(drainTimeout)
        }
    }
}

/// `deerflow server`: API, scheduler, workers and metrics in one process.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the API, scheduler, workers and metrics endpoint in one process.",
        discussion: """
            Example: deerflow server --workflows examples/workflows --metrics-port 9090

            Stops gracefully on SIGTERM/SIGINT: workers stop claiming, running attempts get --drain-timeout \
            to finish, /health/ready answers 503 meanwhile.
            """
    )

    @OptionGroup var process: ProcessOptions
    @OptionGroup var worker: WorkerOptions

    @Option(help: ArgumentHelp("Port of the HTTP API; 0 picks a free port (logged). Default 8080.", valueName: "port"))
    var apiPort: Int?

    @Flag(help: "Run the API and scheduler only; tasks run in `deerflow worker` processes.")
    var noWorkers = false

    @Option(help: ArgumentHelp("Prometheus alert rules to evaluate in this process. Default: alerts.yaml in --config, else the built-in rules.", valueName: "file"))
    var rules: String?

    func run() async throws {
        let observability = try process.bootstrapObservability()
        var options = try process.runtimeOptions()
        try worker.apply(to: &options)
        if let apiPort { options.api.port = apiPort }
        if let rules { options.alerting.rulesFile = rules }
        options.runWorkers = !noWorkers
        try await Launcher.run(options, observability: observability)
    }
}

/// `deerflow worker`: workers only.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run workers only, executing tasks from the shared store.",
        discussion: "Example: deerflow worker --workflows workflows/ --queues default,reports"
    )

    @OptionGroup var process: ProcessOptions
    @OptionGroup var worker: WorkerOptions

    func run() async throws {
        let observability = try process.bootstrapObservability()
        var options = try process.runtimeOptions()
        try worker.apply(to: &options)
        options.runAPI = false
        options.runScheduler = false
        try await Launcher.run(options, observability: observability)
    }
}

/// Builds and runs a runtime, turning configuration errors into messages that name the file.
enum Launcher {
    static func run(_ options: RuntimeOptions, observability: ProcessObservability) async throws {
        ProcessHardening.closeProcFiles()
        let logger = observability.logger
        let runtime: DeerFlowRuntime
        do {
            runtime = try await DeerFlowRuntime.make(options: options, workflows: SwiftWorkflows.registered, observability: observability)
        } catch {
            throw CLIError(describe(error))
        }
        runtime.bootstrapSwiftMetrics()
        let names = runtime.engine.workflows.all.map(\.definition.name)
        if names.isEmpty && options.runWorkers {
            logger.warning("no workflows registered; pass --workflows DIR, put YAML files in ./\(ProcessOptions.defaultWorkflowsDirectory), or register Swift workflows")
        } else {
            var metadata: Logger.Metadata = ["workflows": "\(names.joined(separator: ", "))"]
            if let directory = options.workflowsDirectory { metadata["directory"] = "\(directory)" }
            logger.info("workflows loaded", metadata: metadata)
        }
        warnAboutUnservedQueues(runtime, logger: logger)
        do {
            try await runtime.run()
        } catch let error as ListenerUnavailable {
            throw CLIError(error.description)
        }
    }

    /// A process running scheduler and workers (`deerflow server`) says which tasks use a queue its
    /// workers do not serve: they would wait, silently, for a `deerflow worker` serving it. A
    /// `deerflow worker` serves part of the queues by design and says nothing.
    static func warnAboutUnservedQueues(_ runtime: DeerFlowRuntime, logger: Logger) {
        let options = runtime.options
        guard options.runWorkers && options.runScheduler else { return }
        let served = Set(options.worker.queues)
        for unserved in QueueCoverage.unserved(runtime.engine.workflows.all.map(\.definition), servedQueues: served) {
            logger.warning("\(unserved.message(servedBy: "this server's workers (--queues, worker.queues)", served: served))", metadata: [
                "workflow": "\(unserved.workflow)", "queue": "\(unserved.queue)",
            ])
        }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as FileErrors: return error.description
        case let error as WorkflowValidationError: return error.description
        case let error as DeerFlowError: return error.message
        default: return String(describing: error)
        }
    }
}

/// An error printed as is, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
