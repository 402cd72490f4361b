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

    public init(attemptID: AttemptID, runID: RunID, workflow: String, runStatus: RunStatus, taskIndex: Int, taskID: String, type: String, queue: String, priority: Int, number: Int, status: AttemptStatus, startedAt: Date?, worker: String?, retry: RetryPolicy, retriesUsed: Int, interruptions: Int, dependents: [Int]) {
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

    public var attemptUpdates: [AttemptUpdate] = []
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
            var attempts = attempt.number
            if let retryAt = resolution.retryAt {
                attempts += 1
                plan.newAttempts.append(.init(runID: attempt.runID, taskIndex: attempt.taskIndex, number: attempts, queue: attempt.queue, priority: attempt.priority, queuedAt: retryAt))
            }
            plan.taskUpdates.append(.init(runID: attempt.runID, index: attempt.taskIndex, status: resolution.taskStatus, output: output, retriesUsed: retriesUsed, interruptions: interruptions, attempts: attempts))
            plan.events.append(.attemptFinished(attempt.info, status: resolution.attemptStatus, metricStatus: resolution.metricStatus, startedAt: attempt.startedAt, finishedAt: completion.finishedAt, error: message))
            if let retryAt = resolution.retryAt {
                var next = attempt.info
                next.number = attempts
                next.worker = nil
                plan.events.append(.retryScheduled(next, at: retryAt))
            }
            guard runIsActive else { continue }
            if resolution.taskStatus.isFinished {
                plan.progress[attempt.runID, default: RunProgress(total: 0)].record(resolution.taskStatus)
            }
            if resolution.taskStatus == .success {
                for dependent in attempt.dependents {
                    releases[DependencyRelease(runID: attempt.runID, taskIndex: dependent, count: 0), default: 0] += 1
                }
            } else if resolution.taskStatus.failsRun {
                plan.finalFailures[attempt.runID, default: []].append(attempt.taskIndex)
            }
        }
        plan.dependencyReleases = releases.map { DependencyRelease(runID: $0.key.runID, taskIndex: $0.key.taskIndex, count: $0.value) }
            .sorted { ($0.runID, $0.taskIndex) < ($1.runID, $1.taskIndex) }
        return plan
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
