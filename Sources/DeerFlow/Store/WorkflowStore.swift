public import DeerFlowCore
public import Foundation
public import ServiceLifecycle

/// The persistence the engine needs: runs, tasks and attempts (``RunStore``), claiming and
/// completing them (``ExecutionStore``), cron schedules (``ScheduleStore``) and coordination
/// between processes sharing it (``CoordinationStore``). Every state transition is one
/// transaction.
///
/// Two implementations exist: `SQLiteWorkflowStore` (embedded, one machine) and
/// `PostgresWorkflowStore` (many processes on many machines). Both pass the conformance suite in
/// `DeerFlowTesting` (`WorkflowStoreConformance`). A store of your own applies completions with
/// ``CompletionPlan/plan(_:)``, the rules every store shares, and runs that suite.
///
/// A server process needs three capabilities more, ``OutboxStore``, ``StateStore`` and
/// ``RetentionStore`` (``ServerStore``).
///
/// A store is a `Service`: ``prepare()`` opens and migrates it, then its `run()` keeps what it
/// needs while in use (a connection pool, a LISTEN connection) until graceful shutdown or
/// cancellation, and closes it. In a `ServiceGroup` it comes before the services using it, so it
/// stops after them; outside one, ``withRunning(_:)`` runs it around a body.
public protocol WorkflowStore: RunStore, ExecutionStore, ScheduleStore, CoordinationStore, LimitStore, Service {
    /// Creates or migrates the schema. Called once before anything else.
    func prepare() async throws
    /// Releases connections; `run()` does this when it ends. Safe to call more than once.
    func close() async throws
    /// A cheap round trip, for health checks.
    func ping() async throws
}

/// What a DeerFlow server process needs of its store: the engine's, plus the notification outbox,
/// process state of alerting and deleting old history.
public typealias ServerStore = WorkflowStore & OutboxStore & StateStore & RetentionStore & WebhookDeliveryStore

/// Webhook deliveries recorded with the runs they started, so a delivery the sender repeats (same
/// hook, same delivery id) starts no second run: across restarts, across the processes sharing
/// the store, and for repeats arriving at the same time. ``RetentionStore/purgeSettledRecords(before:)``
/// deletes deliveries received before its cutoff.
public protocol WebhookDeliveryStore: Sendable {
    /// Records `delivery` and creates `run` in one transaction. When the delivery is recorded
    /// already, creates nothing and answers the run it started then (`.duplicate`); two calls
    /// for the same delivery at the same time create one run.
    func createRun(_ run: NewRun, delivery: WebhookDelivery) async throws -> DeliveryOutcome
}

/// Deleting old history in small batches, each its own short transaction, so a purge never holds
/// a lock for long and never touches a run that has not finished.
public protocol RetentionStore: Sendable {
    /// Deletes up to `limit` finished runs whose `finished_at` is before `cutoff`, oldest first,
    /// with their tasks, attempts and task logs; answers what it deleted. Fewer runs than `limit`
    /// deleted means none older is left.
    func purgeRuns(finishedBefore cutoff: Date, limit: Int) async throws -> PurgedHistory
    /// Deletes the task logs of up to `limit` finished runs whose `finished_at` is before
    /// `cutoff`, oldest first, starting after `cursor`; answers what it deleted and where to go on
    /// (nil: no run older is left).
    func purgeTaskLogs(finishedBefore cutoff: Date, after cursor: RetentionCursor?, limit: Int) async throws -> (purged: PurgedHistory, next: RetentionCursor?)
    /// Deletes delivered and failed notifications created before `cutoff` and workers that left
    /// (stopped or lost) and were last seen before it, and webhook deliveries received before it
    /// (a sender repeating one after that starts a new run); answers how many rows it deleted.
    func purgeSettledRecords(before cutoff: Date) async throws -> Int
    /// What purges with these cutoffs would delete, counted without deleting anything.
    func purgeCandidates(runsFinishedBefore: Date?, logsFinishedBefore: Date?) async throws -> PurgedHistory
    /// The size of the database in bytes (SQLite: the file's pages in use and free; PostgreSQL:
    /// `pg_database_size`).
    func storageSize() async throws -> Int64
    /// Gives freed space back to the file system where the store can (SQLite: an incremental
    /// vacuum, or with `full` a `VACUUM` that also turns incremental vacuuming on for a database
    /// created before it existed); PostgreSQL's autovacuum makes freed space reusable on its own.
    func reclaimSpace(full: Bool) async throws
}

