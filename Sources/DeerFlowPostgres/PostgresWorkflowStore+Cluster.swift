public import DeerFlow
public import DeerFlowCore
public import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    // MARK: Workers and leases

    /// Records the worker's heartbeat row and extends the leases of its running attempts, in one
    /// statement (``Heartbeat``).
    public func heartbeat(_ worker: WorkerRecord, running: [AttemptID], leaseUntil: Date) async throws -> Set<AttemptID> {
        var statement = Heartbeat()
        statement.worker = worker
        statement.running = running.sorted()
        statement.leaseUntil = leaseUntil
        let rows = try await session { try await $0.rows(statement) }
        return Set(try rows.map { try $0.decode(Int64.self) })
    }

    public func deregister(worker: String, at now: Date) async throws {
        try await session { session in
            try await session.execute("UPDATE workers SET state = 'stopped', busy = 0, last_seen = \(now) WHERE id = \(worker)")
        }
    }

    /// Marks silent (or known dead) workers lost and finishes their running attempts, and every
    /// attempt whose lease expired, as interrupted: they are retried at once (without using a
    /// retry). Attempts locked by another transaction right now are left for the next pass.
    public func reclaim(now: Date, workerTimeout: Duration, deadWorkers: Set<String>) async throws -> [EngineEvent] {
        let limits = try await currentLimits(now: now)
        return try await transaction { session in
            let silentSince = now.adding(.zero - workerTimeout)
            let lost = try await session.rows("""
                UPDATE workers SET state = 'lost', busy = 0
                WHERE id IN (SELECT id FROM workers WHERE state = 'active' AND (last_seen < \(silentSince) OR id = ANY(\(deadWorkers.sorted())))
                             ORDER BY id FOR UPDATE SKIP LOCKED)
                RETURNING id
                """)
            let lostWorkers = Set(try lost.map { try $0.decode(String.self) })
            let expired = try await session.rows("""
                SELECT id, worker FROM attempts
                WHERE status = 'running' AND (lease_until < \(now) OR worker = ANY(\(lostWorkers.sorted())))
                ORDER BY id FOR UPDATE SKIP LOCKED
                """)
            guard !expired.isEmpty else {
                // The leader's safety net: runs that wait although their workflow has room (a
                // limit raised by another process, a start that lost a race) start here.
                if !limits.runLimits.isEmpty {
                    _ = try await Self.admitWaitingRuns(of: limits.runLimits.keys.sorted(), now: now, in: session)
                }
                return []
            }
            let completions = try expired.map { row in
                let (id, worker) = try row.decode((Int64, String?).self)
                let name = worker ?? "unknown"
                let reason = lostWorkers.contains(name) ? "worker \(name) is gone" : "lease expired: worker \(name) stopped renewing it"
                return AttemptCompletion(attemptID: id, outcome: .interrupted(message: reason), finishedAt: now)
            }
            let completed = try await Self.complete(completions, now: now, direct: nil, in: session)
            if !completed.finish.ids.isEmpty { try await session.rows(completed.finish) }
            _ = try await Self.admitWaitingRuns(of: limits.workflowsToAdmit(after: completed.events), now: now, in: session)
            if limits.freesQueue(completed.events) { try await session.execute("SELECT pg_notify('deerflow_work', '')") }
            return completed.events
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        let rows = try await session { session in
            try await session.rows("""
                SELECT id, host, pid, slots, busy, queues, version, started_at, last_seen, state FROM workers ORDER BY started_at, id
                """)
        }
        return try rows.map { row in
            let (id, host, pid, slots, busy, queues, version, startedAt, lastSeen, state) =
                try row.decode((String, String, Int, Int, Int, [String], String, Date, Date, String).self)
            return WorkerRecord(id: id, host: host, pid: pid, slots: slots, busy: busy, queues: queues, version: version, startedAt: startedAt, lastSeen: lastSeen, state: WorkerState(rawValue: state) ?? .lost)
        }
    }

    // MARK: Leadership

    /// A lease row per role, taken with one atomic upsert: the holder renews it; anybody takes it
    /// once it expired (by the database's clock, so machines' clocks need not agree).
    public func tryAcquireLeadership(candidate: String, ttl: Duration) async throws -> Bool {
        let milliseconds = Int(ttl.milliseconds)
        let rows = try await session { session in
            try await session.rows("""
                INSERT INTO leaders AS l (role, holder, acquired_at, expires_at)
                VALUES ('scheduler', \(candidate), now(), now() + \(milliseconds) * interval '1 millisecond')
                ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
                    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE excluded.acquired_at END
                WHERE l.holder = excluded.holder OR l.expires_at < now()
                RETURNING holder
                """)
        }
        return !rows.isEmpty
    }

    public func releaseLeadership(candidate: String) async {
        do {
            try await session { session in
                try await session.execute("DELETE FROM leaders WHERE role = 'scheduler' AND holder = \(candidate)")
            }
        } catch {
            logger.warning("could not give scheduler leadership up; another process takes over when it expires", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Schedules

    public func schedules() async throws -> [ScheduleRecord] {
        let rows = try await session { session in
            try await session.rows("SELECT \(unescaped: Self.scheduleColumns) FROM schedules ORDER BY workflow")
        }
        return try rows.map(Self.scheduleRecord)
    }

    static let scheduleColumns = "workflow, cron, timezone, next_fire_at, last_fired_at, paused"

    static func scheduleRecord(_ row: PostgresRow) throws -> ScheduleRecord {
        let (workflow, cron, timeZone, next, last, paused) = try row.decode((String, String, String, Date?, Date?, Bool).self)
        return ScheduleRecord(workflow: workflow, cron: cron, timeZone: timeZone, nextFireAt: next, lastFiredAt: last, paused: paused)
    }

    public func saveSchedule(_ schedule: ScheduleRecord) async throws {
        try await session { session in try await Self.upsert(schedule, in: session) }
    }

    static func upsert(_ schedule: ScheduleRecord, in session: PostgresSession) async throws {
        try await session.execute("""
            INSERT INTO schedules (workflow, cron, timezone, next_fire_at, last_fired_at, paused)
            VALUES (\(schedule.workflow), \(schedule.cron), \(schedule.timeZone), \(schedule.nextFireAt), \(schedule.lastFiredAt), \(schedule.paused))
            ON CONFLICT (workflow) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone,
                next_fire_at = excluded.next_fire_at, last_fired_at = excluded.last_fired_at
            """)
    }

    /// Creates the scheduled run and advances the schedule in one transaction; the unique
    /// `(workflow, scheduled_for)` index makes a second fire of the same due time (another process,
    /// a restart) a no-op.
    public func fire(schedule: ScheduleRecord, run: NewRun?) async throws -> RunRecord? {
        let limits = try await currentLimits(now: Date())
        return try await transaction { session in
            // Locks the schedule's row: a pause committed first is seen, one after waits.
            let paused = try await session.rows("SELECT paused FROM schedules WHERE workflow = \(schedule.workflow) FOR UPDATE")
                .first?.decode(Bool.self) ?? false
            guard !paused else { return nil }
            var created: RunRecord?
            if let run { created = try await Self.insert([run], runLimits: limits.runLimits, in: session).first ?? nil }
            try await Self.upsert(schedule, in: session)
            return created
        }
    }

    // MARK: Statistics and logs

    public func statistics(now: Date) async throws -> StoreStatistics {
        try await snapshot { session in
            let queueRows = try await session.rows("""
                SELECT queue, count(*)::bigint, min(queued_at) FROM attempts WHERE status = 'queued' AND queued_at <= \(now) GROUP BY queue
                """)
            var queues: [String: QueueStatistics] = [:]
            for row in queueRows {
                let (queue, depth, oldest) = try row.decode((String, Int, Date?).self)
                queues[queue] = QueueStatistics(depth: depth, oldestReadyAt: oldest)
            }
            let row = try await session.rows("""
                SELECT (SELECT count(*) FROM runs WHERE status IN ('pending', 'running'))::bigint,
                       (SELECT coalesce(sum(slots), 0) FROM workers WHERE state = 'active')::bigint,
                       (SELECT count(*) FROM attempts WHERE status = 'running')::bigint,
                       (SELECT min(lease_until) FROM attempts WHERE status = 'running' AND lease_until < \(now)),
                       (SELECT min(next_fire_at) FROM schedules WHERE next_fire_at <= \(now) AND NOT paused)
                """).first
            guard let row else { throw DeerFlowError(.unavailable, "PostgreSQL returned no statistics") }
            let (active, slots, running, expired, due) = try row.decode((Int, Int, Int, Date?, Date?).self)
            return StoreStatistics(
                activeRuns: active, queues: queues, workerSlots: slots, runningAttempts: running,
                oldestExpiredLease: expired, oldestDueSchedule: due)
        }
    }

    /// Appends in one upsert (concurrent appends to one attempt cannot lose text): text that fits
    /// under `limit` is appended, text that does not is counted as dropped.
    public func appendLog(attempt: AttemptID, text: String, limit: Int) async throws {
        let size = text.utf8.count
        try await session { session in
            try await session.execute("""
                INSERT INTO task_logs AS l (attempt_id, text, bytes, dropped)
                VALUES (\(attempt), CASE WHEN \(size) <= \(limit) THEN \(text) ELSE '' END,
                        CASE WHEN \(size) <= \(limit) THEN \(size) ELSE 0 END, CASE WHEN \(size) <= \(limit) THEN 0 ELSE \(size) END)
                ON CONFLICT (attempt_id) DO UPDATE SET
                    text = CASE WHEN l.bytes + \(size) <= \(limit) THEN l.text || \(text) ELSE l.text END,
                    bytes = CASE WHEN l.bytes + \(size) <= \(limit) THEN l.bytes + \(size) ELSE l.bytes END,
                    dropped = CASE WHEN l.bytes + \(size) <= \(limit) THEN l.dropped ELSE l.dropped + \(size) END
                """)
        }
    }

    public func taskLogs(run: RunID, task: String, attempt: Int?) async throws -> [AttemptLog]? {
        try await snapshot { session in
            guard let taskRow = try await session.rows("SELECT idx FROM tasks WHERE run_id = \(run.rawValue) AND task_id = \(task)").first else {
                return nil
            }
            let index = try taskRow.decode(Int.self)
            let rows = try await session.rows("""
                SELECT a.number, a.status, l.text, coalesce(l.dropped, 0)
                FROM attempts a LEFT JOIN task_logs l ON l.attempt_id = a.id
                WHERE a.run_id = \(run.rawValue) AND a.task_idx = \(index) AND (\(attempt)::integer IS NULL OR a.number = \(attempt))
                ORDER BY a.number
                """)
            return try rows.map { row in
                let (number, status, stored, dropped) = try row.decode((Int, String, String?, Int).self)
                var text = stored ?? ""
                if dropped > 0 {
                    text += "[deerflow] log truncated: \(dropped) more bytes dropped\n"
                }
                return AttemptLog(attempt: number, status: AttemptStatus(rawValue: status) ?? .queued, text: text, truncated: dropped > 0)
            }
        }
    }
}
