import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

/// A statement on the hot path (triggers, exchanges, heartbeats). Its SQL is the text of `query`
/// (built by interpolation, so every value is a bind parameter); a default-initialized instance
/// gives the same text as any other.
///
/// Prepared once per connection (parsed once) and planned by PostgreSQL's plan cache: the first
/// five calls with their values, then a generic plan when it costs no more, kept until the
/// statistics of a table it reads change. Planned on every call, the completion spent ~1 ms per
/// call in PostgreSQL's planner (of ~1.2 ms), the claim ~0.55 ms. In the worker's exchange the
/// generic plan is used from the first call (``UseKeptPlans``): on large tables PostgreSQL judges
/// it dearer than a plan for the call's one key (it assumes ten keys in a list) and would plan
/// every call. A kept plan made while the tables were small scans them whole once they have grown
/// (on a fresh database grown to 30,000 runs, the completion read every attempt per call, 23–36
/// ms per W2 hop), so the store analyzes the hot tables whenever one has doubled since its
/// statistics were taken (``PostgresWorkflowStore/analyzeGrownTables()``); `ANALYZE` makes every
/// session plan the statements reading that table again.
///
/// Runs by id: where a statement finds runs by id from a list (a CTE or an `unnest`) and also
/// checks their status, the status is written `status || ''`. That keeps the planner from
/// scanning `runs_active` or `runs_by_status` (and matching every active run against the list)
/// instead of looking the runs up by primary key: right after a burst of triggers (a batch of
/// 1,000 runs) the statistics still say there are hardly any active runs, and one claim scanned
/// 2,000 pending runs 64 times over, 55 ms where a lookup takes 0.1 ms.
protocol StoreStatement: Sendable {
    init()
    var query: PostgresQuery { get }
    /// The statement's name and SQL text: `static let text = StatementText(Self.self)`.
    static var text: StatementText { get }
}

/// A statement's name and SQL text, made once per statement type: postgres-nio asks for both on
/// every call, and building the SQL anew each time was 2 % of a trigger's CPU.
struct StatementText: Sendable {
    let name: String
    let sql: String

    init<Statement: StoreStatement>(_ type: Statement.Type) {
        name = "deerflow_\(String(describing: type))"
        sql = Statement().query.sql
    }
}

/// postgres-nio's prepared-statement wrapper for a ``StoreStatement``.
struct Prepared<Statement: StoreStatement>: PostgresPreparedStatement {
    typealias Row = PostgresRow

    static var name: String { Statement.text.name }
    static var sql: String { Statement.text.sql }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PostgresSession {
    /// Runs a hot-path statement (prepared on this connection at its first use) and collects its rows.
    @discardableResult
    func rows<Statement: StoreStatement>(_ statement: Statement) async throws -> [PostgresRow] {
        var rows: [PostgresRow] = []
        let sequence = try await whileOpen { connection, logger in
            try await connection.execute(Prepared<Statement>(bindings: statement.query.binds), logger: logger)
        }
        for try await row in sequence {
            rows.append(row)
        }
        return rows
    }
}

/// Makes the rest of the transaction run prepared statements with their generic plan from the
/// first call (`plan_cache_mode` is a session setting; `set_config(…, true)` holds until COMMIT,
/// and for the whole session it would give every other query of the store generic plans too).
/// One round trip more for the exchange; with 100,000 runs in the store, planning the completion
/// and its read on every call cost a W2 hop ~0.75 ms of PostgreSQL's time.
///
/// A generic plan assumes ten keys per list, and on tables of a few thousand rows reading them
/// whole then looks cheaper than ten index lookups; for the one key of a W2 hop it is not (three
/// tables read whole, 0.25 of the completion's 0.58 ms on a fresh store). The exchange's
/// statements find every row by key, so the transaction also turns sequential scans, hash joins
/// and merge joins off: their plans are index lookups in nested loops at any table size. (With
/// hash joins on, the generic plans hashed whole indexes instead.) Without hash joins, a join of
/// two lists would be a nested loop, quadratic in a fan-out, so the statements join no list to
/// another (``ApplyCompletions``).
struct UseKeptPlans: StoreStatement {
    static let text = StatementText(Self.self)

