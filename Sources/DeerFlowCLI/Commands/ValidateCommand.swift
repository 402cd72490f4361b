import ArgumentParser
import DeerFlow
import DeerFlowAlerting
import DeerFlowCore
import DeerFlowLogging
import DeerFlowNotifications
import DeerFlowServer
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

    /// What checking one file found.
    struct Checked {
        /// The line printed on stdout: `ok: PATH ...`.
        var line: String
        /// Things that load but are likely wrong, printed on stderr.
        var warnings: [String] = []
        /// The workflow, for a workflow file.
        var workflow: WorkflowDefinition?
        /// `worker.queues` of a `deerflow.yaml` (its default when unset).
        var servedQueues: [String]?
        /// The channels of a `notifications.yaml`.
        var channels: [String]?
        /// The secrets a `deerflow.yaml` declares.
        var secrets: [String]?
    }

    /// The config files `validate` recognises by name (``ConfigDirectory/fileNames``), with how each is checked.
    static let configFiles: [String: @Sendable (String, [String: String]) throws -> Checked] = [
        "deerflow.yaml": { path, environment in
            let file = try ServerConfigFile.load(path: path, environment: environment)
            return Checked(
                line: "ok: \(path)", warnings: (file.tracing?.warnings ?? []).map { "\(path): tracing: warning: \($0)" },
                servedQueues: file.workerQueues ?? WorkerService.Configuration().queues, secrets: (file.secrets ?? [:]).keys.sorted())
        },
        "logging.yaml": { path, environment in
            _ = try LoggingConfigFile.load(path: path, environment: environment)
            return Checked(line: "ok: \(path)")
        },
        "tracing.yaml": { path, environment in
            let file = try TracingConfigFile.load(path: path, environment: environment)
            return Checked(line: "ok: \(path)", warnings: file.warnings.map { "\(path): tracing: warning: \($0)" })
        },
        "metrics.yaml": { path, environment in
            let metrics = try MetricsConfigFile.load(path: path, environment: environment)
            return Checked(line: "ok: \(path) (\(metrics.customMetrics.count) custom metrics)")
        },
        "notifications.yaml": { path, environment in
            let notifications = try NotificationsConfigFile.load(path: path, environment: environment)
            return Checked(
                line: "ok: \(path) (\(notifications.channels.count) channels, \(notifications.routes.count) routes)",
                channels: notifications.channels.map(\.name))
        },
        "alerts.yaml": { path, _ in
            let rules = try RuleFile.load(path: path)
            return Checked(line: "ok: \(path) (\(rules.groups.flatMap(\.rules).count) rules)")
        },
    ]

    func run() async throws {
        var failed = false
        let environment = ProcessInfo.processInfo.environment
        var workflows: [(file: String, definition: WorkflowDefinition)] = []
        var served: [(file: String, queues: [String])] = []
        var channels: [String]?
        var secrets: [String]?
        func report(_ message: String) {
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
        func check(_ body: () throws -> [(file: String, checked: Checked)]) {
            do {
                for (file, checked) in try body() {
                    print(checked.line)
                    checked.warnings.forEach(report)
                    if let workflow = checked.workflow { workflows.append((file, workflow)) }
                    if let queues = checked.servedQueues { served.append((file, queues)) }
                    if let names = checked.channels { channels = (channels ?? []) + names }
                    if let names = checked.secrets { secrets = (secrets ?? []) + names }
                }
            } catch {
                failed = true
                report("\(error)")
            }
        }
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                check { [(path, try Self.validate(file: path, environment: environment))] }
                continue
            }
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
            guard !names.isEmpty else {
                failed = true
                report("\(path): nothing to check: the directory has no .yaml or .yml file (workflows, or \(ConfigDirectory.fileNames.joined(separator: ", ")))")
                continue
            }
            guard names.contains(where: { Self.configFiles[$0] != nil }) else {
                // A workflow directory: every file is named with what it holds, valid ones also
                // when others are not.
                check {
                    let checked = try WorkflowFileLoader.checkDirectory(path)
                    for (file, workflow) in checked.workflows { print(Self.ok(file, workflow)) }
                    workflows += checked.workflows
                    if !checked.errors.isEmpty { throw FileErrors(errors: checked.errors) }
                    return []
                }
                continue
            }
            // A config directory: each config file as what its name says; other YAML files are
            // not read by DeerFlow from here, which is said (a misspelt name shows up).
            for name in names {
                let file = (path as NSString).appendingPathComponent(name)
                guard Self.configFiles[name] != nil else {
                    print("skipped: \(file) (DeerFlow reads \(Self.configFiles.keys.sorted().joined(separator: ", ")) from a config directory)")
                    continue
                }
                check { [(file, try Self.validate(file: file, environment: environment))] }
            }
            // Each file may be fine alone and the pair not (the server would refuse to start).
            check {
                do {
                    _ = try ProcessObservability.tracingFileConfiguration(configDirectory: path, environment: environment)
                } catch let error as ProcessObservability.TracingConfiguredTwice {
                    throw error
                } catch {
                    // A file's own problems were reported above.
                }
                return []
            }
        }
        // Workflows starting other workflows: names, cycles and params need them all at once. A
        // directory is taken to be all the workflows (the server's workflows directory); single
        // files may name workflows defined elsewhere, so unknown names are only warnings then.
        let complete = paths.contains { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        let subWorkflowErrors = WorkflowFileLoader.checkSubWorkflows(workflows, complete: true)
        let strict = complete ? subWorkflowErrors : WorkflowFileLoader.checkSubWorkflows(workflows, complete: false)
        for error in subWorkflowErrors {
            if strict.contains(error) {
                failed = true
                report("\(error)")
            } else {
                report("\(error.file):\(error.line):\(error.column): \(error.key): warning: \(error.message) (pass the directory of all workflows to check it)")
            }
        }
        // With a deerflow.yaml among the files, the queues its workers serve are known: a task on
        // another queue would wait for a worker that never comes.
        if !served.isEmpty {
            let queues = Set(served.flatMap(\.queues))
            let servedBy = served.map(\.file).joined(separator: " and ") + " worker.queues"
            for unserved in QueueCoverage.unserved(workflows.map(\.definition), servedQueues: queues) {
                let file = workflows.first { $0.definition.name == unserved.workflow }?.file ?? unserved.workflow
                report("\(file): warning: \(unserved.message(servedBy: servedBy, served: queues))")
            }
        }
        // A webhook whose secret variable is not set is refused by a server started in this
        // environment (503 to every request); the variable may well be set only where it runs.
        for workflow in workflows {
            for (index, webhook) in workflow.definition.webhooks where (environment[webhook.secretEnvironmentVariable] ?? "").isEmpty {
                report(
                    "\(workflow.file): warning: triggers[\(index)].webhook.secret_env: \(webhook.secretEnvironmentVariable) is not set here; a server started without it refuses every request to webhook '\(webhook.name)' (503)")
            }
        }
        // Workflows' notify: channels must be channels of notifications.yaml (the server refuses
        // to start otherwise); without that file among the arguments they cannot be checked.
        if let channels {
            for workflow in workflows {
                for problem in DeerFlowRuntime.notifyChannelProblems([workflow.definition], configured: Set(channels)) {
                    failed = true
                    report("\(workflow.file): \(problem)")
                }
            }
        } else if let workflow = workflows.first(where: { $0.definition.notify != nil }) {
            report("\(workflow.file): warning: notify names channels of notifications.yaml; pass the config directory too to check them")
        }
        // `{{ secrets.NAME }}` must name a secret of deerflow.yaml (the server refuses to start
        // otherwise); without that file among the arguments they cannot be checked.
        if let secrets {
            for workflow in workflows {
                for problem in DeerFlowRuntime.secretReferenceProblems([workflow.definition], configured: Set(secrets)) {
                    failed = true
                    report("\(workflow.file): \(problem)")
                }
            }
        } else if let workflow = workflows.first(where: { !$0.definition.secretReferences.isEmpty }) {
            report("\(workflow.file): warning: templates read secrets of deerflow.yaml; pass the config directory too to check them")
        }
        if failed { throw ExitCode(1) }
    }

    /// The line for a valid workflow file.
    static func ok(_ path: String, _ workflow: WorkflowDefinition) -> String {
        "ok: \(path): workflow '\(workflow.name)' (\(workflow.tasks.count) tasks)"
    }

    /// Checks one file as the config file its name says, else as a workflow.
    static func validate(file path: String, environment: [String: String]) throws -> Checked {
        if let check = configFiles[(path as NSString).lastPathComponent] {
            return try check(path, environment)
        }
        let workflow = try WorkflowFileLoader.load(file: path)
        return Checked(line: ok(path, workflow), workflow: workflow)
    }
}
