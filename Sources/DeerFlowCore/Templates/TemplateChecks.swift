import Foundation

extension WorkflowDefinition {
    /// The names a task's templates can start with.
    public static let templateRoots = ["params", "tasks", "run", "secrets"]
    /// The keys of `run` in templates.
    public static let runTemplateKeys = ["id", "logical_time", "workflow"]

    /// The templated fields of a task, by their path in the workflow document (`tasks[1].url`,
    /// `tasks[1].env.DAY`, `tasks[0].command[2]`, `tasks[2].params.day`), with their text.
    public static func templatedFields(of task: TaskDefinition, at path: String) -> [(path: String, text: String)] {
        templatedFields(of: task.action).map { ("\(path).\($0.name)", $0.text) }
    }

    /// The templated fields of an action, by their name within the task (`url`, `env.DAY`,
    /// `command[2]`, `params.day`), with their text. `script:` is not one: a value reaches a shell
    /// only as an environment variable or an argv item, never as script text.
    public static func templatedFields(of action: TaskAction) -> [(name: String, text: String)] {
        var fields: [(name: String, text: String)] = []
        switch action {
        case .shell(let shell):
            for (index, item) in (shell.command ?? []).enumerated() { fields.append(("command[\(index)]", item)) }
            for key in shell.environment.keys.sorted() { fields.append(("env.\(key)", shell.environment[key] ?? "")) }
        case .http(let http):
            fields.append(("url", http.url))
            for key in http.headers.keys.sorted() { fields.append(("headers.\(key)", http.headers[key] ?? "")) }
            if let body = http.body { fields.append(("body", body)) }
        case .workflow(let call):
            // String params of a child run; other values are passed as written.
            for key in call.params.keys.sorted() {
                if case .string(let text) = call.params[key] { fields.append(("params.\(key)", text)) }
            }
        case .noop, .sleep, .swift:
            break
        }
        return fields
    }

    /// Every task's upstream tasks: what it depends on, directly or through others.
    ///
    /// Quadratic in a long chain (each task's set holds every task before it); validation asks
    /// ``UpstreamIndex`` about the tasks templates name instead.
    public func upstreamTasks() -> [String: Set<String>] {
        var byID: [String: TaskDefinition] = [:]
        for task in tasks where byID[task.id] == nil { byID[task.id] = task }
        var memo: [String: Set<String>] = [:]
        func upstream(_ id: String, depth: Int) -> Set<String> {
            if let known = memo[id] { return known }
            guard depth <= tasks.count, let task = byID[id] else { return [] }
            var result: Set<String> = []
            for dependency in task.dependsOn where dependency != id {
                result.insert(dependency)
                result.formUnion(upstream(dependency, depth: depth + 1))
            }
            memo[id] = result
            return result
        }
        for task in tasks { _ = upstream(task.id, depth: 0) }
        return memo
    }

