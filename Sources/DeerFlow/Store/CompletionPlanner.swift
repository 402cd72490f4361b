public import DeerFlowCore
public import Foundation

/// An attempt being completed, with what the store read about its task and run: the input of
/// ``CompletionPlan/plan(_:)``. A store reads these rows (locking them), lets the plan decide, and
/// writes what it says, in one transaction.
public struct CompletingAttempt: Sendable {
    public var attemptID: AttemptID
    public var runID: RunID
    public var workflow: String
    public var runStatus: RunStatus
    public var taskIndex: Int
    public var taskID: String
    public var type: String
    public var queue: String
    public var priority: Int
    public var number: Int
    public var status: AttemptStatus
    public var startedAt: Date?
    public var worker: String?
    public var retry: RetryPolicy
    public var retriesUsed: Int
    public var interruptions: Int
    public var dependents: [Int]
    /// For an instance of a mapped task: the mapped task's index; nil otherwise.
    public var mapParent: Int?

    public init(attemptID: AttemptID, runID: RunID, workflow: String, runStatus: RunStatus, taskIndex: Int, taskID: String, type: String, queue: String, priority: Int, number: Int, status: AttemptStatus, startedAt: Date?, worker: String?, retry: RetryPolicy, retriesUsed: Int, interruptions: Int, dependents: [Int], mapParent: Int? = nil) {
        self.mapParent = mapParent
        self.attemptID = attemptID
        self.runID = runID
        self.workflow = workflow
        self.runStatus = runStatus
        self.taskIndex = taskIndex
        self.taskID = taskID
        self.type = type
        self.queue = queue
        self.priority = priority
        self.number = number
        self.status = status
        self.startedAt = startedAt
        self.worker = worker
        self.retry = retry
        self.retriesUsed = retriesUsed
        self.interruptions = interruptions
        self.dependents = dependents
    }

    /// Why this attempt's stored counters cannot be right (a corrupted or hand-written row), or
    /// nil: counting on from them could overflow, so such an attempt fails its task for good.
    public var corruption: String? {
        let bound = 1_000_000 // far above any real count, far below what a column holds
        if !(1...bound).contains(number) { return "attempt number \(number)" }
        if !(0...bound).contains(retriesUsed) { return "retries used \(retriesUsed)" }
        if !(0...bound).contains(interruptions) { return "interruptions \(interruptions)" }
        if !Limits.retries.contains(retry.retries) { return "retries \(retry.retries)" }
        if !Limits.taskDuration.contains(retry.delay) || !Limits.taskDuration.contains(retry.maxDelay) {
            return "retry delay \(DurationText.format(retry.delay)), at most \(DurationText.format(retry.maxDelay))"
        }
        return nil
    }

    public var info: AttemptInfo {
        AttemptInfo(attemptID: attemptID, runID: runID, workflow: workflow, taskID: taskID, type: type, queue: queue, number: number, worker: worker)
    }
}

/// Row changes computed from a batch of completions. Stores read the rows the planner needs,
/// let it decide, and write what it says — the rules themselves live in `AttemptResolution`
/// and `RunProgress` (DeerFlowCore) and here, once for every store.
public struct CompletionPlan: Sendable {
    public struct AttemptUpdate: Sendable {
        public var id: AttemptID
        public var status: AttemptStatus
        public var finishedAt: Date
        public var error: String?
    }

    public struct TaskUpdate: Sendable {
        public var runID: RunID
        public var index: Int
        public var status: TaskStatus
        public var output: JSONValue?
        public var retriesUsed: Int
        public var interruptions: Int
        public var attempts: Int
    }

    public struct NewAttempt: Sendable {
        public var runID: RunID
        public var taskIndex: Int
        public var number: Int
        public var queue: String
        public var priority: Int
        public var queuedAt: Date

        public init(runID: RunID, taskIndex: Int, number: Int, queue: String, priority: Int, queuedAt: Date) {
            self.runID = runID
            self.taskIndex = taskIndex
            self.number = number
            self.queue = queue
            self.priority = priority
            self.queuedAt = queuedAt
        }
    }

    public struct DependencyRelease: Sendable, Hashable {
        public var runID: RunID
        public var taskIndex: Int
        public var count: Int
    }

