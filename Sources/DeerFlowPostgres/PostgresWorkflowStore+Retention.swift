public import DeerFlow
import DeerFlowCore
public import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    /// The statuses of finished runs: the only runs a purge may touch.
    static let finishedStatuses = RunStatus.allCases.filter(\.isFinished).map(\.rawValue)

    /// Each batch is one statement: the runs are locked (`SKIP LOCKED`: a run another transaction
    /// is changing waits for the next batch) and deleted with their tasks, attempts and logs.
    public func purgeRuns(finishedBefore cutoff: Date, limit: Int) async throws -> PurgedHistory {
        let rows = try await transaction { session in
            try await session.rows("""
                WITH batch AS (
                    SELECT id FROM runs
                    WHERE finished_at IS NOT NULL AND finished_at < \(cutoff) AND status = ANY(\(Self.finishedStatuses)::text[])
                    ORDER BY finished_at, id LIMIT \(max(1, limit)) FOR UPDATE SKIP LOCKED
                ), logs AS (
                    DELETE FROM task_logs WHERE attempt_id IN (SELECT a.id FROM attempts a WHERE a.run_id IN (SELECT id FROM batch))
                    RETURNING 1
                ), deleted_attempts AS (
                    DELETE FROM attempts WHERE run_id IN (SELECT id FROM batch) RETURNING 1
                ), deleted_tasks AS (
                    DELETE FROM tasks WHERE run_id IN (SELECT id FROM batch) RETURNING 1
                ), deleted_runs AS (
                    DELETE FROM runs WHERE id IN (SELECT id FROM batch) RETURNING 1
                )
                SELECT (SELECT count(*) FROM deleted_runs)::bigint, (SELECT count(*) FROM logs)::bigint,
                       (SELECT count(*) FROM deleted_attempts)::bigint + (SELECT count(*) FROM deleted_tasks)::bigint
                """)
        }
        guard let row = rows.first else { return PurgedHistory() }
        let (runs, logs, _) = try row.decode((Int, Int, Int).self)
        return PurgedHistory(runs: runs, taskLogs: logs)
    }

    public func purgeTaskLogs(finishedBefore cutoff: Date, after cursor: RetentionCursor?, limit: Int) async throws -> (purged: PurgedHistory, next: RetentionCursor?) {
        let rows = try await transaction { session in
            try await session.rows("""
                WITH batch AS (
                    SELECT id, finished_at FROM runs
                    WHERE finished_at IS NOT NULL AND finished_at < \(cutoff) AND status = ANY(\(Self.finishedStatuses)::text[])
                      AND (finished_at, id) > (\(cursor?.finishedAt ?? Date.distantPast), \(cursor?.run.rawValue ?? "")::text COLLATE "C")
                    ORDER BY finished_at, id LIMIT \(max(1, limit))
                ), logs AS (
                    DELETE FROM task_logs WHERE attempt_id IN (SELECT a.id FROM attempts a WHERE a.run_id IN (SELECT id FROM batch))
                    RETURNING 1
                )
                SELECT last.id, last.finished_at, (SELECT count(*) FROM batch)::bigint, (SELECT count(*) FROM logs)::bigint
                FROM (SELECT id, finished_at FROM batch ORDER BY finished_at DESC, id DESC LIMIT 1) AS last
                """)
        }
        guard let row = rows.first else { return (PurgedHistory(), nil) }
        let (id, finishedAt, runs, logs) = try row.decode((String, Date, Int, Int).self)
        let next = runs < limit ? nil : RetentionCursor(finishedAt: finishedAt, run: RunID(rawValue: id))
        return (PurgedHistory(taskLogs: logs), next)
    }

    public func purgeSettledRecords(before cutoff: Date) async throws -> Int {
        let rows = try await transaction { session in
            try await session.rows("""
                WITH notifications AS (
                    DELETE FROM notification_outbox WHERE status IN ('delivered', 'failed') AND created_at < \(cutoff) RETURNING 1
                ), workers AS (
                    DELETE FROM workers WHERE state <> \(WorkerState.active.rawValue) AND last_seen < \(cutoff) RETURNING 1
                ), deliveries AS (
                    DELETE FROM webhook_deliveries WHERE received_at < \(cutoff) RETURNING 1
                )
                SELECT (SELECT count(*) FROM notifications)::bigint + (SELECT count(*) FROM workers)::bigint
                    + (SELECT count(*) FROM deliveries)::bigint
                """)
        }
        return try rows.first?.decode(Int.self) ?? 0
    }

    public func purgeCandidates(runsFinishedBefore: Date?, logsFinishedBefore: Date?) async throws -> PurgedHistory {
        // Logs go with their runs, and on their own when older than the log cutoff.
        let logCutoff = [runsFinishedBefore, logsFinishedBefore].compactMap { $0 }.max()
        let rows = try await snapshot { session in
            try await session.rows("""
                SELECT
                    CASE WHEN \(runsFinishedBefore)::timestamptz IS NULL THEN 0 ELSE (
                        SELECT count(*) FROM runs
                        WHERE finished_at IS NOT NULL AND finished_at < \(runsFinishedBefore) AND status = ANY(\(Self.finishedStatuses)::text[])
                    ) END::bigint,
                    CASE WHEN \(logCutoff)::timestamptz IS NULL THEN 0 ELSE (
                        SELECT count(*) FROM runs r JOIN attempts a ON a.run_id = r.id JOIN task_logs l ON l.attempt_id = a.id
                        WHERE r.finished_at IS NOT NULL AND r.finished_at < \(logCutoff) AND r.status = ANY(\(Self.finishedStatuses)::text[])
                    ) END::bigint
                """)
        }
        guard let row = rows.first else { return PurgedHistory() }
        let (runs, logs) = try row.decode((Int, Int).self)
        return PurgedHistory(runs: runs, taskLogs: logs)
    }

    public func storageSize() async throws -> Int64 {
        let rows = try await session { session in
            try await session.rows("SELECT pg_database_size(current_database())::bigint")
        }
        return try rows.first?.decode(Int64.self) ?? 0
    }

    /// Autovacuum makes the space of deleted rows reusable; giving it back to the file system
    /// would take `VACUUM FULL`, which locks every table it rewrites: left to the operator.
    public func reclaimSpace(full: Bool) async throws {}
}

