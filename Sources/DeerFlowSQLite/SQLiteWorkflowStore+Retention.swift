public import DeerFlow
import DeerFlowCore
public import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore {
    /// The statuses of finished runs, as SQL: the only runs a purge may touch.
    static let finishedStatuses = RunStatus.allCases.filter(\.isFinished).map { "'\($0.rawValue)'" }.joined(separator: ", ")

    public func purgeRuns(finishedBefore cutoff: Date, limit: Int) async throws -> PurgedHistory {
        try await writer.transaction { db in
            let ids = try await db.rows(
                """
                SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (\(Self.finishedStatuses))
                ORDER BY finished_at, id LIMIT CAST(? AS INTEGER)
                """, [Column.time(cutoff), .integer(max(1, limit))]
            ).map { SQLiteData.text($0.string("id")) }
            guard !ids.isEmpty else { return PurgedHistory() }
            let logs = try await Self.deleteLogs(ofRuns: ids, db)
            let list = placeholders(ids.count)
            _ = try await db.rows("DELETE FROM attempts WHERE run_id IN (\(list))", ids)
            _ = try await db.rows("DELETE FROM tasks WHERE run_id IN (\(list))", ids)
            _ = try await db.rows("DELETE FROM runs WHERE id IN (\(list))", ids)
            return PurgedHistory(runs: ids.count, taskLogs: logs)
        }
    }

    public func purgeTaskLogs(finishedBefore cutoff: Date, after cursor: RetentionCursor?, limit: Int) async throws -> (purged: PurgedHistory, next: RetentionCursor?) {
        try await writer.transaction { db in
            let start = cursor.map { Column.micros($0.finishedAt) } ?? Int.min
            let rows = try await db.rows(
                """
                SELECT id, finished_at FROM runs
                WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (\(Self.finishedStatuses))
                  AND (finished_at > ? OR (finished_at = ? AND id > ?))
                ORDER BY finished_at, id LIMIT CAST(? AS INTEGER)
                """, [Column.time(cutoff), .integer(start), .integer(start), .text(cursor?.run.rawValue ?? ""), .integer(max(1, limit))])
            guard let last = rows.last, let lastFinished = last.date("finished_at") else { return (PurgedHistory(), nil) }
            let logs = try await Self.deleteLogs(ofRuns: rows.map { .text($0.string("id")) }, db)
            let next = rows.count < limit ? nil : RetentionCursor(finishedAt: lastFinished, run: RunID(rawValue: last.string("id")))
            return (PurgedHistory(taskLogs: logs), next)
        }
    }

    /// Deletes the task logs of the attempts of these runs; answers how many.
    private static func deleteLogs(ofRuns ids: [SQLiteData], _ db: DatabaseConnection) async throws -> Int {
        _ = try await db.rows(
            "DELETE FROM task_logs WHERE attempt_id IN (SELECT id FROM attempts WHERE run_id IN (\(placeholders(ids.count))))", ids)
        return try await db.rows("SELECT changes() AS n").first?.int("n") ?? 0
    }

    public func purgeSettledRecords(before cutoff: Date) async throws -> Int {
        try await writer.transaction { db in
            _ = try await db.rows(
                "DELETE FROM notification_outbox WHERE status IN ('delivered', 'failed') AND created_at < ?", [Column.time(cutoff)])
            let notifications = try await db.rows("SELECT changes() AS n").first?.int("n") ?? 0
            _ = try await db.rows(
                "DELETE FROM workers WHERE state <> ? AND last_seen < ?", [.text(WorkerState.active.rawValue), Column.time(cutoff)])
            let workers = try await db.rows("SELECT changes() AS n").first?.int("n") ?? 0
            _ = try await db.rows("DELETE FROM webhook_deliveries WHERE received_at < ?", [Column.time(cutoff)])
            let deliveries = try await db.rows("SELECT changes() AS n").first?.int("n") ?? 0
            return notifications + workers + deliveries
        }
    }

    public func purgeCandidates(runsFinishedBefore: Date?, logsFinishedBefore: Date?) async throws -> PurgedHistory {
        try await reader.exclusive { db in
            var counted = PurgedHistory()
            if let runsFinishedBefore {
                counted.runs = try await db.rows(
                    "SELECT count(*) AS n FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN (\(Self.finishedStatuses))",
                    [Column.time(runsFinishedBefore)]
                ).first?.int("n") ?? 0
            }
            // Logs go with their runs, and on their own when older than the log cutoff.
            if let logCutoff = [runsFinishedBefore, logsFinishedBefore].compactMap({ $0 }).max() {
                counted.taskLogs = try await db.rows(
                    """
                    SELECT count(*) AS n FROM runs r JOIN attempts a ON a.run_id = r.id JOIN task_logs l ON l.attempt_id = a.id
                    WHERE r.finished_at IS NOT NULL AND r.finished_at < ? AND r.status IN (\(Self.finishedStatuses))
                    """, [Column.time(logCutoff)]
                ).first?.int("n") ?? 0
            }
            return counted
        }
    }

    public func storageSize() async throws -> Int64 {
        try await reader.exclusive { db in
            let pages = try await db.rows("PRAGMA page_count").first?.int("page_count") ?? 0
            let size = try await db.rows("PRAGMA page_size").first?.int("page_size") ?? 0
            return Int64(pages) * Int64(size)
        }
    }

    public func reclaimSpace(full: Bool) async throws {
        if full {
            try await writer.exclusive { db in
                // VACUUM rewrites the file (it needs as much free disk as the database) and is the
                // only way to turn incremental vacuuming on for a database created without it.
                _ = try await db.rows("PRAGMA auto_vacuum = INCREMENTAL")
                _ = try await db.rows("VACUUM")
            }
        } else {
            // Only a database with incremental vacuuming on (2) gives pages back; the others reuse them.
            guard try await writer.exclusive({ try await $0.rows("PRAGMA auto_vacuum").first?.int("auto_vacuum") }) == 2 else { return }
            // 2,000 pages (8 MB) at a time, each alone on the writer: after a purge of a long
            // history, triggers and workers wait for one step at most, not for the whole file.
            var free = Int.max
            while true {
                let left = try await writer.exclusive { db in
                    _ = try await db.rows("PRAGMA incremental_vacuum(2000)")
                    return try await db.rows("PRAGMA freelist_count").first?.int("freelist_count") ?? 0
                }
                guard left > 0, left < free else { break }
                free = left
            }
        }
        // The file shrinks when the write-ahead log is written back into it.
        try await writer.exclusive { db in _ = try await db.rows("PRAGMA wal_checkpoint(TRUNCATE)") }
    }
}