    var query: PostgresQuery {
        """
        SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true),
               set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)
        """
    }
}

// MARK: Runs

/// Inserts a batch of runs, their tasks and the queued first attempts of their root tasks, in one
/// statement (one atomic round trip); a scheduled run whose workflow and due time exist already is
/// skipped. Sends `NOTIFY deerflow_work` when an attempt was queued. Returns the inserted ids.
struct InsertRuns: StoreStatement {
    static let text = StatementText(Self.self)

    var runIDs: [String] = []
    var workflows: [String] = []
    var versions: [String] = []
    var params: [String] = []
    var triggers: [String] = []
    var scheduledFor: [Date?] = []
    var traceContexts: [String?] = []
    var createdAt: [Date] = []
    var totals: [Int] = []
    var timeouts: [Int?] = []
    var deadlines: [Date?] = []
    var rerunOf: [String?] = []
    var parentRunIDs: [String?] = []
    var parentTaskIDs: [String?] = []
    var parentAttempts: [Int?] = []
    /// Per run: why it waits (its workflow has a `max_active_runs`), or nil. A waiting run's tasks
    /// (`tasks.waits`) get no attempts; ``AdmitRuns`` starts it.
    var waitingReasons: [String?] = []
    /// Per run: when its first tasks started on a worker (``RunStore/createRun(_:startingOn:)``), or nil.
    var startedAt: [Date?] = []
    var tasks = PostgresWorkflowStore.TaskColumns()
    /// Per task: the worker it starts on at once, and that attempt's lease; nil: queued as usual.
    var taskWorkers: [String?] = []
    var taskLeases: [Date?] = []

    init() {}

    init(_ runs: [NewRun], runLimits: [String: Int] = [:], starting: [RunID: RunInsertion.DirectStart] = [:]) {
        for run in runs {
            let start = starting[run.id]
            startedAt.append(start == nil ? nil : run.createdAt)
            waitingReasons.append(runLimits[run.workflow].map { ConcurrencyReason.runs(limit: $0) })
            runIDs.append(run.id.rawValue)
            workflows.append(run.workflow)
            versions.append(run.workflowVersion)
            params.append(JSONValue.object(run.params).compactJSON)
            triggers.append(run.trigger.kind.rawValue)
            scheduledFor.append(run.scheduledFor)
            traceContexts.append(run.traceContext)
            createdAt.append(run.createdAt)
            totals.append(run.tasks.count)
            timeouts.append(run.timeout.map { Int($0.milliseconds) })
            deadlines.append(run.deadline)
            rerunOf.append(run.rerunOf?.rawValue)
            parentRunIDs.append(run.parent?.runID.rawValue)
            parentTaskIDs.append(run.parent?.taskID)
            parentAttempts.append(run.parent?.attempt)
            let waits = runLimits[run.workflow] != nil
            for task in run.tasks {
                tasks.append(run.id, task, waits: waits)
                let starts = start.map { $0.tasks.contains(task.index) } ?? false
                taskWorkers.append(starts ? start?.claim.worker : nil)
                taskLeases.append(starts ? start.map { run.createdAt.adding($0.claim.leaseDuration) } : nil)
            }
        }
    }

