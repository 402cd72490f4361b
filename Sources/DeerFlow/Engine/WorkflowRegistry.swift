public import DeerFlowCore

/// The workflows a process knows, validated, with what creating a run needs precomputed.
public struct WorkflowRegistry: Sendable {
    /// One registered workflow.
    public struct Entry: Sendable {
        public let workflow: Workflow
        public let definition: WorkflowDefinition
        public let versionID: String
        /// Task rows of a new run, in declaration order.
        let taskTemplate: [NewTask]
        let taskIndex: [String: Int]
    }

    private let entries: [String: Entry]

    /// Validates and registers workflows. Throws ``WorkflowValidationError`` for an invalid
    /// definition and ``DeerFlowError`` for two workflows with one name, or for `workflow` tasks
    /// naming a workflow not registered, forming a cycle, or giving parameters the child refuses
    /// (``SubWorkflowGraph``): a process starts the child runs of the attempts it executes.
    public init(_ workflows: [Workflow]) throws {
        var entries: [String: Entry] = [:]
        for workflow in workflows {
            let definition = workflow.definition
            try definition.validate()
            for task in definition.tasks where task.action == .swift && workflow.body(of: task.id) == nil {
                throw DeerFlowError(.badRequest, "workflow '\(definition.name)': task '\(task.id)' has no Swift body")
            }
            guard entries[definition.name] == nil else {
                throw DeerFlowError(.conflict, "two workflows are named '\(definition.name)'; workflow names must be unique")
            }
            let dependents = definition.dependentIndices()
            let template = definition.tasks.enumerated().map { index, task in
                NewTask(
                    index: index, id: task.id, type: task.type, queue: task.queue, priority: task.priority,
                    dependencyCount: task.dependsOn.count, dependents: dependents[index], retry: task.retry, timeout: task.timeout
                )
            }
            var taskIndex: [String: Int] = [:]
            for (index, task) in definition.tasks.enumerated() { taskIndex[task.id] = index }
            entries[definition.name] = Entry(
                workflow: workflow, definition: definition, versionID: definition.versionID,
                taskTemplate: template, taskIndex: taskIndex
            )
        }
        let issues = SubWorkflowGraph.issues(workflows.map(\.definition))
        if !issues.isEmpty {
            throw DeerFlowError(.badRequest, "sub-workflow tasks are invalid:\n" + issues.map { "  - \($0)" }.joined(separator: "\n"))
        }
        self.entries = entries
    }

    /// The workflow with this name.
    public subscript(name: String) -> Entry? { entries[name] }

    /// All workflows, sorted by name.
    public var all: [Entry] { entries.values.sorted { $0.definition.name < $1.definition.name } }

    public var isEmpty: Bool { entries.isEmpty }
}