/// What a purge deleted (or, counted for a dry run, would delete).
public struct PurgedHistory: Sendable, Hashable {
    /// Runs, with their tasks and attempts.
    public var runs: Int
    /// Task logs (one per attempt that wrote output).
    public var taskLogs: Int

    public init(runs: Int = 0, taskLogs: Int = 0) {
        self.runs = runs
        self.taskLogs = taskLogs
    }

    public static func + (lhs: PurgedHistory, rhs: PurgedHistory) -> PurgedHistory {
        PurgedHistory(runs: lhs.runs + rhs.runs, taskLogs: lhs.taskLogs + rhs.taskLogs)
    }
}

/// Where a purge of task logs goes on: after this run, in (finished time, id) order.
public struct RetentionCursor: Sendable, Hashable {
    public var finishedAt: Date
    public var run: RunID

    public init(finishedAt: Date, run: RunID) {
        self.finishedAt = finishedAt
        self.run = run
    }
}

/// Runs with their tasks and attempts, and what tasks wrote.
public protocol RunStore: Sendable {

    /// Creates a run with its tasks; tasks without dependencies are queued at once.
    /// For scheduled runs, returns nil when a run for the same workflow and due time exists
    /// (cron fires exactly once), and for a sub-workflow's run when its parent attempt
    /// (``NewRun/parent``) has a child already.
    func createRun(_ run: NewRun) async throws -> RunRecord?
    /// Creates a run as ``createRun(_:)`` does and, in the same transaction, starts up to
    /// `claim.limit` of its first attempts on `claim.worker` (tasks in `claim.queues` whose queue
    /// has no concurrency limit, of a run that does not wait for `max_active_runs`): they are
    /// inserted running, the run started. The rest are queued as usual. The engine asks for this
    /// when a worker of its process has a free slot and found its queues empty at its last claim,
    /// so a triggered run starts without a claim transaction of its own.
    ///
    /// The default creates the run with ``createRun(_:)`` and starts nothing (a store without a
    /// faster way keeps the worker's claim).
    func createRun(_ run: NewRun, startingOn claim: ClaimRequest) async throws -> CreatedRun?
    /// Creates runs (neither scheduled nor children of an attempt) in one transaction: all of
    /// them or, when it throws, none. Returns them in the order given.
    func createRuns(_ runs: [NewRun]) async throws -> [RunRecord]
    func run(_ id: RunID) async throws -> RunDetail?
    func runs(_ query: RunQuery) async throws -> RunPage
    /// Those of `ids` that have finished (any order; unknown ids are left out): one query for
    /// many runs, for closing run spans of runs other processes finished.
    func finishedRuns(among ids: [RunID]) async throws -> [RunRecord]
    /// Cancels a pending or running run: queued and pending tasks become cancelled at once,
    /// running attempts are flagged so their workers stop them.
    func cancelRun(_ id: RunID, at: Date) async throws -> CancelResult
    /// Output of a task of a run (nil when it has none yet).
    func taskOutput(run: RunID, task: String) async throws -> JSONValue?
    /// Appends text to an attempt's log, keeping at most `limit` bytes per attempt (a marker
    /// line is added when text is dropped).
    func appendLog(attempt: AttemptID, text: String, limit: Int) async throws
    /// Logs of a task's attempts (all, or one).
    func taskLogs(run: RunID, task: String, attempt: Int?) async throws -> [AttemptLog]?
    /// Queue depths, active runs, workers and what the scheduler lag is computed from.
    func statistics(now: Date) async throws -> StoreStatistics
    /// The newest `limit` runs of each of `workflows`, newest first, in one call (the UI's
    /// workflow list: a strip of recent runs per workflow without a query per workflow).
    func recentRuns(workflows: [String], limit: Int) async throws -> [String: [RunRecord]]
    /// The states of the tasks of `runs`, each run's in task order, in one call (the UI's grid
    /// of runs × tasks). Unknown ids are left out.
    func taskStates(runs: [RunID]) async throws -> [RunID: [TaskState]]
    /// Runs created at or after `since`, counted by status (statuses without runs left out).
    func runCounts(since: Date) async throws -> [RunStatus: Int]
    /// Retries a finished run in place, in one transaction: the tasks ``RunRetryPlan`` resets
    /// (every task that did not succeed, or `tasks` and everything downstream) get their outputs,
    /// retry budgets and dependency counts reset; those waiting for nothing get a queued attempt
    /// numbered after their last; the run is `running` again (finished time and reason cleared,
    /// counters recomputed, a fresh deadline when it has a timeout).
    func retryRun(_ id: RunID, tasks: [String]?, at now: Date) async throws -> RetryResult
    /// Ends the pending and running runs whose deadline passed, as a cancel does (queued attempts
    /// dropped, running ones asked to stop, unfinished tasks `cancelled`), but `failed` with reason
    /// `timeout`. At most `limit` runs per call.
    func timeOutRuns(now: Date, limit: Int) async throws -> TimeoutSweep
    /// The runs started by `workflow` tasks of `parent` (``RunRecord/parent``), oldest first.
    func childRuns(of parent: RunID) async throws -> [RunRecord]
}

