import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    public func createRun(_ run: NewRun) async throws -> RunRecord? {
        try await runInserts.submit(run)
    }

    /// Inserts runs (one transaction per batch of concurrent triggers).
    func insertBatch(_ runs: [NewRun]) async throws -> [RunRecord?] {
        try await transaction { session in
            try await Self.insert(runs, in: session)
        }
    }

    /// Inserts runs, their tasks and the queued first attempts of tasks without dependencies. A
    /// scheduled run whose workflow and due time exist already is skipped: its result is nil.
    static func insert(_ runs: [NewRun], in session: PostgresSession) async throws -> [RunRecord?] {
        guard !runs.isEmpty else { return [] }
        let rows = try await session.rows("""
            INSERT INTO runs (id, workflow, version, status, params, trigger, scheduled_for, trace_context, created_at, tasks_total)
            SELECT v.id, v.workflow, v.version, 'pending', v.params, v.trigger, v.scheduled_for, v.trace_context, v.created_at, v.tasks_total
            FROM unnest(\(runs.map(\.id.rawValue))::text[], \(runs.map(\.workflow))::text[], \(runs.map(\.workflowVersion))::text[],
                        \(runs.map { JSONValue.object($0.params).compactJSON })::text[], \(runs.map(\.trigger.kind))::text[],
                        \(NullableArray(runs.map(\.scheduledFor)))::timestamptz[], \(NullableArray(runs.map(\.traceContext)))::text[],
                        \(runs.map(\.createdAt))::timestamptz[], \(runs.map(\.tasks.count))::integer[])
                 AS v(id, workflow, version, params, trigger, scheduled_for, trace_context, created_at, tasks_total)
            ON CONFLICT DO NOTHING
            RETURNING id
            """)
        var inserted: Set<String> = []
        for row in rows { inserted.insert(try row.decode(String.self)) }
        let created = runs.filter { inserted.contains($0.id.rawValue) }
        var tasks = TaskColumns()
        var firstAttempts: [CompletionPlan.NewAttempt] = []
        for run in created {
            for task in run.tasks {
                tasks.append(run.id, task)
                if task.dependencyCount == 0 {
                    firstAttempts.append(.init(runID: run.id, taskIndex: task.index, number: 1, queue: task.queue, priority: task.priority, queuedAt: run.createdAt))
                }
            }
        }
        if !tasks.runIDs.isEmpty {
            try await session.execute("""
                INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents,
                                   retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts)
                SELECT v.run_id, v.idx, v.task_id, v.type, v.queue, v.priority,
                       CASE WHEN v.deps = 0 THEN 'queued' ELSE 'pending' END, v.deps,
                       CASE WHEN v.dependents = '' THEN '{}'::integer[] ELSE string_to_array(v.dependents, ',')::integer[] END,
                       v.retries, v.retry_delay_ms, v.max_retry_delay_ms, v.jitter, v.timeout_ms,
                       CASE WHEN v.deps = 0 THEN 1 ELSE 0 END
                FROM unnest(\(tasks.runIDs)::text[], \(tasks.indices)::integer[], \(tasks.ids)::text[], \(tasks.types)::text[],
                            \(tasks.queues)::text[], \(tasks.priorities)::integer[], \(tasks.dependencyCounts)::integer[],
                            \(tasks.dependents)::text[], \(tasks.retries)::integer[], \(tasks.delays)::bigint[],
                            \(tasks.maxDelays)::bigint[], \(tasks.jitters)::double precision[], \(NullableArray(tasks.timeouts))::bigint[])
                     AS v(run_id, idx, task_id, type, queue, priority, deps, dependents, retries, retry_delay_ms,
                          max_retry_delay_ms, jitter, timeout_ms)
                """)
        }
        try await insertAttempts(firstAttempts, in: session)
        return runs.map { run in
            guard inserted.contains(run.id.rawValue) else { return nil }
            return RunRecord(
                id: run.id, workflow: run.workflow, workflowVersion: run.workflowVersion, status: .pending, params: run.params,
                trigger: run.trigger.kind, scheduledFor: run.scheduledFor, traceContext: run.traceContext, createdAt: run.createdAt,
                startedAt: nil, finishedAt: nil, progress: RunProgress(total: run.tasks.count))
        }
    }

    /// Task rows as column arrays, for one `unnest` insert.
    struct TaskColumns {
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

        mutating func append(_ runID: RunID, _ task: NewTask) {
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

    /// Inserts queued attempts; asks for a NOTIFY when one of them is claimable now.
    static func insertAttempts(_ attempts: [CompletionPlan.NewAttempt], in session: PostgresSession, now: Date? = nil) async throws {
        guard !attempts.isEmpty else { return }
        try await session.execute("""
            INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)
            SELECT v.run_id, v.idx, v.number, v.queue, v.priority, v.queued_at, 'queued'
            FROM unnest(\(attempts.map(\.runID.rawValue))::text[], \(attempts.map(\.taskIndex))::integer[], \(attempts.map(\.number))::integer[],
                        \(attempts.map(\.queue))::text[], \(attempts.map(\.priority))::integer[], \(attempts.map(\.queuedAt))::timestamptz[])
                 AS v(run_id, idx, number, queue, priority, queued_at)
            """)
        let due = now ?? Date()
        if attempts.contains(where: { $0.queuedAt <= due }) { session.notifyWork = true }
    }

    public func run(_ id: RunID) async throws -> RunDetail? {
        try await snapshot { session in
            guard let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id.rawValue)").first else { return nil }
            let run = try Self.runRecord(row)
            let taskRows = try await session.rows("SELECT idx, task_id, type, queue, status, output FROM tasks WHERE run_id = \(id.rawValue) ORDER BY idx")
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
                let (index, taskID, type, queue, status, output) = try row.decode((Int, String, String, String, String, String?).self)
                tasks.append(TaskRecord(
                    index: index, id: taskID, type: type, queue: queue, status: TaskStatus(rawValue: status) ?? .pending,
                    output: output.flatMap { try? JSONValue(parsing: $0) }, attempts: attempts[index] ?? []))
            }
            return RunDetail(run: run, tasks: tasks)
        }
    }

    static let runColumns = "id, workflow, version, status, params, trigger, scheduled_for, trace_context, created_at, started_at, finished_at, tasks_total, tasks_finished, tasks_failed"

    static func runRecord(_ row: PostgresRow) throws -> RunRecord {
        let (id, workflow, version, status, params, trigger, scheduledFor, traceContext, createdAt, startedAt, finishedAt, total, finished, failed) =
            try row.decode((String, String, String, String, String, String, Date?, String?, Date, Date?, Date?, Int, Int, Int).self)
        return RunRecord(
            id: RunID(rawValue: id), workflow: workflow, workflowVersion: version, status: RunStatus(rawValue: status) ?? .failed,
            params: try decodeParams(params), trigger: trigger, scheduledFor: scheduledFor, traceContext: traceContext,
            createdAt: createdAt, startedAt: startedAt, finishedAt: finishedAt,
            progress: RunProgress(total: total, finished: finished, failed: failed))
    }

    public func runs(_ query: RunQuery) async throws -> RunPage {
        let limit = max(1, min(query.limit, 1000))
        // NULL parameters drop their condition (the planner folds them away for each call).
        let sql: PostgresQuery = """
            SELECT \(unescaped: Self.runColumns) FROM runs
            WHERE (\(query.workflow)::text IS NULL OR workflow = \(query.workflow))
              AND (\(query.status?.rawValue)::text IS NULL OR status = \(query.status?.rawValue))
              AND (\(query.cursor?.rawValue)::text IS NULL OR id < \(query.cursor?.rawValue))
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

    /// Cancels a run. Lock order is the one every transaction follows — attempts, then tasks, then
    /// runs — so a cancel never deadlocks with workers: running attempts are flagged first (this
    /// waits for a worker completing one of them, whose retry or dependents are then visible),
    /// queued attempts are cancelled after that, then tasks, then the run.
    public func cancelRun(_ id: RunID, at now: Date) async throws -> CancelResult {
        do {
            return try await transaction { session in
                guard let row = try await session.rows("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id.rawValue)").first else {
                    return .notFound
                }
                var run = try Self.runRecord(row)
                guard !run.status.isFinished else { return .alreadyFinished(run.status) }
                let runID = id.rawValue
                try await session.execute("""
                    UPDATE attempts SET status = 'cancelled', finished_at = \(now), error = 'run cancelled before the attempt started'
                    WHERE run_id = \(runID) AND status = 'queued'
                    """)
                let running = try await session.rows("""
                    UPDATE attempts SET stop_requested = true WHERE run_id = \(runID) AND status = 'running' RETURNING id
                    """).map { try $0.decode(Int64.self) }
                // Retries inserted by completions that committed while we waited above.
                try await session.execute("""
                    UPDATE attempts SET status = 'cancelled', finished_at = \(now), error = 'run cancelled before the attempt started'
                    WHERE run_id = \(runID) AND status = 'queued'
                    """)
                try await session.execute("UPDATE tasks SET status = 'cancelled' WHERE run_id = \(runID) AND status IN ('pending', 'queued')")
                let updated = try await session.rows("""
                    UPDATE runs SET status = 'cancelled', finished_at = \(now)
                    WHERE id = \(runID) AND status IN ('pending', 'running') RETURNING id
                    """)
                guard !updated.isEmpty else { throw RunFinishedMeanwhile() }
                run.status = .cancelled
                run.finishedAt = now
                let event = EngineEvent.runFinished(runID: id, workflow: run.workflow, status: .cancelled, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: now)
                return .cancelled(run, runningAttempts: running.sorted(), events: [event])
            }
        } catch is RunFinishedMeanwhile {
            // The last task finished while we cancelled: nothing was changed (rolled back).
            let status = try await run(id)?.run.status ?? .success
            return .alreadyFinished(status)
        }
    }

    /// A run finished between reading it and cancelling it; the transaction rolls back.
    private struct RunFinishedMeanwhile: StoreControlFlow {}

    public func taskOutput(run: RunID, task: String) async throws -> JSONValue? {
        let rows = try await session { session in
            try await session.rows("SELECT output FROM tasks WHERE run_id = \(run.rawValue) AND task_id = \(task) AND status = 'success'")
        }
        return try rows.first.flatMap { try $0.decode(String?.self) }.map { try JSONValue(parsing: $0) }
    }
}
