public import DeerFlowCore
public import Foundation

/// Identifier of one attempt (execution) of a task, assigned by the store.
public typealias AttemptID = Int64

/// How a run was started.
public enum RunTrigger: Sendable, Hashable, Codable {
    /// Through the HTTP API or the CLI.
    case api
    /// By the cron schedule, for the given due time.
    case schedule(dueAt: Date)
    /// From Swift code in the process (`DeerFlowEngine.trigger`).
    case library
    /// By a backfill, for the schedule fire time it stands for (its logical time).
    case backfill(logicalTime: Date)
    /// By a `workflow` task of another run (a sub-workflow; the run's ``RunRecord/parent``).
    case workflow
    /// By a delivery to a webhook (`POST /api/v1/hooks/{name}`).
    case webhook

    /// What is stored with the run.
    public var kind: Kind {
        switch self {
        case .api: return .api
        case .schedule: return .schedule
        case .library: return .library
        case .backfill: return .backfill
        case .workflow: return .workflow
        case .webhook: return .webhook
        }
    }

    /// How a run was started, as stored with it (the API's `trigger`).
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case api, schedule, library, backfill, workflow, webhook
    }
}

/// The attempt that started a run of a sub-workflow (a `workflow` task): the parent run, the
/// task and its attempt number. Stores keep it unique, so one attempt has at most one child run.
public struct RunParent: Sendable, Hashable {
    public var runID: RunID
    public var taskID: String
    public var attempt: Int

    public init(runID: RunID, taskID: String, attempt: Int) {
        self.runID = runID
        self.taskID = taskID
        self.attempt = attempt
    }
}

/// One request of a webhook, as its sender identifies it (GitHub's `X-GitHub-Delivery`): a
/// redelivery repeats the id.
public struct WebhookDelivery: Sendable, Hashable {
    /// The webhook's name (`triggers: [{webhook: {name: …}}]`).
    public var hook: String
    /// The sender's id of the delivery.
    public var id: String
    public var receivedAt: Date

    public init(hook: String, id: String, receivedAt: Date) {
        self.hook = hook
        self.id = id
        self.receivedAt = receivedAt
    }
}

/// A run to insert and, optionally, the claim that starts its first attempts with it
/// (``RunStore/createRun(_:startingOn:)``): what a store's group commit of triggers batches.
package struct RunInsert: Sendable {
    package var run: NewRun
    package var claim: ClaimRequest?

    package init(run: NewRun, claim: ClaimRequest?) {
        self.run = run
        self.claim = claim
    }
}

/// The rules of ``RunStore/createRuns(_:)`` both stores share.
package enum RunInsertion {
    /// Refuses runs an insert may skip (a scheduled run whose due time has a run, a child whose
    /// parent attempt has one): a batch is all or nothing, so it holds neither.
    package static func checkBatch(_ runs: [NewRun]) throws {
        guard runs.allSatisfy({ $0.scheduledFor == nil && $0.parent == nil }) else {
            throw DeerFlowError(.badRequest, "a batch of runs cannot hold scheduled runs or child runs; create those one by one")
        }
    }

    /// The records of a batch's runs, every one of which was inserted.
    package static func created(_ records: [RunRecord?]) throws -> [RunRecord] {
        let created = records.compactMap(\.self)
        guard created.count == records.count else {
            throw DeerFlowError(.internal, "\(records.count - created.count) of \(records.count) runs of a batch were not inserted")
        }
        return created
    }

    /// ``directStarts(of:claim:limits:)`` for each run with a claim (`claims`, by position).
    package static func directStarts(of runs: [NewRun], claims: [ClaimRequest?], limits: LimitSnapshot) -> [RunID: DirectStart] {
        var starts: [RunID: DirectStart] = [:]
        for (run, claim) in zip(runs, claims) {
            guard let claim else { continue }
            let tasks = directStarts(of: run, claim: claim, limits: limits)
            if !tasks.isEmpty { starts[run.id] = DirectStart(claim: claim, tasks: Set(tasks.map(\.index))) }
        }
        return starts
    }

    /// A run's first tasks that start with it: their indices, and the claim they start under.
    package struct DirectStart: Sendable {
        package var claim: ClaimRequest
        package var tasks: Set<Int>
    }

    /// The first tasks of `run` that ``RunStore/createRun(_:startingOn:)`` starts on the claiming
    /// worker: tasks without dependencies in the claim's queues, of a queue without a
    /// concurrency limit, up to the claim's limit; none for a run that waits for its workflow's
    /// `max_active_runs`. Those limits are checked in the queue, so their tasks go through it.
    package static func directStarts(of run: NewRun, claim: ClaimRequest, limits: LimitSnapshot) -> [NewTask] {
        guard claim.limit > 0, limits.runLimits[run.workflow] == nil else { return [] }
        return Array(run.tasks.lazy.filter { task in
            task.dependencyCount == 0 && claim.queues.contains(task.queue) && limits.queueLimits[task.queue] == nil
        }.prefix(claim.limit))
    }

    /// A run an insert created, as the store answers it: running since its creation, with
    /// `runStarted` ahead of its attempts' `attemptStarted` events (`startEvents`), when
    /// `started` holds attempts; else pending.
    package static func createdRun(_ run: NewRun, started: [ClaimedAttempt], startEvents: [EngineEvent], waitingReason: String?) -> CreatedRun {
        let record = RunRecord(
            id: run.id, workflow: run.workflow, workflowVersion: run.workflowVersion, status: started.isEmpty ? .pending : .running, params: run.params,
            trigger: run.trigger.kind, scheduledFor: run.scheduledFor, traceContext: run.traceContext, createdAt: run.createdAt,
            startedAt: started.isEmpty ? nil : run.createdAt, finishedAt: nil, progress: RunProgress(total: run.tasks.count), rerunOf: run.rerunOf,
            deadline: run.deadline, waitingReason: waitingReason, parent: run.parent)
        guard !started.isEmpty else { return CreatedRun(record: record) }
        return CreatedRun(
            record: record, started: started, events: [.runStarted(runID: run.id, workflow: run.workflow, at: run.createdAt)] + startEvents)
    }
}

