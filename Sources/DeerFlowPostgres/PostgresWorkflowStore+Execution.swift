import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

// Lock order. Transactions that lock several rows lock them in one global order — attempts (by
// id), then tasks (by run and index), then runs (by id) — and, within a table, in key order
// (`ORDER BY ... FOR UPDATE` in a materialized CTE in front of the UPDATE). Claims skip locked
// attempts instead of waiting. Transactions therefore do not deadlock; should PostgreSQL still
// report one (SQLSTATE 40P01), the whole transaction runs again (`transaction(_:)`).

extension PostgresWorkflowStore {
    public func exchange(_ request: ExchangeRequest) async throws -> ExchangeResult {
        try await transaction { session in
            var completed = Completed()
            if !request.completions.isEmpty {
                completed = try await Self.complete(request.completions, now: request.now, in: session)
            }
            var events = completed.events
            var claimed: [ClaimedAttempt] = []
            var direct: [ReadyTask] = []
            if let claim = request.claim, claim.limit > 0, claim.onlyNewlyReady {
                let queues = Set(claim.queues)
                direct = Array(completed.ready.filter { queues.contains($0.queue) }.prefix(claim.limit))
            }
            let directKeys = Set(direct.map(\.key))
            try await Self.queue(completed.ready.filter { !directKeys.contains($0.key) }, now: request.now, in: session)
            if let claim = request.claim, claim.limit > 0 {
                if !direct.isEmpty {
                    let (attempts, startEvents) = try await Self.start(direct, runs: completed.runs, claim: claim, now: request.now, in: session)
                    claimed += attempts
                    events += startEvents
                }
                if !claim.onlyNewlyReady {
                    let (attempts, claimEvents) = try await Self.claim(claim, now: request.now, in: session)
                    claimed += attempts
                    events += claimEvents
                }
            }
            return ExchangeResult(claimed: claimed, events: events)
        }
    }

    // MARK: Completing

    /// A task whose last dependency just succeeded.
    struct ReadyTask: Sendable {
        var runID: RunID
        var index: Int
        var taskID: String
        var type: String
        var queue: String
        var priority: Int
        var timeoutMilliseconds: Int?
        var key: String { "\(runID.rawValue)#\(index)" }
    }

    /// Run columns a claim needs, read along with completing attempts.
    struct RunColumns: Sendable {
        var workflow: String
        var version: String
        var params: String
        var traceContext: String?
    }

    /// What applying completions produced.
    struct Completed: Sendable {
        var events: [EngineEvent] = []
        var ready: [ReadyTask] = []
        var runs: [RunID: RunColumns] = [:]
    }

    /// Applies completions as `CompletionPlan` decides. The attempts are locked first (in id order),
    /// then read in a fresh statement, so a worker finishing an attempt, the leader reclaiming it
    /// and a cancel flagging it take turns and each sees what the previous one committed.
    static func complete(_ completions: [AttemptCompletion], now: Date, in session: PostgresSession) async throws -> Completed {
        let ids = Array(Set(completions.map(\.attemptID))).sorted()
        try await session.execute("SELECT id FROM attempts WHERE id = ANY(\(ids)) ORDER BY id FOR UPDATE")
        let rows = try await session.rows("""
            SELECT a.id, a.run_id, a.task_idx, a.number, a.status, a.started_at, a.worker,
                   t.task_id, t.type, t.queue, t.priority, t.retries, t.retry_delay_ms, t.max_retry_delay_ms, t.jitter,
                   t.retries_used, t.interruptions, t.dependents, r.workflow, r.status, r.version, r.params, r.trace_context
            FROM attempts a
            JOIN tasks t ON t.run_id = a.run_id AND t.idx = a.task_idx
            JOIN runs r ON r.id = a.run_id
            WHERE a.id = ANY(\(ids))
            """)
        var loaded: [AttemptID: CompletingAttempt] = [:]
        var completed = Completed()
        for row in rows {
            let (id, runID, taskIndex, number, status, startedAt, worker, taskID, type, queue, priority, retries, delay, maxDelay, jitter,
                 retriesUsed, interruptions, dependents, workflow, runStatus, version, params, traceContext) =
                try row.decode((Int64, String, Int, Int, String, Date?, String?, String, String, String, Int, Int, Int, Int, Double,
                                Int, Int, [Int], String, String, String, String, String?).self)
            let attempt = CompletingAttempt(
                attemptID: id, runID: RunID(rawValue: runID), workflow: workflow, runStatus: RunStatus(rawValue: runStatus) ?? .failed,
                taskIndex: taskIndex, taskID: taskID, type: type, queue: queue, priority: priority, number: number,
                status: AttemptStatus(rawValue: status) ?? .failed, startedAt: startedAt, worker: worker,
                retry: RetryPolicy(retries: retries, delay: .milliseconds(delay), maxDelay: .milliseconds(maxDelay), jitter: jitter),
                retriesUsed: retriesUsed, interruptions: interruptions, dependents: dependents)
            loaded[id] = attempt
            completed.runs[attempt.runID] = RunColumns(workflow: workflow, version: version, params: params, traceContext: traceContext)
        }
        let pairs = completions.compactMap { completion in loaded[completion.attemptID].map { (completion, $0) } }
        var plan = CompletionPlan.plan(pairs)
        completed.ready = try await apply(&plan, now: now, in: session)
        completed.events = plan.events
        return completed
    }