extension RunStore {
    public func createRun(_ run: NewRun, startingOn claim: ClaimRequest) async throws -> CreatedRun? {
        try await createRun(run).map { CreatedRun(record: $0) }
    }
}

/// A run just created, with the first attempts started with it
/// (``RunStore/createRun(_:startingOn:)``).
public struct CreatedRun: Sendable {
    public var record: RunRecord
    /// Attempts started on the claiming worker in the run's own transaction.
    public var started: [ClaimedAttempt]
    /// `runStarted` and `attemptStarted` for them.
    public var events: [EngineEvent]

    public init(record: RunRecord, started: [ClaimedAttempt] = [], events: [EngineEvent] = []) {
        self.record = record
        self.started = started
        self.events = events
    }
}

/// Claiming and completing attempts, and the workers that run them.
public protocol ExecutionStore: Sendable {
    /// Applies completions, then claims, in one transaction.
    func exchange(_ request: ExchangeRequest) async throws -> ExchangeResult
    /// Extends the leases of a worker's running attempts and records its heartbeat. Returns the
    /// attempts among them that should stop (their run was cancelled, or they were reclaimed).
    func heartbeat(_ worker: WorkerRecord, running: [AttemptID], leaseUntil: Date) async throws -> Set<AttemptID>
    /// Marks a worker as stopped (clean shutdown).
    func deregister(worker: String, at: Date) async throws
    /// Running attempts whose lease expired, or whose worker is known to be gone, are finished as
    /// interrupted (and retried); workers silent for longer than `workerTimeout` are marked lost.
    func reclaim(now: Date, workerTimeout: Duration, deadWorkers: Set<String>) async throws -> [EngineEvent]
    func workers() async throws -> [WorkerRecord]
}

/// Cron schedules: their next due times, pauses, scheduled runs created exactly once, and
/// backfills.
public protocol ScheduleStore: Sendable {
    func schedules() async throws -> [ScheduleRecord]
    /// Records the next due time of a workflow's schedule (creating the row if needed). The
    /// record's `paused` is stored only when the row is created (the initial state); an existing
    /// row keeps its own.
    func saveSchedule(_ schedule: ScheduleRecord) async throws
    /// Creates the scheduled run (if not already created for that due time) and advances the
    /// schedule, atomically. A schedule paused in the store does not fire: nothing is written
    /// and the answer is nil.
    func fire(schedule: ScheduleRecord, run: NewRun?) async throws -> RunRecord?
    /// Pauses or unpauses a schedule (`schedule.paused`), creating its row from `schedule` when
    /// there is none. With `resetNextFire`, `schedule.nextFireAt` replaces the stored due time
    /// (an unpause that does not catch up). Returns the stored schedule.
    func setSchedulePaused(_ schedule: ScheduleRecord, resetNextFire: Bool) async throws -> ScheduleRecord

