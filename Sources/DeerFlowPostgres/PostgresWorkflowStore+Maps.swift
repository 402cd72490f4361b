import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

/// Dynamic fan-out (`for_each`): expansions insert the instance rows, instances that end move
/// the counters on their mapped task's row, as ``MapProgress`` and ``CompletionPlan`` decide.
extension PostgresWorkflowStore {
    /// Writes the plan's expansions and instance ends (mapped task rows in key order). Returns a
    /// plan of what follows for ``ApplyCompletions``: the instances to queue (as new attempts)
    /// and the dependents of mapped tasks that succeeded; the run counters and failures of
    /// mapped tasks that finished are added to `plan`.
    static func applyMaps(_ plan: inout CompletionPlan, now: Date, in session: PostgresSession) async throws -> CompletionPlan {
        var maps = CompletionPlan()
        for expansion in plan.expansions.sorted(by: { ($0.runID, $0.taskIndex) < ($1.runID, $1.taskIndex) }) {
            maps.newAttempts += try await expand(expansion, now: now, in: session)
        }
        for (key, ends) in plan.mapEnds.sorted(by: { $0.key < $1.key }) {
            let runID = key.runID.rawValue
            guard let row = try await session.rows("""
                UPDATE tasks SET map_succeeded = map_succeeded + \(ends.succeeded), map_failed = map_failed + \(ends.failed)
                WHERE run_id = \(runID) AND idx = \(key.parent) AND map_count IS NOT NULL
                RETURNING map_count, map_parallel, map_succeeded, map_failed, dependents
                """).first
            else { continue }
            let (count, maxParallel, succeeded, failed, dependents) = try row.decode((Int, Int?, Int, Int, [Int]).self)
            let progress = MapProgress(count: count, maxParallel: maxParallel, succeeded: succeeded, failed: failed)
            let step = progress.step(justFinished: ends.total)
            let base = MapProgress.base(of: key.parent)
            if !step.queue.isEmpty {
                let rows = try await session.rows("""
                    UPDATE tasks SET status = 'queued', attempts = attempts + 1
                    WHERE run_id = \(runID) AND idx BETWEEN \(base + step.queue.lowerBound) AND \(base + step.queue.upperBound - 1) AND status = 'pending'
                    RETURNING idx, queue, priority, attempts
                    """)
                maps.newAttempts += try newAttempts(rows, runID: key.runID, now: now)
            }
            guard step.completes else { continue }
            var outputs: [JSONValue] = []
            var failedIndexes: [Int] = []
            for instance in try await session.rows("""
                SELECT map_index, status, output FROM tasks WHERE run_id = \(runID) AND idx BETWEEN \(base) AND \(base + count - 1) ORDER BY idx
                """) {
                let (index, status, output) = try instance.decode((Int, String, String?).self)
                outputs.append(output.flatMap { try? JSONValue(parsing: $0) } ?? .null)
                if status != TaskStatus.success.rawValue { failedIndexes.append(index) }
            }
            let finished = maps.finishMap(runID: key.runID, index: key.parent, dependents: dependents, outputs: outputs, failedIndexes: failedIndexes, count: count)
            try await session.execute("""
                UPDATE tasks SET status = \(finished.status.rawValue), output = \(finished.output?.compactJSON) WHERE run_id = \(runID) AND idx = \(key.parent)
                """)
            if let error = finished.error {
                try await session.execute("""
                    UPDATE attempts SET error = \(error)
                    WHERE id = (SELECT max(id) FROM attempts WHERE run_id = \(runID) AND task_idx = \(key.parent))
                    """)
            }
        }
        for (runID, progress) in maps.progress { plan.progress[runID, default: RunProgress(total: 0)].add(progress) }
        for (runID, failed) in maps.finalFailures { plan.finalFailures[runID, default: []] += failed }
        return maps
    }

    /// Inserts the instance rows of one expansion in one statement (the items go in as one JSON
    /// array), the first `maxParallel` of them queued; returns their first attempts.
    static func expand(_ expansion: CompletionPlan.Expansion, now: Date, in session: PostgresSession) async throws -> [CompletionPlan.NewAttempt] {
        let base = MapProgress.base(of: expansion.taskIndex)
        let first = expansion.progress.released
        let items = JSONValue.array(expansion.items.map { .string($0.compactJSON) }).compactJSON
        let rows = try await session.rows("""
            WITH parent AS (
                UPDATE tasks SET map_count = \(expansion.progress.count), map_parallel = \(expansion.progress.maxParallel),
                                 map_succeeded = 0, map_failed = 0
                WHERE run_id = \(expansion.runID.rawValue) AND idx = \(expansion.taskIndex)
                RETURNING run_id, idx, task_id, type, queue, priority, retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms
            )
            INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents, retries,
                               retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts, map_parent, map_index, item)
            SELECT p.run_id, \(base) + j.n - 1, p.task_id || '[' || (j.n - 1) || ']', p.type, p.queue, p.priority,
                   CASE WHEN j.n <= \(first) THEN 'queued' ELSE 'pending' END, 0, '{}'::integer[], p.retries, p.retry_delay_ms,
                   p.max_retry_delay_ms, p.jitter, p.timeout_ms, CASE WHEN j.n <= \(first) THEN 1 ELSE 0 END, p.idx, j.n - 1, j.value
            FROM parent p, jsonb_array_elements_text(\(items)::jsonb) WITH ORDINALITY AS j(value, n)
            RETURNING idx, queue, priority, attempts
            """)
        return try newAttempts(rows, runID: expansion.runID, now: now).filter { $0.number > 0 }
    }

    private static func newAttempts(_ rows: [PostgresRow], runID: RunID, now: Date) throws -> [CompletionPlan.NewAttempt] {
        try rows.map { row in
            let (index, queue, priority, number) = try row.decode((Int, String, Int, Int).self)
            return CompletionPlan.NewAttempt(runID: runID, taskIndex: index, number: number, queue: queue, priority: priority, queuedAt: now)
        }.sorted { $0.taskIndex < $1.taskIndex }
    }
}
