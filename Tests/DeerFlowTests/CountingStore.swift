import DeerFlow
import DeerFlowCore
import Foundation
import ServiceLifecycle
import Synchronization

/// A store that counts the calls made to it by name and passes them on: the UI's pages must
/// make a bounded number of store calls, whatever the number of runs or tasks they show.
final class CountingStore: WorkflowStore {
    let store: any WorkflowStore
    private let counts = Mutex<[String: Int]>([:])

    init(_ store: any WorkflowStore) {
        self.store = store
    }

    /// The calls made so far, by method name.
    var calls: [String: Int] { counts.withLock { $0 } }

    /// Forgets the calls counted so far.
    func reset() { counts.withLock { $0 = [:] } }

    private func count(_ name: String) {
        counts.withLock { $0[name, default: 0] += 1 }
    }

    func run() async throws {
        try await store.run()
    }

    func createRun(_ run: NewRun) async throws -> RunRecord? {
        count("createRun")
        return try await store.createRun(run)
    }

    func createRuns(_ runs: [NewRun]) async throws -> [RunRecord] {
        count("createRuns")
        return try await store.createRuns(runs)
    }

    func run(_ id: RunID) async throws -> RunDetail? {
        count("run")
        return try await store.run(id)
    }

    func runs(_ query: RunQuery) async throws -> RunPage {
        count("runs")
        return try await store.runs(query)
    }

    func finishedRuns(among ids: [RunID]) async throws -> [RunRecord] {
        count("finishedRuns")
        return try await store.finishedRuns(among: ids)
    }

    func cancelRun(_ id: RunID, at: Date) async throws -> CancelResult {
        count("cancelRun")
        return try await store.cancelRun(id, at: at)
    }

    func taskOutput(run: RunID, task: String) async throws -> JSONValue? {
        count("taskOutput")
        return try await store.taskOutput(run: run, task: task)
    }

    func appendLog(attempt: AttemptID, text: String, limit: Int) async throws {
        count("appendLog")
        return try await store.appendLog(attempt: attempt, text: text, limit: limit)
    }

    func taskLogs(run: RunID, task: String, attempt: Int?) async throws -> [AttemptLog]? {
        count("taskLogs")
        return try await store.taskLogs(run: run, task: task, attempt: attempt)
    }

    func statistics(now: Date) async throws -> StoreStatistics {
        count("statistics")
        return try await store.statistics(now: now)
    }

    func recentRuns(workflows: [String], limit: Int) async throws -> [String: [RunRecord]] {
        count("recentRuns")
        return try await store.recentRuns(workflows: workflows, limit: limit)
    }

    func taskStates(runs: [RunID]) async throws -> [RunID: [TaskState]] {
        count("taskStates")
        return try await store.taskStates(runs: runs)
    }

    func runCounts(since: Date) async throws -> [RunStatus: Int] {
        count("runCounts")
        return try await store.runCounts(since: since)
    }

    func retryRun(_ id: RunID, tasks: [String]?, at now: Date) async throws -> RetryResult {
        count("retryRun")
        return try await store.retryRun(id, tasks: tasks, at: now)
    }

    func timeOutRuns(now: Date, limit: Int) async throws -> TimeoutSweep {
        count("timeOutRuns")
        return try await store.timeOutRuns(now: now, limit: limit)
    }

    func childRuns(of parent: RunID) async throws -> [RunRecord] {
        count("childRuns")
        return try await store.childRuns(of: parent)
    }

    func exchange(_ request: ExchangeRequest) async throws -> ExchangeResult {
        count("exchange")
        return try await store.exchange(request)
    }

    func heartbeat(_ worker: WorkerRecord, running: [AttemptID], leaseUntil: Date) async throws -> Set<AttemptID> {
        count("heartbeat")
        return try await store.heartbeat(worker, running: running, leaseUntil: leaseUntil)
    }

    func deregister(worker: String, at: Date) async throws {
        count("deregister")
        return try await store.deregister(worker: worker, at: at)
    }

    func reclaim(now: Date, workerTimeout: Duration, deadWorkers: Set<String>) async throws -> [EngineEvent] {
        count("reclaim")
        return try await store.reclaim(now: now, workerTimeout: workerTimeout, deadWorkers: deadWorkers)
    }

    func workers() async throws -> [WorkerRecord] {
        count("workers")
        return try await store.workers()
    }

    func schedules() async throws -> [ScheduleRecord] {
        count("schedules")
        return try await store.schedules()
    }

    func saveSchedule(_ schedule: ScheduleRecord) async throws {
        count("saveSchedule")
        return try await store.saveSchedule(schedule)
    }

    func fire(schedule: ScheduleRecord, run: NewRun?) async throws -> RunRecord? {
        count("fire")
        return try await store.fire(schedule: schedule, run: run)
    }

    func setSchedulePaused(_ schedule: ScheduleRecord, resetNextFire: Bool) async throws -> ScheduleRecord {
        count("setSchedulePaused")
        return try await store.setSchedulePaused(schedule, resetNextFire: resetNextFire)
    }

    func createBackfill(_ backfill: NewBackfill) async throws -> BackfillRecord {
        count("createBackfill")
        return try await store.createBackfill(backfill)
    }

    func backfill(_ id: String) async throws -> BackfillRecord? {
        count("backfill")
        return try await store.backfill(id)
    }

    func activeBackfills() async throws -> [BackfillRecord] {
        count("activeBackfills")
        return try await store.activeBackfills()
    }

    func advanceBackfill(_ id: String, expectedNext: Date, runs: [NewRun], next: Date?) async throws -> [RunRecord] {
        count("advanceBackfill")
        return try await store.advanceBackfill(id, expectedNext: expectedNext, runs: runs, next: next)
    }

    func finishBackfill(_ id: String, status: BackfillStatus, at: Date) async throws -> Bool {
        count("finishBackfill")
        return try await store.finishBackfill(id, status: status, at: at)
    }

    func cancelBackfill(_ id: String, at: Date) async throws -> BackfillCancelResult {
        count("cancelBackfill")
        return try await store.cancelBackfill(id, at: at)
    }

    func tryAcquireLeadership(candidate: String, ttl: Duration) async throws -> Bool {
        count("tryAcquireLeadership")
        return try await store.tryAcquireLeadership(candidate: candidate, ttl: ttl)
    }

    func releaseLeadership(candidate: String) async {
        count("releaseLeadership")
        return await store.releaseLeadership(candidate: candidate)
    }

    func workAvailable() -> AsyncStream<Void>? {
        count("workAvailable")
        return store.workAvailable()
    }

    func saveRunLimits(_ limits: [String: Int?], now: Date) async throws {
        count("saveRunLimits")
        return try await store.saveRunLimits(limits, now: now)
    }

    func saveQueueLimits(_ limits: [String: Int]) async throws {
        count("saveQueueLimits")
        return try await store.saveQueueLimits(limits)
    }

    func limitUsage() async throws -> LimitUsage {
        count("limitUsage")
        return try await store.limitUsage()
    }

    func prepare() async throws {
        count("prepare")
        return try await store.prepare()
    }

    func close() async throws {
        count("close")
        return try await store.close()
    }

    func ping() async throws {
        count("ping")
        return try await store.ping()
    }
}
