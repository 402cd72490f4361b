import Foundation

/// Reads workflow definitions from YAML files, one workflow per file.
///
/// Every problem is reported, not just the first, as a ``FileError`` naming the file, line, column
/// and key: YAML syntax, unknown keys (with a "did you mean"), values of the wrong type, bad
/// durations, unknown task types, and everything ``WorkflowDefinition/validationIssues()`` finds
/// (duplicate task ids, unknown dependencies, cycles, bad cron expressions, unknown time zones, ...).
///
/// ```
/// workflows/etl.yaml:14:14: tasks[1].retries: expected an integer, got 'three'
/// workflows/etl.yaml:9:5: tasks[0].comand: unknown key 'comand' (did you mean 'command'?)
/// ```
///
/// ## File format
///
/// ```yaml
/// name: etl                  # optional; default: the file name without extension. A letter or
///                            #   digit first, then letters, digits, _ - . (at most 128); so are task ids
/// description: Nightly ETL   # optional
/// schedule: "0 2 * * *"      # optional; or a mapping:
///                            #   {cron: "0 2 * * *", timezone: Europe/Berlin, catchup: latest|all, paused: false}
///                            #   (timezone default UTC, catchup default latest; paused: the
///                            #   initial state only, the API's pause/unpause wins afterwards)
/// timeout: 2h                # optional: the whole run's limit; past it the run fails (reason timeout)
/// notify:                    # optional: channels of notifications.yaml per run outcome
///   on_failure: [slack]      #   (also on_success, on_recovery; severity, default warning)
/// params:                    # optional mapping, in order
///   date: {type: string, default: "2024-01-01", description: "...", secret: false}
///   limit: int               # shorthand: just the type, a required parameter
/// triggers:                  # optional: webhooks starting runs (docs/webhooks.md)
///   - webhook: {name: github-push, secret_env: GH_SECRET, delivery_header: X-GitHub-Delivery,
///               params: {ref: "{{ body.ref }}"}}
/// tasks:                     # required list
///   - id: extract
///     type: shell            # shell | http | noop | sleep (required)
///     command: [echo, hello] # shell: argv list ...
///     script: |              # ... or a script for /bin/sh -c (exactly one of the two)
///       echo hi
///     env: {KEY: value}      # shell: extra environment
///     workdir: /tmp          # shell: working directory
///     env_passthrough: [AWS_*]  # shell: variables of DeerFlow's environment to inherit
///     depends_on: [a, b]     # optional; a single string is also accepted
///     queue: default         # default "default"
///     priority: 0            # default 0; higher runs first
///     retries: 3             # default 0
///     retry_delay: 5s        # default 1s
///     max_retry_delay: 5m    # default 5m (or retry_delay, if larger)
///     timeout: 30s           # optional; default no limit
///     for_each: "{{ tasks.list.output.files }}"  # optional: one instance per item ({{ item }}, {{ index }})
///     max_parallel: 10       # with for_each: at most this many instances at once; default all
///     description: ...
///   - id: call
///     type: http
///     method: POST           # default POST with a body, else GET; upper-cased
///     url: https://example.com/x
///     headers: {X-Token: abc}
///     body: '{"a": 1}'       # a string; a mapping or list is sent as JSON
///     expect_status: [200, 201]   # or a single integer; default any 2xx
///   - id: wait
///     type: sleep
///     duration: 10s
///   - id: nothing
///     type: noop
///   - id: report
///     type: workflow         # starts a run of another workflow (a child run)
///     workflow: report       #   the child workflow's name
///     params: {day: "{{ params.day }}"}   # the child's params; strings may be templates
///     wait: true             # default true: wait, fail with the child, output its outputs;
///                            #   false: succeed at once with {"run_id": ...}
/// ```
///
/// Checks that need every workflow at once (unknown child workflows, cycles of workflows starting
/// each other, parameters a child does not declare) are ``checkSubWorkflows(_:complete:)``.
///
/// A parameter's `type` is `string` (the default), `int`, `float`, `bool` or `json`. Its `default`
/// is read as that type: `default: 5` is the integer 5 for an `int` parameter and the string `"5"`
/// for a `string` one; a `json` parameter takes any YAML value. Durations are written `500ms`,
/// `30s`, `5m`, `2h`, `1d` or combined, largest unit first and each once (`1h30m`; not `1h1h` or `30m1h`). Keys are checked per task type: `command` on an
/// `http` task is an error. `${...}` is not substituted in workflow files (scripts use it).
///
/// ```swift
/// let workflows = try WorkflowFileLoader.loadDirectory("workflows")
/// ```
public enum WorkflowFileLoader {
    /// Reads and validates one workflow file.
    ///
    /// - Parameter path: Path of a YAML file.
    /// - Throws: ``FileErrors`` listing every problem of the file.
    public static func load(file path: String) throws(FileErrors) -> WorkflowDefinition {
        let text = try readFile(path)
        return try parse(yaml: text, file: path)
    }

