import Foundation

/// One problem found in a workflow definition, located by a path into its document
/// (`tasks[2].depends_on[0]`), so file loaders can point at a line.
public struct ValidationIssue: Sendable, Hashable, CustomStringConvertible {
    /// Path of the offending key, e.g. `tasks[1].retries`; empty for the whole workflow.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// A definition that did not validate; every issue is listed.
public struct WorkflowValidationError: Error, Sendable, CustomStringConvertible {
    public var workflow: String
    public var issues: [ValidationIssue]

    public var description: String {
        "workflow '\(workflow)' is invalid:\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

extension WorkflowDefinition {
    /// What is wrong with a task's or a run's `timeout` (positive, within ``Limits/taskDuration``); nil: fine or none.
    static func timeoutProblem(_ timeout: Duration?) -> String? {
        guard let timeout else { return nil }
        if timeout <= .zero { return "must be positive" }
        return Limits.problem(timeout, outside: Limits.taskDuration)
    }

    /// Names of workflows, tasks, params and queues: letters, digits, `_`, `-`, `.`; 1–128 characters.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= 128 else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "_" || scalar == "-" || scalar == ".")
        }
    }

    /// Names a user declares that end up in URLs, paths and command lines: workflow names, task
    /// ids and webhook names. An ASCII letter or digit first, then ASCII letters, digits, `_`, `-`
    /// and `.`; 1–128 characters. So `.`, `..`, `-x` and `--help` are not names: a workflow
    /// named `..` could not be triggered through `/api/v1/workflows/{name}/runs`, and `--help`
    /// would be read as a flag by `deerflow trigger`.
    public static func isSafeName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII, CharacterSet.alphanumerics.contains(first) else { return false }
        return isValidName(name)
    }

    /// "'..' is not a valid task id: start with a letter or digit, ..." for what ``isSafeName(_:)`` refuses.
    static func unsafeNameMessage(_ name: String, what: String) -> String {
        "'\(name)' is not a valid \(what): start with a letter or digit, then use letters, digits, '_', '-', '.' (at most 128 characters)"
    }

    /// The first field of a task's action that holds a NUL character, by its name within the task
    /// (`script`, `env.KEY`, `command[1]`, `headers.X`): a process argument, environment variable
    /// or header cannot hold one, and passing it on would cut the value there.
    static func nulField(of action: TaskAction) -> String? {
        func hasNUL(_ text: String) -> Bool { text.utf8.contains(0) }
        switch action {
        case .shell(let shell):
            for (index, item) in (shell.command ?? []).enumerated() where hasNUL(item) { return "command[\(index)]" }
            if let script = shell.script, hasNUL(script) { return "script" }
            for key in shell.environment.keys.sorted() where hasNUL(key) || hasNUL(shell.environment[key] ?? "") { return "env.\(key)" }
            if let directory = shell.workingDirectory, hasNUL(directory) { return "workdir" }
        case .http(let http):
            if hasNUL(http.url) { return "url" }
            for key in http.headers.keys.sorted() where hasNUL(key) || hasNUL(http.headers[key] ?? "") { return "headers.\(key)" }
        case .noop, .sleep, .workflow, .swift:
            break
        }
        return nil
    }

