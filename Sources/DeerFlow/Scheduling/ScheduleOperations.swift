public import DeerFlowCore
public import Foundation
import Logging

/// Limits of backfills, named in the errors that enforce them.
public enum BackfillLimits {
    /// Most fire times one backfill may cover.
    public static let fireTimes = 10_000
    /// The accepted range of `max_active`.
    public static let maxActive = 1...1000
    /// `max_active` when none is given.
    public static let defaultMaxActive = 1

    /// A bound of a backfill's range: a day (`2024-06-01`, 00:00 UTC) or an RFC 3339 time.
    /// - Throws: ``DeerFlowError`` `.invalidRequest` naming `key` and both accepted forms.
    public static func bound(_ text: String, named key: String) throws -> Date {
        guard let date = Timestamp.parseDayOrTime(text) else {
            throw DeerFlowError(.invalidRequest, "\(key) '\(text)' is neither a date (2024-06-01, read as 00:00 UTC) nor an RFC 3339 time (2024-06-01T02:00:00Z)")
        }
        return date
    }
}

extension DeerFlowEngine {
    // MARK: Pause

    /// The stored state of every schedule, by workflow (pause, next due time).
    public func scheduleStates() async throws -> [String: ScheduleRecord] {
        Dictionary(try await store.schedules().map { ($0.workflow, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Pauses or unpauses a workflow's schedule, in the store, so every server of a cluster and
    /// any restart respect it.
    ///
    /// A paused schedule does not fire. An unpause starts from the next fire time after now,
    /// skipping the times that passed while paused, unless `catchUp` is true: then the times
    /// missed since the pause fire as after downtime, following the schedule's `catchup` policy
    /// (`latest`: the most recent once; `all`: every one, up to the scheduler's catch-up limit).
    ///
    /// - Throws: ``DeerFlowError`` `.notFound` for an unknown workflow, `.conflict` for a workflow
    ///   without a schedule.
    @discardableResult
    public func setPaused(_ workflow: String, paused: Bool, catchUp: Bool = false, now: Date = Date()) async throws -> ScheduleRecord {
        let (entry, schedule, cron) = try scheduled(workflow, doing: paused ? "paused" : "unpaused")
        var record = try await scheduleStates()[workflow]
            ?? ScheduleRecord(workflow: workflow, cron: schedule.cron, timeZone: schedule.timeZone, nextFireAt: nil, lastFiredAt: nil, paused: schedule.paused)
        let wasPaused = record.paused
        record.paused = paused
        // Only an unpause of a paused schedule skips what was missed; unpausing a running schedule
        // changes nothing (not even the catch-up of a scheduler that was down).
        let reset = wasPaused && !paused && !catchUp
        if reset || record.nextFireAt == nil || record.cron != schedule.cron || record.timeZone != schedule.timeZone {
            record.cron = schedule.cron
            record.timeZone = schedule.timeZone
            record.nextFireAt = cron.nextFire(after: now)
        }
        let stored = try await store.setSchedulePaused(record, resetNextFire: reset)
        if wasPaused != paused {
            logger.notice(paused ? "schedule paused" : "schedule unpaused", metadata: [
                "workflow": "\(entry.definition.name)", "catch_up": "\(catchUp)",
                "next_fire_at": "\(stored.nextFireAt.map(Timestamp.rfc3339) ?? "none")",
            ])
        }
        return stored
    }

    /// The entry, schedule and cron of a scheduled workflow, or the error saying why not.
    private func scheduled(_ workflow: String, doing what: String) throws -> (WorkflowRegistry.Entry, ScheduleDefinition, CronSchedule) {
        guard let entry = workflows[workflow] else {
            throw DeerFlowError(.notFound, "workflow '\(workflow)' not found")
        }
        guard let schedule = entry.definition.schedule else {
            throw DeerFlowError(.conflict, "workflow '\(workflow)' has no schedule, so it cannot be \(what); add a `schedule:` to its definition")
        }
        do {
            return (entry, schedule, try CronSchedule(schedule.cron, timeZone: TimeZone.named(schedule.timeZone) ?? .gmt))
        } catch {
            throw DeerFlowError(.conflict, "workflow '\(workflow)' has a schedule DeerFlow cannot read (\(error.message))")
        }
    }

    // MARK: Backfill

    /// Creates a backfill: one run per fire time of the workflow's schedule in `[from, to]`
    /// (both inclusive), created by the scheduler leader with at most `maxActive` of them pending
    /// or running at once. Each run's logical time (`scheduled_for`, `DEERFLOW_LOGICAL_TIME`) is
    /// the fire time it stands for; a fire time that already has a run (the scheduler's, another
    /// backfill's) is skipped and counted as already present.
    ///
    /// - Throws: ``DeerFlowError`` `.notFound` (unknown workflow), `.conflict` (no schedule),
    ///   `.invalidRequest` (reversed range, a range reaching into the future, more than
    ///   ``BackfillLimits/fireTimes`` fire times or none, `maxActive` outside
    ///   ``BackfillLimits/maxActive``), `.invalidParams` (parameters).
    public func createBackfill(
        _ workflow: String, from: Date, to: Date, maxActive: Int = BackfillLimits.defaultMaxActive, params: [String: JSONValue] = [:], now: Date = Date()
    ) async throws -> BackfillRecord {
        let (entry, schedule, cron) = try scheduled(workflow, doing: "backfilled")
        guard BackfillLimits.maxActive.contains(maxActive) else {
            throw DeerFlowError(.invalidRequest, "max_active must be between \(BackfillLimits.maxActive.lowerBound) and \(BackfillLimits.maxActive.upperBound), got \(maxActive)")
        }
        guard from <= to else {
            throw DeerFlowError(.invalidRequest, "the range is reversed: from \(Timestamp.rfc3339(from)) is after to \(Timestamp.rfc3339(to))")
        }
        guard to <= now else {
            throw DeerFlowError(.invalidRequest, "the range reaches into the future: to \(Timestamp.rfc3339(to)) is after now (\(Timestamp.rfc3339(now))); the scheduler fires future times itself")
        }
        let resolved: [String: JSONValue]
        do {
            resolved = try entry.definition.resolveParams(params)
        } catch {
            throw DeerFlowError(.invalidParams, "workflow '\(workflow)': \(error.description)")
        }
        // Fire times at or after `from`: nextFire(after:) is strictly after, at whole minutes.
        let times = cron.fires(after: from.addingTimeInterval(-1), through: to, limit: BackfillLimits.fireTimes + 1)
        guard times.count <= BackfillLimits.fireTimes else {
            throw DeerFlowError(.invalidRequest, "the range holds more than \(BackfillLimits.fireTimes) fire times of '\(schedule.cron)' (the limit per backfill is \(BackfillLimits.fireTimes)); split it into smaller ranges")
        }
        guard let first = times.first else {
            throw DeerFlowError(.invalidRequest, "the range \(Timestamp.rfc3339(from)) – \(Timestamp.rfc3339(to)) holds no fire time of '\(schedule.cron)' (\(schedule.timeZone)); both bounds are inclusive")
        }
        let backfill = NewBackfill(
            id: "bf-" + RunID.generate(at: now).rawValue.lowercased(), workflow: workflow, cron: schedule.cron, timeZone: schedule.timeZone,
            from: from, to: to, maxActive: maxActive, params: resolved, fireTimes: times.count, firstFireAt: first, createdAt: now)
        let record = try await store.createBackfill(backfill)
        logger.notice("backfill created", metadata: [
            "backfill_id": "\(record.id)", "workflow": "\(workflow)", "fire_times": "\(times.count)", "max_active": "\(maxActive)",
            "from": "\(Timestamp.rfc3339(from))", "to": "\(Timestamp.rfc3339(to))",
        ])
        return record
    }

    /// A backfill with its progress.
    /// - Throws: ``DeerFlowError`` `.notFound`.
    public func backfill(_ id: String) async throws -> BackfillRecord {
        guard let record = try await store.backfill(id) else { throw DeerFlowError(.notFound, "backfill \(id) not found") }
        return record
    }

    /// Cancels a backfill as a whole: it creates no more runs, and its pending and running runs
    /// are cancelled.
    /// - Throws: ``DeerFlowError`` `.notFound`, or `.conflict` when it already finished.
    @discardableResult
    public func cancelBackfill(_ id: String) async throws -> BackfillRecord {
        switch try await store.cancelBackfill(id, at: Date()) {
        case .notFound:
            throw DeerFlowError(.notFound, "backfill \(id) not found")
        case .alreadyFinished(let status):
            throw DeerFlowError(.conflict, "backfill \(id) already finished with status \(status.rawValue); only a running backfill can be cancelled")
        case .cancelled(_, let active):
            for run in active {
                // A run that finished meanwhile is fine: nothing is left to cancel.
                _ = try? await cancel(run)
            }
            logger.notice("backfill cancelled", metadata: ["backfill_id": "\(id)", "runs_cancelled": "\(active.count)"])
            return try await backfill(id)
        }
    }

    /// Creates the next runs of every running backfill, keeping at most its `max_active` pending
    /// or running, and finishes those with nothing left. Called by the scheduler leader; state is
    /// in the store, so a new leader or a restart continues without duplicates.
    ///
    /// - Parameter waiting: backfills already reported as waiting for a workflow this process
    ///   does not load (reported once each).
    func advanceBackfills(now: Date, waiting: inout Set<String>) async throws {
        for backfill in try await store.activeBackfills() {
            guard let next = backfill.nextFireAt else {
                if backfill.active == 0, try await store.finishBackfill(backfill.id, status: backfill.outcome, at: now) {
                    logger.notice("backfill finished", metadata: [
                        "backfill_id": "\(backfill.id)", "workflow": "\(backfill.workflow)", "status": "\(backfill.outcome.rawValue)",
                        "runs_created": "\(backfill.runsCreated)", "already_present": "\(backfill.alreadyPresent)",
                        "succeeded": "\(backfill.succeeded)", "failed": "\(backfill.failed)",
                    ])
                }
                continue
            }
            let slots = backfill.maxActive - backfill.active
            guard slots > 0 else { continue }
            guard let entry = workflows[backfill.workflow] else {
                guard waiting.insert(backfill.id).inserted else { continue }
                logger.warning("backfill waits: its workflow is not loaded in the scheduler leader", metadata: [
                    "backfill_id": "\(backfill.id)", "workflow": "\(backfill.workflow)",
                ])
                continue
            }
            let runs: [NewRun]
            let following: Date?
            do {
                let cron = try CronSchedule(backfill.cron, timeZone: TimeZone.named(backfill.timeZone) ?? .gmt)
                let times = [next] + cron.fires(after: next, through: backfill.to, limit: slots)
                following = times.count > slots ? times[slots] : nil
                runs = try times.prefix(slots).map { try makeRun(entry, trigger: .backfill(logicalTime: $0), params: backfill.params, at: now) }
            } catch {
                // E.g. the workflow's parameters changed since: the backfill waits; cancel it and start a new one.
                if waiting.insert(backfill.id).inserted {
                    logger.error("backfill cannot create its runs; cancel it and create a new one", metadata: [
                        "backfill_id": "\(backfill.id)", "workflow": "\(backfill.workflow)", "error": "\(error)",
                    ])
                }
                continue
            }
            let created = try await store.advanceBackfill(backfill.id, expectedNext: next, runs: runs, next: following)
            let createdIDs = Set(created.map(\.id))
            for run in runs where !createdIDs.contains(run.id) { discardRunSpan(run.id) }
            guard !created.isEmpty else { continue }
            emit(created.map { .runCreated(runID: $0.id, workflow: $0.workflow, trigger: .backfill, at: now) })
            wakeLocalWorkers()
            logger.info("backfill created runs", metadata: [
                "backfill_id": "\(backfill.id)", "workflow": "\(backfill.workflow)", "runs": "\(created.count)",
                "already_present": "\(runs.count - created.count)",
            ])
        }
    }
}
