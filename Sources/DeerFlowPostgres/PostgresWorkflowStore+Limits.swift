public import DeerFlow
import DeerFlowCore
public import Foundation
import PostgresNIO

// Concurrency limits, race-free across processes: a transaction that acts on the number of
// running attempts of a limited queue, or of active runs of a limited workflow, first locks that
// queue's row of `queue_limits` or that workflow's row of `workflow_limits` (FOR UPDATE, in key
// order), and counts in a later statement, whose snapshot then includes every transaction that
// held the lock before. Queues and workflows without a limit take no lock and no extra round
// trip (the store knows the limits from a snapshot it refreshes every few seconds).
//
// Lock order: these rows are locked after the attempts, tasks and runs an exchange locks, and
// before anything else in a trigger; waiting runs are locked only by the statement that starts
// them (and by a cancel, which takes no limit lock).

extension PostgresWorkflowStore: LimitCaching {
    /// Saved on a connection of its own: a process saves its limits at start, before the
    /// pool runs.
    public func saveRunLimits(_ limits: [String: Int?], now: Date) async throws {
        let workflows = limits.keys.sorted()
        try await transaction(direct: true) { session in
            let set = workflows.compactMap { name in (limits[name] ?? nil).map { (name, $0) } }
            let limited = set.map(\.0)
            let values = set.map(\.1)
            try await session.execute("""
                INSERT INTO workflow_limits (workflow, max_active_runs)
                SELECT * FROM unnest(\(limited)::text[], \(values)::integer[])
                ON CONFLICT (workflow) DO UPDATE SET max_active_runs = excluded.max_active_runs
                """)
            let unlimited = workflows.filter { (limits[$0] ?? nil) == nil }
            try await session.execute("DELETE FROM workflow_limits WHERE workflow = ANY(\(unlimited)::text[])")
            // A raised or removed limit lets waiting runs start now.
            _ = try await Self.admitWaitingRuns(of: workflows, now: now, in: session)
        }
        limitCache.invalidate()
    }

    public func saveQueueLimits(_ limits: [String: Int]) async throws {
        let queues = limits.keys.sorted()
        let values = queues.compactMap { limits[$0] }
        try await transaction(direct: true) { session in
            try await session.execute("DELETE FROM queue_limits WHERE NOT (queue = ANY(\(queues)::text[]))")
            try await session.execute("""
                INSERT INTO queue_limits (queue, concurrency) SELECT * FROM unnest(\(queues)::text[], \(values)::integer[])
                ON CONFLICT (queue) DO UPDATE SET concurrency = excluded.concurrency
                """)
        }
        limitCache.invalidate()
    }

    public func limitUsage() async throws -> LimitUsage {
        try await snapshot { session in
            var usage = LimitUsage()
            for row in try await session.rows("""
                SELECT q.queue, q.concurrency, (SELECT count(*) FROM attempts a WHERE a.status = 'running' AND a.queue = q.queue)::bigint
                FROM queue_limits q
                """)
            {
                let (queue, limit, running) = try row.decode((String, Int, Int).self)
                usage.queues[queue] = LimitUsage.Queue(limit: limit, running: running)
            }
            for row in try await session.rows("SELECT workflow, max_active_runs FROM workflow_limits") {
                let (workflow, limit) = try row.decode((String, Int).self)
                usage.runLimits[workflow] = limit
            }
            for row in try await session.rows("""
                SELECT workflow, count(*)::bigint FROM runs WHERE status = 'pending' AND waiting_reason IS NOT NULL GROUP BY workflow
                """)
            {
                let (workflow, count) = try row.decode((String, Int).self)
                usage.waitingRuns[workflow] = count
            }
            return usage
        }
    }

    package func loadLimits(now: Date) async throws -> LimitSnapshot {
        let rows = try await session { session in
            try await session.rows("""
                SELECT 'run', workflow, max_active_runs FROM workflow_limits
                UNION ALL SELECT 'queue', queue, concurrency FROM queue_limits
                """)
        }
        var snapshot = LimitSnapshot(loadedAt: now)
        for row in rows {
            let (kind, name, limit) = try row.decode((String, String, Int).self)
            if kind == "run" { snapshot.runLimits[name] = limit } else { snapshot.queueLimits[name] = limit }
        }
        return snapshot
    }

    /// Locks the `workflow_limits` rows of `workflows` and starts the oldest waiting runs while
    /// their limits allow (``AdmitRuns``). Returns the runs started.
    static func admitWaitingRuns(of workflows: [String], now: Date, in session: PostgresSession) async throws -> [RunID] {
        let names = Array(Set(workflows)).sorted()
        guard !names.isEmpty else { return [] }
        var limits: [String: Int] = [:]
        for row in try await session.rows("""
            SELECT workflow, max_active_runs FROM workflow_limits WHERE workflow = ANY(\(names)::text[]) ORDER BY workflow FOR UPDATE
            """)
        {
            let (workflow, limit) = try row.decode((String, Int).self)
            limits[workflow] = limit
        }
        var statement = AdmitRuns()
        statement.workflows = names
        statement.limits = names.map { limits[$0] }
        statement.reasons = names.map { limits[$0].map { ConcurrencyReason.runs(limit: $0) } }
        statement.now = now
        return try await session.rows(statement).compactMap { try $0.decode(String?.self).map(RunID.init(rawValue:)) }
    }

    /// Locks the `queue_limits` rows of the limited queues among `queues` and reads their limits
    /// (a claim then counts their running attempts in its own, later, statement).
    static func lockQueueLimits(_ queues: [String], in session: PostgresSession) async throws -> [(queue: String, limit: Int)] {
        guard !queues.isEmpty else { return [] }
        return try await session.rows("""
            SELECT queue, concurrency FROM queue_limits WHERE queue = ANY(\(queues)::text[]) ORDER BY queue FOR UPDATE
            """).map { try $0.decode((String, Int).self) }.map { (queue: $0.0, limit: $0.1) }
    }
}
