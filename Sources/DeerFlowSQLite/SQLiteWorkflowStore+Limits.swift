public import DeerFlow
import DeerFlowCore
public import Foundation
import SQLiteNIO

// Concurrency limits. Every write transaction of SQLite is `BEGIN IMMEDIATE`, so counting the
// running attempts of a queue or the active runs of a workflow and acting on the count in the
// same transaction is race-free across the processes sharing the file.

extension SQLiteWorkflowStore: LimitCaching {
    public func saveRunLimits(_ limits: [String: Int?], now: Date) async throws {
        try await writer.transaction { db in
            for (workflow, limit) in limits.sorted(by: { $0.key < $1.key }) {
                if let limit {
                    _ = try await db.rows(
                        "INSERT INTO workflow_limits (workflow, max_active_runs) VALUES (?, ?) ON CONFLICT (workflow) DO UPDATE SET max_active_runs = excluded.max_active_runs",
                        [.text(workflow), .integer(limit)])
                } else {
                    _ = try await db.rows("DELETE FROM workflow_limits WHERE workflow = ?", [.text(workflow)])
                }
            }
            // A raised or removed limit lets waiting runs start now.
            _ = try await Self.admitWaitingRuns(of: limits.keys.sorted(), now: now, in: db)
        }
        try await reloadLimits(now: now)
    }

    public func saveQueueLimits(_ limits: [String: Int]) async throws {
        _ = try await writer.transaction { db in
            _ = try await db.rows("DELETE FROM queue_limits")
            for (queue, limit) in limits.sorted(by: { $0.key < $1.key }) {
                _ = try await db.rows("INSERT INTO queue_limits (queue, concurrency) VALUES (?, ?)", [.text(queue), .integer(limit)])
            }
        }
        try await reloadLimits(now: Date())
    }

    public func limitUsage() async throws -> LimitUsage {
        try await reader.transaction(immediate: false) { db in
            var usage = LimitUsage()
            for row in try await db.rows(
                """
                SELECT q.queue, q.concurrency,
                       (SELECT count(*) FROM attempts a WHERE a.status = 'running' AND a.queue = q.queue) AS running
                FROM queue_limits q
                """)
            {
                usage.queues[row.string("queue")] = LimitUsage.Queue(limit: row.int("concurrency"), running: row.int("running"))
            }
            for row in try await db.rows("SELECT workflow, max_active_runs FROM workflow_limits") {
                usage.runLimits[row.string("workflow")] = row.int("max_active_runs")
            }
            for row in try await db.rows(
                "SELECT workflow, count(*) AS n FROM runs WHERE status = 'pending' AND waiting_reason IS NOT NULL GROUP BY workflow")
            {
                usage.waitingRuns[row.string("workflow")] = row.int("n")
            }
            return usage
        }
    }

    package func loadLimits(now: Date) async throws -> LimitSnapshot {
        try await reader.exclusive { db in
            var snapshot = LimitSnapshot(loadedAt: now)
            for row in try await db.rows("SELECT workflow, max_active_runs FROM workflow_limits") {
                snapshot.runLimits[row.string("workflow")] = row.int("max_active_runs")
            }
            for row in try await db.rows("SELECT queue, concurrency FROM queue_limits") {
                snapshot.queueLimits[row.string("queue")] = row.int("concurrency")
            }
            return snapshot
        }
    }

    // The statements of admitWaitingRuns, which runs at every creation and finish of a limited
    // workflow's run. `INDEXED BY runs_by_status`: left to itself, SQLite takes runs_by_workflow
    // (workflow, id) for the workflow's equality and visits every run the workflow ever had (4 ms a
    // run at 11,000 finished runs, growing with history); by status it visits the active ones only.

    /// A workflow's active runs that hold a place (not waiting): `n`.
    package static let activeRunCount = """
        SELECT count(*) AS n FROM runs INDEXED BY runs_by_status
        WHERE workflow = ? AND status IN ('pending', 'running') AND waiting_reason IS NULL
        """
    /// Renames a workflow's waiting runs' reason to the limit in force.
    package static let waitingReasonUpdate = """
        UPDATE runs INDEXED BY runs_by_status SET waiting_reason = ?
        WHERE workflow = ? AND status IN ('pending', 'running') AND waiting_reason IS NOT NULL AND waiting_reason <> ?
        """
    /// A workflow's oldest waiting runs, up to a number.
    package static let oldestWaitingRuns = """
        SELECT id FROM runs INDEXED BY runs_by_status
        WHERE workflow = ? AND status IN ('pending', 'running') AND waiting_reason IS NOT NULL
        ORDER BY id LIMIT CAST(? AS INTEGER)
        """

    /// Starts the oldest waiting runs of `workflows` while their `max_active_runs` allows (all of
    /// them for a workflow without a limit): their tasks without dependencies are queued. Returns
    /// the runs started.
    static func admitWaitingRuns(of workflows: [String], now: Date, in db: DatabaseConnection) async throws -> [RunID] {
        var admitted: [RunID] = []
        for workflow in Set(workflows).sorted() {
            let limit = try await db.rows("SELECT max_active_runs FROM workflow_limits WHERE workflow = ?", [.text(workflow)]).first?.int("max_active_runs")
            var free = -1
            if let limit {
                let active = try await db.rows(activeRunCount, [.text(workflow)]).first?.int("n") ?? 0
                free = max(0, limit - active)
                // The reason names the limit in force (it may have changed since the run was created).
                let reason = ConcurrencyReason.runs(limit: limit)
                _ = try await db.rows(waitingReasonUpdate, [.text(reason), .text(workflow), .text(reason)])
            }
            guard free != 0 else { continue }
            let ids = try await db.rows(oldestWaitingRuns, [.text(workflow), .integer(free)]).map { $0.string("id") }
            guard !ids.isEmpty else { continue }
            let binds = ids.map { SQLiteData.text($0) }
            _ = try await db.rows("UPDATE runs SET waiting_reason = NULL WHERE id IN (\(placeholders(ids.count)))", binds)
            let roots = try await db.rows(
                """
                UPDATE tasks SET status = 'queued', attempts = 1
                WHERE run_id IN (\(placeholders(ids.count))) AND status = 'pending' AND deps_remaining <= 0
                RETURNING run_id, idx, queue, priority
                """, binds)
            try await insertAttempts(
                roots.map { .init(runID: RunID(rawValue: $0.string("run_id")), taskIndex: $0.int("idx"), number: 1, queue: $0.string("queue"), priority: $0.int("priority"), queuedAt: now) },
                into: db)
            admitted += ids.map { RunID(rawValue: $0) }
        }
        return admitted
    }

    /// Per limited queue among `queues`, how many more of its attempts may start now.
    static func queueCapacity(_ queues: [String], in db: DatabaseConnection) async throws -> [String: Int] {
        var capacity: [String: Int] = [:]
        for queue in queues {
            let row = try await db.rows(
                """
                SELECT q.concurrency - (SELECT count(*) FROM attempts a WHERE a.status = 'running' AND a.queue = q.queue) AS free
                FROM queue_limits q WHERE q.queue = ?
                """, [.text(queue)]).first
            // A limit removed meanwhile: no cap.
            if let row { capacity[queue] = max(0, row.int("free")) }
        }
        return capacity
    }
}
