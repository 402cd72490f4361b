import ArgumentParser
import DeerFlowAlerting
import DeerFlowCore
import DeerFlowLogging
import DeerFlowNotifications
import Foundation

/// `deerflow validate FILE...`.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check workflow files (or directories of them) and config files without running anything.",
        discussion: """
            Each problem is reported as file:line:column: key: message. Files named deerflow.yaml, metrics.yaml, \
            logging.yaml, tracing.yaml, notifications.yaml and alerts.yaml are checked as those config files \
            (alerts.yaml as Prometheus rules in the PromQL subset DeerFlow evaluates); everything else as a \
            workflow. In a directory holding any of those names, they are checked and other YAML files skipped. \
            Exit code 1 when anything is invalid.

            Example: deerflow validate workflows/ config/
            """
    )

    @Argument(help: "Workflow files, directories of workflow or config files, or config files.")
    var paths: [String]

    /// The config files `validate` recognises by name, with how each is checked.
    static let configFiles: [String: @Sendable (String, [String: String]) throws -> String] = [
        "deerflow.yaml": ok { _ = try ServerConfigFile.load(path: $0, environment: $1) },
        "logging.yaml": ok { _ = try LoggingConfigFile.load(path: $0, environment: $1) },
        "tracing.yaml": ok { _ = try TracingConfigFile.load(path: $0, environment: $1) },
        "metrics.yaml": { path, environment in
            let metrics = try MetricsConfigFile.load(path: path, environment: environment)
            return "ok: \(path) (\(metrics.customMetrics.count) custom metrics)"
        },
        "notifications.yaml": { path, environment in
            let notifications = try NotificationsConfigFile.load(path: path, environment: environment)
            return "ok: \(path) (\(notifications.channels.count) channels, \(notifications.routes.count) routes)"
        },
        "alerts.yaml": { path, _ in
            let rules = try RuleFile.load(path: path)
            return "ok: \(path) (\(rules.groups.flatMap(\.rules).count) rules)"
        },
    ]

    /// A check that loads the file and says `ok: PATH`.
    private static func ok(_ load: @escaping @Sendable (String, [String: String]) throws -> Void) -> @Sendable (String, [String: String]) throws -> String {
        { path, environment in
            try load(path, environment)
            return "ok: \(path)"
        }
    }

    func run() async throws {
        var failed = false
        let environment = ProcessInfo.processInfo.environment
        func check(_ body: () throws -> [String]) {
            do {
                for line in try body() { print(line) }
            } catch {
                failed = true
                FileHandle.standardError.write(Data(("\(error)" + "\n").utf8))
            }
        }
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                check { [try Self.validate(file: path, environment: environment)] }
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            guard names.contains(where: { Self.configFiles[$0] != nil }) else {
                check { try WorkflowFileLoader.loadDirectory(path).map { "ok: \(path): workflow '\($0.name)' (\($0.tasks.count) tasks)" } }
                continue
            }
            // A config directory: each config file as what its name says; other YAML files are
            // not read by DeerFlow from here, which is said (a misspelt name shows up).
            for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                let file = (path as NSString).appendingPathComponent(name)
                guard Self.configFiles[name] != nil else {
                    print("skipped: \(file) (DeerFlow reads \(Self.configFiles.keys.sorted().joined(separator: ", ")) from a config directory)")
                    continue
                }
                check { [try Self.validate(file: file, environment: environment)] }
            }
            // Each file may be fine alone and the pair not (the server would refuse to start).
            check {
                do {
                    _ = try ProcessTracing.fileConfiguration(configDirectory: path, environment: environment)
                } catch let error as ProcessTracing.TracingConfiguredTwice {
                    throw error
                } catch {
                    // A file's own problems were reported above.
                }
                return []
            }
        }
        if failed { throw ExitCode(1) }
    }

    /// Checks one file as the config file its name says, else as a workflow; the line to print.
    static func validate(file path: String, environment: [String: String]) throws -> String {
        if let check = configFiles[(path as NSString).lastPathComponent] {
            return try check(path, environment)
        }
        let workflow = try WorkflowFileLoader.load(file: path)
        return "ok: \(path): workflow '\(workflow.name)' (\(workflow.tasks.count) tasks)"
    }
}
