import DeerFlowCore
public import Foundation
import Synchronization
import Logging
public import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fires cron schedules once per due time (except paused ones), drives backfills, reclaims
/// attempts whose worker is gone, marks silent workers lost, and fails runs past their deadline
/// (the workflow's `timeout:`).
///
/// Missed fires (the scheduler was down): with `catchup: latest` (default) the latest due time
/// fires once; with `catchup: all` every missed time fires, oldest first, up to
/// ``Configuration/catchupLimit``. Each fire creates the run and advances the schedule in one
/// transaction, and a run per workflow and due time is unique in the store, so restarts and
/// several schedulers never fire twice.
public final class SchedulerService: Service, Sendable {
    /// Scheduler settings.
    public struct Configuration: Sendable {
        /// Longest sleep between two passes; default 1 s.
        public var tick: Duration = .seconds(1)
        /// A worker whose heartbeat is older than this is lost; its attempts are retried; default 60 s.
        public var workerTimeout: Duration = .seconds(60)
        /// Most missed fires fired at once with `catchup: all`; default 100.
        public var catchupLimit: Int = 100
        /// How long leadership lasts without renewal; another process takes over after it. Default 15 s.
        public var leadershipTTL: Duration = .seconds(15)

        public init() {}
    }

    let engine: DeerFlowEngine
    let configuration: Configuration
    /// Observers of schedule decisions (metrics for fire delay, missed fires, next fire time).
    private let scheduleEvents: ScheduleEventSink

    init(engine: DeerFlowEngine, configuration: Configuration) {
        self.engine = engine
        self.configuration = configuration
        scheduleEvents = ScheduleEventSink()
    }

    /// Receives schedule decisions: fired (with delay), missed (with reason), next fire time.
    public func onScheduleEvent(_ handler: @escaping @Sendable (ScheduleEvent) -> Void) {
        scheduleEvents.set(handler)
    }

    public func run() async throws {
        let logger = engine.logger
        logger.info("scheduler started", metadata: ["candidate": "\(candidate)"])
        await cancelWhenGracefulShutdown {
            await self.loop()
        }
        // Runs another process finished since the last sweep still get their workflow.run span.
        await engine.sweepRunSpans()
        if engine.isSchedulerLeader {
            engine.setSchedulerLeader(false)
            await engine.store.releaseLeadership(candidate: candidate)
        }
        logger.info("scheduler stopped")
    }

    /// This scheduler's name in leadership records: `host:pid:random`.
    let candidate = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"

    private func loop() async {
        var schedules: [String: LoadedSchedule]?
        var waitingBackfills: Set<String> = []
        var lastSweep = ContinuousClock.now
        while !Task.isCancelled {
            let now = Date()
            if ContinuousClock.now - lastSweep >= .seconds(2) {
                lastSweep = .now
                await engine.sweepRunSpans()
            }
            let leads: Bool
            do {
                leads = try await engine.store.tryAcquireLeadership(candidate: candidate, ttl: configuration.leadershipTTL)
            } catch {
                engine.logger.error("scheduler could not reach the store for leadership; retrying", metadata: ["error": "\(error)"])
                leads = false
            }
            if leads != engine.isSchedulerLeader {
                engine.setSchedulerLeader(leads)
                engine.logger.notice(leads ? "became scheduler leader" : "no longer scheduler leader", metadata: ["candidate": "\(candidate)"])
                // A new leader reads schedules afresh: the previous one may have advanced them.
                schedules = nil
            }
            guard leads else {
                try? await Sleep.for(configuration.tick)
                continue
            }
            do {
                if schedules == nil {
                    schedules = try await loadSchedules()
                } else if var current = schedules {
                    // Pauses and unpauses of any server of the cluster, through the store.
                    try await refreshPauses(&current)
                    schedules = current
                }
                if var current = schedules {
                    try await fireDue(&current, now: now)
                    schedules = current
                }
            } catch {
                engine.logger.error("scheduler could not fire schedules; retrying", metadata: ["error": "\(error)"])
            }
            do {
                try await engine.advanceBackfills(now: now, waiting: &waitingBackfills)
            } catch {
                engine.logger.error("scheduler could not advance backfills; retrying", metadata: ["error": "\(error)"])
            }
            do {
                try await reclaim(now: now)
            } catch {
                engine.logger.error("scheduler could not reclaim leases; retrying", metadata: ["error": "\(error)"])
            }
            do {
                try await engine.timeOutExpiredRuns(now: now)
            } catch {
                engine.logger.error("scheduler could not time out expired runs; retrying", metadata: ["error": "\(error)"])
            }
            var sleep = configuration.tick
            if let nextDue = schedules?.values.filter({ !$0.record.paused }).compactMap(\.record.nextFireAt).min() {
                sleep = min(sleep, .milliseconds(Int64(max(0, nextDue.timeIntervalSinceNow) * 1000) + 1))
            }
            try? await Sleep.for(sleep)
        }
    }