/// What recording a webhook delivery did.
public enum DeliveryOutcome: Sendable, Hashable {
    /// The delivery is new: its run was created.
    case created(RunRecord)
    /// The delivery was recorded before: no run was created; this is the run it started then.
    case duplicate(RunID)

    /// The run of the delivery, new or earlier.
    public var runID: RunID {
        switch self {
        case .created(let run): return run.id
        case .duplicate(let id): return id
        }
    }
}

/// A task row of a new run.
public struct NewTask: Sendable, Hashable {
    public var index: Int
    public var id: String
    public var type: String
    public var queue: String
    public var priority: Int
    /// Number of tasks this one waits for.
    public var dependencyCount: Int
    /// Indices of the tasks that wait for this one.
    public var dependents: [Int]
    public var retry: RetryPolicy
    public var timeout: Duration?

    public init(index: Int, id: String, type: String, queue: String, priority: Int, dependencyCount: Int, dependents: [Int], retry: RetryPolicy, timeout: Duration?) {
        self.index = index
        self.id = id
        self.type = type
        self.queue = queue
        self.priority = priority
        self.dependencyCount = dependencyCount
        self.dependents = dependents
        self.retry = retry
        self.timeout = timeout
    }
}

/// Everything a store needs to create a run: the run row, its tasks, and the attempts of the tasks
/// that can start at once.
public struct NewRun: Sendable, Hashable {
    public var id: RunID
    public var workflow: String
    public var workflowVersion: String
    public var params: [String: JSONValue]
    public var tasks: [NewTask]
    public var trigger: RunTrigger
    /// W3C `traceparent` of the run's span (stored so every process continues the same trace).
    public var traceContext: String?
    public var createdAt: Date
    /// The workflow's run timeout (`timeout:`): the run fails with reason `timeout` this long
    /// after it was created (or retried); nil: no limit.
    public var timeout: Duration?
    /// The run this one reruns (`POST /runs/{id}/rerun`).
    public var rerunOf: RunID?
    /// The attempt of a `workflow` task that started this run; nil for other runs. A second run
    /// with the same parent is not created (``RunStore/createRun(_:)`` returns nil).
    public var parent: RunParent?

    public init(id: RunID, workflow: String, workflowVersion: String, params: [String: JSONValue], tasks: [NewTask], trigger: RunTrigger, traceContext: String?, createdAt: Date, timeout: Duration? = nil, rerunOf: RunID? = nil, parent: RunParent? = nil) {
        self.parent = parent
        self.id = id
        self.workflow = workflow
        self.workflowVersion = workflowVersion
        self.params = params
        self.tasks = tasks
        self.trigger = trigger
        self.traceContext = traceContext
        self.createdAt = createdAt
        self.timeout = timeout
        self.rerunOf = rerunOf
    }

