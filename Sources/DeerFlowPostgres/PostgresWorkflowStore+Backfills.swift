public import DeerFlow
import DeerFlowCore
public import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    // MARK: Pause

    public func setSchedulePaused(_ schedule: ScheduleRecord, resetNextFire: Bool) async throws -> ScheduleRecord {
        let rows = try await session { session in
            try await session.rows("""
                INSERT INTO schedules (workflow, cron, timezone, next_fire_at, last_fired_at, paused)
                VALUES (\(schedule.workflow), \(schedule.cron), \(schedule.timeZone), \(schedule.nextFireAt), \(schedule.lastFiredAt), \(schedule.paused))
                ON CONFLICT (workflow) DO UPDATE SET paused = excluded.paused,
                    next_fire_at = CASE WHEN \(resetNextFire) THEN excluded.next_fire_at ELSE schedules.next_fire_at END
                RETURNING \(unescaped: Self.scheduleColumns)
                """)
        }
        return try rows.first.map(Self.scheduleRecord) ?? schedule
    }

    // MARK: Backfills

    static let backfillColumns = """
        id, workflow, cron, timezone, range_from, range_to, max_active, params, status, fire_times, next_fire_at, runs_created,
        already_present, created_at, finished_at
        """

    public func createBackfill(_ backfill: NewBackfill) async throws -> BackfillRecord {
        let params = JSONValue.object(backfill.params).compactJSON
        try await session { session in
            try await session.execute("""
                INSERT INTO backfills (id, workflow, cron, timezone, range_from, range_to, max_active, params, status, fire_times, next_fire_at, created_at)
                VALUES (\(backfill.id), \(backfill.workflow), \(backfill.cron), \(backfill.timeZone), \(backfill.from), \(backfill.to),
                        \(backfill.maxActive), \(params), 'running', \(backfill.fireTimes), \(backfill.firstFireAt), \(backfill.createdAt))
                """)
        }
        guard let record = try await self.backfill(backfill.id) else {
            throw DeerFlowError(.internal, "backfill \(backfill.id) was stored but cannot be read back")
        }
        return record
    }

    public func backfill(_ id: String) async throws -> BackfillRecord? {
        try await snapshot { session in
            guard let row = try await session.rows("SELECT \(unescaped: Self.backfillColumns) FROM backfills WHERE id = \(id)").first else { return nil }
            return try await Self.backfillRecord(row, in: session)
        }
    }

    public func activeBackfills() async throws -> [BackfillRecord] {
        try await snapshot { session in
            var records: [BackfillRecord] = []
            for row in try await session.rows("SELECT \(unescaped: Self.backfillColumns) FROM backfills WHERE status = 'running' ORDER BY created_at, id") {
                records.append(try await Self.backfillRecord(row, in: session))
            }
            return records
        }
    }

    static func backfillRecord(_ row: PostgresRow, in session: PostgresSession) async throws -> BackfillRecord {
        let (id, workflow, cron, timeZone, from, to, maxActive, params, status, fireTimes, next, created, present, createdAt, finishedAt) =
            try row.decode((String, String, String, String, Date, Date, Int, String, String, Int, Date?, Int, Int, Date, Date?).self)
        var runs: [RunStatus: Int] = [:]
        for count in try await session.rows("SELECT status, count(*)::bigint FROM runs WHERE backfill_id = \(id) GROUP BY status") {
            let (name, number) = try count.decode((String, Int).self)
            if let runStatus = RunStatus(rawValue: name) { runs[runStatus] = number }
        }
        return BackfillRecord(
            id: id, workflow: workflow, cron: cron, timeZone: timeZone, from: from, to: to, maxActive: maxActive,
            params: StoredParams.decode(params).params, status: BackfillStatus(rawValue: status) ?? .failed, fireTimes: fireTimes,
            nextFireAt: next, runsCreated: created, alreadyPresent: present, runs: runs, createdAt: createdAt, finishedAt: finishedAt)
    }

    public func advanceBackfill(_ id: String, expectedNext: Date, runs: [NewRun], next: Date?) async throws -> [RunRecord] {
        // Backfill runs wait for the workflow's max_active_runs like any other.
        let limits = try await currentLimits(now: Date())
        return try await transaction { session in
            // Locks the backfill's row: a second leader or a cancel waits, then sees what this one did.
            guard let row = try await session.rows("SELECT status, next_fire_at FROM backfills WHERE id = \(id) FOR UPDATE").first else { return [] }
            let (status, stored) = try row.decode((String, Date?).self)
            guard status == BackfillStatus.running.rawValue, let stored, abs(stored.timeIntervalSince(expectedNext)) < 0.001 else { return [] }
            var created = try await Self.insert(runs, runLimits: limits.runLimits, in: session).compactMap { $0 }
            let ids = created.map(\.id.rawValue)
            if !ids.isEmpty {
                try await session.execute("UPDATE runs SET backfill_id = \(id) WHERE id = ANY(\(ids))")
            }
            for index in created.indices { created[index].backfillID = id }
            try await session.execute("""
                UPDATE backfills SET next_fire_at = \(next), runs_created = runs_created + \(created.count),
                    already_present = already_present + \(runs.count - created.count)
                WHERE id = \(id)
                """)
            return created
        }
    }

    public func finishBackfill(_ id: String, status: BackfillStatus, at: Date) async throws -> Bool {
        let rows = try await session { session in
            try await session.rows("""
                UPDATE backfills SET status = \(status.rawValue), finished_at = \(at) WHERE id = \(id) AND status = 'running' RETURNING id
                """)
        }
        return !rows.isEmpty
    }

    public func cancelBackfill(_ id: String, at: Date) async throws -> BackfillCancelResult {
        // The status before the cancel (nil: unknown backfill) and the runs still active.
        let (previous, active): (String?, [RunID]) = try await transaction { session in
            guard let row = try await session.rows("SELECT status FROM backfills WHERE id = \(id) FOR UPDATE").first else { return (nil, []) }
            let status = try row.decode(String.self)
            guard status == BackfillStatus.running.rawValue else { return (status, []) }
            try await session.execute("UPDATE backfills SET status = 'cancelled', finished_at = \(at) WHERE id = \(id)")
            let active = try await session.rows(
                "SELECT id FROM runs WHERE backfill_id = \(id) AND status IN ('pending', 'running') ORDER BY id")
            return (status, try active.map { RunID(rawValue: try $0.decode(String.self)) })
        }
        guard let previous else { return .notFound }
        guard previous == BackfillStatus.running.rawValue else { return .alreadyFinished(BackfillStatus(rawValue: previous) ?? .failed) }
        guard let record = try await backfill(id) else { return .notFound }
        return .cancelled(record, activeRuns: active)
    }
}