    /// Templates that do not parse, and references no run can satisfy: an undeclared parameter,
    /// a task that is not upstream (its output would not exist yet), an unknown `run` key or root
    /// name. References to `secrets` are checked against `deerflow.yaml` by the server and
    /// `deerflow validate`, which know it.
    func templateIssues() -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        let declared = Set(params.map(\.name))
        var upstream = UpstreamIndex(tasks)
        for (index, task) in tasks.enumerated() {
            let path = "tasks[\(index)]"
            if case .shell(let shell) = task.action, let script = shell.script, let reference = Self.deerflowReference(in: script) {
                issues.append(.init(
                    path: "\(path).script",
                    message: "templates are not expanded in 'script' (a value must never become shell code): pass `\(reference)` as a variable, e.g. env: {VALUE: \"\(reference)\"}, and use \"$VALUE\" in the script"))
            }
            for field in Self.templatedFields(of: task, at: path) {
                let template: Template
                do {
                    template = try Template(field.text)
                } catch {
                    issues.append(.init(path: field.path, message: "template: \(error.message)"))
                    continue
                }
                for reference in template.references {
                    if let problem = referenceProblem(reference, task: task, declared: declared, upstream: &upstream) {
                        issues.append(.init(path: field.path, message: "`{{ \(reference) }}`: \(problem)"))
                    }
                }
            }
        }
        return issues
    }

    /// What is wrong with one reference of a template of `task`, or nil.
    func referenceProblem(_ reference: TemplateReference, task: TaskDefinition, declared: Set<String>, upstream: inout UpstreamIndex) -> String? {
        let path = reference.path
        switch reference.root {
        case "params":
            guard path.count >= 2 else { return "name a parameter: params.<name>" }
            if !declared.contains(path[1]) {
                let known = params.map(\.name).joined(separator: ", ")
                return "the workflow declares no parameter '\(path[1])'" + (known.isEmpty ? "" : " (declared: \(known))")
            }
        case "tasks":
            guard path.count >= 3, path[2] == "output" else { return "read a task's output: tasks.<id>.output" }
            let id = path[1]
            if id == task.id { return "a task cannot read its own output" }
            if !upstream.hasTask(id) { return "there is no task '\(id)'" }
            if !upstream.isUpstream(id, of: task.id) {
                return "task '\(id)' is not upstream of '\(task.id)', so its output may not exist yet: add it to depends_on"
            }
        case "run":
            guard path.count == 2, Self.runTemplateKeys.contains(path[1]) else {
                return "run has \(Self.runTemplateKeys.map { "run.\($0)" }.joined(separator: ", "))"
            }
        case "secrets":
            guard path.count == 2 else { return "name a secret: secrets.<NAME>" }
        case "item", "index":
            // A mapped instance's item and position.
            if task.map == nil { return "'\(reference.root)' exists only in a mapped task (one with for_each)" }
        default:
            return "unknown name '\(reference.root)'; templates can read \(Self.templateRoots.joined(separator: ", "))"
        }
        return nil
    }

    /// The first `{{ params.… }}`-like expression of a script (one that reads a DeerFlow value),
    /// so other `{{ }}` (Go templates of `docker --format`, say) stay allowed.
    static func deerflowReference(in script: String) -> String? {
        var rest = Substring(script)
        while let open = rest.range(of: "{{"), let close = rest[open.upperBound...].range(of: "}}") {
            let inner = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let root = inner.prefix { $0 != "." && $0 != "[" && $0 != " " && $0 != "|" }
            if templateRoots.contains(String(root)), inner.count > root.count { return "{{ \(inner) }}" }
            rest = rest[close.upperBound...]
        }
        return nil
    }
}

/// Answers "is task A upstream of task B" for the references templates make, without building
/// every task's upstream set (quadratic in a long chain): a direct dependency is answered at
/// once, anything else by one walk up from B, kept for B's other references. Validating a
/// workflow is linear in its tasks and dependencies as long as templates read direct
/// dependencies; each task whose templates read a farther ancestor adds one walk.
struct UpstreamIndex {
    private var byID: [String: TaskDefinition] = [:]
    private var walked: [String: Set<String>] = [:]

    init(_ tasks: [TaskDefinition]) {
        for task in tasks where byID[task.id] == nil { byID[task.id] = task }
    }

    func hasTask(_ id: String) -> Bool { byID[id] != nil }

    /// Whether `ancestor` is a dependency of `id`, directly or through others.
    mutating func isUpstream(_ ancestor: String, of id: String) -> Bool {
        guard let task = byID[id] else { return false }
        if task.dependsOn.contains(ancestor) { return ancestor != id }
        if let known = walked[id] { return known.contains(ancestor) }
        var seen: Set<String> = []
        var pending = task.dependsOn.filter { $0 != id }
        while let next = pending.popLast() {
            guard seen.insert(next).inserted else { continue }
            pending += byID[next]?.dependsOn ?? []
        }
        walked[id] = seen
        return seen.contains(ancestor)
    }
}
