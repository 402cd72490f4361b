/// Which tasks use a queue that no worker serves: such a task is queued and waits, silently, for a
/// worker that never comes. `deerflow validate` and the server's start warn about them.
public enum QueueCoverage {
    /// The tasks of one workflow on one queue that no worker serves.
    public struct Unserved: Sendable, Hashable {
        public var workflow: String
        public var queue: String
        public var tasks: [String]

        /// `workflow 'etl': task report uses queue 'reports', which <servedBy> (default) does not serve; ...`.
        ///
        /// - Parameters:
        ///   - servedBy: what decides the served queues (`deerflow.yaml's worker.queues`, `--queues`).
        ///   - served: the queues served.
        public func message(servedBy: String, served: Set<String>) -> String {
            let names = tasks.count == 1 ? "task \(tasks[0]) uses" : "tasks \(tasks.joined(separator: ", ")) use"
            return "workflow '\(workflow)': \(names) queue '\(queue)', which \(servedBy) (\(served.sorted().joined(separator: ", "))) "
                + "does not serve; \(tasks.count == 1 ? "it waits" : "they wait") until a worker serving '\(queue)' runs "
                + "(`deerflow worker --queues \(queue)`, or add it to worker.queues)"
        }
    }

    /// The tasks of `workflows` whose queue is not in `servedQueues`, per workflow and queue, in
    /// the workflows' order.
    public static func unserved(_ workflows: [WorkflowDefinition], servedQueues: Set<String>) -> [Unserved] {
        var result: [Unserved] = []
        for workflow in workflows {
            var byQueue: [String: [String]] = [:]
            var order: [String] = []
            for task in workflow.tasks where !servedQueues.contains(task.queue) {
                if byQueue[task.queue] == nil { order.append(task.queue) }
                byQueue[task.queue, default: []].append(task.id)
            }
            result += order.map { Unserved(workflow: workflow.name, queue: $0, tasks: byQueue[$0] ?? []) }
        }
        return result
    }
}
