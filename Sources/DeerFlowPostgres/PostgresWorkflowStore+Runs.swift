public import DeerFlow
public import DeerFlowCore
public import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    public func createRun(_ run: NewRun) async throws -> RunRecord? {
        try await runInserts.submit(RunInsert(run: run, claim: nil))?.record
    }

    public func createRun(_ run: NewRun, startingOn claim: ClaimRequest) async throws -> CreatedRun? {
        try await runInserts.submit(RunInsert(run: run, claim: claim))
    }

    public func createRuns(_ runs: [NewRun]) async throws -> [RunRecord] {
        try RunInsertion.checkBatch(runs)
        return try RunInsertion.created(try await insertBatch(runs.map { RunInsert(run: $0, claim: nil) }).map { $0?.record })
    }

    /// Inserts runs (one statement per batch of concurrent triggers).
    func insertBatch(_ inserts: [RunInsert]) async throws -> [CreatedRun?] {
        let limits = try await currentLimits(now: Date())
        let runs = inserts.map(\.run)
        let claims = inserts.map(\.claim)
        guard runs.contains(where: { limits.runLimits[$0.workflow] != nil }) else {
            return try await session { session in
                try await Self.insert(runs, claims: claims, limits: limits, in: session)
            }
        }
        return try await transaction { session in
            try await Self.insert(runs, claims: claims, limits: limits, in: session)
        }
    }

    /// Inserts runs, their tasks and the queued first attempts of tasks without dependencies, in
    /// one statement (``InsertRuns``). A scheduled run whose workflow and due time exist already is
    /// skipped: its result is nil.
    ///
    /// Runs of a workflow with a `max_active_runs` (`runLimits`; the caller's transaction) are
    /// inserted waiting, without attempts, then started in creation order as far as the limit
    /// allows (``admitWaitingRuns(of:now:in:)``).
    static func insert(_ runs: [NewRun], runLimits: [String: Int] = [:], in session: PostgresSession) async throws -> [RunRecord?] {
        try await insert(runs, claims: [], limits: LimitSnapshot(runLimits: runLimits), in: session).map { $0?.record }
    }

    /// Inserts runs as above; a run with a claim (`claims`, by position) starts its first tasks
    /// on the claiming worker in the same statement (``RunInsertion/directStarts(of:claim:limits:)``).
    static func insert(_ runs: [NewRun], claims: [ClaimRequest?], limits: LimitSnapshot, in session: PostgresSession) async throws -> [CreatedRun?] {
        guard !runs.isEmpty else { return [] }
        let runLimits = limits.runLimits
        let direct = RunInsertion.directStarts(of: runs, claims: claims, limits: limits)
        var inserted: Set<String> = []
        var startedIDs = StartedAttempts()
        for row in try await session.rows(InsertRuns(runs, runLimits: runLimits, starting: direct)) {
            let (id, attemptID, index) = try row.decode((String?, Int64?, Int?).self)
            if let id, let attemptID, let index {
                startedIDs.record(attemptID, runID: id, index: index)
            } else if let id {
                inserted.insert(id)
            }
        }
        let limited = runs.filter { inserted.contains($0.id.rawValue) && runLimits[$0.workflow] != nil }
        var waiting: [String: String] = [:]
        if !limited.isEmpty {
            let admitted = Set(try await admitWaitingRuns(of: limited.map(\.workflow), now: limited.map(\.createdAt).max() ?? Date(), in: session))
            let ids = limited.map(\.id).filter { !admitted.contains($0) }.map(\.rawValue)
            for row in try await session.rows("SELECT id, waiting_reason FROM runs WHERE id = ANY(\(ids)::text[])") {
                let (id, reason) = try row.decode((String, String?).self)
                waiting[id] = reason
            }
        }
        return try runs.map { run in
            guard inserted.contains(run.id.rawValue) else { return nil }
            var started: [ClaimedAttempt] = []
            var events: [EngineEvent] = []
            if let start = direct[run.id] {
                let claim = start.claim
                let ready = run.tasks.filter { start.tasks.contains($0.index) }.map { task in
                    ReadyTask(
                        runID: run.id, index: task.index, taskID: task.id, type: task.type, queue: task.queue, priority: task.priority,
                        timeoutMilliseconds: task.timeout.map { Int($0.milliseconds) }, number: 1,
                        startedAttempt: startedIDs[run.id, task.index])
                }
                let columns = RunColumns(
                    workflow: run.workflow, version: run.workflowVersion, params: JSONValue.object(run.params).compactJSON,
                    traceContext: run.traceContext, logicalTime: run.scheduledFor ?? run.createdAt)
                (started, events) = try startedAttempts(
                    ready, runs: [run.id: columns], claim: claim, now: run.createdAt, leaseUntil: run.createdAt.adding(claim.leaseDuration))
            }
            return RunInsertion.createdRun(run, started: started, startEvents: events, waitingReason: waiting[run.id.rawValue])
        }
    }

    /// Task rows as column arrays, for one `unnest` insert.
    struct TaskColumns: Sendable {
        var runIDs: [String] = []
        var indices: [Int] = []
        var ids: [String] = []
        var types: [String] = []
        var queues: [String] = []
        var priorities: [Int] = []
        var dependencyCounts: [Int] = []
        var dependents: [String] = []
        var retries: [Int] = []
        var delays: [Int] = []
        var maxDelays: [Int] = []
        var jitters: [Double] = []
        var timeouts: [Int?] = []
        /// The task's run waits for a concurrency limit: no attempt yet, whatever its dependencies.
        var waits: [Bool] = []

        mutating func append(_ runID: RunID, _ task: NewTask, waits: Bool = false) {
            self.waits.append(waits)
            runIDs.append(runID.rawValue)
            indices.append(task.index)
            ids.append(task.id)
            types.append(task.type)
            queues.append(task.queue)
            priorities.append(task.priority)
            dependencyCounts.append(task.dependencyCount)
            dependents.append(task.dependents.map(String.init).joined(separator: ","))
            retries.append(task.retry.retries)
            delays.append(Int(task.retry.delay.milliseconds))
            maxDelays.append(Int(task.retry.maxDelay.milliseconds))
            jitters.append(task.retry.jitter)
            timeouts.append(task.timeout.map { Int($0.milliseconds) })
        }
    }

    public func run(_ id: RunID) async throws -> RunDetail? {
        try await snapshot { session in
            guard let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id.rawValue)").first else { return nil }
            let run = try Self.runRecord(row)
            let taskRows = try await session.rows("""
                SELECT idx, task_id, type, queue, status, output, map_count, map_parallel, map_succeeded, map_failed, map_parent, map_index, item
                FROM tasks WHERE run_id = \(id.rawValue) ORDER BY idx
                """)
            let attemptRows = try await session.rows("""
                SELECT id, task_idx, number, status, queued_at, started_at, finished_at, worker, error
                FROM attempts WHERE run_id = \(id.rawValue) ORDER BY task_idx, number
                """)
            var attempts: [Int: [AttemptRecord]] = [:]
            for row in attemptRows {
                let (attemptID, index, number, status, queuedAt, startedAt, finishedAt, worker, error) =
                    try row.decode((Int64, Int, Int, String, Date, Date?, Date?, String?, String?).self)
                attempts[index, default: []].append(AttemptRecord(
                    id: attemptID, number: number, status: AttemptStatus(rawValue: status) ?? .failed, queuedAt: queuedAt,
                    startedAt: startedAt, finishedAt: finishedAt, worker: worker, error: error))
            }
            var tasks: [TaskRecord] = []
            for row in taskRows {
                let (index, taskID, type, queue, status, output, mapCount, mapParallel, mapSucceeded, mapFailed, mapParent, mapIndex, item) =
                    try row.decode((Int, String, String, String, String, String?, Int?, Int?, Int, Int, Int?, Int?, String?).self)
                var task = TaskRecord(
                    index: index, id: taskID, type: type, queue: queue, status: TaskStatus(rawValue: status) ?? .pending,
                    output: output.flatMap { try? JSONValue(parsing: $0) }, attempts: attempts[index] ?? [])
                task.map = mapCount.map { MapProgress(count: $0, maxParallel: mapParallel, succeeded: mapSucceeded, failed: mapFailed) }
                task.mapParent = mapParent
                task.mapIndex = mapIndex
                task.item = item.flatMap { try? JSONValue(parsing: $0) }
                tasks.append(task)
            }
            return RunDetail(run: run, tasks: tasks)
        }
    }

    static let runColumns = """
        id, workflow, version, status, params, trigger, scheduled_for, trace_context, created_at, started_at, finished_at, tasks_total, \
        tasks_finished, tasks_failed, backfill_id, reason, rerun_of, deadline_at, retries, waiting_reason, \
        parent_run_id, parent_task_id, parent_attempt
        """

    static func runRecord(_ row: PostgresRow) throws -> RunRecord {
        let (id, workflow, version, status, params, trigger, scheduledFor, traceContext, createdAt, startedAt, finishedAt, total, finished, failed,
             backfillID, reason, rerunOf, deadline, retries, waitingReason, parentRunID, parentTaskID, parentAttempt) =
            try row.decode((String, String, String, String, String, String, Date?, String?, Date, Date?, Date?, Int, Int, Int,
                            String?, String?, String?, Date?, Int, String?, String?, String?, Int?).self)
        return RunRecord(
            id: RunID(rawValue: id), workflow: workflow, workflowVersion: version, status: RunStatus(rawValue: status) ?? .failed,
            params: StoredParams.decode(params).params, trigger: RunTrigger.Kind(rawValue: trigger) ?? .api, scheduledFor: scheduledFor, traceContext: traceContext,
            createdAt: createdAt, startedAt: startedAt, finishedAt: finishedAt,
            progress: RunProgress(total: total, finished: finished, failed: failed), backfillID: backfillID,
            reason: reason, rerunOf: rerunOf.map(RunID.init(rawValue:)), deadline: deadline, retries: retries,
            waitingReason: waitingReason,
            parent: parentRunID.map { RunParent(runID: RunID(rawValue: $0), taskID: parentTaskID ?? "", attempt: parentAttempt ?? 0) })
    }

    public func childRuns(of parent: RunID) async throws -> [RunRecord] {
        let rows = try await session { session in
            try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE parent_run_id = \(parent.rawValue) ORDER BY id")
        }
        return try rows.map(Self.runRecord)
    }

    public func finishedRuns(among ids: [RunID]) async throws -> [RunRecord] {
        guard !ids.isEmpty else { return [] }
        let names = ids.map(\.rawValue)
        let rows = try await session { session in
            try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = ANY(\(names)) AND finished_at IS NOT NULL")
        }
        return try rows.map(Self.runRecord)
    }

    public func runs(_ query: RunQuery) async throws -> RunPage {
        let limit = max(1, min(query.limit, 1000))
        // NULL parameters drop their condition (the planner folds them away for each call).
        let sql: PostgresQuery = """
            SELECT \(unescaped: Self.runColumns) FROM runs
            WHERE (\(query.workflow)::text IS NULL OR workflow = \(query.workflow))
              AND (\(query.status?.rawValue)::text IS NULL OR status = \(query.status?.rawValue))
              AND (\(query.cursor?.rawValue)::text IS NULL OR id < \(query.cursor?.rawValue))
              AND (\(query.trigger?.rawValue)::text IS NULL OR trigger = \(query.trigger?.rawValue))
              AND (\(query.idBounds.lower)::text IS NULL OR id >= \(query.idBounds.lower))
              AND (\(query.idBounds.upper)::text IS NULL OR id < \(query.idBounds.upper))
            ORDER BY id DESC LIMIT \(limit + 1)
            """
        let rows = try await session { try await $0.rows(sql) }
        var runs = try rows.map(Self.runRecord)
        var next: RunID?
        if runs.count > limit {
            runs.removeLast()
            next = runs.last?.id
        }
        return RunPage(runs: runs, nextCursor: next)
    }

    public func recentRuns(workflows: [String], limit: Int) async throws -> [String: [RunRecord]] {
        guard !workflows.isEmpty else { return [:] }
        let limit = max(1, min(limit, 1000))
        // Per workflow, a walk of runs_by_workflow from its newest run.
        let rows = try await session { session in
            try await session.rows("""
                SELECT \(unescaped: Self.runColumns) FROM unnest(\(workflows)::text[]) AS wanted(name)
                CROSS JOIN LATERAL (
                    SELECT \(unescaped: Self.runColumns) FROM runs WHERE workflow = wanted.name ORDER BY id DESC LIMIT \(limit)
                ) AS recent
                """)
        }
        var result: [String: [RunRecord]] = [:]
        for row in rows {
            let run = try Self.runRecord(row)
            result[run.workflow, default: []].append(run)
        }
        for (workflow, runs) in result { result[workflow] = runs.sorted { $0.id > $1.id } }
        return result
    }

    public func taskStates(runs: [RunID]) async throws -> [RunID: [TaskState]] {
        guard !runs.isEmpty else { return [:] }
        let ids = runs.map(\.rawValue)
        let rows = try await session { session in
            try await session.rows("SELECT run_id, idx, task_id, status, attempts FROM tasks WHERE run_id = ANY(\(ids)) AND map_parent IS NULL ORDER BY run_id, idx")
        }
        var result: [RunID: [TaskState]] = [:]
        for row in rows {
            let (run, index, taskID, status, attempts) = try row.decode((String, Int, String, String, Int).self)
            result[RunID(rawValue: run), default: []].append(TaskState(
                index: index, id: taskID, status: TaskStatus(rawValue: status) ?? .pending, attempts: attempts))
        }
        return result
    }

    public func runCounts(since: Date) async throws -> [RunStatus: Int] {
        let lower = RunID.lowerBound(at: since)
        let rows = try await session { session in
            try await session.rows("SELECT status, count(*) FROM runs WHERE id >= \(lower) GROUP BY status")
        }
        var counts: [RunStatus: Int] = [:]
        for row in rows {
            let (status, count) = try row.decode((String, Int).self)
            if let status = RunStatus(rawValue: status) { counts[status, default: 0] += count }
        }
        return counts
    }

    /// Cancels a run. Lock order is the one every transaction follows — attempts, then tasks, then
    /// runs — so a cancel never deadlocks with workers (``stop(_:as:reason:message:at:in:)``).
    public func cancelRun(_ id: RunID, at now: Date) async throws -> CancelResult {
        do {
            return try await transaction { session in
                guard let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id.rawValue)").first else {
                    return .notFound
                }
                var run = try Self.runRecord(row)
                guard !run.status.isFinished else { return .alreadyFinished(run.status) }
                let running = try await Self.stop(&run, as: .cancelled, reason: nil, message: "run cancelled before the attempt started", at: now, admitsWaiting: try await currentLimits(now: now).runLimits[run.workflow] != nil, in: session)
                let event = EngineEvent.runFinished(runID: id, workflow: run.workflow, status: .cancelled, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: now)
                return .cancelled(run, runningAttempts: running, events: [event])
            }
        } catch is RunFinishedMeanwhile {
            // The last task finished while we cancelled: nothing was changed (rolled back).
            let status = try await run(id)?.run.status ?? .success
            return .alreadyFinished(status)
        }
    }

    /// Ends an unfinished run with `status`: running attempts are flagged first (this waits for a
    /// worker completing one of them, whose retry or dependents are then visible), queued attempts
    /// are dropped after that, then tasks, then the run. Throws ``RunFinishedMeanwhile`` (the
    /// caller's transaction rolls back) when the run finished meanwhile. Returns the running attempts.
    static func stop(
        _ run: inout RunRecord, as status: RunStatus, reason: String?, message: String, at now: Date, admitsWaiting: Bool, in session: PostgresSession
    ) async throws -> [AttemptID] {
        let runID = run.id.rawValue
        try await session.execute("""
            UPDATE attempts SET status = 'cancelled', finished_at = \(now), error = \(message)
            WHERE run_id = \(runID) AND status = 'queued'
            """)
        let running = try await session.rows("""
            UPDATE attempts SET stop_requested = true WHERE run_id = \(runID) AND status = 'running' RETURNING id
            """).map { try $0.decode(Int64.self) }
        // Retries inserted by completions that committed while we waited above.
        try await session.execute("""
            UPDATE attempts SET status = 'cancelled', finished_at = \(now), error = \(message)
            WHERE run_id = \(runID) AND status = 'queued'
            """)
        // A mapped task whose instances run is `running` without an attempt of its own.
        try await session.execute("""
            UPDATE tasks SET status = 'cancelled'
            WHERE run_id = \(runID) AND (status IN ('pending', 'queued') OR (status = 'running' AND map_count IS NOT NULL))
            """)
        let updated = try await session.rows("""
            UPDATE runs SET status = \(status.rawValue), finished_at = \(now), reason = \(reason), waiting_reason = NULL
            WHERE id = \(runID) AND status IN ('pending', 'running') RETURNING id
            """)
        guard !updated.isEmpty else { throw RunFinishedMeanwhile() }
        if admitsWaiting, run.waitingReason == nil {
            // Its place under max_active_runs goes to the next waiting run.
            _ = try await Self.admitWaitingRuns(of: [run.workflow], now: now, in: session)
        }
        run.status = status
        run.finishedAt = now
        run.reason = reason
        run.waitingReason = nil
        return running.sorted()
    }

    /// A run finished between reading it and stopping it; the transaction rolls back.
    struct RunFinishedMeanwhile: StoreControlFlow {}

    /// Each expired run is stopped in a transaction of its own (``stop(_:as:reason:message:at:in:)``);
    /// one that finished meanwhile is left alone.
    public func timeOutRuns(now: Date, limit: Int) async throws -> TimeoutSweep {
        let expired = try await session { session in
            try await session.rows("""
                SELECT id FROM runs WHERE deadline_at IS NOT NULL AND deadline_at <= \(now) AND status IN ('pending', 'running')
                ORDER BY deadline_at LIMIT \(max(1, limit))
                """).map { try $0.decode(String.self) }
        }
        var sweep = TimeoutSweep()
        for id in expired {
            do {
                let stopped = try await transaction { session -> (RunRecord, [AttemptID])? in
                    guard let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id)").first else { return nil }
                    var run = try Self.runRecord(row)
                    guard !run.status.isFinished, let deadline = run.deadline, deadline <= now else { return nil }
                    let running = try await Self.stop(
                        &run, as: .failed, reason: RunReason.timeout, message: "run timed out before the attempt started", at: now,
                        admitsWaiting: try await currentLimits(now: now).runLimits[run.workflow] != nil, in: session)
                    return (run, running)
                }
                guard let (run, running) = stopped else { continue }
                sweep.runs.append(run)
                sweep.runningAttempts += running
                sweep.events += [
                    .runTimedOut(runID: run.id, workflow: run.workflow, deadline: run.deadline ?? now, at: now),
                    .runFinished(runID: run.id, workflow: run.workflow, status: .failed, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: now),
                ]
            } catch is RunFinishedMeanwhile {
                continue
            }
        }
        return sweep
    }

    /// Locks the run, then its tasks, lets ``RunRetryPlan`` decide and writes it. The run is
    /// finished, so no worker locks its rows meanwhile except to complete an attempt still
    /// stopping, which the plan refuses.
    public func retryRun(_ id: RunID, tasks selected: [String]?, at now: Date) async throws -> RetryResult {
        try await transaction { session in
            guard let locked = try await session.rows("SELECT timeout_ms FROM runs WHERE id = \(id.rawValue) FOR UPDATE").first,
                  let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id.rawValue)").first
            else {
                return .notFound
            }
            let timeout = try locked.decode(Int64?.self)
            let run = try Self.runRecord(row)
            guard run.status.isFinished else { return .notFinished(run.status) }
            let taskRows = try await session.rows("""
                SELECT idx, task_id, status, dependents, attempts, queue, priority FROM tasks WHERE run_id = \(id.rawValue)
                AND map_parent IS NULL ORDER BY idx FOR UPDATE
                """)
            var tasks: [RunRetryPlan.Task] = []
            var placement: [Int: (queue: String, priority: Int)] = [:]
            for row in taskRows {
                let (index, taskID, status, dependents, attempts, queue, priority) = try row.decode((Int, String, String, [Int], Int, String, Int).self)
                tasks.append(RunRetryPlan.Task(index: index, id: taskID, status: TaskStatus(rawValue: status) ?? .failed, dependents: dependents, attempts: attempts))
                placement[index] = (queue, priority)
            }
            let active = try await session.rows("""
                SELECT 1 FROM attempts WHERE run_id = \(id.rawValue) AND status IN ('queued', 'running') LIMIT 1
                """)
            let plan: RunRetryPlan
            switch RetryResult.plan(run: id, tasks: tasks, selected: selected, attemptsActive: !active.isEmpty) {
            case .write(let planned): plan = planned
            case .answer(let answer): return answer
            }
            let resets = plan.resets
            let ready = resets.filter(\.isReady)
            // A mapped task that runs again expands again: its instances of the last try go.
            let mapped = resets.map(\.index)
            try await session.execute("""
                WITH instances AS (
                    DELETE FROM tasks WHERE run_id = \(id.rawValue) AND map_parent = ANY(\(mapped)::integer[]) RETURNING idx
                ), attempts_gone AS (
                    DELETE FROM attempts WHERE run_id = \(id.rawValue) AND task_idx IN (SELECT idx FROM instances) RETURNING id
                )
                DELETE FROM task_logs WHERE attempt_id IN (SELECT id FROM attempts_gone)
                """)
            try await session.execute("""
                UPDATE tasks SET map_count = NULL, map_parallel = NULL, map_succeeded = 0, map_failed = 0
                WHERE run_id = \(id.rawValue) AND idx = ANY(\(mapped)::integer[]) AND map_count IS NOT NULL
                """)
            try await session.execute("""
                WITH v AS (
                    SELECT * FROM unnest(\(resets.map(\.index))::integer[], \(resets.map(\.dependenciesRemaining))::integer[],
                                         \(resets.map { $0.isReady ? $0.nextAttempt : $0.nextAttempt - 1 })::integer[]) AS v(idx, deps, attempts)
                ), reset AS (
                    UPDATE tasks t SET deps_remaining = v.deps, attempts = v.attempts, output = NULL, retries_used = 0, interruptions = 0,
                        status = CASE WHEN v.deps = 0 THEN 'queued' ELSE 'pending' END
                    FROM v WHERE t.run_id = \(id.rawValue) AND t.idx = v.idx
                ), queued AS (
                    INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)
                    SELECT \(id.rawValue), idx, number, queue, priority, \(now), 'queued'
                    FROM unnest(\(ready.map(\.index))::integer[], \(ready.map(\.nextAttempt))::integer[],
                                \(ready.map { placement[$0.index]?.queue ?? "default" })::text[], \(ready.map { placement[$0.index]?.priority ?? 0 })::integer[])
                         AS q(idx, number, queue, priority)
                    RETURNING id
                )
                SELECT pg_notify('deerflow_work', '') FROM (SELECT 1 FROM queued LIMIT 1) AS due
                """)
            let deadline = timeout.map { now.adding(.milliseconds(Int($0))) }
            try await session.execute("""
                UPDATE runs SET status = 'running', finished_at = NULL, reason = NULL, tasks_finished = \(plan.progress.finished),
                    tasks_failed = \(plan.progress.failed), deadline_at = \(deadline), retries = retries + 1,
                    started_at = coalesce(started_at, \(now))
                WHERE id = \(id.rawValue)
                """)
            return .retried(run, plan: plan, deadline: deadline, at: now)
        }
    }

    public func taskOutput(run: RunID, task: String) async throws -> JSONValue? {
        let rows = try await session { session in
            try await session.rows("SELECT output FROM tasks WHERE run_id = \(run.rawValue) AND task_id = \(task) AND status = 'success'")
        }
        return try rows.first.flatMap { try $0.decode(String?.self) }.map { try JSONValue(parsing: $0) }
    }
}