    struct LoadedSchedule {
        var cron: CronSchedule
        var catchup: CatchupPolicy
        var record: ScheduleRecord
        var entry: WorkflowRegistry.Entry
    }

    /// Reads the stored schedule state of every scheduled workflow; a new or changed schedule
    /// starts from the next fire time after now.
    func loadSchedules() async throws -> [String: LoadedSchedule] {
        let stored = Dictionary(try await engine.store.schedules().map { ($0.workflow, $0) }, uniquingKeysWith: { first, _ in first })
        var result: [String: LoadedSchedule] = [:]
        let now = Date()
        for entry in engine.workflows.all {
            guard let schedule = entry.definition.schedule else { continue }
            let zone = TimeZone.named(schedule.timeZone) ?? .gmt
            let cron = try CronSchedule(schedule.cron, timeZone: zone)
            // `paused:` of the definition is the initial state of a new row only; the store's wins.
            var record = stored[entry.definition.name] ?? ScheduleRecord(workflow: entry.definition.name, cron: schedule.cron, timeZone: schedule.timeZone, nextFireAt: nil, lastFiredAt: nil, paused: schedule.paused)
            if record.nextFireAt == nil || record.cron != schedule.cron || record.timeZone != schedule.timeZone {
                record.cron = schedule.cron
                record.timeZone = schedule.timeZone
                record.nextFireAt = cron.nextFire(after: now)
                try await engine.store.saveSchedule(record)
            }
            // A paused schedule has no next fire (0: the overdue alert's `> 0` guard skips it).
            scheduleEvents.emit(.next(workflow: record.workflow, at: record.paused ? nil : record.nextFireAt))
            scheduleEvents.emit(.paused(workflow: record.workflow, paused: record.paused))
            result[entry.definition.name] = LoadedSchedule(cron: cron, catchup: schedule.catchup, record: record, entry: entry)
        }
        return result
    }

    /// Takes the pause state and due time of each schedule from the store, where an API call of
    /// any server changed them.
    ///
    /// An unpause without catch-up moved the due time past the fire times missed while paused:
    /// those count in `deerflow_schedules_missed_total{reason="paused"}`.
    func refreshPauses(_ schedules: inout [String: LoadedSchedule], now: Date = Date()) async throws {
        for stored in try await engine.store.schedules() {
            guard var schedule = schedules[stored.workflow], schedule.record.cron == stored.cron, schedule.record.timeZone == stored.timeZone else { continue }
            let changed = schedule.record.paused != stored.paused
            guard changed || schedule.record.nextFireAt != stored.nextFireAt else { continue }
            if schedule.record.paused, !stored.paused, let old = schedule.record.nextFireAt, let new = stored.nextFireAt, new > old, old <= now {
                let skipped = [old] + schedule.cron.fires(after: old, through: min(now, new.addingTimeInterval(-1)), limit: configuration.catchupLimit * 10)
                for time in skipped where time < new {
                    scheduleEvents.emit(.missed(workflow: stored.workflow, dueAt: time, reason: "paused"))
                }
            }
            schedule.record.paused = stored.paused
            schedule.record.nextFireAt = stored.nextFireAt
            schedules[stored.workflow] = schedule
            if changed { scheduleEvents.emit(.paused(workflow: stored.workflow, paused: stored.paused)) }
            scheduleEvents.emit(.next(workflow: stored.workflow, at: stored.paused ? nil : stored.nextFireAt))
        }
    }

