public import ArgumentParser
public import DeerFlow
import DeerFlowServer
import Foundation
public import Logging
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
///         await DeerFlowCommandLine.main(workflows: [etl, reports])
///     }
/// }
/// ```
///
/// and gets every subcommand (`server`, `worker`, `run`, ...) with those workflows registered
/// beside the YAML files of `--workflows`.
public enum DeerFlowCommandLine {
    /// Parses the process arguments and runs the command, registering `workflows` in `server`,
    /// `worker` and `demo`.
    public static func main(workflows: [Workflow] = []) async {
        StandardOutput.flushEachLine()
        await SwiftWorkflows.$registered.withValue(workflows) {
            await DeerFlowCommand.main()
        }
    }
}

/// Swift workflows given to `DeerFlowCommandLine.main(workflows:)`, for the commands that run them,
/// within that call.
enum SwiftWorkflows {
    @TaskLocal static var registered: [Workflow] = []
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
            RunsCommand.self, CancelCommand.self, RetryCommand.self, RerunCommand.self, LogsCommand.self, WorkflowsCommand.self, WorkersCommand.self, AlertsCommand.self,
            PauseCommand.self, UnpauseCommand.self, BackfillCommand.self, BackfillStatusCommand.self, BackfillCancelCommand.self,
            PurgeCommand.self, ValidateCommand.self, ExportCommand.self, BenchCommand.self,
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