    /// Parses and validates a workflow from YAML text.
    ///
    /// - Parameters:
    ///   - yaml: The file's content.
    ///   - file: The file name, used in errors and as the default workflow name (without extension).
    /// - Throws: ``FileErrors`` listing every problem, sorted by line.
    public static func parse(yaml: String, file: String) throws(FileErrors) -> WorkflowDefinition {
        let (definition, reader) = read(yaml: yaml, file: file)
        guard let definition, reader.errors.isEmpty else { throw FileErrors(errors: sorted(reader.errors)) }
        return definition
    }

    /// Reads every `*.yaml` and `*.yml` file of a directory (not its subdirectories), in file name order.
    ///
    /// Problems of all files are collected; two files defining the same workflow name, or the
    /// same webhook name, are an error in the second, naming the first.
    ///
    /// - Parameter path: The directory.
    /// - Throws: ``FileErrors`` with the problems of every file, when there is any.
    public static func loadDirectory(_ path: String) throws(FileErrors) -> [WorkflowDefinition] {
        let checked = try checkDirectory(path)
        if !checked.errors.isEmpty { throw FileErrors(errors: checked.errors) }
        return checked.workflows.map(\.definition)
    }

    /// Reads every `*.yaml` and `*.yml` file of a directory as ``loadDirectory(_:)`` does, but
    /// returns the valid workflows with their files beside the problems of the others (what
    /// `deerflow validate` reports).
    ///
    /// - Throws: ``FileErrors`` only when the directory cannot be read.
    public static func checkDirectory(_ path: String) throws(FileErrors) -> (workflows: [(file: String, definition: WorkflowDefinition)], errors: [FileError]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            var isDirectory: ObjCBool = false
            let message: String
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                message = "no such directory"
            } else if !isDirectory.boolValue {
                message = "not a directory"
            } else {
                message = "cannot read directory (check its permissions)"
            }
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: message)])
        }
        var errors: [FileError] = []
        var workflows: [(file: String, definition: WorkflowDefinition)] = []
        var fileOfName: [String: String] = [:]
        var fileOfHook: [String: (file: String, workflow: String)] = [:]
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let file = path.hasSuffix("/") ? path + name : "\(path)/\(name)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), isDirectory.boolValue { continue }
            let text: String
            do {
                text = try readFile(file)
            } catch {
                errors += error.errors
                continue
            }
            let (definition, reader) = read(yaml: text, file: file)
            errors += sorted(reader.errors)
            guard let definition else { continue }
            if let first = fileOfName[definition.name] {
                let location = reader.location(of: "name")
                errors.append(FileError(
                    file: file, line: location.line, column: location.column, key: "name",
                    message: "workflow '\(definition.name)' is also defined in \(first) (workflow names must be unique)"
                ))
            } else {
                fileOfName[definition.name] = file
                var valid = reader.errors.isEmpty
                for (index, webhook) in definition.webhooks where !webhook.name.isEmpty {
                    guard let first = fileOfHook[webhook.name] else {
                        fileOfHook[webhook.name] = (file, definition.name)
                        continue
                    }
                    let key = "triggers[\(index)].webhook.name"
                    let location = reader.location(of: key)
                    errors.append(FileError(
                        file: file, line: location.line, column: location.column, key: key,
                        message: "webhook '\(webhook.name)' is also defined in \(first.file) (workflow '\(first.workflow)'); webhook names must be unique across workflows"
                    ))
                    valid = false
                }
                if valid { workflows.append((file, definition)) }
            }
        }
        return (workflows, errors)
    }

    /// The problems of the `workflow` tasks of `workflows` that need them all at once
    /// (``SubWorkflowGraph/issues(_:complete:)``), located in their files like every loader error.
    ///
    /// - Parameters:
    ///   - workflows: valid workflows with the files they were read from.
    ///   - complete: whether these are all the workflows there are; only then is a child name that
    ///     none of them has an error.
    public static func checkSubWorkflows(_ workflows: [(file: String, definition: WorkflowDefinition)], complete: Bool) -> [FileError] {
        let issues = SubWorkflowGraph.issues(workflows.map(\.definition), complete: complete)
        guard !issues.isEmpty else { return [] }
        var readers: [String: YAMLReader] = [:]
        return issues.map { issue in
            let file = workflows.first { $0.definition.name == issue.workflow }?.file ?? issue.workflow
            if readers[file] == nil, let text = try? readFile(file) { readers[file] = read(yaml: text, file: file).1 }
            let location = readers[file]?.location(of: issue.path) ?? .start
            return FileError(file: file, line: location.line, column: location.column, key: issue.path, message: issue.message)
        }
    }

    // MARK: - Reading

    static let taskTypes = ["shell", "http", "noop", "sleep", "workflow"]
    static let commonTaskKeys = [
        "id", "type", "description", "depends_on", "queue", "priority", "retries", "retry_delay", "max_retry_delay", "timeout",
        "for_each", "max_parallel",
    ]
    static let taskTypeKeys: [String: [String]] = [
        "shell": ["command", "script", "env", "workdir", "env_passthrough"],
        "http": ["method", "url", "headers", "body", "expect_status"],
        "noop": [],
        "sleep": ["duration"],
        "workflow": ["workflow", "params", "wait"],
    ]

    /// The definition read from `yaml` (nil when the document is not a mapping) and the reader
    /// holding every problem, validation issues included.
    static func read(yaml: String, file: String) -> (WorkflowDefinition?, YAMLReader) {
        let reader = YAMLReader(file: file)
        guard let root = reader.read(yaml) else { return (nil, reader) }
        if root.isNull {
            reader.report("the file is empty; a workflow needs at least a 'tasks' list", key: "", at: .start)
            return (nil, reader)
        }
        guard root.isMapping, let document = root.mapping() else {
            let message = "a workflow file must be a mapping (name, schedule, params, tasks), got \(root.summary)"
            reader.report(message, key: "", at: root.location)
            return (nil, reader)
        }
        document.checkKeys(["name", "description", "schedule", "params", "tasks", "notify", "timeout", "max_active_runs", "triggers"])
        let defaultName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let declaredName = document.string("name")
        var definition = WorkflowDefinition(
            name: declaredName ?? defaultName,
            description: document.string("description") ?? ""
        )
        definition.schedule = document.optional("schedule").flatMap(readSchedule)
        definition.timeout = document.optional("timeout")?.duration(in: Limits.taskDuration)
        definition.maxActiveRuns = document.optional("max_active_runs")?.int(in: Limits.maxActiveRuns)
        if let notify = document.mapping("notify", allowedKeys: ["on_failure", "on_success", "on_recovery", "severity"]) {
            definition.notify = RunNotifications(
                onFailure: notify.stringList("on_failure", allowSingle: true) ?? [],
                onSuccess: notify.stringList("on_success", allowSingle: true) ?? [],
                onRecovery: notify.stringList("on_recovery", allowSingle: true) ?? [],
                severity: notify.string("severity") ?? "warning")
        }
        if let params = document.mapping("params") {
            definition.params = params.entries.enumerated().map { index, entry in
                reader.record(path: "params[\(index)]", at: entry.value.keyLocation ?? entry.value.location)
                return readParam(name: entry.key, entry.value)
            }
        }
        if let tasks = document.require("tasks")?.sequence() {
            definition.tasks = tasks.map(readTask)
        }
        if let triggers = document.sequence("triggers") {
            definition.triggers = triggers.map(readTrigger)
        }

        // Validation issues under a path the reader already complained about are consequences of
        // that problem (a placeholder value), not news.
        let reported = reader.errors.map(\.key)
        for issue in definition.validationIssues() where !reported.contains(where: { related($0, issue.path) }) {
            var message = issue.message
            if issue.path == "name", declaredName == nil {
                message += "; without a 'name:' key the name is the file's name: add one, e.g. name: my-workflow"
            }
            reader.report(message, key: issue.path, at: reader.location(of: issue.path))
        }
        return (definition, reader)
    }

    private static func readSchedule(_ node: YAMLNode) -> ScheduleDefinition? {
        if node.isScalar {
            guard let cron = node.string() else { return nil }
            node.reader.record(path: "schedule.cron", at: node.location)
            return ScheduleDefinition(cron: cron)
        }
        guard node.isMapping, let schedule = node.mapping(allowedKeys: ["cron", "timezone", "catchup", "paused"]) else {
            node.fail("expected a cron expression (\"0 2 * * *\") or a mapping with 'cron', 'timezone', 'catchup' and 'paused', got \(node.summary)")
            return nil
        }
        return ScheduleDefinition(
            cron: schedule.require("cron")?.string() ?? "",
            timeZone: schedule.string("timezone") ?? "UTC",
            catchup: schedule.optional("catchup")?.oneOf(CatchupPolicy.self, what: "catchup policy") ?? .latest,
            paused: schedule.optional("paused")?.bool() ?? false
        )
    }

    /// One item of `triggers:`; a placeholder when it is not readable (the reader has the error,
    /// and the placeholder keeps the other items' indexes).
    private static func readTrigger(_ node: YAMLNode) -> WorkflowTrigger {
        let placeholder = WorkflowTrigger.webhook(WebhookTrigger(name: "", secretEnvironmentVariable: ""))
        guard node.isMapping, let trigger = node.mapping(allowedKeys: ["webhook"]) else {
            node.fail("expected a trigger such as {webhook: {name: github-push, secret_env: GH_SECRET, params: {ref: \"{{ body.ref }}\"}}}, got \(node.summary)")
            return placeholder
        }
        guard let webhook = trigger.require("webhook")?.mapping(allowedKeys: ["name", "secret_env", "params", "delivery_header"]) else {
            return placeholder
        }
        return .webhook(WebhookTrigger(
            name: webhook.require("name")?.string() ?? "",
            secretEnvironmentVariable: webhook.require("secret_env")?.string() ?? "",
            params: webhook.stringMap("params") ?? [:],
            deliveryHeader: webhook.string("delivery_header") ?? WebhookTrigger.defaultDeliveryHeader
        ))
    }

    private static func readParam(name: String, _ node: YAMLNode) -> ParamDefinition {
        if node.isScalar, !node.isNull {
            return ParamDefinition(name, type: node.oneOf(ParamType.self, what: "parameter type") ?? .string)
        }
        guard node.isMapping, let param = node.mapping(allowedKeys: ["type", "default", "description", "secret"]) else {
            node.fail(
                "expected a parameter type (string, int, float, bool, json) or a mapping with 'type' and 'default', got \(node.summary)"
            )
            return ParamDefinition(name, type: .string)
        }
        let type = param.optional("type")?.oneOf(ParamType.self, what: "parameter type") ?? .string
        return ParamDefinition(
            name,
            type: type,
            default: param["default"].map { defaultValue($0, type: type) },
            description: param.string("description") ?? "",
            secret: param.bool("secret") ?? false
        )
    }

    /// A parameter default read as the parameter's type; a value of another type is reported by the
    /// reader (`expected an integer, got 'abc'`).
    private static func defaultValue(_ node: YAMLNode, type: ParamType) -> JSONValue {
        if node.isNull || type == .json { return node.json() }
        let value: JSONValue?
        switch type {
        case .string: value = node.string().map(JSONValue.string)
        case .int: value = node.int().map(JSONValue.int)
        case .float: value = node.double().map(JSONValue.double)
        case .bool: value = node.bool().map(JSONValue.bool)
        case .json: value = nil
        }
        return value ?? .null
    }

    private static func readTask(_ node: YAMLNode) -> TaskDefinition {
        guard let task = node.mapping() else { return TaskDefinition(id: "", action: .noop) }
        let id = task.require("id")?.string() ?? ""
        let typeNode = task.require("type")
        let type = typeNode?.oneOf(taskTypes, what: "task type")
        let allowed = commonTaskKeys + (type.flatMap { taskTypeKeys[$0] } ?? taskTypes.flatMap { taskTypeKeys[$0] ?? [] })
        task.checkKeys(allowed) { key in
            guard let type, let owner = taskTypes.first(where: { taskTypeKeys[$0]?.contains(key) == true }) else { return nil }
            return "'\(key)' is only allowed on \(owner) tasks, not on \(type) tasks"
        }

        let action: TaskAction
        switch type {
        case "shell":
            var command: [String]?
            if let commandNode = task.optional("command") {
                if commandNode.isScalar {
                    commandNode.fail(
                        "expected a list of arguments (e.g. [echo, hello]), got \(commandNode.summary); use 'script' for a shell command line"
                    )
                    command = [""]
                } else {
                    command = commandNode.stringList() ?? [""]
                }
            }
            action = .shell(ShellAction(
                command: command,
                script: task.string("script"),
                environment: task.stringMap("env") ?? [:],
                workingDirectory: task.string("workdir"),
                environmentPassthrough: task.stringList("env_passthrough", allowSingle: true) ?? []
            ))
        case "http":
            var body: String?
            if let bodyNode = task.optional("body") {
                body = bodyNode.isScalar ? bodyNode.string() : bodyNode.json().compactJSON
            }
            action = .http(HTTPAction(
                method: task.string("method")?.uppercased(),
                url: task.require("url")?.string() ?? "",
                headers: task.stringMap("headers") ?? [:],
                body: body,
                expectStatus: task.intList("expect_status", allowSingle: true) ?? []
            ))
        case "sleep":
            action = .sleep(task.require("duration")?.duration(in: Limits.taskDuration) ?? .zero)
        case "workflow":
            var params: [String: JSONValue] = [:]
            for entry in task.mapping("params")?.entries ?? [] { params[entry.key] = entry.value.json() }
            action = .workflow(SubWorkflowAction(
                workflow: task.require("workflow")?.string() ?? "",
                params: params,
                wait: task.bool("wait") ?? true
            ))
        default:
            action = .noop
        }

        let retryDelay = task.optional("retry_delay")?.duration(in: Limits.taskDuration) ?? .seconds(1)
        var map: MapDefinition?
        if let forEach = task.optional("for_each") {
            map = MapDefinition(forEach: forEach.string() ?? "", maxParallel: task.optional("max_parallel")?.int(in: Limits.maxParallel))
        } else if let maxParallel = task.optional("max_parallel") {
            maxParallel.fail("max_parallel only applies to a task with for_each (a mapped task)")
        }
        return TaskDefinition(
            id: id,
            type: type ?? typeNode?.scalarText() ?? "noop",
            action: action,
            dependsOn: task.stringList("depends_on", allowSingle: true) ?? [],
            queue: task.string("queue") ?? "default",
            priority: task.int("priority") ?? 0,
            retry: RetryPolicy(
                retries: task.int("retries") ?? 0,
                delay: retryDelay,
                maxDelay: task.optional("max_retry_delay")?.duration(in: Limits.taskDuration) ?? max(.seconds(300), retryDelay)
            ),
            timeout: task.optional("timeout")?.duration(in: Limits.taskDuration),
            description: task.string("description") ?? "",
            map: map
        )
    }

    // MARK: - Helpers

    /// Whether one path is the other or contains it (`tasks[1]` and `tasks[1].retries`).
    static func related(_ lhs: String, _ rhs: String) -> Bool {
        func contains(_ outer: String, _ inner: String) -> Bool {
            inner == outer || inner.hasPrefix(outer + ".") || inner.hasPrefix(outer + "[")
        }
        return contains(lhs, rhs) || contains(rhs, lhs)
    }

    /// Errors by line and column, keeping the order found for errors at the same place.
    static func sorted(_ errors: [FileError]) -> [FileError] {
        errors.enumerated().sorted { lhs, rhs in
            (lhs.element.line, lhs.element.column, lhs.offset) < (rhs.element.line, rhs.element.column, rhs.offset)
        }.map(\.element)
    }

    static func readFile(_ path: String) throws(FileErrors) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let message =
                !exists ? "no such file" : isDirectory.boolValue ? "is a directory, not a file" : "cannot read file (check its permissions)"
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: message)])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: "not UTF-8 text")])
        }
        return text
    }
}