    /// A mapped task whose expansion attempt succeeded: the store inserts one instance row per
    /// item (numbered from ``MapProgress/base(of:)``) and queues the first `maxParallel`.
    public struct Expansion: Sendable {
        public var runID: RunID
        public var taskIndex: Int
        public var items: [JSONValue]
        public var progress: MapProgress
    }

    /// Instances of one mapped task that ended for good in this batch.
    public struct MapKey: Sendable, Hashable, Comparable {
        public var runID: RunID
        public var parent: Int

        public static func < (lhs: MapKey, rhs: MapKey) -> Bool { (lhs.runID, lhs.parent) < (rhs.runID, rhs.parent) }
    }

    public struct MapEnds: Sendable, Hashable {
        public var succeeded = 0
        public var failed = 0
        public var total: Int { succeeded + failed }
    }

    public var attemptUpdates: [AttemptUpdate] = []
    public var expansions: [Expansion] = []
    /// Per mapped task, its instances that ended for good: the store adds them to the counters
    /// on the mapped task's row and applies ``MapProgress/step(justFinished:)``.
    public var mapEnds: [MapKey: MapEnds] = [:]
    public var taskUpdates: [TaskUpdate] = []
    public var newAttempts: [NewAttempt] = []
    public var dependencyReleases: [DependencyRelease] = []
    /// Tasks that failed for good, whose pending dependents must become `upstream_failed`.
    public var finalFailures: [RunID: [Int]] = [:]
    /// Per run, tasks that reached a final status.
    public var progress: [RunID: RunProgress] = [:]
    public var events: [EngineEvent] = []

    public init() {}

    /// Plans a batch. Completions of attempts that are no longer running (already reclaimed,
    /// reported twice) are ignored, so every attempt finishes exactly once.
    public static func plan(_ completions: [(AttemptCompletion, CompletingAttempt)]) -> CompletionPlan {
        var plan = CompletionPlan()
        var releases: [DependencyRelease: Int] = [:]
        var seen: Set<AttemptID> = []
        for (completion, attempt) in completions {
            guard attempt.status == .running, seen.insert(attempt.attemptID).inserted else { continue }
            let runIsActive = !attempt.runStatus.isFinished
            var completion = completion
            var attempt = attempt
            if let corruption = attempt.corruption {
                // A poison row: fail the task with a message saying so, and keep serving the rest.
                completion.outcome = .failure(message: "the stored task row is corrupted (\(corruption)); the task fails without a retry")
                attempt.retry = .none
                attempt.retriesUsed = 0
                attempt.interruptions = 0
            }
            let resolution = AttemptResolution.resolve(
                completion.outcome,
                attempt: attempt.number,
                retriesUsed: attempt.retriesUsed,
                interruptions: attempt.interruptions,
                policy: attempt.retry,
                runIsActive: runIsActive,
                now: completion.finishedAt,
                random: completion.jitter
            )
            let message = completion.outcome.message
            plan.attemptUpdates.append(.init(id: attempt.attemptID, status: resolution.attemptStatus, finishedAt: completion.finishedAt, error: message))
            var retriesUsed = attempt.retriesUsed
            var interruptions = attempt.interruptions
            if case .interrupted = completion.outcome { interruptions += 1 }
            if resolution.countsAsRetry { retriesUsed += 1 }
            var output: JSONValue?
            if case .success(let value) = completion.outcome { output = value }
            var taskStatus = resolution.taskStatus
            if runIsActive, let items = completion.mapItems, case .success = completion.outcome, !items.isEmpty {
                // The expansion of a mapped task: it stays running until its instances end.
                taskStatus = .running
                output = nil
                plan.expansions.append(.init(runID: attempt.runID, taskIndex: attempt.taskIndex, items: items, progress: MapProgress(count: items.count, maxParallel: completion.mapMaxParallel)))
            } else if completion.mapItems != nil, case .success = completion.outcome {
                output = .array([]) // an empty list: done at once
            }
            var attempts = attempt.number
            if let retryAt = resolution.retryAt {
                attempts += 1
                plan.newAttempts.append(.init(runID: attempt.runID, taskIndex: attempt.taskIndex, number: attempts, queue: attempt.queue, priority: attempt.priority, queuedAt: retryAt))
            }
            plan.taskUpdates.append(.init(runID: attempt.runID, index: attempt.taskIndex, status: taskStatus, output: output, retriesUsed: retriesUsed, interruptions: interruptions, attempts: attempts))
            plan.events.append(.attemptFinished(attempt.info, status: resolution.attemptStatus, metricStatus: resolution.metricStatus, startedAt: attempt.startedAt, finishedAt: completion.finishedAt, error: message))
            if let retryAt = resolution.retryAt {
                var next = attempt.info
                next.number = attempts
                next.worker = nil
                plan.events.append(.retryScheduled(next, at: retryAt))
            }
            guard runIsActive else { continue }
            if let parent = attempt.mapParent {
                // An instance counts on its mapped task, which finishes when the last one ends.
                if taskStatus == .success {
                    plan.mapEnds[MapKey(runID: attempt.runID, parent: parent), default: MapEnds()].succeeded += 1
                } else if taskStatus.isFinished {
                    plan.mapEnds[MapKey(runID: attempt.runID, parent: parent), default: MapEnds()].failed += 1
                }
                continue
            }
            plan.finish(runID: attempt.runID, index: attempt.taskIndex, status: taskStatus, dependents: attempt.dependents, releases: &releases)
        }
        plan.dependencyReleases = releases.map { DependencyRelease(runID: $0.key.runID, taskIndex: $0.key.taskIndex, count: $0.value) }
            .sorted { ($0.runID, $0.taskIndex) < ($1.runID, $1.taskIndex) }
        return plan
    }