    var query: PostgresQuery {
        """
        WITH v AS (
            SELECT * FROM unnest(\(runIDs)::text[], \(workflows)::text[], \(versions)::text[], \(params)::text[], \(triggers)::text[],
                                 \(NullableArray(scheduledFor))::timestamptz[], \(NullableArray(traceContexts))::text[],
                                 \(createdAt)::timestamptz[], \(totals)::integer[], \(NullableArray(timeouts))::bigint[],
                                 \(NullableArray(deadlines))::timestamptz[], \(NullableArray(rerunOf))::text[], \(NullableArray(waitingReasons))::text[],
                                 \(NullableArray(parentRunIDs))::text[], \(NullableArray(parentTaskIDs))::text[], \(NullableArray(parentAttempts))::integer[],
                                 \(NullableArray(startedAt))::timestamptz[])
                 AS v(id, workflow, version, params, trigger, scheduled_for, trace_context, created_at, tasks_total, timeout_ms, deadline_at, rerun_of, waiting_reason,
                      parent_run_id, parent_task_id, parent_attempt, started_at)
        ), inserted AS (
            INSERT INTO runs (id, workflow, version, status, params, trigger, scheduled_for, trace_context, created_at, tasks_total,
                              timeout_ms, deadline_at, rerun_of, waiting_reason, parent_run_id, parent_task_id, parent_attempt, started_at)
            SELECT id, workflow, version, CASE WHEN started_at IS NULL THEN 'pending' ELSE 'running' END, params, trigger, scheduled_for, trace_context, created_at, tasks_total,
                   timeout_ms, deadline_at, rerun_of, waiting_reason, parent_run_id, parent_task_id, parent_attempt, started_at FROM v
            ON CONFLICT DO NOTHING
            RETURNING id, created_at
        ), t AS (
            SELECT * FROM unnest(\(tasks.runIDs)::text[], \(tasks.indices)::integer[], \(tasks.ids)::text[], \(tasks.types)::text[],
                                 \(tasks.queues)::text[], \(tasks.priorities)::integer[], \(tasks.dependencyCounts)::integer[],
                                 \(tasks.dependents)::text[], \(tasks.retries)::integer[], \(tasks.delays)::bigint[],
                                 \(tasks.maxDelays)::bigint[], \(tasks.jitters)::double precision[], \(NullableArray(tasks.timeouts))::bigint[],
                                 \(tasks.waits)::boolean[], \(NullableArray(taskWorkers))::text[], \(NullableArray(taskLeases))::timestamptz[])
                 AS t(run_id, idx, task_id, type, queue, priority, deps, dependents, retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, waits,
                      worker, lease_until)
            WHERE t.run_id IN (SELECT id FROM inserted)
        ), new_tasks AS (
            INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents,
                               retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts)
            SELECT run_id, idx, task_id, type, queue, priority,
                   CASE WHEN worker IS NOT NULL THEN 'running' WHEN deps = 0 AND NOT waits THEN 'queued' ELSE 'pending' END, deps,
                   CASE WHEN dependents = '' THEN '{}'::integer[] ELSE string_to_array(dependents, ',')::integer[] END,
                   retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, CASE WHEN deps = 0 AND NOT waits THEN 1 ELSE 0 END
            FROM t
        ), first_attempts AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, started_at, worker, lease_until, status)
            SELECT t.run_id, t.idx, 1, t.queue, t.priority, i.created_at, CASE WHEN t.worker IS NOT NULL THEN i.created_at END, t.worker, t.lease_until,
                   CASE WHEN t.worker IS NOT NULL THEN 'running' ELSE 'queued' END
            FROM t JOIN inserted i ON i.id = t.run_id WHERE t.deps = 0 AND NOT t.waits
            RETURNING id, run_id, task_idx, status
        ), notified AS (
            SELECT pg_notify('deerflow_work', '') FROM (SELECT 1 FROM first_attempts WHERE status = 'queued' LIMIT 1) AS queued
        )
        SELECT id, NULL::bigint AS attempt_id, NULL::integer AS task_idx FROM inserted
        UNION ALL SELECT NULL, NULL, NULL FROM notified
        UNION ALL SELECT run_id, id, task_idx FROM first_attempts WHERE status = 'running'
        """
    }
}

// MARK: Exchange

/// Locks the attempts being completed (in id order) and reads what the completion plan needs.
struct LoadCompleting: StoreStatement {
    static let text = StatementText(Self.self)

    var ids: [Int64] = []

    init() {}
    init(_ ids: [Int64]) { self.ids = ids }