    /// Every problem of this definition: names, duplicate task ids, unknown or self dependencies,
    /// cycles (naming the cycle), retries, priorities and durations against ``Limits``, the cron
    /// schedule and time zone,
    /// parameter defaults that do not match their type, and the webhooks of `triggers:`.
    public func validationIssues() -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        if !Self.isSafeName(name) {
            issues.append(.init(path: "name", message: Self.unsafeNameMessage(name, what: "workflow name")))
        }
        if let schedule {
            if let zone = TimeZone.named(schedule.timeZone) {
                do {
                    let cron = try CronSchedule(schedule.cron, timeZone: zone)
                    if let problem = cron.neverFiresProblem {
                        issues.append(.init(path: "schedule.cron", message: "cron expression '\(schedule.cron)' never fires: \(problem)"))
                    }
                } catch {
                    issues.append(.init(path: "schedule.cron", message: "invalid cron expression '\(schedule.cron)': \(error.message)"))
                }
            } else {
                issues.append(.init(path: "schedule.timezone", message: "unknown time zone '\(schedule.timeZone)' (use an IANA name such as 'Europe/Berlin')"))
            }
        }
        if let maxActiveRuns, let problem = Limits.problem(maxActiveRuns, outside: Limits.maxActiveRuns) {
            issues.append(.init(path: "max_active_runs", message: problem))
        }
        if let notify {
            for (key, channels) in [("on_failure", notify.onFailure), ("on_success", notify.onSuccess), ("on_recovery", notify.onRecovery)] {
                for (index, channel) in channels.enumerated() where !Self.isValidName(channel) {
                    issues.append(.init(path: "notify.\(key)[\(index)]", message: "'\(channel)' is not a channel name of notifications.yaml"))
                }
            }
            if notify.channels.isEmpty {
                issues.append(.init(path: "notify", message: "names no channel: give on_failure, on_success or on_recovery a list of channels from notifications.yaml"))
            }
            if !Self.isValidName(notify.severity) {
                issues.append(.init(path: "notify.severity", message: "'\(notify.severity)' is not a valid severity (e.g. critical, warning, info)"))
            }
        }
        if let problem = Self.timeoutProblem(timeout) {
            issues.append(.init(path: "timeout", message: problem))
        }
        var paramNames: Set<String> = []
        for (index, param) in params.enumerated() {
            let path = "params.\(param.name)"
            if !Self.isValidName(param.name) || param.name.contains(".") {
                issues.append(.init(path: path, message: "'\(param.name)' is not a valid parameter name (use letters, digits, '_', '-')"))
            }
            if !paramNames.insert(param.name).inserted {
                issues.append(.init(path: "params[\(index)]", message: "duplicate parameter '\(param.name)'"))
            }
            if let value = param.defaultValue, !param.type.accepts(value) {
                issues.append(.init(path: "\(path).default", message: "default \(value.compactJSON) is not of type \(param.type.rawValue)"))
            } else if case .string(let text)? = param.defaultValue, text.utf8.contains(0) {
                issues.append(.init(path: "\(path).default", message: "contains a NUL character (\\0), which the DEERFLOW_PARAM_ variable of a shell task cannot hold; remove it"))
            }
        }
        if tasks.isEmpty {
            issues.append(.init(path: "tasks", message: "a workflow needs at least one task"))
        }
        var firstIndex: [String: Int] = [:]
        let taskIDs = Set(tasks.map(\.id))
        var upstream = UpstreamIndex(tasks)
        for (index, task) in tasks.enumerated() {
            let path = "tasks[\(index)]"
            if !Self.isSafeName(task.id) {
                issues.append(.init(path: "\(path).id", message: Self.unsafeNameMessage(task.id, what: "task id")))
            }
            if let field = Self.nulField(of: task.action) {
                issues.append(.init(path: "\(path).\(field)", message: "contains a NUL character (\\0), which a process argument, environment variable or header cannot hold; remove it"))
            }
            if let earlier = firstIndex[task.id] {
                issues.append(.init(path: "\(path).id", message: "duplicate task id '\(task.id)' (first declared at tasks[\(earlier)])"))
            } else {
                firstIndex[task.id] = index
            }
            if task.type.isEmpty {
                issues.append(.init(path: "\(path).type", message: "task type must not be empty"))
            }
            if !Self.isValidName(task.queue) {
                issues.append(.init(path: "\(path).queue", message: "'\(task.queue)' is not a valid queue name"))
            }
            if let problem = Limits.problem(task.retry.retries, outside: Limits.retries) {
                issues.append(.init(path: "\(path).retries", message: problem))
            }
            if let problem = Limits.problem(task.priority, outside: Limits.priority) {
                issues.append(.init(path: "\(path).priority", message: problem))
            }
            if let problem = Limits.problem(task.retry.delay, outside: Limits.taskDuration) {
                issues.append(.init(path: "\(path).retry_delay", message: problem))
            }
            if let problem = Limits.problem(task.retry.maxDelay, outside: Limits.taskDuration) {
                issues.append(.init(path: "\(path).max_retry_delay", message: problem))
            } else if task.retry.maxDelay < task.retry.delay {
                issues.append(.init(path: "\(path).max_retry_delay", message: "must be at least retry_delay (\(DurationText.format(task.retry.delay)))"))
            }
            if let problem = Self.timeoutProblem(task.timeout) {
                issues.append(.init(path: "\(path).timeout", message: problem))
            }
            if let map = task.map {
                issues += mapIssues(map, of: task, at: index, upstream: &upstream)
            }
            switch task.action {
            case .shell(let shell):
                if shell.command == nil && shell.script == nil {
                    issues.append(.init(path: path, message: "a shell task needs 'command' (argv list) or 'script'"))
                } else if shell.command != nil && shell.script != nil {
                    issues.append(.init(path: "\(path).script", message: "give either 'command' or 'script', not both"))
                } else if let command = shell.command, command.isEmpty {
                    issues.append(.init(path: "\(path).command", message: "must not be empty"))
                }
                for (index, pattern) in shell.environmentPassthrough.enumerated() where !TaskEnvironment.isValidPattern(pattern) {
                    issues.append(.init(path: "\(path).env_passthrough[\(index)]", message: "'\(pattern)' is not a variable name or prefix (e.g. AWS_REGION, AWS_*)"))
                }
            case .http(let http):
                // A templated URL is checked when it is rendered, before the request.
                if URL.http(http.url) == nil && !http.url.contains("{{") {
                    issues.append(.init(path: "\(path).url", message: "'\(http.url)' is not an http(s) URL"))
                }
                if http.method.isEmpty || !http.method.allSatisfy({ $0.isLetter && $0.isUppercase }) {
                    issues.append(.init(path: "\(path).method", message: "'\(http.method)' is not an HTTP method (e.g. GET, POST)"))
                }
                for status in http.expectStatus where !(100...599).contains(status) {
                    issues.append(.init(path: "\(path).expect_status", message: "\(status) is not an HTTP status"))
                }
            case .sleep(let duration):
                if let problem = Limits.problem(duration, outside: Limits.taskDuration) {
                    issues.append(.init(path: "\(path).duration", message: problem))
                }
            case .workflow(let child):
                if !Self.isSafeName(child.workflow) {
                    issues.append(.init(path: "\(path).workflow", message: Self.unsafeNameMessage(child.workflow, what: "workflow name")))
                } else if child.workflow == name {
                    issues.append(.init(path: "\(path).workflow", message: "workflow '\(name)' starts itself: a sub-workflow cycle \(name) → \(name) never ends"))
                }
                for key in child.params.keys.sorted() {
                    guard case .string(let text) = child.params[key], text.contains("{{"),
                          let template = try? Template(text), template.references.contains(where: { $0.root == "secrets" }) else { continue }
                    issues.append(.init(
                        path: "\(path).params.\(key)",
                        message: "a secret would be stored as a parameter of the child run; secrets are never stored: let the child's tasks read {{ secrets.NAME }} themselves"))
                }
            case .noop, .swift:
                break
            }
            var seen: Set<String> = []
            for (depIndex, dependency) in task.dependsOn.enumerated() {
                let depPath = "\(path).depends_on[\(depIndex)]"
                if dependency == task.id {
                    issues.append(.init(path: depPath, message: "task '\(task.id)' depends on itself"))
                } else if !taskIDs.contains(dependency) {
                    issues.append(.init(path: depPath, message: "unknown task '\(dependency)' in depends_on of '\(task.id)'"))
                }
                if !seen.insert(dependency).inserted {
                    issues.append(.init(path: depPath, message: "'\(dependency)' listed twice"))
                }
            }
        }
        if let cycle = dependencyCycle() {
            let start = firstIndex[cycle[0]] ?? 0
            issues.append(.init(path: "tasks[\(start)].depends_on", message: "dependency cycle: \(cycle.joined(separator: " → "))"))
        } else {
            issues += templateIssues()
        }
        issues += triggerIssues()
        return issues
    }

    /// What is wrong with a mapped task's `for_each` and `max_parallel`: the expression must be a
    /// single `{{ }}` reading only parameters and upstream tasks' outputs; `max_parallel` in
    /// ``Limits/maxParallel``.
    func mapIssues(_ map: MapDefinition, of task: TaskDefinition, at index: Int, upstream: inout UpstreamIndex) -> [ValidationIssue] {
        let path = "tasks[\(index)]"
        var issues: [ValidationIssue] = []
        if let maxParallel = map.maxParallel, let problem = Limits.problem(maxParallel, outside: Limits.maxParallel) {
            issues.append(.init(path: "\(path).max_parallel", message: problem))
        }
        if index > MapProgress.maxMappedPosition {
            issues.append(.init(path: "\(path).for_each", message: "a mapped task must be among the first \(MapProgress.maxMappedPosition + 1) tasks of a workflow; declare '\(task.id)' earlier"))
        }
        guard let forEach = map.forEach else {
            if case .swift = task.action {} else {
                issues.append(.init(path: "\(path).for_each", message: "a mapped task needs a for_each expression, e.g. \"{{ tasks.list.output.files }}\""))
            }
            return issues
        }
        if let problem = forEachProblem(forEach, of: task, upstream: &upstream) {
            issues.append(.init(path: "\(path).for_each", message: problem))
        }
        return issues
    }

    /// Throws ``WorkflowValidationError`` listing every issue, if any.
    public func validate() throws(WorkflowValidationError) {
        let issues = validationIssues()
        if !issues.isEmpty { throw WorkflowValidationError(workflow: name, issues: issues) }
    }

    /// A dependency cycle, as task ids with the first repeated at the end (`a → b → a`), or nil.
    ///
    /// One depth-first walk over the dependencies, with its own stack instead of recursion, so a
    /// chain of any length takes linear time and no call stack.
    public func dependencyCycle() -> [String]? {
        var byID: [String: TaskDefinition] = [:]
        for task in tasks where byID[task.id] == nil { byID[task.id] = task }
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        // The path being walked: each task with the position of the next dependency to follow.
        var path: [(id: String, next: Int)] = []
        var onPath: [String: Int] = [:] // id → position in `path`

        for root in tasks where marks[root.id] == nil {
            marks[root.id] = .visiting
            onPath[root.id] = 0
            path.append((root.id, 0))
            while let top = path.last {
                let dependencies = byID[top.id]?.dependsOn ?? []
                guard top.next < dependencies.count else {
                    path.removeLast()
                    onPath[top.id] = nil
                    marks[top.id] = .done
                    continue
                }
                path[path.count - 1].next += 1
                // A task's dependencies are edges towards what must run first; following them finds any cycle.
                let dependency = dependencies[top.next]
                guard dependency != top.id, byID[dependency] != nil else { continue }
                switch marks[dependency] {
                case .done:
                    continue
                case .visiting:
                    guard let start = onPath[dependency] else { continue }
                    let cycle = path[start...].map(\.id) + [dependency]
                    return cycle.reversed()
                case nil:
                    marks[dependency] = .visiting
                    onPath[dependency] = path.count
                    path.append((dependency, 0))
                }
            }
        }
        return nil
    }

    /// For each task index, the indices of the tasks that depend on it directly.
    public func dependentIndices() -> [[Int]] {
        var index: [String: Int] = [:]
        for (offset, task) in tasks.enumerated() where index[task.id] == nil { index[task.id] = offset }
        var dependents = Array(repeating: [Int](), count: tasks.count)
        for (offset, task) in tasks.enumerated() {
            for dependency in task.dependsOn {
                if let parent = index[dependency] { dependents[parent].append(offset) }
            }
        }
        return dependents
    }

    /// Validates run parameters against the declared ones and fills in defaults.
    ///
    /// Throws ``ParamsError`` for unknown names, wrong types and missing required parameters.
    public func resolveParams(_ given: [String: JSONValue]) throws(ParamsError) -> [String: JSONValue] {
        var problems: [String] = []
        var resolved: [String: JSONValue] = [:]
        let declared = Dictionary(params.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for key in given.keys.sorted() where declared[key] == nil {
            let known = params.map(\.name).joined(separator: ", ")
            problems.append("unknown parameter '\(key)'" + (known.isEmpty ? " (this workflow declares none)" : " (declared: \(known))"))
        }
        for param in params {
            if let value = given[param.name] {
                if Self.containsNUL(value) {
                    // A task receives a parameter as a C string (an environment variable, an
                    // argument): it would end at the NUL, silently.
                    problems.append("parameter '\(param.name)' contains a NUL character (\\u0000), which no task can receive; remove it")
                } else if param.type.accepts(value) {
                    resolved[param.name] = (param.type == .int ? value.intValue.map(JSONValue.int) : nil) ?? value
                } else {
                    problems.append("parameter '\(param.name)' must be of type \(param.type.rawValue), got \(value.typeName)")
                }
            } else if let value = param.defaultValue {
                resolved[param.name] = value
            } else {
                problems.append("missing required parameter '\(param.name)' (\(param.type.rawValue))")
            }
        }
        if !problems.isEmpty { throw ParamsError(problems: problems) }
        return resolved
    }
}

extension WorkflowDefinition {
    /// Whether a string in `value` (a key or a value, at any depth) holds U+0000.
    static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): return text.utf8.contains(0)
        case .array(let items): return items.contains(where: containsNUL)
        case .object(let object): return object.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }
}

/// Run parameters that do not match the workflow's declaration.
public struct ParamsError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "; ") }
}
