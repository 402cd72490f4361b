public import DeerFlow
import DeerFlowCore
public import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore {
    // MARK: Pause

    public func setSchedulePaused(_ schedule: ScheduleRecord, resetNextFire: Bool) async throws -> ScheduleRecord {
        try await writer.transaction { db in
            let rows = try await db.rows(
                """
                INSERT INTO schedules (workflow, cron, timezone, next_fire_at, last_fired_at, paused) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (workflow) DO UPDATE SET paused = excluded.paused,
                    next_fire_at = CASE WHEN ? THEN excluded.next_fire_at ELSE schedules.next_fire_at END
                RETURNING *
                """,
                [.text(schedule.workflow), .text(schedule.cron), .text(schedule.timeZone), Column.time(schedule.nextFireAt),
                 Column.time(schedule.lastFiredAt), .integer(schedule.paused ? 1 : 0), .integer(resetNextFire ? 1 : 0)])
            return rows.first.map(Self.scheduleRecord) ?? schedule
        }
    }

    // MARK: Backfills

    public func createBackfill(_ backfill: NewBackfill) async throws -> BackfillRecord {
        try await writer.transaction { db in
            _ = try await db.rows(
                """
                INSERT INTO backfills (id, workflow, cron, timezone, range_from, range_to, max_active, params, status, fire_times, next_fire_at, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)
                """,
                [.text(backfill.id), .text(backfill.workflow), .text(backfill.cron), .text(backfill.timeZone), Column.time(backfill.from),
                 Column.time(backfill.to), .integer(backfill.maxActive), .text(JSONValue.object(backfill.params).compactJSON),
                 .integer(backfill.fireTimes), Column.time(backfill.firstFireAt), Column.time(backfill.createdAt)])
        }
        guard let record = try await self.backfill(backfill.id) else {
            throw DeerFlowError(.internal, "backfill \(backfill.id) was stored but cannot be read back")
        }
        return record
    }

    public func backfill(_ id: String) async throws -> BackfillRecord? {
        try await reader.transaction(immediate: false) { db in
            guard let row = try await db.rows("SELECT * FROM backfills WHERE id = ?", [.text(id)]).first else { return nil }
            return try await Self.backfillRecord(row, in: db)
        }
    }

    public func activeBackfills() async throws -> [BackfillRecord] {
        try await reader.transaction(immediate: false) { db in
            var records: [BackfillRecord] = []
            for row in try await db.rows("SELECT * FROM backfills WHERE status = 'running' ORDER BY created_at, id") {
                records.append(try await Self.backfillRecord(row, in: db))
            }
            return records
        }
    }

    static func backfillRecord(_ row: ResultRow, in db: DatabaseConnection) async throws -> BackfillRecord {
        let id = row.string("id")
        var runs: [RunStatus: Int] = [:]
        for count in try await db.rows("SELECT status, count(*) AS n FROM runs WHERE backfill_id = ? GROUP BY status", [.text(id)]) {
            if let status = RunStatus(rawValue: count.string("status")) { runs[status] = count.int("n") }
        }
        let epoch = Date(timeIntervalSince1970: 0)
        return BackfillRecord(
            id: id, workflow: row.string("workflow"), cron: row.string("cron"), timeZone: row.string("timezone"),
            from: row.date("range_from") ?? epoch, to: row.date("range_to") ?? epoch, maxActive: row.int("max_active"),
            params: StoredParams.decode(row.string("params")).params, status: BackfillStatus(rawValue: row.string("status")) ?? .failed,
            fireTimes: row.int("fire_times"), nextFireAt: row.date("next_fire_at"), runsCreated: row.int("runs_created"),
            alreadyPresent: row.int("already_present"), runs: runs, createdAt: row.date("created_at") ?? epoch,
            finishedAt: row.date("finished_at"))
    }

    public func advanceBackfill(_ id: String, expectedNext: Date, runs: [NewRun], next: Date?) async throws -> [RunRecord] {
        // Backfill runs wait for the workflow's max_active_runs like any other.
        let limits = try await currentLimits(now: Date())
        return try await writer.transaction { db in
            guard let row = try await db.rows("SELECT status, next_fire_at FROM backfills WHERE id = ?", [.text(id)]).first,
                  row.string("status") == BackfillStatus.running.rawValue,
                  let stored = row.date("next_fire_at"), Column.micros(stored) == Column.micros(expectedNext)
            else { return [] }
            var created = try await Self.insert(runs, runLimits: limits.runLimits, into: db).compactMap { $0 }
            for chunk in created.statementChunks() {
                _ = try await db.rows(
                    "UPDATE runs SET backfill_id = ? WHERE id IN (\(placeholders(chunk.count)))",
                    [.text(id)] + chunk.map { .text($0.id.rawValue) })
            }
            for index in created.indices { created[index].backfillID = id }
            _ = try await db.rows(
                "UPDATE backfills SET next_fire_at = ?, runs_created = runs_created + ?, already_present = already_present + ? WHERE id = ?",
                [Column.time(next), .integer(created.count), .integer(runs.count - created.count), .text(id)])
            return created
        }
    }

    public func finishBackfill(_ id: String, status: BackfillStatus, at: Date) async throws -> Bool {
        try await writer.transaction { db in
            let rows = try await db.rows(
                "UPDATE backfills SET status = ?, finished_at = ? WHERE id = ? AND status = 'running' RETURNING id",
                [.text(status.rawValue), Column.time(at), .text(id)])
            return !rows.isEmpty
        }
    }

    public func cancelBackfill(_ id: String, at: Date) async throws -> BackfillCancelResult {
        // The status before the cancel (nil: unknown backfill) and the runs still active.
        let (previous, active): (String?, [RunID]) = try await writer.transaction { db in
            guard let row = try await db.rows("SELECT status FROM backfills WHERE id = ?", [.text(id)]).first else { return (nil, []) }
            let status = row.string("status")
            guard status == BackfillStatus.running.rawValue else { return (status, []) }
            _ = try await db.rows("UPDATE backfills SET status = 'cancelled', finished_at = ? WHERE id = ?", [Column.time(at), .text(id)])
            let active = try await db.rows(
                "SELECT id FROM runs WHERE backfill_id = ? AND status IN ('pending', 'running') ORDER BY id", [.text(id)])
            return (status, active.map { RunID(rawValue: $0.string("id")) })
        }
        guard let previous else { return .notFound }
        guard previous == BackfillStatus.running.rawValue else { return .alreadyFinished(BackfillStatus(rawValue: previous) ?? .failed) }
        guard let record = try await backfill(id) else { return .notFound }
        return .cancelled(record, activeRuns: active)
    }
}
