import ArgumentParser
import DeerFlow
import DeerFlowCore
import DeerFlowServer
import Foundation
import Logging

/// `deerflow demo`: the embedded default, with the example workflows, in one command.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start DeerFlow on the embedded default with the example workflows, run them, and show where to look.",
        discussion: """
            Starts API, scheduler, workers and metrics on an SQLite file, triggers every example workflow that \
            needs no parameters, prints their progress and the URLs of the API, /metrics and /health, then \
            keeps serving until Ctrl-C (or exits with --exit-when-done).
            """
    )

    @Option(help: ArgumentHelp("Directory of the workflows to load.", valueName: "dir"))
    var workflows = "examples/workflows"

    @Option(help: ArgumentHelp("Database URL.", valueName: "url"))
    var database = "sqlite://./.deerflow/demo.sqlite"

    @Option(help: ArgumentHelp("API port (a free one is chosen when it is taken).", valueName: "port"))
    var apiPort = 8080

    @Option(help: ArgumentHelp("Metrics port (a free one is chosen when it is taken).", valueName: "port"))
    var metricsPort = 9090

    @Flag(help: "Stop once the triggered runs have finished (for scripts and CI).")
    var exitWhenDone = false

    @Option(help: ArgumentHelp("Log level of the server's own log lines.", valueName: "level"))
    var logLevel: Logger.Level = .warning

    func run() async throws {
        guard FileManager.default.fileExists(atPath: workflows) else {
            throw CLIError("no workflow directory '\(workflows)'; run the demo from the repository root or pass --workflows DIR")
        }
        let observability: ProcessObservability
        do {
            observability = try ProcessObservability.bootstrap(level: logLevel, configDirectory: nil)
        } catch let error as ConfigurationError {
            throw CLIError(error.description)
        }
        ProcessHardening.closeProcFiles()
        var options = RuntimeOptions()
        options.workflowsDirectory = workflows
        options.databaseURL = database
        options.api.port = await ListenerCheck.problem(host: options.api.host, port: apiPort) == nil ? apiPort : 0
        options.metricsPort = await ListenerCheck.problem(host: options.api.host, port: metricsPort) == nil ? metricsPort : 0
        let runtime: DeerFlowRuntime
        do {
            runtime = try await DeerFlowRuntime.make(options: options, workflows: SwiftWorkflows.registered, observability: observability)
        } catch {
            throw CLIError(Launcher.describe(error))
        }
        runtime.bootstrapSwiftMetrics()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await runtime.run() }
            let api = await runtime.ports.api()
            let metrics = await runtime.ports.metrics()
            let engine = runtime.engine
            print("DeerFlow demo — embedded SQLite at \(database)")
            if runtime.options.api.ui {
                print("Open the UI: http://127.0.0.1:\(api)/  (runs, their graphs, timelines and logs, live)")
            }
            var triggered: [(String, RunID)] = []
            for entry in engine.workflows.all where entry.definition.params.allSatisfy({ !$0.isRequired }) {
                let run = try await engine.trigger(entry.definition.name, trigger: .api)
                triggered.append((entry.definition.name, run.id))
                print("  triggered \(entry.definition.name): run \(run.id)")
            }
            print("waiting for \(triggered.count) runs…")
            for (name, id) in triggered {
                let detail = try await engine.waitForRun(id, pollInterval: .milliseconds(200))
                let summary = detail.tasks.map { "\($0.id)=\($0.status.rawValue)\($0.attempts.count > 1 ? "×\($0.attempts.count)" : "")" }.joined(separator: " ")
                print("  \(name): \(detail.run.status.rawValue)  [\(summary)]")
            }
            print("""

                UI        http://127.0.0.1:\(api)/
                API       http://127.0.0.1:\(api)/api/v1/workflows
                Runs      http://127.0.0.1:\(api)/api/v1/runs
                Metrics   http://127.0.0.1:\(metrics)/metrics
                Health    http://127.0.0.1:\(api)/health
                OpenAPI   http://127.0.0.1:\(api)/api/v1/openapi.yaml
                Try       swift run deerflow run hello --wait --api http://127.0.0.1:\(api)
                """)
            if exitWhenDone {
                await runtime.shutdown()
            } else {
                print("serving until Ctrl-C")
            }
            try await group.waitForAll()
        }
    }
}
