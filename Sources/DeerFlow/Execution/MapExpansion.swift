import DeerFlowCore
import Foundation

extension TaskExecutor {
    /// The expansion attempt of a mapped task: evaluates its `for_each` (or, for a Swift task,
    /// its `over` closure) and answers the items, one instance each, for the store to insert.
    /// A value that is not a list, or more items than `max_map_instances`, fails the attempt.
    func expand(_ attempt: ClaimedAttempt, task: TaskDefinition, map: MapDefinition, entry: WorkflowRegistry.Entry) async -> AttemptCompletion {
        let value: JSONValue
        do {
            if let forEach = map.forEach {
                let template = try Template(forEach)
                let scope = try await TaskTemplates.scope(for: attempt, references: template.references, engine: engine)
                value = try template.value(scope)
            } else if let over = entry.workflow.mapSource(of: task.id) {
                let secrets = SecretValues(params: attempt.params, definition: entry.definition, configured: engine.configuredSecrets)
                let log = TaskLog(limit: engine.configuration.taskLogLimit, secrets: secrets)
                value = try await over(makeContext(attempt, entry: entry, log: log, secrets: secrets))
            } else {
                return failure(attempt, "mapped task '\(task.id)' has no for_each expression and no Swift 'over' closure in this worker")
            }
        } catch {
            return failure(attempt, "for_each of '\(task.id)' could not be evaluated: \(Self.describe(error))")
        }
        guard case .array(let items) = value else {
            return failure(attempt, "for_each of '\(task.id)' gave \(value.kindDescription), not a list: \(value.compactJSON.prefix(200)); it must give a JSON array")
        }
        if let problem = MapProgress.limitProblem(count: items.count, limit: engine.configuration.maxMapInstances) {
            return failure(attempt, problem)
        }
        let note = items.isEmpty ? "for_each gave an empty list: the task succeeds with []" : "expanded into \(items.count) instances"
        try? await engine.store.appendLog(attempt: attempt.id, text: "[deerflow] \(note)\n", limit: engine.configuration.taskLogLimit)
        return .expansion(attemptID: attempt.id, items: items, maxParallel: map.maxParallel, finishedAt: Date())
    }

    private func failure(_ attempt: ClaimedAttempt, _ message: String) -> AttemptCompletion {
        AttemptCompletion(attemptID: attempt.id, outcome: .failure(message: message), finishedAt: Date())
    }
}

extension JSONValue {
    /// What kind of value this is, for messages: `an object`, `a string`, `null`.
    var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        }
    }
}