    var query: PostgresQuery {
        """
        SELECT a.id, a.run_id, a.task_idx, a.number, a.status, a.started_at, a.worker, a.stop_requested,
               t.task_id, t.type, t.queue, t.priority, t.retries, t.retry_delay_ms, t.max_retry_delay_ms, t.jitter,
               t.retries_used, t.interruptions, t.dependents, r.workflow, r.status, r.version, r.params, r.trace_context,
               coalesce(r.scheduled_for, r.created_at), t.map_parent
        FROM attempts a
        JOIN tasks t ON t.run_id = a.run_id AND t.idx = a.task_idx
        JOIN runs r ON r.id = a.run_id
        WHERE a.id = ANY(\(ids))
        ORDER BY a.id
        FOR UPDATE OF a
        """
    }
}

/// What ``ApplyCompletions`` does with the tasks that became ready.
enum ReadyMode: Int {
    /// Insert queued attempts (anybody may claim them; NOTIFY).
    case queue = 0
    /// Start those of the worker's queues on the worker at once (running attempts), queue the rest.
    case startAll = 1
    /// Leave them without attempts: the caller starts some and queues the rest.
    case leave = 2
}

/// Writes a completion plan in one statement: attempt rows, task rows, retry attempts, dependency
/// releases (tasks whose last dependency succeeded become ready and, per `mode`, get queued or
/// running attempts), and run counters. Locks are taken in key order within each table. No two
/// of its lists (or of the rows it returns from one part to another) are joined to each other:
/// in the exchange, where hash joins are off (``UseKeptPlans``), such a join is a nested loop,
/// quadratic in a fan-out.
///
/// Rows returned, by `kind`:
/// - `ready`: run_id, idx, task_id (s1), type (s2), queue (s3), priority (i1), timeout_ms (i2),
///   the number of its next attempt (i4).
/// - `started`: run_id, idx, the id of the running attempt started here for that ready task (i3).
/// - `run`: run_id, tasks_total (idx), workflow (s1), tasks_finished (i1), tasks_failed (i2),
///   created_at (d1), started_at (d2).
/// - `notify`: a NOTIFY was sent.
struct ApplyCompletions: StoreStatement {
    static let text = StatementText(Self.self)

    var plan = CompletionPlan()
    var mode = ReadyMode.queue
    var queues: [String] = []
    var worker = ""
    var now = Date(timeIntervalSince1970: 0)
    var leaseUntil = Date(timeIntervalSince1970: 0)
    /// Run counter deltas; empty when the caller applies them later (after upstream failures).
    var deltas: [(RunID, RunProgress)] = []

    init() {}

    init(plan: CompletionPlan, mode: ReadyMode, queues: [String], worker: String, now: Date, leaseUntil: Date, deltas: [(RunID, RunProgress)]) {
        self.plan = plan
        self.mode = mode
        self.queues = queues
        self.worker = worker
        self.now = now
        self.leaseUntil = leaseUntil
        self.deltas = deltas
    }