    /// When the run times out; nil without a timeout.
    public var deadline: Date? { timeout.map { createdAt.adding($0) } }

    /// The due time for scheduled runs, the fire time a backfill run stands for (the store keeps
    /// `(workflow, due time)` unique, so a backfill never duplicates a scheduled run).
    public var scheduledFor: Date? {
        switch trigger {
        case .schedule(let due): return due
        case .backfill(let logicalTime): return logicalTime
        case .api, .library, .workflow, .webhook: return nil
        }
    }
}

/// A run as stored, without its tasks.
public struct RunRecord: Sendable, Hashable {
    public var id: RunID
    public var workflow: String
    public var workflowVersion: String
    public var status: RunStatus
    public var params: [String: JSONValue]
    public var trigger: RunTrigger.Kind
    public var scheduledFor: Date?
    public var traceContext: String?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var progress: RunProgress
    /// The backfill that created the run; nil for other runs.
    public var backfillID: String?

    /// Why the run ended as it did, when not by its tasks alone (`timeout`); nil otherwise.
    public var reason: String?
    /// The run this one reruns.
    public var rerunOf: RunID?
    /// The attempt of a `workflow` task that started this run; nil for other runs.
    public var parent: RunParent?
    /// When the run times out while pending or running; nil without a timeout.
    public var deadline: Date?
    /// How often the run was retried (``RunStore/retryRun(_:tasks:at:)``).
    public var retries: Int

    /// Why a `pending` run has not started: a concurrency limit it waits for
    /// (`max_active_runs 2 reached`); nil otherwise.
    public var waitingReason: String?

    public init(id: RunID, workflow: String, workflowVersion: String, status: RunStatus, params: [String: JSONValue], trigger: RunTrigger.Kind, scheduledFor: Date?, traceContext: String?, createdAt: Date, startedAt: Date?, finishedAt: Date?, progress: RunProgress, backfillID: String? = nil, reason: String? = nil, rerunOf: RunID? = nil, deadline: Date? = nil, retries: Int = 0, waitingReason: String? = nil, parent: RunParent? = nil) {
        self.parent = parent
        self.reason = reason
        self.rerunOf = rerunOf
        self.deadline = deadline
        self.retries = retries
        self.id = id
        self.workflow = workflow
        self.workflowVersion = workflowVersion
        self.status = status
        self.params = params
        self.trigger = trigger
        self.scheduledFor = scheduledFor
        self.traceContext = traceContext
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.progress = progress
        self.backfillID = backfillID
        self.waitingReason = waitingReason
    }

    /// The time the run stands for (`DEERFLOW_LOGICAL_TIME`): the fire time of a scheduled or
    /// backfill run, the creation time of any other.
    public var logicalTime: Date { scheduledFor ?? createdAt }
}

/// One attempt as stored.
public struct AttemptRecord: Sendable, Hashable {
    public var id: AttemptID
    public var number: Int
    public var status: AttemptStatus
    /// When the attempt became (or becomes, for a retry in backoff) claimable.
    public var queuedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    public var worker: String?
    public var error: String?

    public init(id: AttemptID, number: Int, status: AttemptStatus, queuedAt: Date, startedAt: Date?, finishedAt: Date?, worker: String?, error: String?) {
        self.id = id
        self.number = number
        self.status = status
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.worker = worker
        self.error = error
    }
}

/// A task of a run with its attempts.
public struct TaskRecord: Sendable, Hashable {
    public var index: Int
    public var id: String
    public var type: String
    public var queue: String
    public var status: TaskStatus
    public var output: JSONValue?
    public var attempts: [AttemptRecord]
    /// Why a queued task is not claimed although it is due: its queue is at its concurrency
    /// limit. Filled in by the API from ``LimitUsage``, not by the store.
    public var waitingReason: String?
    /// For a mapped task once expanded: its instances' counters; nil otherwise.
    public var map: MapProgress?
    /// For an instance of a mapped task: the mapped task's index and the instance's position.
    public var mapParent: Int?
    public var mapIndex: Int?
    /// For an instance of a mapped task: its item.
    public var item: JSONValue?

    public init(index: Int, id: String, type: String, queue: String, status: TaskStatus, output: JSONValue?, attempts: [AttemptRecord], waitingReason: String? = nil) {
        self.index = index
        self.id = id
        self.type = type
        self.queue = queue
        self.status = status
        self.output = output
        self.attempts = attempts
        self.waitingReason = waitingReason
    }
}