    /// Writes a plan; returns the dependents it made ready (their task rows say `queued`; their
    /// attempts are inserted by `queue` or `start`).
    static func apply(_ plan: inout CompletionPlan, now: Date, in session: PostgresSession) async throws -> [ReadyTask] {
        if !plan.attemptUpdates.isEmpty {
            let updates = plan.attemptUpdates
            try await session.execute("""
                UPDATE attempts a SET status = v.status, finished_at = v.finished_at, error = v.error, lease_until = NULL
                FROM unnest(\(updates.map(\.id))::bigint[], \(updates.map(\.status.rawValue))::text[],
                            \(updates.map(\.finishedAt))::timestamptz[], \(NullableArray(updates.map(\.error)))::text[])
                     AS v(id, status, finished_at, error)
                WHERE a.id = v.id
                """)
        }
        if !plan.taskUpdates.isEmpty {
            let updates = plan.taskUpdates
            try await session.execute("""
                UPDATE tasks t SET status = v.status, output = coalesce(v.output, t.output), retries_used = v.retries_used,
                                   interruptions = v.interruptions, attempts = v.attempts
                FROM unnest(\(updates.map(\.runID.rawValue))::text[], \(updates.map(\.index))::integer[], \(updates.map(\.status.rawValue))::text[],
                            \(NullableArray(updates.map { $0.output?.compactJSON }))::text[], \(updates.map(\.retriesUsed))::integer[],
                            \(updates.map(\.interruptions))::integer[], \(updates.map(\.attempts))::integer[])
                     AS v(run_id, idx, status, output, retries_used, interruptions, attempts)
                WHERE t.run_id = v.run_id AND t.idx = v.idx
                """)
        }
        try await insertAttempts(plan.newAttempts, in: session, now: now)

        // Dependents whose last dependency just succeeded become queued in the same statement.
        var ready: [ReadyTask] = []
        if !plan.dependencyReleases.isEmpty {
            let releases = plan.dependencyReleases
            let rows = try await session.rows("""
                WITH v AS (
                    SELECT * FROM unnest(\(releases.map(\.runID.rawValue))::text[], \(releases.map(\.taskIndex))::integer[],
                                         \(releases.map(\.count))::integer[]) AS v(run_id, idx, n)
                ), locked AS MATERIALIZED (
                    SELECT t.run_id, t.idx FROM tasks t JOIN v ON t.run_id = v.run_id AND t.idx = v.idx
                    ORDER BY t.run_id, t.idx FOR UPDATE OF t
                )
                UPDATE tasks t SET deps_remaining = t.deps_remaining - v.n,
                    status = CASE WHEN t.status = 'pending' AND t.deps_remaining - v.n <= 0 THEN 'queued' ELSE t.status END,
                    attempts = CASE WHEN t.status = 'pending' AND t.deps_remaining - v.n <= 0 THEN 1 ELSE t.attempts END
                FROM v, locked
                WHERE t.run_id = v.run_id AND t.idx = v.idx AND locked.run_id = t.run_id AND locked.idx = t.idx
                RETURNING t.run_id, t.idx, t.deps_remaining, t.status, t.queue, t.priority, t.task_id, t.type, t.timeout_ms, v.n
                """)
            for row in rows {
                let (runID, index, remaining, status, queue, priority, taskID, type, timeout, released) =
                    try row.decode((String, Int, Int, String, String, Int, String, String, Int?, Int).self)
                // Only a task whose count reached zero in this statement, not one queued before.
                guard remaining <= 0, status == TaskStatus.queued.rawValue, remaining + released > 0 else { continue }
                ready.append(ReadyTask(
                    runID: RunID(rawValue: runID), index: index, taskID: taskID, type: type, queue: queue, priority: priority,
                    timeoutMilliseconds: timeout))
            }
            ready.sort { ($0.runID, $0.index) < ($1.runID, $1.index) }
        }

        // Tasks that can never run because a dependency failed for good.
        for (runID, failed) in plan.finalFailures.sorted(by: { $0.key < $1.key }) {
            let rows = try await session.rows("SELECT idx, task_id, status, dependents FROM tasks WHERE run_id = \(runID.rawValue)")
            var tasks: [Int: (status: TaskStatus, dependents: [Int])] = [:]
            var ids: [Int: String] = [:]
            for row in rows {
                let (index, taskID, status, dependents) = try row.decode((Int, String, String, [Int]).self)
                tasks[index] = (TaskStatus(rawValue: status) ?? .pending, dependents)
                ids[index] = taskID
            }
            let skipped = CompletionPlan.upstreamFailed(from: failed, tasks: tasks)
            guard !skipped.isEmpty else { continue }
            let marked = try await session.rows("""
                UPDATE tasks SET status = 'upstream_failed'
                WHERE run_id = \(runID.rawValue) AND idx = ANY(\(skipped)) AND status = 'pending'
                RETURNING idx
                """).map { try $0.decode(Int.self) }.sorted()
            guard !marked.isEmpty else { continue }
            plan.progress[runID, default: RunProgress(total: 0)].record(.upstreamFailed, count: marked.count)
            let workflow = try await session.rows("SELECT workflow FROM runs WHERE id = \(runID.rawValue)").first?.decode(String.self) ?? ""
            plan.events.append(.tasksSkipped(runID: runID, workflow: workflow, taskIDs: marked.compactMap { ids[$0] }))
        }

        // Run counters, and the runs that just finished.
        let deltas = plan.progress.filter { $0.value.finished > 0 }.sorted { $0.key < $1.key }
        guard !deltas.isEmpty else { return ready }
        let rows = try await session.rows("""
            WITH v AS (
                SELECT * FROM unnest(\(deltas.map(\.key.rawValue))::text[], \(deltas.map(\.value.finished))::integer[],
                                     \(deltas.map(\.value.failed))::integer[]) AS v(id, finished, failed)
            ), locked AS MATERIALIZED (
                SELECT r.id FROM runs r JOIN v ON r.id = v.id WHERE r.status IN ('pending', 'running')
                ORDER BY r.id FOR UPDATE OF r
            )
            UPDATE runs r SET tasks_finished = r.tasks_finished + v.finished, tasks_failed = r.tasks_failed + v.failed
            FROM v, locked
            WHERE r.id = v.id AND locked.id = r.id AND r.status IN ('pending', 'running')
            RETURNING r.id, r.workflow, r.tasks_total, r.tasks_finished, r.tasks_failed, r.created_at, r.started_at
            """)
        var finishedIDs: [String] = []
        var finishedStatuses: [String] = []
        var finishedEvents: [(RunID, EngineEvent)] = []
        for row in rows {
            let (id, workflow, total, finished, failed, createdAt, startedAt) = try row.decode((String, String, Int, Int, Int, Date, Date?).self)
            guard let outcome = RunProgress(total: total, finished: finished, failed: failed).outcome else { continue }
            let runID = RunID(rawValue: id)
            finishedIDs.append(id)
            finishedStatuses.append(outcome.rawValue)
            finishedEvents.append((runID, .runFinished(runID: runID, workflow: workflow, status: outcome, createdAt: createdAt, startedAt: startedAt, finishedAt: now)))
        }
        if !finishedIDs.isEmpty {
            try await session.execute("""
                UPDATE runs r SET status = v.status, finished_at = \(now)
                FROM unnest(\(finishedIDs)::text[], \(finishedStatuses)::text[]) AS v(id, status)
                WHERE r.id = v.id
                """)
            plan.events += finishedEvents.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return ready
    }

    /// Inserts queued first attempts for ready tasks (and asks for a NOTIFY).
    static func queue(_ ready: [ReadyTask], now: Date, in session: PostgresSession) async throws {
        try await insertAttempts(
            ready.map { .init(runID: $0.runID, taskIndex: $0.index, number: 1, queue: $0.queue, priority: $0.priority, queuedAt: now) },
            in: session, now: now)
    }

    /// Starts ready tasks on the claiming worker at once: their first attempts are inserted running
    /// (their task rows are locked already, by the statement that made them ready).
    static func start(_ ready: [ReadyTask], runs: [RunID: RunColumns], claim: ClaimRequest, now: Date, in session: PostgresSession) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        let leaseUntil = now.addingTimeInterval(claim.leaseDuration.seconds)
        let rows = try await session.rows("""
            WITH started AS (
                INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, started_at, worker, lease_until, status)
                SELECT v.run_id, v.idx, 1, v.queue, v.priority, \(now), \(now), \(claim.worker), \(leaseUntil), 'running'
                FROM unnest(\(ready.map(\.runID.rawValue))::text[], \(ready.map(\.index))::integer[], \(ready.map(\.queue))::text[],
                            \(ready.map(\.priority))::integer[]) AS v(run_id, idx, queue, priority)
                RETURNING id, run_id, task_idx
            ), running AS (
                UPDATE tasks t SET status = 'running' FROM started s WHERE t.run_id = s.run_id AND t.idx = s.task_idx
            )
            SELECT id, run_id, task_idx FROM started
            """)
        var ids: [String: AttemptID] = [:]
        for row in rows {
            let (id, runID, index) = try row.decode((Int64, String, Int).self)
            ids["\(runID)#\(index)"] = id
        }
        var claimed: [ClaimedAttempt] = []
        var events: [EngineEvent] = []
        var params: [RunID: [String: JSONValue]] = [:]
        for task in ready {
            guard let id = ids[task.key], let run = runs[task.runID] else { continue }
            let runParams = try params[task.runID] ?? decodeParams(run.params)
            params[task.runID] = runParams
            let attempt = ClaimedAttempt(
                id: id, runID: task.runID, workflow: run.workflow, workflowVersion: run.version, taskIndex: task.index,
                taskID: task.taskID, type: task.type, queue: task.queue, number: 1, params: runParams, traceContext: run.traceContext,
                timeout: task.timeoutMilliseconds.map { .milliseconds($0) }, queuedAt: now, startedAt: now, leaseUntil: leaseUntil)
            claimed.append(attempt)
            events.append(.attemptStarted(
                AttemptInfo(attemptID: id, runID: task.runID, workflow: run.workflow, taskID: task.taskID, type: task.type, queue: task.queue, number: 1, worker: claim.worker),
                queuedAt: now, startedAt: now))
        }
        return (claimed, events)
    }

