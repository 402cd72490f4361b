import ArgumentParser
import DeerFlowCore
import Foundation

/// `deerflow validate FILE...`.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check workflow files (or directories of them) and config files without running anything.",
        discussion: """
            Each problem is reported as file:line:column: key: message. Files named deerflow.yaml and metrics.yaml
            are checked as config files; everything else as a workflow. Exit code 1 when anything is invalid.
            Example: deerflow validate workflows/ config/metrics.yaml
            """
    )

    @Argument(help: "Workflow files, directories of workflow files, or config files.")
    var paths: [String]

    func run() async throws {
        var failed = false
        let environment = ProcessInfo.processInfo.environment
        for path in paths {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            do {
                if exists && isDirectory.boolValue {
                    let workflows = try WorkflowFileLoader.loadDirectory(path)
                    for workflow in workflows { print("ok: \(path): workflow '\(workflow.name)' (\(workflow.tasks.count) tasks)") }
                } else {
                    switch (path as NSString).lastPathComponent {
                    case "deerflow.yaml":
                        _ = try ServerConfigFile.load(path: path, environment: environment)
                        print("ok: \(path)")
                    case "metrics.yaml":
                        let metrics = try MetricsConfigFile.load(path: path, environment: environment)
                        print("ok: \(path) (\(metrics.customMetrics.count) custom metrics)")
                    default:
                        let workflow = try WorkflowFileLoader.load(file: path)
                        print("ok: \(path): workflow '\(workflow.name)' (\(workflow.tasks.count) tasks)")
                    }
                }
            } catch {
                failed = true
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}