    var query: PostgresQuery {
        let attempts = plan.attemptUpdates
        let tasks = plan.taskUpdates
        let retries = plan.newAttempts
        let releases = plan.dependencyReleases
        return """
        WITH attempt_updates AS (
            UPDATE attempts a SET status = v.status, finished_at = v.finished_at, error = v.error, lease_until = NULL
            FROM unnest(\(attempts.map(\.id))::bigint[], \(attempts.map(\.status.rawValue))::text[],
                        \(attempts.map(\.finishedAt))::timestamptz[], \(NullableArray(attempts.map(\.error)))::text[])
                 AS v(id, status, finished_at, error)
            WHERE a.id = v.id
        ), task_updates AS (
            UPDATE tasks t SET status = v.status, output = coalesce(v.output, t.output), retries_used = v.retries_used,
                               interruptions = v.interruptions, attempts = v.attempts
            FROM unnest(\(tasks.map(\.runID.rawValue))::text[], \(tasks.map(\.index))::integer[], \(tasks.map(\.status.rawValue))::text[],
                        \(NullableArray(tasks.map { $0.output?.compactJSON }))::text[], \(tasks.map(\.retriesUsed))::integer[],
                        \(tasks.map(\.interruptions))::integer[], \(tasks.map(\.attempts))::integer[])
                 AS v(run_id, idx, status, output, retries_used, interruptions, attempts)
            WHERE t.run_id = v.run_id AND t.idx = v.idx
        ), retries AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)
            SELECT run_id, idx, number, queue, priority, queued_at, 'queued'
            FROM unnest(\(retries.map(\.runID.rawValue))::text[], \(retries.map(\.taskIndex))::integer[], \(retries.map(\.number))::integer[],
                        \(retries.map(\.queue))::text[], \(retries.map(\.priority))::integer[], \(retries.map(\.queuedAt))::timestamptz[])
                 AS v(run_id, idx, number, queue, priority, queued_at)
            RETURNING queued_at
        ), releases AS (
            SELECT * FROM unnest(\(releases.map(\.runID.rawValue))::text[], \(releases.map(\.taskIndex))::integer[],
                                 \(releases.map(\.count))::integer[]) AS v(run_id, idx, n)
        ), locked_tasks AS MATERIALIZED (
            -- Carries the release count, so that no two lists meet in a join below (see ApplyCompletions).
            SELECT t.run_id, t.idx, v.n FROM tasks t JOIN releases v ON t.run_id = v.run_id AND t.idx = v.idx
            ORDER BY t.run_id, t.idx FOR UPDATE OF t
        ), released AS (
            UPDATE tasks t SET deps_remaining = t.deps_remaining - l.n,
                status = CASE WHEN t.status = 'pending' AND t.deps_remaining - l.n <= 0
                              THEN CASE WHEN \(mode.rawValue) = 1 AND t.queue = ANY(\(queues)::text[]) THEN 'running' ELSE 'queued' END
                              ELSE t.status END,
                attempts = CASE WHEN t.status = 'pending' AND t.deps_remaining - l.n <= 0 THEN t.attempts + 1 ELSE t.attempts END
            FROM locked_tasks l
            WHERE t.run_id = l.run_id AND t.idx = l.idx
            RETURNING t.run_id, t.idx, t.task_id, t.type, t.queue, t.priority, t.timeout_ms, t.status, t.attempts,
                      (t.deps_remaining <= 0 AND t.deps_remaining + l.n > 0 AND t.status IN ('queued', 'running')) AS ready
        ), queued AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)
            SELECT run_id, idx, attempts, queue, priority, \(now), 'queued' FROM released
            WHERE ready AND status = 'queued' AND \(mode.rawValue) <> 2
            RETURNING run_id
        ), started AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, started_at, worker, lease_until, status)
            SELECT run_id, idx, attempts, queue, priority, \(now), \(now), \(worker), \(leaseUntil), 'running' FROM released
            WHERE ready AND status = 'running'
            RETURNING id, run_id, task_idx
        ), deltas AS (
            SELECT * FROM unnest(\(deltas.map(\.0.rawValue))::text[], \(deltas.map(\.1.finished))::integer[],
                                 \(deltas.map(\.1.failed))::integer[]) AS v(id, finished, failed)
        ), locked_runs AS MATERIALIZED (
            -- `status || ''`: runs found by id only (see "Runs by id" at StoreStatement).
            SELECT r.id, v.finished, v.failed FROM runs r JOIN deltas v ON r.id = v.id WHERE r.status || '' IN ('pending', 'running')
            ORDER BY r.id FOR UPDATE OF r
        ), counted AS (
            UPDATE runs r SET tasks_finished = r.tasks_finished + l.finished, tasks_failed = r.tasks_failed + l.failed
            FROM locked_runs l
            WHERE r.id = l.id AND r.status || '' IN ('pending', 'running')
            RETURNING r.id, r.workflow, r.tasks_total, r.tasks_finished, r.tasks_failed, r.created_at, r.started_at
        ), notified AS (
            SELECT pg_notify('deerflow_work', '') FROM (
                SELECT 1 FROM queued UNION ALL SELECT 1 FROM retries WHERE queued_at <= \(now) LIMIT 1) AS due
        )
        SELECT 'ready' AS kind, x.run_id, x.idx, x.task_id AS s1, x.type AS s2, x.queue AS s3, x.priority AS i1,
               x.timeout_ms AS i2, NULL::bigint AS i3, NULL::timestamptz AS d1, NULL::timestamptz AS d2, x.attempts AS i4
        FROM released x
        WHERE x.ready
        UNION ALL
        SELECT 'started', s.run_id, s.task_idx, NULL, NULL, NULL, NULL, NULL, s.id, NULL, NULL, NULL
        FROM started s
        UNION ALL
        SELECT 'run', c.id, c.tasks_total, c.workflow, NULL, NULL, c.tasks_finished, c.tasks_failed, NULL, c.created_at, c.started_at, NULL
        FROM counted c
        UNION ALL
        SELECT 'notify', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM notified
        """
    }
}

/// Starts some ready tasks (left without attempts by ``ApplyCompletions`` in `.leave` mode) on the
/// claiming worker and queues the others (with NOTIFY). Their task rows are locked already.
struct StartReady: StoreStatement {
    static let text = StatementText(Self.self)