/// A run with its tasks and their attempts.
public struct RunDetail: Sendable, Hashable {
    public var run: RunRecord
    public var tasks: [TaskRecord]
    /// The runs started by the run's `workflow` tasks, oldest first. Filled in by
    /// ``DeerFlowEngine/run(_:)``, not by the store.
    public var children: [RunRecord] = []

    public init(run: RunRecord, tasks: [TaskRecord]) {
        self.run = run
        self.tasks = tasks
    }
}

/// Filters and paging of run listings; runs come newest first.
public struct RunQuery: Sendable, Hashable {
    public var workflow: String?
    public var status: RunStatus?
    public var limit: Int
    /// Id of the last run of the previous page.
    public var cursor: RunID?
    /// Only runs started this way.
    public var trigger: RunTrigger.Kind?
    /// Only runs created at or after this time (a range of ids: ids sort by creation time).
    public var createdAfter: Date?
    /// Only runs created before this time.
    public var createdBefore: Date?

    public init(
        workflow: String? = nil, status: RunStatus? = nil, limit: Int = 50, cursor: RunID? = nil, trigger: RunTrigger.Kind? = nil,
        createdAfter: Date? = nil, createdBefore: Date? = nil
    ) {
        self.workflow = workflow
        self.status = status
        self.limit = limit
        self.cursor = cursor
        self.trigger = trigger
        self.createdAfter = createdAfter
        self.createdBefore = createdBefore
    }

    /// The id range the time filters give: ids at or above `lower`, below `upper`.
    public var idBounds: (lower: String?, upper: String?) {
        (createdAfter.map(RunID.lowerBound(at:)), createdBefore.map(RunID.lowerBound(at:)))
    }
}

/// A task's state in a run, without its attempts' details: a cell of the workflow page's grid.
public struct TaskState: Sendable, Hashable {
    public var index: Int
    public var id: String
    public var status: TaskStatus
    /// Attempts made so far (the last one is the one to show).
    public var attempts: Int

    public init(index: Int, id: String, status: TaskStatus, attempts: Int) {
        self.index = index
        self.id = id
        self.status = status
        self.attempts = attempts
    }
}

/// One page of runs; `nextCursor` is set when more runs follow.
public struct RunPage: Sendable, Hashable {
    public var runs: [RunRecord]
    public var nextCursor: RunID?

    public init(runs: [RunRecord], nextCursor: RunID?) {
        self.runs = runs
        self.nextCursor = nextCursor
    }
}

/// An attempt handed to a worker.
public struct ClaimedAttempt: Sendable, Hashable {
    public var id: AttemptID
    public var runID: RunID
    public var workflow: String
    public var workflowVersion: String
    public var taskIndex: Int
    public var taskID: String
    public var type: String
    public var queue: String
    public var number: Int
    public var params: [String: JSONValue]
    public var traceContext: String?
    public var timeout: Duration?
    public var queuedAt: Date
    public var startedAt: Date
    public var leaseUntil: Date
    /// Why the store could not read what this attempt needs (its run's parameters in a corrupted
    /// row); the attempt then fails with this message without running.
    public var unreadable: String?
    /// The time the run stands for (``RunRecord/logicalTime``); nil when the store did not say,
    /// and then the run's creation time (from its id) is used.
    public var logicalTime: Date?
    /// For an instance of a mapped task: its position in the list (`{{ index }}`); nil otherwise.
    public var mapIndex: Int?
    /// For an instance of a mapped task: its item (`{{ item }}`).
    public var mapItem: JSONValue?

    public init(id: AttemptID, runID: RunID, workflow: String, workflowVersion: String, taskIndex: Int, taskID: String, type: String, queue: String, number: Int, params: [String: JSONValue], traceContext: String?, timeout: Duration?, queuedAt: Date, startedAt: Date, leaseUntil: Date, unreadable: String? = nil, logicalTime: Date? = nil) {
        self.id = id
        self.runID = runID
        self.workflow = workflow
        self.workflowVersion = workflowVersion
        self.taskIndex = taskIndex
        self.taskID = taskID
        self.type = type
        self.queue = queue
        self.number = number
        self.params = params
        self.traceContext = traceContext
        self.timeout = timeout
        self.queuedAt = queuedAt
        self.startedAt = startedAt
        self.leaseUntil = leaseUntil
        self.unreadable = unreadable
        self.logicalTime = logicalTime
    }
}

extension ClaimedAttempt {
    /// The id of the task definition this attempt runs: the mapped task's for an instance
    /// (`process` for `process[3]`), else ``taskID``.
    public var definitionID: String {
        guard mapIndex != nil, let bracket = taskID.lastIndex(of: "[") else { return taskID }
        return String(taskID[..<bracket])
    }