extension SQLiteWorkflowStore {
    /// Inserts `count` finished one-task runs of `workflow` in bulk, one a second ending at `end`
    /// (every tenth failed), each with one attempt and a one-line log; for benchmarks of a store
    /// with a long history (`deerflow bench --server --history N`). Their ids (`00` and digits)
    /// sort before every id DeerFlow generates, as older runs do.
    package func insertHistory(count: Int, workflow: String, endingAt end: Date) async throws {
        let last = Column.micros(end)
        for start in stride(from: 0, to: count, by: 100_000) {
            let binds: [SQLiteData] = [.integer(start), .integer(min(count, start + 100_000) - 1), .integer(last - count * 1_000_000)]
            try await writer.transaction { db in
                let numbers = "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?), h AS (SELECT i, '00' || printf('%024d', i) AS id, ? + i * 1000000 AS t FROM n)"
                _ = try await db.rows("""
                    \(numbers)
                    INSERT INTO runs (id, workflow, version, status, params, trigger, created_at, started_at, finished_at, tasks_total, tasks_finished, tasks_failed)
                    SELECT id, ?, ? || '@history', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, '{}', 'api', t, t, t + 2000, 1, 1, i % 10 = 0 FROM h
                    """, binds + [.text(workflow), .text(workflow)])
                _ = try await db.rows("""
                    \(numbers)
                    INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents,
                                       retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts, output)
                    SELECT id, 0, 'work', 'noop', 'default', 0, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, 0, '',
                           0, 0, 0, 0, NULL, 1, CASE WHEN i % 10 = 0 THEN NULL ELSE '{"rows":42}' END FROM h
                    """, binds)
                _ = try await db.rows("""
                    \(numbers)
                    INSERT INTO attempts (run_id, task_idx, number, status, queue, priority, queued_at, started_at, finished_at, worker, error)
                    SELECT id, 0, 1, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, 'default', 0, t, t + 500, t + 2000, 'history',
                           CASE WHEN i % 10 = 0 THEN 'exit status 1' ELSE NULL END FROM h
                    """, binds)
                _ = try await db.rows("""
                    INSERT INTO task_logs (attempt_id, text, bytes)
                    SELECT id, 'processed 42 rows' || char(10), 18 FROM attempts
                    WHERE id > (SELECT coalesce(max(attempt_id), 0) FROM task_logs) AND worker = 'history'
                    """)
            }
        }
    }
}