    var runIDs: [String] = []
    var indices: [Int] = []
    var queues: [String] = []
    var priorities: [Int] = []
    var numbers: [Int] = []
    /// Per task: start it here (true) or queue it (false).
    var direct: [Bool] = []
    var worker = ""
    var now = Date(timeIntervalSince1970: 0)
    var leaseUntil = Date(timeIntervalSince1970: 0)

    init() {}

    var query: PostgresQuery {
        """
        WITH v AS (
            SELECT * FROM unnest(\(runIDs)::text[], \(indices)::integer[], \(queues)::text[], \(priorities)::integer[], \(direct)::boolean[],
                                 \(numbers)::integer[])
                 AS v(run_id, idx, queue, priority, direct, number)
        ), inserted AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, started_at, worker, lease_until, status)
            SELECT run_id, idx, number, queue, priority, \(now),
                   CASE WHEN direct THEN \(now) END, CASE WHEN direct THEN \(worker) END, CASE WHEN direct THEN \(leaseUntil) END,
                   CASE WHEN direct THEN 'running' ELSE 'queued' END
            FROM v
            RETURNING id, run_id, task_idx, status
        ), running AS (
            UPDATE tasks t SET status = 'running' FROM inserted i
            WHERE t.run_id = i.run_id AND t.idx = i.task_idx AND i.status = 'running'
        ), notified AS (
            SELECT pg_notify('deerflow_work', '') FROM (SELECT 1 FROM inserted WHERE status = 'queued' LIMIT 1) AS due
        )
        SELECT id, run_id, task_idx FROM inserted WHERE status = 'running'
        UNION ALL SELECT NULL, NULL, NULL FROM notified
        """
    }
}

/// Marks runs finished (their rows are locked already, by ``ApplyCompletions``).
struct FinishRuns: StoreStatement {
    static let text = StatementText(Self.self)

    var ids: [String] = []
    var statuses: [String] = []
    var now = Date(timeIntervalSince1970: 0)

    init() {}

    var query: PostgresQuery {
        """
        UPDATE runs r SET status = v.status, finished_at = \(now)
        FROM unnest(\(ids)::text[], \(statuses)::text[]) AS v(id, status)
        WHERE r.id = v.id
        """
    }
}

/// Claims up to `limit` ready attempts, highest priority first, then oldest: for each queue its
/// best `limit` ready attempts are locked with `FOR UPDATE SKIP LOCKED` (workers never wait for
/// each other; each queue uses the ready index), the best `limit` of them are marked running with
/// their tasks, runs still pending start (locked in id order), and what the worker needs is
/// returned. Candidates not chosen stay untouched (their locks end at COMMIT). Also marks the runs
/// the same exchange finished (saving a round trip).
struct Claim: StoreStatement {
    static let text = StatementText(Self.self)

    var queues: [String] = []
    var limit = 0
    var worker = ""
    var now = Date(timeIntervalSince1970: 0)
    var leaseUntil = Date(timeIntervalSince1970: 0)
    var finish = FinishRuns()
    /// The limited queues among `queues` and their concurrency limits; their rows in
    /// `queue_limits` are locked by the transaction already (``LockQueueLimits``), so the running
    /// attempts counted here cannot change before COMMIT. Empty without limits.
    var cappedQueues: [String] = []
    var caps: [Int] = []

    init() {}

