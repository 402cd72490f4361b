public import DeerFlow
public import DeerFlowCore
public import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore {
    public func exchange(_ request: ExchangeRequest) async throws -> ExchangeResult {
        let limits = try await currentLimits(now: request.now)
        return try await writer.transaction { db in
            var completed = Completed()
            var leftReadyQueued = false
            if !request.completions.isEmpty {
                completed = try await Self.complete(request.completions, now: request.now, in: db)
                // Finished runs free places under max_active_runs; finished attempts of a limited
                // queue free places in it: claim from the queues again at once.
                let admitted = try await Self.admitWaitingRuns(of: limits.workflowsToAdmit(after: completed.events), now: request.now, in: db)
                leftReadyQueued = !admitted.isEmpty || limits.freesQueue(completed.events)
            }
            var events = completed.events
            var claimed: [ClaimedAttempt] = []
            var direct: [ReadyTask] = []
            if let claim = request.claim, claim.limit > 0, claim.onlyNewlyReady {
                let queues = Set(claim.queues)
                let ready = completed.ready.filter { queues.contains($0.queue) }
                // Tasks of a limited queue go through the queue, where its limit is checked.
                direct = Array(ready.lazy.filter { limits.queueLimits[$0.queue] == nil }.prefix(claim.limit))
                leftReadyQueued = leftReadyQueued || ready.count > direct.count
            }
            let directKeys = Set(direct.map(\.key))
            try await Self.queue(completed.ready.filter { !directKeys.contains($0.key) }, now: request.now, in: db)
            if let claim = request.claim, claim.limit > 0 {
                if !direct.isEmpty {
                    let (attempts, startEvents) = try await Self.start(direct, runs: completed.runs, claim: claim, now: request.now, in: db)
                    claimed += attempts
                    events += startEvents
                }
                if !claim.onlyNewlyReady {
                    let limited = limits.limitedQueues(among: claim.queues)
                    // Inside the write transaction, attempts of a limited queue start now, not when
                    // the exchange was sent: after every attempt whose end made room for them.
                    let claimNow = limited.isEmpty ? request.now : max(request.now, Date())
                    let (attempts, claimEvents) = try await Self.claim(claim, limited: limited, now: claimNow, in: db)
                    claimed += attempts
                    events += claimEvents
                }
            }
            return ExchangeResult(claimed: claimed, events: events, leftReadyQueued: leftReadyQueued)
        }
    }

    // MARK: Completing

    /// A task whose last dependency just succeeded.
    struct ReadyTask {
        var runID: RunID
        var index: Int
        var taskID: String
        var type: String
        var queue: String
        var priority: Int
        var timeoutMilliseconds: Int?
        /// The number of its next attempt (1, or after the attempts of a retried run).
        var number: Int
        /// For an instance of a mapped task: its position and item (JSON text).
        var mapIndex: Int? = nil
        var item: String? = nil
        var key: String { "\(runID.rawValue)#\(index)" }
    }

    /// Run columns read along with completing attempts: what a claim of the run's dependents
    /// needs, and the run's counters, from which `apply` decides whether the completions finish
    /// the run (`RunProgress.outcome`) before its one UPDATE, instead of reading the counters back
    /// and finishing it in a second statement.
    struct RunColumns {
        var workflow: String
        var version: String
        var params: String
        var traceContext: String?
        /// The time the run stands for: its schedule or backfill fire time, else its creation.
        var logicalTime: Date?
        var progress: RunProgress
        /// Pending or running: counters and outcome are written only then (a cancelled or
        /// finished run keeps its own).
        var active: Bool
        var createdAt: Date?
        var startedAt: Date?
    }

    /// What applying completions produced.
    struct Completed {
        var events: [EngineEvent] = []
        var ready: [ReadyTask] = []
        var runs: [RunID: RunColumns] = [:]
    }

    /// Applies completions: attempt and task rows, retries, dependents, upstream failures and run
    /// outcomes, as `CompletionPlan` decides. Dependents made ready are returned, not yet queued.
    static func complete(_ completions: [AttemptCompletion], now: Date, in db: DatabaseConnection) async throws -> Completed {
        var loaded: [AttemptID: CompletingAttempt] = [:]
        var completed = Completed()
        for chunk in completions.statementChunks() {
            let rows = try await db.rows(
                """
                SELECT a.id, a.run_id, a.task_idx, a.number, a.status, a.started_at, a.worker,
                       t.task_id, t.type, t.queue, t.priority, t.retries, t.retry_delay_ms, t.max_retry_delay_ms, t.jitter,
                       t.retries_used, t.interruptions, t.dependents, t.map_parent, r.workflow, r.status AS run_status,
                       r.version, r.params, r.trace_context, coalesce(r.scheduled_for, r.created_at) AS logical_time,
                       r.tasks_total, r.tasks_finished, r.tasks_failed, r.created_at AS run_created_at, r.started_at AS run_started_at
                FROM attempts a
                JOIN tasks t ON t.run_id = a.run_id AND t.idx = a.task_idx
                JOIN runs r ON r.id = a.run_id
                WHERE a.id IN (\(placeholders(chunk.count)))
                """, chunk.map { .integer(Int($0.attemptID)) })
            for row in rows {
                let attempt = completingAttempt(row)
                loaded[attempt.attemptID] = attempt
                completed.runs[attempt.runID] = RunColumns(
                    workflow: attempt.workflow, version: row.string("version"), params: row.string("params"),
                    traceContext: row.optionalString("trace_context"), logicalTime: row.date("logical_time"),
                    progress: RunProgress(total: row.int("tasks_total"), finished: row.int("tasks_finished"), failed: row.int("tasks_failed")),
                    active: [RunStatus.pending, .running].contains(attempt.runStatus),
                    createdAt: row.date("run_created_at"), startedAt: row.date("run_started_at"))
            }
        }
        let pairs = completions.compactMap { completion in loaded[completion.attemptID].map { (completion, $0) } }
        var plan = CompletionPlan.plan(pairs)
        completed.ready = try await apply(&plan, runs: completed.runs, now: now, in: db)
        completed.events = plan.events
        return completed
    }

    static func completingAttempt(_ row: ResultRow) -> CompletingAttempt {
        CompletingAttempt(
            attemptID: AttemptID(row.int("id")), runID: RunID(rawValue: row.string("run_id")), workflow: row.string("workflow"),
            runStatus: RunStatus(rawValue: row.string("run_status")) ?? .failed, taskIndex: row.int("task_idx"),
            taskID: row.string("task_id"), type: row.string("type"), queue: row.string("queue"), priority: row.int("priority"),
            number: row.int("number"), status: AttemptStatus(rawValue: row.string("status")) ?? .failed,
            startedAt: row.date("started_at"), worker: row.optionalString("worker"),
            retry: RetryPolicy(
                retries: row.int("retries"), delay: .milliseconds(row.int("retry_delay_ms")),
                maxDelay: .milliseconds(row.int("max_retry_delay_ms")), jitter: row.double("jitter")),
            retriesUsed: row.int("retries_used"), interruptions: row.int("interruptions"),
            dependents: row.string("dependents").split(separator: ",").compactMap { Int($0) }, mapParent: row.optionalInt("map_parent"))
    }

    /// Writes a plan; returns the dependents it made ready (their task rows say `queued`; their
    /// attempts are inserted by `queue` or `start`).
    static func apply(_ plan: inout CompletionPlan, runs: [RunID: RunColumns], now: Date, in db: DatabaseConnection) async throws -> [ReadyTask] {
        for chunk in plan.attemptUpdates.statementChunks() {
            var binds: [SQLiteData] = []
            for update in chunk {
                binds += [.integer(Int(update.id)), .text(update.status.rawValue), Column.time(update.finishedAt), Column.text(update.error)]
            }
            _ = try await db.rows(valuesStatement(
                """
                UPDATE attempts SET status = v.column2, finished_at = v.column3, error = v.column4, lease_until = NULL
                {values} WHERE attempts.id = v.column1
                """, rows: chunk.count, columns: 4), binds)
        }
        for chunk in plan.taskUpdates.statementChunks() {
            var binds: [SQLiteData] = []
            for update in chunk {
                binds += [
                    .text(update.runID.rawValue), .integer(update.index), .text(update.status.rawValue),
                    Column.text(update.output?.compactJSON), .integer(update.retriesUsed), .integer(update.interruptions),
                    .integer(update.attempts),
                ]
            }
            _ = try await db.rows(valuesStatement(
                """
                UPDATE tasks SET status = v.column3, output = coalesce(v.column4, tasks.output), retries_used = v.column5,
                                 interruptions = v.column6, attempts = v.column7
                {values}
                WHERE tasks.run_id = v.column1 AND tasks.idx = v.column2
                """, rows: chunk.count, columns: 7), binds)
        }
        try await insertAttempts(plan.newAttempts, into: db)
        // Mapped tasks: instances inserted, the next ones queued, finished maps recorded.
        var ready = try await applyMaps(&plan, in: db)

        // Dependents whose last dependency just succeeded become queued in the same statement.
        // (`RETURNING` names its columns unqualified: SQLite compiles `tasks.x` there about 5 µs
        // slower, a sixth of this statement's compile time, on every completion.)
        for chunk in plan.dependencyReleases.statementChunks() {
            var binds: [SQLiteData] = []
            for release in chunk {
                binds += [.text(release.runID.rawValue), .integer(release.taskIndex), .integer(release.count)]
            }
            let rows = try await db.rows(valuesStatement(
                """
                UPDATE tasks SET deps_remaining = deps_remaining - v.column3,
                    status = CASE WHEN tasks.status = 'pending' AND tasks.deps_remaining - v.column3 <= 0 THEN 'queued' ELSE tasks.status END,
                    attempts = CASE WHEN tasks.status = 'pending' AND tasks.deps_remaining - v.column3 <= 0 THEN tasks.attempts + 1 ELSE tasks.attempts END
                {values}
                WHERE tasks.run_id = v.column1 AND tasks.idx = v.column2
                RETURNING run_id, idx, deps_remaining, status, queue, priority, task_id, type, timeout_ms, attempts
                """, rows: chunk.count, columns: 3), binds)
            let released = Dictionary(chunk.map { ("\($0.runID.rawValue)#\($0.taskIndex)", $0.count) }, uniquingKeysWith: +)
            for row in rows where row.int("deps_remaining") <= 0 && row.string("status") == TaskStatus.queued.rawValue {
                let key = "\(row.string("run_id"))#\(row.int("idx"))"
                // Only a task whose count reached zero in this statement, not one queued before.
                guard row.int("deps_remaining") + (released[key] ?? 0) > 0 else { continue }
                ready.append(ReadyTask(
                    runID: RunID(rawValue: row.string("run_id")), index: row.int("idx"), taskID: row.string("task_id"),
                    type: row.string("type"), queue: row.string("queue"), priority: row.int("priority"),
                    timeoutMilliseconds: row.optionalInt("timeout_ms"), number: row.int("attempts")))
            }
        }

        // Tasks that can never run because a dependency failed for good.
        for (runID, failed) in plan.finalFailures.sorted(by: { $0.key < $1.key }) {
            let rows = try await db.rows("SELECT idx, task_id, status, dependents FROM tasks WHERE run_id = ?", [.text(runID.rawValue)])
            var tasks: [Int: (status: TaskStatus, dependents: [Int])] = [:]
            var ids: [Int: String] = [:]
            for row in rows {
                tasks[row.int("idx")] = (TaskStatus(rawValue: row.string("status")) ?? .pending, row.string("dependents").split(separator: ",").compactMap { Int($0) })
                ids[row.int("idx")] = row.string("task_id")
            }
            let skipped = CompletionPlan.upstreamFailed(from: failed, tasks: tasks)
            guard !skipped.isEmpty else { continue }
            for chunk in skipped.statementChunks() {
                _ = try await db.rows(
                    "UPDATE tasks SET status = 'upstream_failed' WHERE run_id = ? AND idx IN (\(placeholders(chunk.count))) AND status = 'pending'",
                    [.text(runID.rawValue)] + chunk.map { .integer($0) })
            }
            plan.progress[runID, default: RunProgress(total: 0)].record(.upstreamFailed, count: skipped.count)
            let workflow = rows.isEmpty ? "" : (try await db.rows("SELECT workflow FROM runs WHERE id = ?", [.text(runID.rawValue)]).first?.string("workflow") ?? "")
            plan.events.append(.tasksSkipped(runID: runID, workflow: workflow, taskIDs: skipped.compactMap { ids[$0] }))
        }

        // Run counters, and the runs that just finished, in one statement: the outcome is decided
        // from the counters read with the attempts (this transaction holds the write lock, so
        // they are current) and the deltas.
        var updates: [(runID: RunID, delta: RunProgress, outcome: RunStatus?)] = []
        for (runID, delta) in plan.progress.filter({ $0.value.finished > 0 }).sorted(by: { $0.key < $1.key }) {
            guard let run = runs[runID], run.active else { continue }
            var after = run.progress
            after.finished += delta.finished
            after.failed += delta.failed
            updates.append((runID, delta, after.outcome))
            guard let outcome = after.outcome else { continue }
            plan.events.append(.runFinished(
                runID: runID, workflow: run.workflow, status: outcome, createdAt: run.createdAt ?? now, startedAt: run.startedAt, finishedAt: now))
        }
        for chunk in updates.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 5)
            for update in chunk {
                binds += [
                    .text(update.runID.rawValue), .integer(update.delta.finished), .integer(update.delta.failed),
                    Column.text(update.outcome?.rawValue), update.outcome == nil ? .null : Column.time(now),
                ]
            }
            _ = try await db.rows(valuesStatement(Self.runProgressUpdate, rows: chunk.count, columns: 5), binds)
        }
        return ready
    }

    /// Adds finished and failed task counts to runs and finishes those they complete
    /// (`v.column1` run id, `v.column2` finished, `v.column3` failed, `v.column4` the final status
    /// or null, `v.column5` the finish time or null). The `+` keeps SQLite from choosing the
    /// `runs_by_status` index for the status test: it would visit every active run for each batch
    /// (3.6 ms a batch at a backlog of a few thousand runs) instead of looking each run up by id.
    package static let runProgressUpdate = """
        UPDATE runs SET tasks_finished = tasks_finished + v.column2, tasks_failed = tasks_failed + v.column3,
                        status = coalesce(v.column4, status), finished_at = coalesce(v.column5, finished_at)
        {values}
        WHERE runs.id = v.column1 AND +runs.status IN ('pending', 'running')
        """

    /// Inserts queued first attempts for ready tasks.
    static func queue(_ ready: [ReadyTask], now: Date, in db: DatabaseConnection) async throws {
        try await insertAttempts(
            ready.map { .init(runID: $0.runID, taskIndex: $0.index, number: $0.number, queue: $0.queue, priority: $0.priority, queuedAt: now) },
            into: db)
    }

    /// Starts ready tasks on the claiming worker at once: their first attempts are inserted running.
    static func start(_ ready: [ReadyTask], runs: [RunID: RunColumns], claim: ClaimRequest, now: Date, in db: DatabaseConnection) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        var starting: [RunID: StartingRun] = [:]
        for task in ready where starting[task.runID] == nil {
            if let run = runs[task.runID] { starting[task.runID] = StartingRun(decoding: run) }
        }
        let leaseUntil = now.adding(claim.leaseDuration)
        let started = try await insertRunning(
            ready.map { StartingTask(task: $0, worker: claim.worker, startedAt: now, leaseUntil: leaseUntil) }, runs: starting, in: db)
        try await markRunning(ready.map { ($0.runID.rawValue, $0.index) }, in: db)
        return started
    }

    /// Marks tasks (run id, index) running, for attempts started on a worker.
    static func markRunning(_ tasks: [(runID: String, index: Int)], in db: DatabaseConnection) async throws {
        for chunk in tasks.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 2)
            for task in chunk { binds += [.text(task.runID), .integer(task.index)] }
            _ = try await db.rows(valuesStatement(
                "UPDATE tasks SET status = 'running' {values} WHERE tasks.run_id = v.column1 AND tasks.idx = v.column2",
                rows: chunk.count, columns: 2), binds)
        }
    }

    /// What an attempt started without a claim query needs of its run.
    struct StartingRun {
        var workflow: String
        var version: String
        var params: [String: JSONValue]
        /// Why the stored parameters could not be read, if they could not.
        var problem: String? = nil
        var traceContext: String?
        var logicalTime: Date?
    }

    /// A ready task starting on a worker.
    struct StartingTask {
        var task: ReadyTask
        var worker: String
        var startedAt: Date
        var leaseUntil: Date
    }

    /// Inserts the first attempts of tasks as running on their workers, in one statement; the
    /// claimed attempts and their `attemptStarted` events. The tasks' own rows are the caller's.
    static func insertRunning(_ starting: [StartingTask], runs: [RunID: StartingRun], in db: DatabaseConnection) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        guard !starting.isEmpty else { return ([], []) }
        var ids: [String: AttemptID] = [:]
        for chunk in starting.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 8)
            for start in chunk {
                let task = start.task
                binds += [
                    .text(task.runID.rawValue), .integer(task.index), .text(task.queue), .integer(task.priority), Column.time(start.startedAt),
                    .text(start.worker), Column.time(start.leaseUntil), .integer(task.number),
                ]
            }
            let rows = try await db.rows(valuesInsert(
                "INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, started_at, worker, lease_until, status)",
                select: "v.column1, v.column2, v.column8, v.column3, v.column4, v.column5, v.column5, v.column6, v.column7, 'running'",
                tail: "RETURNING id, run_id, task_idx",
                rows: chunk.count, columns: 8), binds)
            for row in rows { ids["\(row.string("run_id"))#\(row.int("task_idx"))"] = AttemptID(row.int("id")) }
        }
        var claimed: [ClaimedAttempt] = []
        var events: [EngineEvent] = []
        claimed.reserveCapacity(starting.count)
        events.reserveCapacity(starting.count)
        for start in starting {
            let task = start.task
            guard let id = ids[task.key], let run = runs[task.runID] else { continue }
            var attempt = ClaimedAttempt(
                id: id, runID: task.runID, workflow: run.workflow, workflowVersion: run.version, taskIndex: task.index,
                taskID: task.taskID, type: task.type, queue: task.queue, number: task.number, params: run.params, traceContext: run.traceContext,
                timeout: task.timeoutMilliseconds.map { .milliseconds($0) }, queuedAt: start.startedAt, startedAt: start.startedAt,
                leaseUntil: start.leaseUntil, unreadable: run.problem, logicalTime: run.logicalTime)
            attempt.setInstance(index: task.mapIndex, item: task.item)
            claimed.append(attempt)
            events.append(.attemptStarted(
                AttemptInfo(attemptID: id, runID: task.runID, workflow: run.workflow, taskID: task.taskID, type: task.type, queue: task.queue, number: task.number, worker: start.worker),
                queuedAt: start.startedAt, startedAt: start.startedAt))
        }
        return (claimed, events)
    }

    // MARK: Claiming

    /// Claims up to `limit` ready attempts from the worker's queues, highest priority first, then
    /// oldest; one indexed query per queue, merged.
    /// Queues with a concurrency limit (`limited`) give at most as many attempts as they have
    /// free places.
    static func claim(_ claim: ClaimRequest, limited: [String], now: Date, in db: DatabaseConnection) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        var candidates: [ResultRow] = []
        let capacity = limited.isEmpty ? [:] : try await queueCapacity(limited, in: db)
        for queue in Set(claim.queues).sorted() {
            let limit = min(claim.limit, capacity[queue] ?? claim.limit)
            guard limit > 0 else { continue }
            candidates += try await db.rows(
                """
                SELECT a.id, a.run_id, a.task_idx, a.number, a.queue, a.priority, a.queued_at,
                       t.task_id, t.type, t.timeout_ms, t.map_index, t.item, r.workflow, r.version, r.params, r.trace_context, r.status AS run_status,
                       coalesce(r.scheduled_for, r.created_at) AS logical_time
                FROM attempts a
                JOIN tasks t ON t.run_id = a.run_id AND t.idx = a.task_idx
                JOIN runs r ON r.id = a.run_id
                WHERE a.status = 'queued' AND a.queue = ? AND a.queued_at <= ?
                ORDER BY a.priority DESC, a.queued_at, a.id
                LIMIT CAST(? AS INTEGER)
                """, [.text(queue), Column.time(now), .integer(limit)])
        }
        if claim.queues.count > 1 {
            candidates.sort { lhs, rhs in
                let l = (lhs.int("priority"), rhs.int("queued_at"), rhs.int("id"))
                let r = (rhs.int("priority"), lhs.int("queued_at"), lhs.int("id"))
                return l > r
            }
        }
        let chosen = candidates.prefix(claim.limit)
        guard !chosen.isEmpty else { return ([], []) }
        let leaseUntil = now.adding(claim.leaseDuration)
        let ids = chosen.map { SQLiteData.integer($0.int("id")) }
        for chunk in ids.statementChunks() {
            _ = try await db.rows(
                "UPDATE attempts SET status = 'running', started_at = ?, worker = ?, lease_until = ? WHERE id IN (\(placeholders(chunk.count)))",
                [Column.time(now), .text(claim.worker), Column.time(leaseUntil)] + chunk)
        }
        try await markRunning(chosen.map { ($0.string("run_id"), $0.int("task_idx")) }, in: db)
        // Runs that were pending start now (read in the same transaction, so no run is missed).
        let pendingRuns = Array(Set(chosen.filter { $0.string("run_status") == RunStatus.pending.rawValue }.map { $0.string("run_id") })).sorted()
        var events: [EngineEvent] = []
        for chunk in pendingRuns.statementChunks() {
            let started = try await db.rows(
                "UPDATE runs SET status = 'running', started_at = ? WHERE status = 'pending' AND id IN (\(placeholders(chunk.count))) RETURNING id, workflow",
                [Column.time(now)] + chunk.map { .text($0) })
            events += started.map { .runStarted(runID: RunID(rawValue: $0.string("id")), workflow: $0.string("workflow"), at: now) }
        }
        var paramsCache: [String: (params: [String: JSONValue], problem: String?)] = [:]
        var claimed: [ClaimedAttempt] = []
        claimed.reserveCapacity(chosen.count)
        for row in chosen {
            let runID = row.string("run_id")
            let params = paramsCache[runID] ?? StoredParams.decode(row.string("params"))
            paramsCache[runID] = params
            var attempt = ClaimedAttempt(
                id: AttemptID(row.int("id")), runID: RunID(rawValue: runID), workflow: row.string("workflow"),
                workflowVersion: row.string("version"), taskIndex: row.int("task_idx"), taskID: row.string("task_id"),
                type: row.string("type"), queue: row.string("queue"), number: row.int("number"), params: params.params,
                traceContext: row.optionalString("trace_context"), timeout: row.optionalInt("timeout_ms").map { .milliseconds($0) },
                queuedAt: row.date("queued_at") ?? now, startedAt: now, leaseUntil: leaseUntil, unreadable: params.problem,
                logicalTime: row.date("logical_time"))
            attempt.setInstance(index: row.optionalInt("map_index"), item: row.optionalString("item"))
            claimed.append(attempt)
            events.append(.attemptStarted(
                AttemptInfo(attemptID: attempt.id, runID: attempt.runID, workflow: attempt.workflow, taskID: attempt.taskID, type: attempt.type, queue: attempt.queue, number: attempt.number, worker: claim.worker),
                queuedAt: attempt.queuedAt, startedAt: now))
        }
        return (claimed, events)
    }

    // MARK: Workers and leases

    public func heartbeat(_ worker: WorkerRecord, running: [AttemptID], leaseUntil: Date) async throws -> Set<AttemptID> {
        try await writer.transaction { db in
            _ = try await db.rows(
                """
                INSERT INTO workers (id, host, pid, slots, busy, queues, version, started_at, last_seen, state)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'active')
                ON CONFLICT (id) DO UPDATE SET busy = excluded.busy, last_seen = excluded.last_seen, slots = excluded.slots,
                    queues = excluded.queues, state = CASE WHEN workers.state = 'stopped' THEN 'stopped' ELSE 'active' END
                """,
                [
                    .text(worker.id), .text(worker.host), .integer(worker.pid), .integer(worker.slots), .integer(worker.busy),
                    .text(worker.queues.joined(separator: ",")), .text(worker.version), Column.time(worker.startedAt),
                    Column.time(worker.lastSeen),
                ])
            guard !running.isEmpty else { return [] }
            var stop: Set<AttemptID> = []
            for chunk in running.statementChunks() {
                let ids = chunk.map { SQLiteData.integer(Int($0)) }
                _ = try await db.rows(
                    "UPDATE attempts SET lease_until = ? WHERE status = 'running' AND worker = ? AND id IN (\(placeholders(ids.count)))",
                    [Column.time(leaseUntil), .text(worker.id)] + ids)
                let rows = try await db.rows(
                    "SELECT id FROM attempts WHERE id IN (\(placeholders(ids.count))) AND (status != 'running' OR worker IS NOT ? OR stop_requested = 1)",
                    ids + [.text(worker.id)])
                for row in rows { stop.insert(AttemptID(row.int("id"))) }
            }
            return stop
        }
    }

    public func deregister(worker: String, at now: Date) async throws {
        _ = try await writer.transaction { db in
            try await db.rows("UPDATE workers SET state = 'stopped', busy = 0, last_seen = ? WHERE id = ?", [Column.time(now), .text(worker)])
        }
    }

    public func reclaim(now: Date, workerTimeout: Duration, deadWorkers: Set<String>) async throws -> [EngineEvent] {
        let limits = try await currentLimits(now: now)
        return try await writer.transaction { db in
            // The leader's safety net: runs that wait although their workflow has room (a limit
            // another process raised) start here.
            if !limits.runLimits.isEmpty {
                _ = try await Self.admitWaitingRuns(of: limits.runLimits.keys.sorted(), now: now, in: db)
            }
            let silentSince = now.adding(.zero - workerTimeout)
            let lost = try await db.rows(
                "UPDATE workers SET state = 'lost', busy = 0 WHERE state = 'active' AND (last_seen < ? OR id IN (\(placeholders(deadWorkers.count)))) RETURNING id",
                [Column.time(silentSince)] + deadWorkers.sorted().map { .text($0) })
            let lostWorkers = Set(lost.map { $0.string("id") })
            let expired = try await db.rows(
                """
                SELECT id, worker, lease_until FROM attempts
                WHERE status = 'running' AND (lease_until < ? OR worker IN (\(placeholders(lostWorkers.count))))
                """,
                [Column.time(now)] + lostWorkers.sorted().map { .text($0) })
            guard !expired.isEmpty else { return [] }
            let completions = expired.map { row in
                let worker = row.optionalString("worker") ?? "unknown"
                let reason = lostWorkers.contains(worker) ? "worker \(worker) is gone" : "lease expired: worker \(worker) stopped renewing it"
                return AttemptCompletion(attemptID: AttemptID(row.int("id")), outcome: .interrupted(message: reason), finishedAt: now)
            }
            let completed = try await Self.complete(completions, now: now, in: db)
            try await Self.queue(completed.ready, now: now, in: db)
            _ = try await Self.admitWaitingRuns(of: limits.workflowsToAdmit(after: completed.events), now: now, in: db)
            return completed.events
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        let rows = try await reader.exclusive { try await $0.rows("SELECT * FROM workers ORDER BY started_at, id") }
        return rows.map { row in
            WorkerRecord(
                id: row.string("id"), host: row.string("host"), pid: row.int("pid"), slots: row.int("slots"), busy: row.int("busy"),
                queues: row.string("queues").split(separator: ",").map(String.init), version: row.string("version"),
                startedAt: row.date("started_at") ?? Date(timeIntervalSince1970: 0), lastSeen: row.date("last_seen") ?? Date(timeIntervalSince1970: 0),
                state: WorkerState(rawValue: row.string("state")) ?? .lost)
        }
    }

    // MARK: Schedules

    public func schedules() async throws -> [ScheduleRecord] {
        let rows = try await reader.exclusive { try await $0.rows("SELECT * FROM schedules ORDER BY workflow") }
        return rows.map { row in
            Self.scheduleRecord(row)
        }
    }

    static func scheduleRecord(_ row: ResultRow) -> ScheduleRecord {
        ScheduleRecord(workflow: row.string("workflow"), cron: row.string("cron"), timeZone: row.string("timezone"),
                       nextFireAt: row.date("next_fire_at"), lastFiredAt: row.date("last_fired_at"), paused: row.int("paused") != 0)
    }

    public func saveSchedule(_ schedule: ScheduleRecord) async throws {
        _ = try await writer.transaction { db in
            try await Self.upsert(schedule, in: db)
        }
    }

    static func upsert(_ schedule: ScheduleRecord, in db: DatabaseConnection) async throws {
        _ = try await db.rows(
            """
            INSERT INTO schedules (workflow, cron, timezone, next_fire_at, last_fired_at, paused) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (workflow) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
                next_fire_at = excluded.next_fire_at, last_fired_at = excluded.last_fired_at
            """,
            [.text(schedule.workflow), .text(schedule.cron), .text(schedule.timeZone), Column.time(schedule.nextFireAt), Column.time(schedule.lastFiredAt),
             .integer(schedule.paused ? 1 : 0)])
    }

    public func fire(schedule: ScheduleRecord, run: NewRun?) async throws -> RunRecord? {
        let limits = try await currentLimits(now: Date())
        return try await writer.transaction { db in
            let paused = try await db.rows("SELECT paused FROM schedules WHERE workflow = ?", [.text(schedule.workflow)]).first?.int("paused") ?? 0
            guard paused == 0 else { return nil }
            var created: RunRecord?
            if let run { created = try await Self.insert([run], runLimits: limits.runLimits, into: db).first ?? nil }
            try await Self.upsert(schedule, in: db)
            return created
        }
    }

    // MARK: Statistics and logs

    public func statistics(now: Date) async throws -> StoreStatistics {
        try await reader.transaction(immediate: false) { db in
            let active = try await db.rows("SELECT count(*) AS n FROM runs WHERE status IN ('pending', 'running')").first?.int("n") ?? 0
            let queueRows = try await db.rows(
                "SELECT queue, count(*) AS depth, min(queued_at) AS oldest FROM attempts WHERE status = 'queued' AND queued_at <= ? GROUP BY queue",
                [Column.time(now)])
            var queues: [String: QueueStatistics] = [:]
            for row in queueRows {
                queues[row.string("queue")] = QueueStatistics(depth: row.int("depth"), oldestReadyAt: row.date("oldest"))
            }
            let slots = try await db.rows("SELECT coalesce(sum(slots), 0) AS n FROM workers WHERE state = 'active'").first?.int("n") ?? 0
            let running = try await db.rows(
                "SELECT count(*) AS n, min(CASE WHEN lease_until < ? THEN lease_until END) AS expired FROM attempts WHERE status = 'running'",
                [Column.time(now)]).first
            let due = try await db.rows("SELECT min(next_fire_at) AS due FROM schedules WHERE next_fire_at <= ? AND paused = 0", [Column.time(now)]).first
            return StoreStatistics(
                activeRuns: active, queues: queues, workerSlots: slots, runningAttempts: running?.int("n") ?? 0,
                oldestExpiredLease: running?.date("expired"), oldestDueSchedule: due?.date("due"))
        }
    }

    public func appendLog(attempt: AttemptID, text: String, limit: Int) async throws {
        _ = try await writer.transaction { db in
            let existing = try await db.rows("SELECT bytes, dropped FROM task_logs WHERE attempt_id = ?", [.integer(Int(attempt))]).first
            let bytes = existing?.int("bytes") ?? 0
            let size = text.utf8.count
            if bytes + size <= limit {
                _ = try await db.rows(
                    """
                    INSERT INTO task_logs (attempt_id, text, bytes) VALUES (?, ?, ?)
                    ON CONFLICT (attempt_id) DO UPDATE SET text = task_logs.text || excluded.text, bytes = task_logs.bytes + excluded.bytes
                    """, [.integer(Int(attempt)), .text(text), .integer(size)])
            } else {
                _ = try await db.rows(
                    """
                    INSERT INTO task_logs (attempt_id, text, bytes, dropped) VALUES (?, '', 0, ?)
                    ON CONFLICT (attempt_id) DO UPDATE SET dropped = task_logs.dropped + excluded.dropped
                    """, [.integer(Int(attempt)), .integer(size)])
            }
        }
    }

    public func taskLogs(run: RunID, task: String, attempt: Int?) async throws -> [AttemptLog]? {
        try await reader.transaction(immediate: false) { db in
            guard let taskRow = try await db.rows("SELECT idx FROM tasks WHERE run_id = ? AND task_id = ?", [.text(run.rawValue), .text(task)]).first else {
                return nil
            }
            var binds: [SQLiteData] = [.text(run.rawValue), .integer(taskRow.int("idx"))]
            var filter = ""
            if let attempt {
                filter = "AND a.number = ?"
                binds.append(.integer(attempt))
            }
            let rows = try await db.rows(
                """
                SELECT a.number, a.status, l.text, l.dropped FROM attempts a LEFT JOIN task_logs l ON l.attempt_id = a.id
                WHERE a.run_id = ? AND a.task_idx = ? \(filter) ORDER BY a.number
                """, binds)
            return rows.map { row in
                var text = row.optionalString("text") ?? ""
                let dropped = row.int("dropped")
                if dropped > 0 {
                    text += "[deerflow] log truncated: \(dropped) more bytes dropped\n"
                }
                return AttemptLog(attempt: row.int("number"), status: AttemptStatus(rawValue: row.string("status")) ?? .queued, text: text, truncated: dropped > 0)
            }
        }
    }
}

extension SQLiteWorkflowStore.StartingRun {
    /// The run as read with completing attempts, its stored parameters decoded.
    init(decoding run: SQLiteWorkflowStore.RunColumns) {
        let params = StoredParams.decode(run.params)
        self.init(workflow: run.workflow, version: run.version, params: params.params, problem: params.problem, traceContext: run.traceContext, logicalTime: run.logicalTime)
    }
}