    // MARK: Claiming

    /// Claims up to `limit` ready attempts from the worker's queues, highest priority first, then
    /// oldest, in one statement: for each queue its best `limit` ready attempts are locked with
    /// `FOR UPDATE SKIP LOCKED` (workers never wait for each other; each queue uses the ready
    /// index), the best `limit` of them are marked running with their tasks, and what the worker
    /// needs is returned. Candidates not chosen stay untouched (their locks end at COMMIT).
    static func claim(_ claim: ClaimRequest, now: Date, in session: PostgresSession) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        let queues = Array(Set(claim.queues)).sorted()
        guard !queues.isEmpty else { return ([], []) }
        let leaseUntil = now.addingTimeInterval(claim.leaseDuration.seconds)
        let sql: PostgresQuery = """
            WITH picked AS MATERIALIZED (
                SELECT c.id FROM unnest(\(queues)::text[]) AS q(name)
                CROSS JOIN LATERAL (
                    SELECT id, priority, queued_at FROM attempts
                    WHERE status = 'queued' AND queue = q.name AND queued_at <= \(now)
                    ORDER BY priority DESC, queued_at, id LIMIT \(claim.limit)
                    FOR UPDATE SKIP LOCKED
                ) c
                ORDER BY c.priority DESC, c.queued_at, c.id LIMIT \(claim.limit)
            ), claimed AS (
                UPDATE attempts a SET status = 'running', started_at = \(now), worker = \(claim.worker), lease_until = \(leaseUntil)
                FROM picked WHERE a.id = picked.id
                RETURNING a.id, a.run_id, a.task_idx, a.number, a.queue, a.priority, a.queued_at
            ), started AS (
                UPDATE tasks t SET status = 'running' FROM claimed c WHERE t.run_id = c.run_id AND t.idx = c.task_idx
                RETURNING t.run_id, t.idx, t.task_id, t.type, t.timeout_ms
            )
            SELECT c.id, c.run_id, c.task_idx, c.number, c.queue, c.priority, c.queued_at, s.task_id, s.type, s.timeout_ms,
                   r.workflow, r.version, r.params, r.trace_context, r.status
            FROM claimed c
            JOIN started s ON s.run_id = c.run_id AND s.idx = c.task_idx
            JOIN runs r ON r.id = c.run_id
            """
        let rows = try await session.rows(sql)
        guard !rows.isEmpty else { return ([], []) }
        struct Row {
            var id: Int64, runID: String, taskIndex: Int, number: Int, queue: String, priority: Int, queuedAt: Date
            var taskID: String, type: String, timeout: Int?, workflow: String, version: String, params: String, traceContext: String?, runStatus: String
        }
        var claimedRows: [Row] = []
        claimedRows.reserveCapacity(rows.count)
        for row in rows {
            let (id, runID, taskIndex, number, queue, priority, queuedAt, taskID, type, timeout, workflow, version, params, traceContext, runStatus) =
                try row.decode((Int64, String, Int, Int, String, Int, Date, String, String, Int?, String, String, String, String?, String).self)
            claimedRows.append(Row(
                id: id, runID: runID, taskIndex: taskIndex, number: number, queue: queue, priority: priority, queuedAt: queuedAt,
                taskID: taskID, type: type, timeout: timeout, workflow: workflow, version: version, params: params,
                traceContext: traceContext, runStatus: runStatus))
        }
        claimedRows.sort { ($1.priority, $0.queuedAt, $0.id) > ($0.priority, $1.queuedAt, $1.id) }
        // Runs that were pending start now (locked in id order; a concurrent claim of the same run waits, then skips it).
        let pendingRuns = Array(Set(claimedRows.filter { $0.runStatus == RunStatus.pending.rawValue }.map(\.runID))).sorted()
        var events: [EngineEvent] = []
        if !pendingRuns.isEmpty {
            let started = try await session.rows("""
                UPDATE runs SET status = 'running', started_at = \(now)
                WHERE status = 'pending'
                  AND id IN (SELECT id FROM runs WHERE id = ANY(\(pendingRuns)) AND status = 'pending' ORDER BY id FOR UPDATE)
                RETURNING id, workflow
                """)
            for row in started {
                let (id, workflow) = try row.decode((String, String).self)
                events.append(.runStarted(runID: RunID(rawValue: id), workflow: workflow, at: now))
            }
            events.sort { lhs, rhs in
                if case .runStarted(let l, _, _) = lhs, case .runStarted(let r, _, _) = rhs { return l < r }
                return false
            }
        }
        var paramsCache: [String: [String: JSONValue]] = [:]
        var claimed: [ClaimedAttempt] = []
        claimed.reserveCapacity(claimedRows.count)
        for row in claimedRows {
            let params = try paramsCache[row.runID] ?? decodeParams(row.params)
            paramsCache[row.runID] = params
            let attempt = ClaimedAttempt(
                id: row.id, runID: RunID(rawValue: row.runID), workflow: row.workflow, workflowVersion: row.version,
                taskIndex: row.taskIndex, taskID: row.taskID, type: row.type, queue: row.queue, number: row.number, params: params,
                traceContext: row.traceContext, timeout: row.timeout.map { .milliseconds($0) },
                queuedAt: row.queuedAt, startedAt: now, leaseUntil: leaseUntil)
            claimed.append(attempt)
            events.append(.attemptStarted(
                AttemptInfo(attemptID: attempt.id, runID: attempt.runID, workflow: attempt.workflow, taskID: attempt.taskID, type: attempt.type, queue: attempt.queue, number: attempt.number, worker: claim.worker),
                queuedAt: attempt.queuedAt, startedAt: now))
        }
        return (claimed, events)
    }
}