    var query: PostgresQuery {
        """
        WITH finished AS (
            UPDATE runs r SET status = v.status, finished_at = \(finish.now)
            FROM unnest(\(finish.ids)::text[], \(finish.statuses)::text[]) AS v(id, status)
            WHERE r.id = v.id
        ), caps AS (
            SELECT c.queue, greatest(0, c.cap - (SELECT count(*) FROM attempts a WHERE a.status = 'running' AND a.queue = c.queue)) AS free
            FROM unnest(\(cappedQueues)::text[], \(caps)::integer[]) AS c(queue, cap)
        ), picked AS MATERIALIZED (
            SELECT c.id FROM unnest(\(queues)::text[]) AS q(name)
            LEFT JOIN caps ON caps.queue = q.name
            CROSS JOIN LATERAL (
                SELECT id, priority, queued_at FROM attempts
                WHERE status = 'queued' AND queue = q.name AND queued_at <= \(now)
                ORDER BY priority DESC, queued_at, id LIMIT least(\(limit), coalesce(caps.free, \(limit)))
                FOR UPDATE SKIP LOCKED
            ) c
            ORDER BY c.priority DESC, c.queued_at, c.id LIMIT \(limit)
        ), claimed AS (
            UPDATE attempts a SET status = 'running', started_at = \(now), worker = \(worker), lease_until = \(leaseUntil)
            FROM picked WHERE a.id = picked.id
            RETURNING a.id, a.run_id, a.task_idx, a.number, a.queue, a.priority, a.queued_at
        ), started AS (
            UPDATE tasks t SET status = 'running' FROM claimed c WHERE t.run_id = c.run_id AND t.idx = c.task_idx
            RETURNING t.run_id, t.idx, t.task_id, t.type, t.timeout_ms, t.map_index, t.item
        ), pending_runs AS MATERIALIZED (
            -- `status || ''`: runs found by id only (see "Runs by id" at StoreStatement).
            SELECT r.id FROM runs r WHERE r.id IN (SELECT run_id FROM claimed) AND r.status || '' = 'pending'
            ORDER BY r.id FOR UPDATE
        ), started_runs AS (
            UPDATE runs r SET status = 'running', started_at = \(now) FROM pending_runs p
            WHERE r.id = p.id AND r.status || '' = 'pending'
            RETURNING r.id
        )
        SELECT c.id, c.run_id, c.task_idx, c.number, c.queue, c.priority, c.queued_at, s.task_id, s.type, s.timeout_ms,
               r.workflow, r.version, r.params, r.trace_context, sr.id IS NOT NULL, coalesce(r.scheduled_for, r.created_at),
               s.map_index, s.item
        FROM claimed c
        JOIN started s ON s.run_id = c.run_id AND s.idx = c.task_idx
        JOIN runs r ON r.id = c.run_id
        LEFT JOIN started_runs sr ON sr.id = c.run_id
        """
    }
}

/// Records a worker's heartbeat row and extends the leases of its running attempts, skipping
/// attempts locked by another transaction (being completed or reclaimed right now); returns the
/// attempts that should stop. PostgreSQL runs data-modifying CTEs to completion whether or not the
/// query reads them.
struct Heartbeat: StoreStatement {
    static let text = StatementText(Self.self)

    var worker = WorkerRecord(id: "", host: "", pid: 0, slots: 0, busy: 0, queues: [], version: "", startedAt: Date(timeIntervalSince1970: 0), lastSeen: Date(timeIntervalSince1970: 0), state: .active)
    var running: [Int64] = []
    var leaseUntil = Date(timeIntervalSince1970: 0)

    init() {}