    /// Sets the instance columns a store read (`map_index`, `item` as JSON text).
    public mutating func setInstance(index: Int?, item: String?) {
        guard let index else { return }
        mapIndex = index
        mapItem = item.flatMap { try? JSONValue(parsing: $0) } ?? .null
    }

    /// ``logicalTime``, or the run's creation time from its id when the store did not say.
    public var effectiveLogicalTime: Date { logicalTime ?? runID.creationTime ?? startedAt }
}

/// Run parameters as both stores keep them: compact JSON object text.
package enum StoredParams {
    /// The parameters of a stored run. A value that is not a JSON object (a corrupted row, or
    /// one written by hand) gives no parameters and a reason, rather than an error that would
    /// fail a whole batch of claims or a page of runs.
    package static func decode(_ text: String) -> (params: [String: JSONValue], problem: String?) {
        if text == "{}" { return ([:], nil) }
        guard case .object(let object)? = try? JSONValue(parsing: text) else {
            return ([:], "the run's stored parameters are not a JSON object (\(text.prefix(40))…); the row is corrupted, so the attempt fails without running")
        }
        return (object, nil)
    }
}

/// A finished attempt reported by a worker (or by the scheduler for a lost worker).
public struct AttemptCompletion: Sendable, Hashable {
    public var attemptID: AttemptID
    public var outcome: AttemptOutcome
    public var finishedAt: Date
    /// Uniform random number in [0, 1) for the retry jitter.
    public var jitter: Double
    /// For the expansion attempt of a mapped task (`for_each`): the items, one instance each
    /// (with a `.success` outcome); nil for any other attempt.
    public var mapItems: [JSONValue]?
    /// With ``mapItems``: at most this many instances queued or running at once; nil: all.
    public var mapMaxParallel: Int?

    public init(attemptID: AttemptID, outcome: AttemptOutcome, finishedAt: Date, jitter: Double = AttemptCompletion.randomJitter()) {
        self.attemptID = attemptID
        self.outcome = outcome
        self.finishedAt = finishedAt
        self.jitter = jitter
    }

    /// A uniform random number in [0, 1) for ``jitter`` (without a system call per number).
    public static func randomJitter() -> Double {
        var random = ProcessRandom()
        return Double.random(in: 0..<1, using: &random)
    }

    /// The completion of a mapped task's expansion: one instance per item.
    public static func expansion(attemptID: AttemptID, items: [JSONValue], maxParallel: Int?, finishedAt: Date) -> AttemptCompletion {
        var completion = AttemptCompletion(attemptID: attemptID, outcome: .success(output: .null), finishedAt: finishedAt)
        completion.mapItems = items
        completion.mapMaxParallel = maxParallel
        return completion
    }
}

/// Request to claim ready attempts for a worker.
public struct ClaimRequest: Sendable, Hashable {
    public var worker: String
    public var queues: [String]
    public var limit: Int
    public var leaseDuration: Duration
    /// When true, only tasks made ready by this exchange's completions are claimed, and they start
    /// at once on this worker without a queue lookup. Workers ask for this when their last claim
    /// found the queues empty: the next step of a chain then starts where the previous one
    /// finished. Otherwise ready tasks are claimed in priority, then age, order.
    public var onlyNewlyReady: Bool

    public init(worker: String, queues: [String], limit: Int, leaseDuration: Duration, onlyNewlyReady: Bool = false) {
        self.worker = worker
        self.queues = queues
        self.limit = limit
        self.leaseDuration = leaseDuration
        self.onlyNewlyReady = onlyNewlyReady
    }
}

/// What a worker sends in one round trip: finished attempts and, optionally, a claim.
/// Stores apply both in one transaction; completions first, so a dependent made ready by a
/// completion can be claimed by the same worker at once.
public struct ExchangeRequest: Sendable, Hashable {
    public var completions: [AttemptCompletion]
    public var claim: ClaimRequest?
    public var now: Date

    public init(completions: [AttemptCompletion], claim: ClaimRequest?, now: Date) {
        self.completions = completions
        self.claim = claim
        self.now = now
    }
}

/// The result of an exchange: claimed attempts and what changed.
public struct ExchangeResult: Sendable {
    public var claimed: [ClaimedAttempt]
    public var events: [EngineEvent]
    /// For a claim of newly ready dependents only (``ClaimRequest/onlyNewlyReady``): more of them
    /// became ready in the claim's queues than it could start, and the rest were queued. The
    /// worker then claims from the queues as soon as it has a free slot, instead of at its next
    /// poll.
    public var leftReadyQueued: Bool

