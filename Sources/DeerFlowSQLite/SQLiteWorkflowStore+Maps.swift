import DeerFlow
import DeerFlowCore
import Foundation
import SQLiteNIO

/// Dynamic fan-out (`for_each`): expansions insert the instance rows, instances that end move
/// the counters on their mapped task's row, as ``MapProgress`` and ``CompletionPlan`` decide.
extension SQLiteWorkflowStore {
    /// Writes the plan's expansions and instance ends; returns the instances to queue now. The
    /// mapped tasks that finished are added to `plan` (their dependents, failures and run
    /// counters are written after this by ``apply(_:now:in:)``).
    static func applyMaps(_ plan: inout CompletionPlan, in db: DatabaseConnection) async throws -> [ReadyTask] {
        var ready: [ReadyTask] = []
        for expansion in plan.expansions {
            ready += try await expand(expansion, in: db)
        }
        for (key, ends) in plan.mapEnds.sorted(by: { $0.key < $1.key }) {
            guard let row = try await db.rows(
                """
                UPDATE tasks SET map_succeeded = map_succeeded + ?, map_failed = map_failed + ?
                WHERE run_id = ? AND idx = ? AND map_count IS NOT NULL
                RETURNING task_id, map_count, map_parallel, map_succeeded, map_failed, dependents
                """, [.integer(ends.succeeded), .integer(ends.failed), .text(key.runID.rawValue), .integer(key.parent)]).first
            else { continue }
            let progress = MapProgress(
                count: row.int("map_count"), maxParallel: row.optionalInt("map_parallel"),
                succeeded: row.int("map_succeeded"), failed: row.int("map_failed"))
            let step = progress.step(justFinished: ends.total)
            let base = MapProgress.base(of: key.parent)
            if !step.queue.isEmpty {
                let rows = try await db.rows(
                    """
                    UPDATE tasks SET status = 'queued', attempts = attempts + 1
                    WHERE run_id = ? AND idx BETWEEN ? AND ? AND status = 'pending'
                    RETURNING idx, task_id, type, queue, priority, timeout_ms, attempts, map_index, item
                    """, [.text(key.runID.rawValue), .integer(base + step.queue.lowerBound), .integer(base + step.queue.upperBound - 1)])
                ready += rows.map { readyTask(key.runID, $0) }
            }
            guard step.completes else { continue }
            let instances = try await db.rows(
                "SELECT map_index, status, output FROM tasks WHERE run_id = ? AND idx BETWEEN ? AND ? ORDER BY idx",
                [.text(key.runID.rawValue), .integer(base), .integer(base + progress.count - 1)])
            let finished = plan.finishMap(
                runID: key.runID, index: key.parent, dependents: row.string("dependents").split(separator: ",").compactMap { Int($0) },
                outputs: instances.map { $0.optionalString("output").flatMap { try? JSONValue(parsing: $0) } ?? .null },
                failedIndexes: instances.filter { $0.string("status") != TaskStatus.success.rawValue }.map { $0.int("map_index") },
                count: progress.count)
            _ = try await db.rows(
                "UPDATE tasks SET status = ?, output = ? WHERE run_id = ? AND idx = ?",
                [.text(finished.status.rawValue), Column.text(finished.output?.compactJSON), .text(key.runID.rawValue), .integer(key.parent)])
            if let error = finished.error {
                _ = try await db.rows(
                    "UPDATE attempts SET error = ? WHERE id = (SELECT max(id) FROM attempts WHERE run_id = ? AND task_idx = ?)",
                    [.text(error), .text(key.runID.rawValue), .integer(key.parent)])
            }
        }
        return ready
    }

    /// Inserts the instance rows of one expansion in one statement (the items go in as one JSON
    /// array), the first `maxParallel` of them queued.
    static func expand(_ expansion: CompletionPlan.Expansion, in db: DatabaseConnection) async throws -> [ReadyTask] {
        let base = MapProgress.base(of: expansion.taskIndex)
        let first = expansion.progress.released
        let items = JSONValue.array(expansion.items.map { .string($0.compactJSON) }).compactJSON
        let runID = SQLiteData.text(expansion.runID.rawValue)
        _ = try await db.rows(
            """
            INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents, retries,
                               retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts, map_parent, map_index, item)
            SELECT p.run_id, ? + j.key, p.task_id || '[' || j.key || ']', p.type, p.queue, p.priority,
                   CASE WHEN j.key < ? THEN 'queued' ELSE 'pending' END, 0, '', p.retries, p.retry_delay_ms, p.max_retry_delay_ms,
                   p.jitter, p.timeout_ms, CASE WHEN j.key < ? THEN 1 ELSE 0 END, p.idx, j.key, j.value
            FROM tasks p, json_each(?) j
            WHERE p.run_id = ? AND p.idx = ?
            """, [.integer(base), .integer(first), .integer(first), .text(items), runID, .integer(expansion.taskIndex)])
        guard let parent = try await db.rows(
            """
            UPDATE tasks SET map_count = ?, map_parallel = ?, map_succeeded = 0, map_failed = 0
            WHERE run_id = ? AND idx = ?
            RETURNING task_id, type, queue, priority, timeout_ms
            """, [.integer(expansion.progress.count), .integer(expansion.progress.maxParallel), runID, .integer(expansion.taskIndex)]).first
        else { return [] }
        return (0..<first).map { index in
            ReadyTask(
                runID: expansion.runID, index: base + index, taskID: MapProgress.instanceID(parent.string("task_id"), index: index),
                type: parent.string("type"), queue: parent.string("queue"), priority: parent.int("priority"),
                timeoutMilliseconds: parent.optionalInt("timeout_ms"), number: 1, mapIndex: index, item: expansion.items[index].compactJSON)
        }
    }

    static func readyTask(_ runID: RunID, _ row: ResultRow) -> ReadyTask {
        ReadyTask(
            runID: runID, index: row.int("idx"), taskID: row.string("task_id"), type: row.string("type"), queue: row.string("queue"),
            priority: row.int("priority"), timeoutMilliseconds: row.optionalInt("timeout_ms"), number: row.int("attempts"),
            mapIndex: row.optionalInt("map_index"), item: row.optionalString("item"))
    }
}
