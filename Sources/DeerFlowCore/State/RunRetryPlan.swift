/// Which tasks of a finished run a retry resets, and how many dependencies each of them waits for
/// afterwards: the rule both stores apply (``plan(tasks:selected:)``), like `CompletionPlan`.
///
/// Without a selection, every task that did not succeed (failed, timed out, cancelled,
/// upstream-failed) runs again. With a selection, the selected tasks and everything downstream of
/// them run again, successful ones included ("clear downstream"); other tasks keep their status
/// and output. A reset task waits only for its dependencies that are reset too (the others
/// succeeded), so a task whose count is 0 is queued at once.
///
/// ```swift
/// let plan = try RunRetryPlan.plan(tasks: tasks, selected: nil)
/// for reset in plan.resets where reset.isReady { /* queue attempt reset.attempt */ }
/// ```
public struct RunRetryPlan: Sendable, Hashable {
    /// A task of the run as stored.
    public struct Task: Sendable, Hashable {
        public var index: Int
        public var id: String
        public var status: TaskStatus
        /// Indices of the tasks that wait for this one.
        public var dependents: [Int]
        /// Attempts made so far (the next one is `attempts + 1`).
        public var attempts: Int

        public init(index: Int, id: String, status: TaskStatus, dependents: [Int], attempts: Int) {
            self.index = index
            self.id = id
            self.status = status
            self.dependents = dependents
            self.attempts = attempts
        }
    }

    /// A task that runs again.
    public struct Reset: Sendable, Hashable {
        public var index: Int
        public var id: String
        /// Reset dependencies it waits for; 0: queued at once.
        public var dependenciesRemaining: Int
        /// The number its next attempt gets (numbering continues).
        public var nextAttempt: Int

        /// Whether the task is queued at once (it waits for no reset dependency).
        public var isReady: Bool { dependenciesRemaining == 0 }
    }

    /// The reset tasks, in index order.
    public var resets: [Reset]
    /// The run's counters after the reset: the kept tasks are finished; a kept task that failed or
    /// was cancelled counts as failed, so the run ends failed.
    public var progress: RunProgress

    /// Why a retry cannot be done; nothing is changed.
    public struct Refusal: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Code: Sendable, Hashable {
            /// The selection names unknown tasks, or a task waiting on a failed task left out (422).
            case invalidSelection
            /// Something is still running or there is nothing to retry (409).
            case conflict
        }

        public var code: Code
        public var message: String
        public var description: String { message }

        public init(_ code: Code, _ message: String) {
            self.code = code
            self.message = message
        }
    }

    /// Plans a retry of a finished run.
    ///
    /// - Parameters:
    ///   - tasks: every task of the run.
    ///   - selected: task ids to re-run with everything downstream; nil: every task that did not
    ///     succeed.
    /// - Throws: ``Refusal`` for unknown task ids, tasks still running or queued (attempts of a
    ///   cancelled run still stopping), a selected task waiting on a failed task that is not
    ///   retried, or nothing to retry.
    public static func plan(tasks: [Task], selected: [String]?) throws(Refusal) -> RunRetryPlan {
        let byIndex = Dictionary(tasks.map { ($0.index, $0) }, uniquingKeysWith: { first, _ in first })
        var dependencies: [Int: [Int]] = [:]
        for task in tasks {
            for dependent in task.dependents { dependencies[dependent, default: []].append(task.index) }
        }
        let unfinished = tasks.filter { !$0.status.isFinished }
        if !unfinished.isEmpty {
            throw Refusal(.conflict, "tasks \(unfinished.map(\.id).joined(separator: ", ")) are still \(unfinished[0].status.rawValue); retry once they have stopped")
        }
        var reset: Set<Int>
        if let selected {
            let ids = Dictionary(tasks.map { ($0.id, $0.index) }, uniquingKeysWith: { first, _ in first })
            let unknown = selected.filter { ids[$0] == nil }
            if !unknown.isEmpty {
                throw Refusal(.invalidSelection, "unknown task\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); the run's tasks are \(tasks.map(\.id).joined(separator: ", "))")
            }
            if selected.isEmpty { throw Refusal(.invalidSelection, "tasks is empty; name at least one task, or leave tasks out to retry every task that did not succeed") }
            reset = []
            var stack = selected.compactMap { ids[$0] }
            while let index = stack.popLast() {
                guard reset.insert(index).inserted else { continue }
                stack += byIndex[index]?.dependents ?? []
            }
        } else {
            reset = Set(tasks.filter { $0.status != .success }.map(\.index))
            if reset.isEmpty { throw Refusal(.conflict, "every task succeeded; nothing to retry (name tasks to run them again)") }
        }
        var resets: [Reset] = []
        for index in reset.sorted() {
            guard let task = byIndex[index] else { continue }
            let upstream = dependencies[index] ?? []
            if let blocked = upstream.first(where: { !reset.contains($0) && byIndex[$0]?.status != .success }), let blocker = byIndex[blocked] {
                throw Refusal(.invalidSelection, "task \(task.id) depends on \(blocker.id), which is \(blocker.status.rawValue) and not retried; retry \(blocker.id) too")
            }
            resets.append(Reset(index: index, id: task.id, dependenciesRemaining: upstream.filter(reset.contains).count, nextAttempt: task.attempts + 1))
        }
        var progress = RunProgress(total: tasks.count)
        for task in tasks where !reset.contains(task.index) {
            progress.finished += 1
            if task.status != .success { progress.failed += 1 }
        }
        return RunRetryPlan(resets: resets, progress: progress)
    }
}