    var query: PostgresQuery {
        """
        WITH beat AS (
            INSERT INTO workers (id, host, pid, slots, busy, queues, version, started_at, last_seen, state)
            VALUES (\(worker.id), \(worker.host), \(worker.pid), \(worker.slots), \(worker.busy), \(worker.queues)::text[],
                    \(worker.version), \(worker.startedAt), \(worker.lastSeen), 'active')
            ON CONFLICT (id) DO UPDATE SET busy = excluded.busy, last_seen = excluded.last_seen, slots = excluded.slots,
                queues = excluded.queues, state = CASE WHEN workers.state = 'stopped' THEN 'stopped' ELSE 'active' END
        ), extended AS (
            UPDATE attempts SET lease_until = \(leaseUntil)
            WHERE id IN (
                SELECT id FROM attempts WHERE id = ANY(\(running)) AND status = 'running' AND worker = \(worker.id)
                ORDER BY id FOR UPDATE SKIP LOCKED)
        )
        SELECT a.id FROM attempts a
        WHERE a.id = ANY(\(running))
          AND (a.status <> 'running' OR a.worker IS DISTINCT FROM \(worker.id) OR a.stop_requested)
        """
    }
}

/// Starts the oldest waiting runs of workflows while their `max_active_runs` allows (all of
/// them for a workflow without a limit: `limits` nil): their tasks without dependencies get
/// queued attempts (NOTIFY). The `workflow_limits` rows are locked by the transaction already,
/// so the active runs counted here cannot change before COMMIT. Also writes the waiting reason
/// of the runs left waiting (the limit may have changed). Returns the ids of the runs started.
///
/// The workflow is matched as `r.workflow || ''`, which no index serves, so active runs are found
/// through `runs_active`: with the plain column PostgreSQL also read `runs_by_workflow` for the
/// workflow (a bitmap AND), every run the workflow ever had (16 ms at 100,000 finished runs whose
/// statistics were not yet taken; each trigger and finish of a limited workflow's run runs this).
struct AdmitRuns: StoreStatement {
    static let text = StatementText(Self.self)

    var workflows: [String] = []
    var limits: [Int?] = []
    var reasons: [String?] = []
    var now = Date(timeIntervalSince1970: 0)

    init() {}

    var query: PostgresQuery {
        """
        WITH l AS (
            SELECT * FROM unnest(\(workflows)::text[], \(NullableArray(limits))::integer[], \(NullableArray(reasons))::text[])
                 AS l(workflow, max_active, reason)
        ), active AS (
            SELECT r.workflow, count(*) AS n FROM runs r JOIN l ON l.workflow = r.workflow || ''
            WHERE r.status IN ('pending', 'running') AND r.waiting_reason IS NULL
            GROUP BY r.workflow
        ), ranked AS MATERIALIZED (
            SELECT r.id, r.workflow, row_number() OVER (PARTITION BY r.workflow ORDER BY r.id) AS k
            FROM runs r JOIN l ON l.workflow = r.workflow || ''
            WHERE r.status IN ('pending', 'running') AND r.waiting_reason IS NOT NULL
        ), pick AS MATERIALIZED (
            SELECT r.id FROM runs r JOIN ranked k ON k.id = r.id JOIN l ON l.workflow = k.workflow
            LEFT JOIN active a ON a.workflow = k.workflow
            WHERE l.max_active IS NULL OR k.k <= l.max_active - coalesce(a.n, 0)
            ORDER BY r.id FOR UPDATE OF r
        ), admitted AS (
            UPDATE runs r SET waiting_reason = NULL FROM pick
            WHERE r.id = pick.id AND r.status || '' = 'pending' AND r.waiting_reason IS NOT NULL
            RETURNING r.id
        ), reasons AS (
            UPDATE runs r SET waiting_reason = l.reason FROM l
            WHERE r.workflow || '' = l.workflow AND l.reason IS NOT NULL AND r.status IN ('pending', 'running')
              AND r.waiting_reason IS NOT NULL AND r.waiting_reason <> l.reason AND r.id NOT IN (SELECT id FROM pick)
        ), roots AS (
            UPDATE tasks t SET status = 'queued', attempts = 1 FROM admitted a
            WHERE t.run_id = a.id AND t.status = 'pending' AND t.deps_remaining <= 0
            RETURNING t.run_id, t.idx, t.queue, t.priority
        ), queued AS (
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)
            SELECT run_id, idx, 1, queue, priority, \(now), 'queued' FROM roots
            RETURNING run_id
        ), notified AS (
            SELECT pg_notify('deerflow_work', '') FROM (SELECT 1 FROM queued LIMIT 1) AS due
        )
        SELECT id FROM admitted
        UNION ALL SELECT NULL FROM notified
        """
    }
}