    /// Stores a new backfill (status running).
    func createBackfill(_ backfill: NewBackfill) async throws -> BackfillRecord
    /// A backfill with the counts of its runs by status; nil when unknown.
    func backfill(_ id: String) async throws -> BackfillRecord?
    /// Backfills with status running, oldest first.
    func activeBackfills() async throws -> [BackfillRecord]
    /// In one transaction, when the backfill is running and its next fire time is still
    /// `expectedNext`: creates `runs` (one whose workflow and fire time already has a run is
    /// skipped and counted as already present), records them as the backfill's, and sets its
    /// next fire time to `next` (nil: every fire time has a run). Returns the runs created; empty
    /// when the backfill moved on or stopped meanwhile (another leader, a cancel).
    func advanceBackfill(_ id: String, expectedNext: Date, runs: [NewRun], next: Date?) async throws -> [RunRecord]
    /// Marks a running backfill finished with `status` at `at` (nothing left to create, nothing
    /// active); false when it was not running.
    func finishBackfill(_ id: String, status: BackfillStatus, at: Date) async throws -> Bool
    /// Cancels a running backfill: no run is created for it any more. Answers its pending and
    /// running runs, for the caller to cancel.
    func cancelBackfill(_ id: String, at: Date) async throws -> BackfillCancelResult
}

/// A persistent outbox of notifications, delivered once per key across restarts and processes.
public protocol OutboxStore: Sendable {
    /// Adds messages to deliver; a message whose key is already present is skipped. Returns the
    /// number added.
    func enqueue(_ messages: [NewOutboxMessage]) async throws -> Int
    /// Pending messages due at `now` that no dispatcher holds, oldest first, up to `limit`; they
    /// are held for `lease` (a dispatcher that dies releases them when the lease ends).
    func claimOutbox(now: Date, limit: Int, lease: Duration) async throws -> [OutboxMessage]
    /// Records the outcome of a delivery attempt of a claimed message and releases it.
    func settleOutbox(_ id: Int64, outcome: OutboxOutcome, at: Date) async throws
    /// Messages, newest first, optionally of one status.
    func outbox(status: OutboxStatus?, limit: Int) async throws -> [OutboxMessage]
}

/// Small documents a process keeps across restarts (the active alerts).
public protocol StateStore: Sendable {
    /// Saves a small document under a key (nil deletes it), e.g. the active alerts, so that a
    /// restarted or new leader continues where the last one stopped.
    func saveState(_ value: String?, forKey key: String) async throws
    /// The document saved under a key.
    func state(forKey key: String) async throws -> String?
}

/// Coordination of processes sharing a store. A store used by one process need not implement it:
/// the defaults make that process the leader and let workers poll.
public protocol CoordinationStore: Sendable {
    /// Tries to become (or stay) the scheduler leader for `ttl`: only the leader fires schedules,
    /// reclaims leases and exports cluster-wide gauges. A store used by one machine may always
    /// answer true (the default).
    func tryAcquireLeadership(candidate: String, ttl: Duration) async throws -> Bool
    /// Gives leadership up (clean shutdown), so another process takes over at once.
    func releaseLeadership(candidate: String) async
    /// Signals that attempts may have become claimable because of another process (e.g. PostgreSQL
    /// LISTEN/NOTIFY); nil when the store cannot tell, and workers poll.
    func workAvailable() -> AsyncStream<Void>?
}

extension CoordinationStore {
    public func tryAcquireLeadership(candidate: String, ttl: Duration) async throws -> Bool { true }
    public func releaseLeadership(candidate: String) async {}
    public func workAvailable() -> AsyncStream<Void>? { nil }
}

extension WorkflowStore {
    /// Runs the store (``run()``) while `body` uses it, then stops it: for code that uses a
    /// prepared store outside a `ServiceGroup`.
    public func withRunning<T: Sendable>(_ body: @Sendable (Self) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.run()
                return nil
            }
            do {
                let result = try await body(self)
                group.cancelAll()
                while let _ = try? await group.next() {}
                return result
            } catch {
                group.cancelAll()
                while let _ = try? await group.next() {}
                throw error
            }
        }
    }
}
