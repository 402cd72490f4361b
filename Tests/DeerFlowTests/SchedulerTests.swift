@testable import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import Synchronization
import Testing

/// The scheduler's decisions driven with injected times on a real SQLite store: catch-up of missed
/// fires, exactly-once across passes and restarts, schedule changes, and named time zones.
@Suite("Scheduler")
struct SchedulerTests {
    static let quiet = Logger(label: "deerflow.test.scheduler", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A 5-minute-aligned instant well in the past.
    static let base = utc("2024-06-01T10:00:00Z")

    static func utc(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { fatalError("bad test date \(text)") }
        return date
    }

    static func scheduled(_ name: String = "every5", cron: String = "*/5 * * * *", timeZone: String = "UTC", catchup: CatchupPolicy) -> Workflow {
        let flow = Workflow(name: name, schedule: cron, timeZone: timeZone, catchup: catchup)
        flow.task(id: "only") { _ in }
        return flow
    }

    /// Runs `body` with a prepared SQLite store in a fresh directory (also passed, for reopening).
    static func withStore<T>(_ body: (SQLiteWorkflowStore, TemporaryDirectory) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = SQLiteWorkflowStore(path: directory.file("scheduler.sqlite"), logger: quiet)
        try await store.prepare()
        do {
            let result = try await body(store, directory)
            try? await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    static func scheduledRuns(_ engine: DeerFlowEngine, _ workflow: String) async throws -> [RunRecord] {
        try await engine.runs(RunQuery(workflow: workflow, limit: 100)).runs
    }

    // MARK: Catch-up

    @Test("catchup latest: three missed due times give one run for the latest and two missed events")
    func catchupLatest() async throws {
        try await Self.withStore { store, _ in
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled(catchup: .latest)], logger: Self.quiet)
            let base = Self.base
            try await store.saveSchedule(ScheduleRecord(workflow: "every5", cron: "*/5 * * * *", timeZone: "UTC", nextFireAt: base, lastFiredAt: nil))
            let scheduler = engine.makeScheduler()
            let events = ScheduleEventLog()
            scheduler.onScheduleEvent(events.append)

            var schedules = try await scheduler.loadSchedules()
            #expect(schedules["every5"]?.record.nextFireAt == base, "an unchanged stored schedule keeps its due time")
            let now = base.addingTimeInterval(10 * 60 + 30)
            try await scheduler.fireDue(&schedules, now: now)

            let runs = try await Self.scheduledRuns(engine, "every5")
            #expect(runs.count == 1)
            #expect(runs.first?.scheduledFor == base.addingTimeInterval(600))
            #expect(runs.first?.trigger == .schedule)
            #expect(events.fired == [base.addingTimeInterval(600)])
            #expect(events.missed.map(\.dueAt) == [base, base.addingTimeInterval(300)])
            #expect(events.missed.map(\.reason) == ["catchup_latest", "catchup_latest"])

            // The next fire time advances past now, in memory and in the store.
            let next = base.addingTimeInterval(900)
            #expect(schedules["every5"]?.record.nextFireAt == next)
            #expect((events.next.last ?? nil) == next)
            let stored = try await store.schedules().first { $0.workflow == "every5" }
            #expect(stored?.nextFireAt == next)
            #expect(stored?.lastFiredAt == base.addingTimeInterval(600))

            // The same pass again creates nothing and reports nothing new.
            let before = events.count
            try await scheduler.fireDue(&schedules, now: now)
            #expect(try await Self.scheduledRuns(engine, "every5").count == 1)
            #expect(events.fired.count == 1)
            #expect(events.missed.count == 2)
            #expect(events.count - before <= 1, "at most a 'next' event: \(events.all)")
        }
    }

    @Test("catchup all: three missed due times give three runs, oldest first")
    func catchupAll() async throws {
        try await Self.withStore { store, _ in
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled(catchup: .all)], logger: Self.quiet)
            let base = Self.base
            try await store.saveSchedule(ScheduleRecord(workflow: "every5", cron: "*/5 * * * *", timeZone: "UTC", nextFireAt: base, lastFiredAt: nil))
            let scheduler = engine.makeScheduler()
            let events = ScheduleEventLog()
            scheduler.onScheduleEvent(events.append)
            var schedules = try await scheduler.loadSchedules()
            let now = base.addingTimeInterval(10 * 60 + 30)
            try await scheduler.fireDue(&schedules, now: now)

            let expected = [base, base.addingTimeInterval(300), base.addingTimeInterval(600)]
            #expect(events.fired == expected, "fired oldest first")
            #expect(events.missed.isEmpty)
            let runs = try await Self.scheduledRuns(engine, "every5")
            #expect(runs.count == 3)
            #expect(runs.compactMap(\.scheduledFor).sorted() == expected)
            #expect(runs.allSatisfy { $0.trigger == .schedule })
            #expect(schedules["every5"]?.record.nextFireAt == base.addingTimeInterval(900))

            try await scheduler.fireDue(&schedules, now: now)
            #expect(try await Self.scheduledRuns(engine, "every5").count == 3)
            #expect(events.fired.count == 3)
        }
    }

    // MARK: Exactly once

    @Test("a second scheduler (stale state, or a restart on the reopened store) never fires a due time twice")
    func restartDoesNotFireTwice() async throws {
        try await Self.withStore { store, directory in
            let base = Self.base
            let now = base.addingTimeInterval(10 * 60 + 30)
            try await store.saveSchedule(ScheduleRecord(workflow: "every5", cron: "*/5 * * * *", timeZone: "UTC", nextFireAt: base, lastFiredAt: nil))
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled(catchup: .all)], logger: Self.quiet)
            let first = engine.makeScheduler()
            // A second scheduler that read the schedules before the first one fired.
            let stale = engine.makeScheduler()
            let staleEvents = ScheduleEventLog()
            stale.onScheduleEvent(staleEvents.append)
            var firstSchedules = try await first.loadSchedules()
            var staleSchedules = try await stale.loadSchedules()

            try await first.fireDue(&firstSchedules, now: now)
            #expect(try await Self.scheduledRuns(engine, "every5").count == 3)

            try await stale.fireDue(&staleSchedules, now: now)
            #expect(try await Self.scheduledRuns(engine, "every5").count == 3, "the stale scheduler created duplicates")
            #expect(staleEvents.fired.isEmpty)
            #expect(staleEvents.missed.map(\.reason) == ["already_fired", "already_fired", "already_fired"])
            try await store.close()

            // A restart: a new process opens the same database file.
            let reopened = SQLiteWorkflowStore(path: directory.file("scheduler.sqlite"), logger: Self.quiet)
            try await reopened.prepare()
            do {
                let restarted = try DeerFlowEngine(store: reopened, workflows: [Self.scheduled(catchup: .all)], logger: Self.quiet)
                let scheduler = restarted.makeScheduler()
                let events = ScheduleEventLog()
                scheduler.onScheduleEvent(events.append)
                var schedules = try await scheduler.loadSchedules()
                #expect(schedules["every5"]?.record.nextFireAt == base.addingTimeInterval(900))
                try await scheduler.fireDue(&schedules, now: now)
                #expect(try await Self.scheduledRuns(restarted, "every5").count == 3)
                #expect(events.fired.isEmpty)
                #expect(events.missed.isEmpty)

                // The next due time fires exactly once, then the schedule moves on.
                let later = base.addingTimeInterval(15 * 60 + 1)
                try await scheduler.fireDue(&schedules, now: later)
                try await scheduler.fireDue(&schedules, now: later)
                let runs = try await Self.scheduledRuns(restarted, "every5")
                #expect(runs.count == 4)
                #expect(runs.filter { $0.scheduledFor == base.addingTimeInterval(900) }.count == 1)
                #expect(events.fired == [base.addingTimeInterval(900)])
                #expect(schedules["every5"]?.record.nextFireAt == base.addingTimeInterval(1200))
            } catch {
                try? await reopened.close()
                throw error
            }
            try await reopened.close()
        }
    }

    // MARK: Changes

    @Test("a changed cron expression resets the schedule to the next fire time after now, without catching up")
    func changedCronResets() async throws {
        try await Self.withStore { store, _ in
            // Stored: every 5 minutes, due long ago. Declared now: hourly.
            try await store.saveSchedule(ScheduleRecord(workflow: "hourly", cron: "*/5 * * * *", timeZone: "UTC", nextFireAt: Self.base, lastFiredAt: nil))
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled("hourly", cron: "0 * * * *", catchup: .all)], logger: Self.quiet)
            let scheduler = engine.makeScheduler()
            let before = Date()
            var schedules = try await scheduler.loadSchedules()
            let after = Date()
            let next = try #require(schedules["hourly"]?.record.nextFireAt)
            #expect(next > before)
            #expect(next <= after.addingTimeInterval(3600))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let parts = calendar.dateComponents([.minute, .second], from: next)
            #expect(parts.minute == 0 && parts.second == 0, "next fire \(next) is not on the hour")

            let stored = try await store.schedules().first { $0.workflow == "hourly" }
            #expect(stored?.cron == "0 * * * *")
            #expect(stored?.nextFireAt == next)

            // A pass just before the new due time, not at `Date()`: a loaded machine that reaches
            // this line after the hour (the load ran at 10:59:59) would rightly fire the new one.
            try await scheduler.fireDue(&schedules, now: next.addingTimeInterval(-1))
            #expect(try await Self.scheduledRuns(engine, "hourly").isEmpty, "the old due times must not be caught up")
        }
    }

    @Test("a changed time zone also resets the schedule")
    func changedTimeZoneResets() async throws {
        try await Self.withStore { store, _ in
            try await store.saveSchedule(ScheduleRecord(workflow: "daily", cron: "0 2 * * *", timeZone: "UTC", nextFireAt: Self.base, lastFiredAt: nil))
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled("daily", cron: "0 2 * * *", timeZone: "Asia/Tokyo", catchup: .all)], logger: Self.quiet)
            let scheduler = engine.makeScheduler()
            let before = Date()
            var schedules = try await scheduler.loadSchedules()
            let next = try #require(schedules["daily"]?.record.nextFireAt)
            #expect(next > before)
            #expect(schedules["daily"]?.record.timeZone == "Asia/Tokyo")
            // Just before the new due time (see changedCronResets), not at `Date()`.
            try await scheduler.fireDue(&schedules, now: next.addingTimeInterval(-1))
            #expect(try await Self.scheduledRuns(engine, "daily").isEmpty)
        }
    }

    // MARK: Time zones

    @Test("a fresh schedule in Europe/Berlin is due at 02:00 Berlin time")
    func berlinFreshSchedule() async throws {
        try await Self.withStore { store, _ in
            let engine = try DeerFlowEngine(store: store, workflows: [Self.scheduled("berlin", cron: "0 2 * * *", timeZone: "Europe/Berlin", catchup: .latest)], logger: Self.quiet)
            let before = Date()
            let schedules = try await engine.makeScheduler().loadSchedules()
            let next = try #require(schedules["berlin"]?.record.nextFireAt)
            #expect(next > before)
            #expect(next <= before.addingTimeInterval(25 * 3600))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
            let parts = calendar.dateComponents([.hour, .minute, .second], from: next)
            #expect(parts.hour == 2 && parts.minute == 0 && parts.second == 0, "next fire \(next) is not 02:00 in Berlin")
        }
    }

    @Test("Europe/Berlin 0 2 * * * fires at 00:00 UTC in summer and 01:00 UTC in winter, not a second early")
    func berlinFiresAtTheRightInstant() async throws {
        try await Self.withStore { store, _ in
            let summer = Self.scheduled("summer", cron: "0 2 * * *", timeZone: "Europe/Berlin", catchup: .all)
            let winter = Self.scheduled("winter", cron: "0 2 * * *", timeZone: "Europe/Berlin", catchup: .all)
            let engine = try DeerFlowEngine(store: store, workflows: [summer, winter], logger: Self.quiet)
            try await store.saveSchedule(ScheduleRecord(workflow: "summer", cron: "0 2 * * *", timeZone: "Europe/Berlin", nextFireAt: Self.utc("2024-06-10T00:00:00Z"), lastFiredAt: nil))
            try await store.saveSchedule(ScheduleRecord(workflow: "winter", cron: "0 2 * * *", timeZone: "Europe/Berlin", nextFireAt: Self.utc("2024-01-15T01:00:00Z"), lastFiredAt: nil))
            let scheduler = engine.makeScheduler()
            let events = ScheduleEventLog()
            scheduler.onScheduleEvent(events.append)
            let schedules = try await scheduler.loadSchedules()

            // Summer (CEST, UTC+2): the day after the stored due time is computed by the cron.
            var onlySummer = schedules.filter { $0.key == "summer" }
            try await scheduler.fireDue(&onlySummer, now: Self.utc("2024-06-11T00:00:30Z"))
            #expect(events.fired == [Self.utc("2024-06-10T00:00:00Z"), Self.utc("2024-06-11T00:00:00Z")])
            #expect(onlySummer["summer"]?.record.nextFireAt == Self.utc("2024-06-12T00:00:00Z"))
            try await scheduler.fireDue(&onlySummer, now: Self.utc("2024-06-11T23:59:59Z"))
            #expect(events.fired.count == 2, "fired before the due time")
            try await scheduler.fireDue(&onlySummer, now: Self.utc("2024-06-12T00:00:00Z"))
            #expect(events.fired.last == Self.utc("2024-06-12T00:00:00Z"))
            #expect(try await Self.scheduledRuns(engine, "summer").compactMap(\.scheduledFor).sorted() == [
                Self.utc("2024-06-10T00:00:00Z"), Self.utc("2024-06-11T00:00:00Z"), Self.utc("2024-06-12T00:00:00Z"),
            ])

            // Winter (CET, UTC+1).
            events.clear()
            var onlyWinter = schedules.filter { $0.key == "winter" }
            try await scheduler.fireDue(&onlyWinter, now: Self.utc("2024-01-16T01:00:30Z"))
            #expect(events.fired == [Self.utc("2024-01-15T01:00:00Z"), Self.utc("2024-01-16T01:00:00Z")])
            #expect(onlyWinter["winter"]?.record.nextFireAt == Self.utc("2024-01-17T01:00:00Z"))
        }
    }
}

/// Collects the scheduler's decisions.
final class ScheduleEventLog: Sendable {
    private let events = Mutex<[ScheduleEvent]>([])

    @Sendable func append(_ event: ScheduleEvent) {
        events.withLock { $0.append(event) }
    }

    func clear() { events.withLock { $0.removeAll() } }

    var all: [ScheduleEvent] { events.withLock { $0 } }
    var count: Int { all.count }

    var fired: [Date] {
        all.compactMap { if case .fired(_, let due, _) = $0 { return due } else { return nil } }
    }

    var missed: [(dueAt: Date, reason: String)] {
        all.compactMap { if case .missed(_, let due, let reason) = $0 { return (due, reason) } else { return nil } }
    }

    var next: [Date?] {
        all.compactMap { if case .next(_, let at) = $0 { return .some(at) } else { return nil } }
    }
}
