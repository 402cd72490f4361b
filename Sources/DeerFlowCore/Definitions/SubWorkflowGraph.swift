/// The calls between workflows made by `type: workflow` tasks, and the checks that need every
/// workflow at once: unknown workflow names, cycles (`a → b → a`), and parameters given to a
/// child that it does not declare, lacks or cannot take.
///
/// ```swift
/// for issue in SubWorkflowGraph.issues(definitions) { print(issue) }
/// ```
public enum SubWorkflowGraph {
    /// A problem of a `workflow` task of one workflow, located by a path into that workflow's
    /// document (`tasks[2].params.day`).
    public struct Issue: Sendable, Hashable, CustomStringConvertible {
        /// The workflow holding the task.
        public var workflow: String
        /// Path of the offending key in that workflow's document.
        public var path: String
        public var message: String

        public init(workflow: String, path: String, message: String) {
            self.workflow = workflow
            self.path = path
            self.message = message
        }

        public var description: String { "workflow '\(workflow)': \(path): \(message)" }
    }

    /// Every problem of the sub-workflow tasks of `definitions`.
    ///
    /// - Parameters:
    ///   - definitions: the workflows, together.
    ///   - complete: whether `definitions` are all the workflows there are; only then is a name
    ///     that none of them has an error.
    public static func issues(_ definitions: [WorkflowDefinition], complete: Bool = true) -> [Issue] {
        var byName: [String: WorkflowDefinition] = [:]
        for definition in definitions where byName[definition.name] == nil { byName[definition.name] = definition }
        var issues: [Issue] = []
        for definition in definitions {
            for (index, task) in definition.tasks.enumerated() {
                guard case .workflow(let call) = task.action else { continue }
                let path = "tasks[\(index)]"
                guard let child = byName[call.workflow] else {
                    if complete {
                        let known = byName.keys.sorted().joined(separator: ", ")
                        issues.append(Issue(
                            workflow: definition.name, path: "\(path).workflow",
                            message: "unknown workflow '\(call.workflow)' (known: \(known.isEmpty ? "none" : known))"))
                    }
                    continue
                }
                issues += paramIssues(call, child: child).map { Issue(workflow: definition.name, path: "\(path)\($0.path)", message: $0.message) }
                issues += secretParamIssues(call, parent: definition, child: child).map {
                    Issue(workflow: definition.name, path: "\(path)\($0.path)", message: $0.message)
                }
            }
        }
        issues += cycles(definitions, byName: byName)
        return issues
    }