extension PostgresWorkflowStore {
    /// Inserts `count` finished one-task runs of `workflow` in bulk, one a second ending at `end`
    /// (every tenth failed), each with one attempt and a one-line log; for benchmarks of a store
    /// with a long history (`deerflow bench --server --history N`). Their ids (`00` and digits)
    /// sort before every id DeerFlow generates, as older runs do.
    package func insertHistory(count: Int, workflow: String, endingAt end: Date) async throws {
        let first = end.addingTimeInterval(-Double(count))
        for start in stride(from: 0, to: count, by: 100_000) {
            let upper = min(count, start + 100_000) - 1
            try await transaction { session in
                try await session.execute("""
                    CREATE TEMPORARY TABLE history ON COMMIT DROP AS
                    SELECT i, '00' || lpad(i::text, 24, '0') AS id, \(first)::timestamptz + i * interval '1 second' AS t
                    FROM generate_series(\(start)::bigint, \(upper)::bigint) AS i
                    """)
                try await session.execute("""
                    INSERT INTO runs (id, workflow, version, status, params, trigger, created_at, started_at, finished_at, tasks_total, tasks_finished, tasks_failed)
                    SELECT id, \(workflow), \(workflow) || '@history', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, '{}', 'api',
                           t, t, t + interval '2 ms', 1, 1, (i % 10 = 0)::int FROM history
                    """)
                try await session.execute("""
                    INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents,
                                       retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts, output)
                    SELECT id, 0, 'work', 'noop', 'default', 0, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, 0, '{}',
                           0, 0, 0, 0, NULL, 1, CASE WHEN i % 10 = 0 THEN NULL ELSE '{"rows":42}' END FROM history
                    """)
                try await session.execute("""
                    WITH inserted AS (
                        INSERT INTO attempts (run_id, task_idx, number, status, queue, priority, queued_at, started_at, finished_at, worker, error)
                        SELECT id, 0, 1, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, 'default', 0, t, t + interval '500 microseconds',
                               t + interval '2 ms', 'history', CASE WHEN i % 10 = 0 THEN 'exit status 1' ELSE NULL END FROM history
                        RETURNING id
                    )
                    INSERT INTO task_logs (attempt_id, text, bytes) SELECT id, E'processed 42 rows\\n', 18 FROM inserted
                    """)
            }
        }
        try await session { try await $0.execute("ANALYZE") }
    }
}