    public init(claimed: [ClaimedAttempt], events: [EngineEvent], leftReadyQueued: Bool = false) {
        self.claimed = claimed
        self.events = events
        self.leftReadyQueued = leftReadyQueued
    }
}

/// What `cancelRun` did.
public enum CancelResult: Sendable {
    /// The run was cancelled; `runningAttempts` are still executing and are asked to stop.
    case cancelled(RunRecord, runningAttempts: [AttemptID], events: [EngineEvent])
    /// The run had already finished with this status.
    case alreadyFinished(RunStatus)
    case notFound
}

/// What `retryRun` did.
public enum RetryResult: Sendable {
    /// The run is running again; `tasks` are the ids of the reset tasks.
    case retried(RunRecord, tasks: [String], events: [EngineEvent])
    /// The run has not finished (pending or running): only finished runs can be retried.
    case notFinished(RunStatus)
    /// The plan refused (unknown tasks, attempts still stopping, nothing to retry).
    case refused(RunRetryPlan.Refusal)
    case notFound
}

extension RetryResult {
    /// What a store's `retryRun` does with the rows it read and locked: the plan to write, or
    /// the answer when there is nothing to write (attempts still queued or running are refused).
    public static func plan(run id: RunID, tasks: [RunRetryPlan.Task], selected: [String]?, attemptsActive: Bool) -> Decision {
        if attemptsActive {
            return .answer(.refused(.init(.conflict, "attempts of run \(id) are still stopping; retry once they have stopped")))
        }
        do {
            return .write(try RunRetryPlan.plan(tasks: tasks, selected: selected))
        } catch {
            return .answer(.refused(error))
        }
    }

    /// What ``plan(run:tasks:selected:attemptsActive:)`` decided.
    public enum Decision: Sendable {
        /// Write this plan.
        case write(RunRetryPlan)
        /// Change nothing and answer this.
        case answer(RetryResult)
    }

    /// The answer after a store wrote `plan`: the run `running` again with the plan's counters.
    public static func retried(_ run: RunRecord, plan: RunRetryPlan, deadline: Date?, at now: Date) -> RetryResult {
        var run = run
        run.status = .running
        run.finishedAt = nil
        run.reason = nil
        run.progress = plan.progress
        run.deadline = deadline
        run.retries += 1
        run.startedAt = run.startedAt ?? now
        let ids = plan.resets.map(\.id)
        return .retried(run, tasks: ids, events: [.runRetried(runID: run.id, workflow: run.workflow, taskIDs: ids, at: now)])
    }
}

/// What a sweep of expired run deadlines did (``RunStore/timeOutRuns(now:)``).
public struct TimeoutSweep: Sendable {
    /// The runs that timed out (now `failed` with reason `timeout`).
    public var runs: [RunRecord]
    /// Their attempts still running, asked to stop.
    public var runningAttempts: [AttemptID]
    public var events: [EngineEvent]

    public init(runs: [RunRecord] = [], runningAttempts: [AttemptID] = [], events: [EngineEvent] = []) {
        self.runs = runs
        self.runningAttempts = runningAttempts
        self.events = events
    }
}

/// Why a run ended, when not by its tasks alone (``RunRecord/reason``).
public enum RunReason {
    /// The workflow's run timeout passed.
    public static let timeout = "timeout"
}

/// A worker process (or the worker part of a server process) as registered in the store.
public struct WorkerRecord: Sendable, Hashable, Codable {
    public var id: String
    public var host: String
    public var pid: Int
    public var slots: Int
    public var busy: Int
    public var queues: [String]
    public var version: String
    public var startedAt: Date
    public var lastSeen: Date
    public var state: WorkerState

    public init(id: String, host: String, pid: Int, slots: Int, busy: Int, queues: [String], version: String, startedAt: Date, lastSeen: Date, state: WorkerState) {
        self.id = id
        self.host = host
        self.pid = pid
        self.slots = slots
        self.busy = busy
        self.queues = queues
        self.version = version
        self.startedAt = startedAt
        self.lastSeen = lastSeen
        self.state = state
    }
}

/// Ready-queue figures of one queue.
public struct QueueStatistics: Sendable, Hashable {
    /// Attempts ready and waiting for a worker.
    public var depth: Int
    /// When the oldest of them became ready.
    public var oldestReadyAt: Date?