    /// Records a task that reached `status`: the run's counters, and its dependents released
    /// (success) or failed with it.
    private mutating func finish(runID: RunID, index: Int, status: TaskStatus, dependents: [Int], releases: inout [DependencyRelease: Int]) {
        if status.isFinished {
            progress[runID, default: RunProgress(total: 0)].record(status)
        }
        if status == .success {
            for dependent in dependents {
                releases[DependencyRelease(runID: runID, taskIndex: dependent, count: 0), default: 0] += 1
            }
        } else if status.failsRun {
            finalFailures[runID, default: []].append(index)
        }
    }

    /// Records a mapped task whose last instance just ended (a store read its instances'
    /// outputs or failed indexes): its task update, counters and dependents, as for any task.
    /// Call before the store writes the dependency releases, failures and run counters.
    public mutating func finishMap(runID: RunID, index: Int, dependents: [Int], outputs: [JSONValue], failedIndexes: [Int], count: Int) -> (status: TaskStatus, output: JSONValue?, error: String?) {
        let status: TaskStatus = failedIndexes.isEmpty ? .success : .failed
        var releases: [DependencyRelease: Int] = [:]
        finish(runID: runID, index: index, status: status, dependents: dependents, releases: &releases)
        for (release, count) in releases.sorted(by: { ($0.key.runID, $0.key.taskIndex) < ($1.key.runID, $1.key.taskIndex) }) {
            // One release per task: a store applies a batch of them as one update per task row.
            if let existing = dependencyReleases.firstIndex(where: { $0.runID == release.runID && $0.taskIndex == release.taskIndex }) {
                dependencyReleases[existing].count += count
            } else {
                dependencyReleases.append(DependencyRelease(runID: release.runID, taskIndex: release.taskIndex, count: count))
            }
        }
        if status == .success { return (status, .array(outputs), nil) }
        return (status, nil, MapProgress.failureMessage(failedIndexes: failedIndexes, count: count))
    }

    /// The pending tasks reachable from `failed` through dependents: they can never run.
    public static func upstreamFailed(from failed: [Int], tasks: [Int: (status: TaskStatus, dependents: [Int])]) -> [Int] {
        var result: [Int] = []
        var visited: Set<Int> = Set(failed)
        var stack = failed
        while let index = stack.popLast() {
            for dependent in tasks[index]?.dependents ?? [] where visited.insert(dependent).inserted {
                if tasks[dependent]?.status == .pending {
                    result.append(dependent)
                    stack.append(dependent)
                }
            }
        }
        return result.sorted()
    }
}

/// Aggregates progress deltas of runs; what stores add to the run counters.
extension RunProgress {
    /// Adds another delta's counts.
    public mutating func add(_ other: RunProgress) {
        finished += other.finished
        failed += other.failed
    }
}