    /// Fires every schedule that is due and not paused. A paused schedule keeps its due time, so
    /// an unpause that catches up starts from there.
    func fireDue(_ schedules: inout [String: LoadedSchedule], now: Date) async throws {
        for name in schedules.keys.sorted() {
            guard var schedule = schedules[name], !schedule.record.paused, let due = schedule.record.nextFireAt, due <= now else { continue }
            // Every fire time from the stored due time through now.
            var dueTimes = [due] + schedule.cron.fires(after: due, through: now, limit: configuration.catchupLimit * 10)
            var missed: [Date] = []
            switch schedule.catchup {
            case .latest:
                missed = Array(dueTimes.dropLast())
                dueTimes = dueTimes.suffix(1)
            case .all:
                if dueTimes.count > configuration.catchupLimit {
                    missed = Array(dueTimes.prefix(dueTimes.count - configuration.catchupLimit))
                    dueTimes = Array(dueTimes.suffix(configuration.catchupLimit))
                }
            }
            for time in missed {
                scheduleEvents.emit(.missed(workflow: name, dueAt: time, reason: schedule.catchup == .latest ? "catchup_latest" : "catchup_limit"))
            }
            let next = schedule.cron.nextFire(after: now)
            for (offset, time) in dueTimes.enumerated() {
                let isLast = offset == dueTimes.count - 1
                var advanced = schedule.record
                advanced.lastFiredAt = time
                advanced.nextFireAt = isLast ? next : dueTimes[offset + 1]
                let firedAt = Date()
                let newRun = try engine.makeRun(schedule.entry, trigger: .schedule(dueAt: time), at: firedAt)
                if let created = try await engine.store.fire(schedule: advanced, run: newRun) {
                    engine.emit([.runCreated(runID: created.id, workflow: name, trigger: .schedule, at: firedAt)])
                    engine.wakeLocalWorkers()
                    scheduleEvents.emit(.fired(workflow: name, dueAt: time, delay: max(0, firedAt.timeIntervalSince(time))))
                    engine.logger.info("schedule fired", metadata: ["workflow": "\(name)", "run_id": "\(created.id)", "due": "\(time)"])
                } else {
                    engine.discardRunSpan(newRun.id)
                    scheduleEvents.emit(.missed(workflow: name, dueAt: time, reason: "already_fired"))
                }
                schedule.record = advanced
            }
            schedules[name] = schedule
            scheduleEvents.emit(.next(workflow: name, at: next))
        }
    }

    /// Retries attempts whose worker is gone.
    func reclaim(now: Date) async throws {
        let workers = try await engine.store.workers()
        let host = engine.configuration.hostName
        let ownPID = Int(getpid())
        var dead: Set<String> = []
        for worker in workers where worker.state == .active && worker.host == host && worker.pid != ownPID {
            // Same machine: a worker whose process no longer exists is gone now, not after its lease.
            if kill(pid_t(worker.pid), 0) != 0 && errno == ESRCH { dead.insert(worker.id) }
        }
        let events = try await engine.store.reclaim(now: now, workerTimeout: configuration.workerTimeout, deadWorkers: dead)
        if !events.isEmpty {
            engine.emit(events)
            engine.wakeLocalWorkers()
            let count = events.filter { if case .attemptFinished = $0 { return true } else { return false } }.count
            engine.logger.warning("reclaimed attempts of lost workers", metadata: ["attempts": "\(count)", "dead_workers": "\(dead.sorted().joined(separator: ","))"])
        }
    }
}

/// A schedule decision, for metrics.
public enum ScheduleEvent: Sendable {
    /// A run was created for a due time, `delay` seconds after it.
    case fired(workflow: String, dueAt: Date, delay: Double)
    /// A due time did not get a run (`catchup_latest`, `catchup_limit`, `already_fired`, `paused`).
    case missed(workflow: String, dueAt: Date, reason: String)
    /// The next due time (nil: none in the next years).
    case next(workflow: String, at: Date?)
    /// Whether the schedule is paused (at load, and when a pause or unpause is seen).
    case paused(workflow: String, paused: Bool)
}

final class ScheduleEventSink: Sendable {
    private let handler = Mutex<(@Sendable (ScheduleEvent) -> Void)?>(nil)

    func set(_ handler: @escaping @Sendable (ScheduleEvent) -> Void) {
        self.handler.withLock { $0 = handler }
    }

    func emit(_ event: ScheduleEvent) {
        handler.withLock { $0 }?(event)
    }
}