    public init(depth: Int, oldestReadyAt: Date?) {
        self.depth = depth
        self.oldestReadyAt = oldestReadyAt
    }
}

/// Cluster-wide figures computed from the store (the source of the cluster-wide gauges).
public struct StoreStatistics: Sendable, Hashable {
    /// Runs pending or running.
    public var activeRuns: Int
    /// Per queue, only queues with ready attempts.
    public var queues: [String: QueueStatistics]
    /// Slots of live workers.
    public var workerSlots: Int
    /// Attempts running now.
    public var runningAttempts: Int
    /// The earliest lease expiry among running attempts whose lease has expired (not yet reclaimed).
    public var oldestExpiredLease: Date?
    /// The earliest due time of a schedule that has not fired yet.
    public var oldestDueSchedule: Date?

    public init(activeRuns: Int, queues: [String: QueueStatistics], workerSlots: Int, runningAttempts: Int, oldestExpiredLease: Date?, oldestDueSchedule: Date?) {
        self.activeRuns = activeRuns
        self.queues = queues
        self.workerSlots = workerSlots
        self.runningAttempts = runningAttempts
        self.oldestExpiredLease = oldestExpiredLease
        self.oldestDueSchedule = oldestDueSchedule
    }

    /// Ready attempts over all queues.
    public var queuedTotal: Int { queues.values.reduce(0) { $0 + $1.depth } }

    /// Scheduler lag: now minus the due time of the oldest due, undispatched item; 0 when none.
    public func schedulerLag(now: Date) -> Double {
        let due = [oldestExpiredLease, oldestDueSchedule].compactMap { $0 }.min()
        guard let due else { return 0 }
        return max(0, now.timeIntervalSince(due))
    }
}

/// Persistent state of a workflow's cron schedule.
public struct ScheduleRecord: Sendable, Hashable {
    public var workflow: String
    public var cron: String
    public var timeZone: String
    /// The next due time.
    public var nextFireAt: Date?
    public var lastFiredAt: Date?
    /// Paused schedules do not fire; their `nextFireAt` stays at the first due time skipped, so an
    /// unpause can catch up from there when asked.
    public var paused: Bool

    public init(workflow: String, cron: String, timeZone: String, nextFireAt: Date?, lastFiredAt: Date?, paused: Bool = false) {
        self.workflow = workflow
        self.cron = cron
        self.timeZone = timeZone
        self.nextFireAt = nextFireAt
        self.lastFiredAt = lastFiredAt
        self.paused = paused
    }
}

// MARK: Backfills

/// A backfill to create: one run per schedule fire time in `[from, to]`.
public struct NewBackfill: Sendable, Hashable {
    public var id: String
    public var workflow: String
    /// The schedule the fire times come from, kept with the backfill so a changed workflow file
    /// does not change a backfill under way.
    public var cron: String
    public var timeZone: String
    public var from: Date
    public var to: Date
    /// Most runs of the backfill pending or running at once.
    public var maxActive: Int
    /// Resolved run parameters of every run.
    public var params: [String: JSONValue]
    /// Fire times in the range.
    public var fireTimes: Int
    /// The first fire time (the first run to create).
    public var firstFireAt: Date
    public var createdAt: Date

    public init(id: String, workflow: String, cron: String, timeZone: String, from: Date, to: Date, maxActive: Int, params: [String: JSONValue], fireTimes: Int, firstFireAt: Date, createdAt: Date) {
        self.id = id
        self.workflow = workflow
        self.cron = cron
        self.timeZone = timeZone
        self.from = from
        self.to = to
        self.maxActive = maxActive
        self.params = params
        self.fireTimes = fireTimes
        self.firstFireAt = firstFireAt
        self.createdAt = createdAt
    }
}

/// Where a backfill stands.
public enum BackfillStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Creating runs or waiting for them.
    case running
    /// Every fire time has a run (created or already present) and none of its runs failed.
    case succeeded
    /// Every fire time has a run and at least one of the runs it created failed or was cancelled.
    case failed
    /// Cancelled as a whole: no new runs, its running runs were cancelled.
    case cancelled

    public var isFinished: Bool { self != .running }
}