    /// What is wrong with the parameters a call gives its child, for values known before the run:
    /// unknown names, missing required parameters, and literal values of the wrong type.
    /// Templated strings (`"{{ params.day }}"`) are checked when the attempt runs.
    static func paramIssues(_ call: SubWorkflowAction, child: WorkflowDefinition) -> [(path: String, message: String)] {
        var problems: [(path: String, message: String)] = []
        let declared = Dictionary(child.params.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for key in call.params.keys.sorted() {
            guard let param = declared[key] else {
                let names = child.params.map(\.name).joined(separator: ", ")
                problems.append((".params.\(key)", "workflow '\(child.name)' has no parameter '\(key)' (\(names.isEmpty ? "it declares none" : "declared: \(names)"))"))
                continue
            }
            guard let value = call.params[key], !isTemplated(value) else { continue }
            if coerce(value, to: param.type) == nil {
                problems.append((".params.\(key)", "parameter '\(key)' of workflow '\(child.name)' is of type \(param.type.rawValue), got \(value.compactJSON)"))
            }
        }
        let missing = child.params.filter { $0.isRequired && call.params[$0.name] == nil }.map(\.name)
        if !missing.isEmpty {
            problems.append((call.params.isEmpty ? ".workflow" : ".params", "workflow '\(child.name)' requires parameter\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")); give \(missing.count == 1 ? "it" : "them") in params"))
        }
        return problems
    }

    /// A secret parameter of the parent passed to a child parameter that is not secret: the child
    /// run would show it in the API and UI and its tasks' logs would not redact it.
    static func secretParamIssues(_ call: SubWorkflowAction, parent: WorkflowDefinition, child: WorkflowDefinition) -> [(path: String, message: String)] {
        let secret = Set(parent.params.filter(\.secret).map(\.name))
        guard !secret.isEmpty else { return [] }
        let childSecret = Set(child.params.filter(\.secret).map(\.name))
        var problems: [(path: String, message: String)] = []
        for key in call.params.keys.sorted() where !childSecret.contains(key) {
            guard case .string(let text)? = call.params[key], text.contains("{{"), let template = try? Template(text) else { continue }
            if let name = template.references.first(where: { $0.root == "params" && $0.path.count >= 2 && secret.contains($0.path[1]) })?.path[1] {
                problems.append((".params.\(key)", "'\(name)' is a secret parameter, but '\(key)' of workflow '\(child.name)' is not: declare it secret: true there, or its value would be shown and logged"))
            }
        }
        return problems
    }

    /// Whether a parameter value holds a template (`{{ }}`), rendered only when the attempt runs.
    public static func isTemplated(_ value: JSONValue) -> Bool {
        if case .string(let text) = value { return text.contains("{{") }
        return false
    }

    /// A value as a parameter of `type` takes it: as it is when the type accepts it, else a string
    /// read as the command line reads it (`"5"` for an `int`); nil when neither works.
    public static func coerce(_ value: JSONValue, to type: ParamType) -> JSONValue? {
        if type.accepts(value) { return value }
        if case .string(let text) = value { return type.parse(commandLine: text) }
        return nil
    }

    /// Cycles of workflows starting each other, each reported once, at the task of its first
    /// workflow (in declaration order) that starts the next one. Self calls are reported by
    /// ``WorkflowDefinition/validationIssues()``.
    static func cycles(_ definitions: [WorkflowDefinition], byName: [String: WorkflowDefinition]) -> [Issue] {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var stack: [String] = []
        var found: [[String]] = []

        func visit(_ name: String) {
            switch marks[name] {
            case .done: return
            case .visiting:
                if let start = stack.firstIndex(of: name) { found.append(Array(stack[start...]) + [name]) }
                return
            case nil: break
            }
            marks[name] = .visiting
            stack.append(name)
            for child in children(of: byName[name]) where child != name && byName[child] != nil {
                visit(child)
            }
            stack.removeLast()
            marks[name] = .done
        }
        for definition in definitions { visit(definition.name) }

        return found.compactMap { cycle in
            guard let first = byName[cycle[0]], cycle.count > 1,
                  let index = first.tasks.firstIndex(where: { if case .workflow(let call) = $0.action { call.workflow == cycle[1] } else { false } })
            else { return nil }
            return Issue(
                workflow: first.name, path: "tasks[\(index)].workflow",
                message: "sub-workflow cycle: \(cycle.joined(separator: " → ")) (each run would start another without end)")
        }
    }

    /// The workflows a workflow's tasks start, in task order.
    static func children(of definition: WorkflowDefinition?) -> [String] {
        (definition?.tasks ?? []).compactMap { task in
            if case .workflow(let call) = task.action { call.workflow } else { nil }
        }
    }

    /// The longest chain of runs waiting for each other that a run of any of `definitions` can
    /// make (a run of a workflow without waiting sub-workflow tasks: 0; a → b → c: 2). Each
    /// waiting parent holds a worker slot, so a chain needs at least this many slots plus one.
    /// Ignores cycles (reported by ``issues(_:complete:)``).
    public static func longestWaitingChain(_ definitions: [WorkflowDefinition]) -> (depth: Int, chain: [String]) {
        var byName: [String: WorkflowDefinition] = [:]
        for definition in definitions where byName[definition.name] == nil { byName[definition.name] = definition }
        var memo: [String: [String]] = [:]
        func longest(_ name: String, visiting: Set<String>) -> [String] {
            if let known = memo[name] { return known }
            var best: [String] = [name]
            for task in byName[name]?.tasks ?? [] {
                guard case .workflow(let call) = task.action, call.wait, byName[call.workflow] != nil,
                      !visiting.contains(call.workflow) else { continue }
                let chain = [name] + longest(call.workflow, visiting: visiting.union([name]))
                if chain.count > best.count { best = chain }
            }
            memo[name] = best
            return best
        }
        let chain = definitions.map { longest($0.name, visiting: [$0.name]) }.max { $0.count < $1.count } ?? []
        return (max(0, chain.count - 1), chain)
    }
}