/// A backfill as stored, with the state of the runs it created.
public struct BackfillRecord: Sendable, Hashable {
    public var id: String
    public var workflow: String
    public var cron: String
    public var timeZone: String
    public var from: Date
    public var to: Date
    public var maxActive: Int
    public var params: [String: JSONValue]
    public var status: BackfillStatus
    /// Fire times in the range.
    public var fireTimes: Int
    /// The next fire time to create a run for; nil once every fire time has one.
    public var nextFireAt: Date?
    /// Runs this backfill created.
    public var runsCreated: Int
    /// Fire times that already had a run (the scheduler's, or another backfill's): skipped.
    public var alreadyPresent: Int
    /// Its runs by status.
    public var runs: [RunStatus: Int]
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: String, workflow: String, cron: String, timeZone: String, from: Date, to: Date, maxActive: Int, params: [String: JSONValue], status: BackfillStatus, fireTimes: Int, nextFireAt: Date?, runsCreated: Int, alreadyPresent: Int, runs: [RunStatus: Int], createdAt: Date, finishedAt: Date?) {
        self.id = id
        self.workflow = workflow
        self.cron = cron
        self.timeZone = timeZone
        self.from = from
        self.to = to
        self.maxActive = maxActive
        self.params = params
        self.status = status
        self.fireTimes = fireTimes
        self.nextFireAt = nextFireAt
        self.runsCreated = runsCreated
        self.alreadyPresent = alreadyPresent
        self.runs = runs
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }

    /// Runs of the backfill pending or running.
    public var active: Int { (runs[.pending] ?? 0) + (runs[.running] ?? 0) }
    public var succeeded: Int { runs[.success] ?? 0 }
    /// Runs that failed or were cancelled.
    public var failed: Int { (runs[.failed] ?? 0) + (runs[.cancelled] ?? 0) }
    /// The status a backfill with nothing left to create and nothing active ends with.
    public var outcome: BackfillStatus { failed > 0 ? .failed : .succeeded }
}

/// What `cancelBackfill` did.
public enum BackfillCancelResult: Sendable {
    /// Cancelled; these runs of it were pending or running and are to be cancelled.
    case cancelled(BackfillRecord, activeRuns: [RunID])
    case alreadyFinished(BackfillStatus)
    case notFound
}

/// The log of one attempt.
public struct AttemptLog: Sendable, Hashable {
    public var attempt: Int
    public var status: AttemptStatus
    public var text: String
    public var truncated: Bool

    public init(attempt: Int, status: AttemptStatus, text: String, truncated: Bool) {
        self.attempt = attempt
        self.status = status
        self.text = text
        self.truncated = truncated
    }
}

// MARK: Notification outbox

/// A notification to deliver through one channel. Written once per alert transition and
/// channel: the `key` is unique, so writing the same transition twice (a restart, a second
/// process) adds nothing.
public struct NewOutboxMessage: Sendable, Hashable {
    public var key: String
    public var channel: String
    /// What to deliver (DeerFlow writes an encoded alert notification).
    public var payload: String
    public var createdAt: Date

    public init(key: String, channel: String, payload: String, createdAt: Date) {
        self.key = key
        self.channel = channel
        self.payload = payload
        self.createdAt = createdAt
    }
}

/// Where an outbox message stands.
public enum OutboxStatus: String, Sendable, Hashable, CaseIterable {
    /// Not delivered yet; tried again at `nextAttemptAt`.
    case pending
    case delivered
    /// Given up on (rejected by the channel, or out of attempts).
    case failed
}

/// A message of the outbox.
public struct OutboxMessage: Sendable, Hashable {
    public var id: Int64
    public var key: String
    public var channel: String
    public var payload: String
    public var status: OutboxStatus
    /// Delivery attempts made so far.
    public var attempts: Int
    public var createdAt: Date
    public var nextAttemptAt: Date
    public var deliveredAt: Date?
    public var lastError: String?

    public init(
        id: Int64, key: String, channel: String, payload: String, status: OutboxStatus, attempts: Int, createdAt: Date,
        nextAttemptAt: Date, deliveredAt: Date?, lastError: String?
    ) {
        self.id = id
        self.key = key
        self.channel = channel
        self.payload = payload
        self.status = status
        self.attempts = attempts
        self.createdAt = createdAt
        self.nextAttemptAt = nextAttemptAt
        self.deliveredAt = deliveredAt
        self.lastError = lastError
    }
}

/// The result of one delivery attempt.
public enum OutboxOutcome: Sendable, Hashable {
    case delivered
    /// Try again at this time.
    case retry(at: Date, error: String)
    /// Give up.
    case failed(error: String)
}

/// Whether a registered worker is still there.
public enum WorkerState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Running and heartbeating.
    case active
    /// Deregistered cleanly (shut down).
    case stopped
    /// Its heartbeat timed out; its attempts were reclaimed.
    case lost
}
