import DeerFlow
import DeerFlowCore
import Foundation
import Testing

/// Retrying finished runs and timing out runs past their deadline.
extension WorkflowStoreConformance {
    static let recoveryChecks: [Check<any WorkflowStore>] = [
        Check(name: "a retry re-queues exactly the unsuccessful tasks, numbers attempts on and keeps outputs", run: retryFailedTasks),
        Check(name: "a retry of chosen tasks re-runs them and everything downstream", run: retryDownstream),
        Check(name: "a retry is refused for unfinished runs, unknown tasks, stopping attempts and nothing to retry", run: retryRefusals),
        Check(name: "a run past its deadline fails with reason timeout; a retry gives it a fresh deadline", run: runDeadline),
    ]

    static func retried(_ result: RetryResult) throws -> (RunRecord, [String], [EngineEvent]) {
        guard case .retried(let record, let tasks, let events) = result else {
            Issue.record("expected the run to be retried, got \(result)")
            throw ConformanceFailure("not retried")
        }
        return (record, tasks, events)
    }

    static func attemptNumbers(_ detail: RunDetail, _ task: String) -> [Int] {
        detail.tasks.first { $0.id == task }?.attempts.map(\.number) ?? []
    }

    static func retryFailedTasks(_ store: any WorkflowStore) async throws {
        // a → b → e fails at b (e upstream-failed); c → d succeed.
        let run = newRun(tasks: [("a", []), ("b", ["a"]), ("c", []), ("d", ["c"]), ("e", ["b"])])
        _ = try await store.createRun(run)
        let roots = try await claim(store)
        _ = try await complete(store, roots, .success(output: .string("kept")))
        let second = try await claim(store)
        #expect(Set(second.map(\.taskID)) == ["b", "d"])
        _ = try await complete(store, second.filter { $0.taskID == "b" }, .failure(message: "boom"))
        _ = try await complete(store, second.filter { $0.taskID == "d" }, .success(output: .int(4)))
        var detail = try await detail(store, run.id)
        #expect(detail.run.status == .failed)
        #expect(statuses(detail)["e"] == .upstreamFailed)

        let now = Date()
        let (record, tasks, events) = try retried(try await store.retryRun(run.id, tasks: nil, at: now))
        #expect(tasks == ["b", "e"])
        #expect(record.status == .running)
        #expect(record.retries == 1)
        #expect(events.contains { if case .runRetried(run.id, "flow", ["b", "e"], _) = $0 { return true } else { return false } })
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .running)
        #expect(detail.run.finishedAt == nil)
        #expect(detail.run.progress == RunProgress(total: 5, finished: 3, failed: 0))
        #expect(statuses(detail) == ["a": .success, "b": .queued, "c": .success, "d": .success, "e": .pending])
        #expect(detail.tasks.first { $0.id == "a" }?.output == .string("kept"))
        #expect(detail.tasks.first { $0.id == "d" }?.output == .int(4))
        #expect(attemptNumbers(detail, "b") == [1, 2])

        let b = try await claim(store)
        #expect(b.map(\.taskID) == ["b"])
        #expect(b.first?.number == 2)
        // The dependent starts directly on the worker (the direct-start path numbers it too).
        let direct = try await store.exchange(ExchangeRequest(
            completions: b.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .string("again")), finishedAt: Date(), jitter: 0) },
            claim: ClaimRequest(worker: "w1", queues: ["default"], limit: 4, leaseDuration: lease, onlyNewlyReady: true), now: Date()))
        #expect(direct.claimed.map(\.taskID) == ["e"])
        #expect(direct.claimed.first?.number == 1, "e never ran: its first attempt is 1")
        let finished = try await complete(store, direct.claimed, .success(output: .null))
        #expect(finished.events.contains { if case .runFinished(run.id, _, .success, _, _, _) = $0 { return true } else { return false } })
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .success)
        #expect(detail.run.progress == RunProgress(total: 5, finished: 5, failed: 0))
        #expect(detail.tasks.first { $0.id == "b" }?.output == .string("again"))
        #expect(detail.tasks.first { $0.id == "b" }?.attempts.map(\.status) == [.failed, .success])
    }

    static func retryDownstream(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"]), ("c", ["b"]), ("side", [])])
        _ = try await store.createRun(run)
        try await finishAll(store)
        var detail = try await detail(store, run.id)
        #expect(detail.run.status == .success)
        let (_, tasks, _) = try retried(try await store.retryRun(run.id, tasks: ["b"], at: Date()))
        #expect(tasks == ["b", "c"])
        detail = try await self.detail(store, run.id)
        #expect(statuses(detail) == ["a": .success, "b": .queued, "c": .pending, "side": .success])
        #expect(detail.tasks.first { $0.id == "b" }?.output == nil, "a re-run task's old output is cleared")
        let b = try await claim(store)
        #expect(b.map(\.taskID) == ["b"])
        #expect(b.first?.number == 2)
        _ = try await complete(store, b, .success(output: .null))
        let c = try await claim(store)
        #expect(c.map(\.taskID) == ["c"])
        #expect(c.first?.number == 2, "the queued path numbers a re-run dependent on from its last attempt")
        _ = try await complete(store, c, .failure(message: "now c fails"))
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .failed)
        #expect(detail.run.progress == RunProgress(total: 4, finished: 4, failed: 1))
        #expect(detail.run.retries == 1)
    }

    static func retryRefusals(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"])])
        _ = try await store.createRun(run)
        guard case .notFinished(.pending) = try await store.retryRun(run.id, tasks: nil, at: Date()) else {
            Issue.record("a pending run cannot be retried")
            return
        }
        let a = try await claim(store)
        // Cancelled while a runs: its attempt is still stopping.
        _ = try await store.cancelRun(run.id, at: Date())
        guard case .refused(let stopping) = try await store.retryRun(run.id, tasks: nil, at: Date()) else {
            Issue.record("a retry while attempts stop is refused")
            return
        }
        #expect(stopping.code == .conflict)
        _ = try await complete(store, a, .cancelled(message: "run cancelled"))
        guard case .refused(let unknown) = try await store.retryRun(run.id, tasks: ["nope"], at: Date()) else {
            Issue.record("unknown tasks are refused")
            return
        }
        #expect(unknown.code == .invalidSelection)
        #expect(unknown.message.contains("nope"))
        guard case .refused(let blocked) = try await store.retryRun(run.id, tasks: ["b"], at: Date()) else {
            Issue.record("a task whose failed dependency is left out is refused")
            return
        }
        #expect(blocked.code == .invalidSelection)
        var detail = try await detail(store, run.id)
        #expect(detail.run.status == .cancelled, "a refused retry changes nothing")
        let (_, tasks, _) = try retried(try await store.retryRun(run.id, tasks: nil, at: Date()))
        #expect(tasks == ["a", "b"])
        try await finishAll(store)
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .success)
        #expect(attemptNumbers(detail, "a") == [1, 2])
        guard case .refused(let nothing) = try await store.retryRun(run.id, tasks: nil, at: Date()) else {
            Issue.record("a run whose tasks all succeeded has nothing to retry")
            return
        }
        #expect(nothing.code == .conflict)
        guard case .notFound = try await store.retryRun(.generate(), tasks: nil, at: Date()) else {
            Issue.record("expected notFound")
            return
        }
    }

    static func runDeadline(_ store: any WorkflowStore) async throws {
        let now = Date()
        var expiring = newRun(tasks: [("slow", []), ("after", ["slow"]), ("other", [])], at: now.addingTimeInterval(-10))
        expiring.timeout = .seconds(5)
        var later = newRun(tasks: [("x", [])], at: now.addingTimeInterval(-10))
        later.timeout = .seconds(3600)
        let unlimited = newRun(tasks: [("y", [])], at: now.addingTimeInterval(-10))
        for run in [expiring, later, unlimited] { _ = try await store.createRun(run) }
        #expect(try await store.run(expiring.id)?.run.deadline.map { close($0, now.addingTimeInterval(-5)) } == true)
        let running = try await claim(store, limit: 10, at: now).filter { $0.runID == expiring.id }
        #expect(Set(running.map(\.taskID)) == ["slow", "other"])
        let sweep = try await store.timeOutRuns(now: now, limit: 100)
        #expect(sweep.runs.map(\.id) == [expiring.id])
        #expect(sweep.runningAttempts.sorted() == running.map(\.id).sorted())
        #expect(sweep.events.contains { if case .runTimedOut(expiring.id, _, _, _) = $0 { return true } else { return false } })
        #expect(sweep.events.contains { if case .runFinished(expiring.id, _, .failed, _, _, _) = $0 { return true } else { return false } })
        var detail = try await detail(store, expiring.id)
        #expect(detail.run.status == .failed)
        #expect(detail.run.reason == RunReason.timeout)
        #expect(statuses(detail)["after"] == .cancelled)
        let stop = try await store.heartbeat(worker("w1"), running: running.map(\.id), leaseUntil: now.addingTimeInterval(30))
        #expect(stop == Set(running.map(\.id)), "the running attempt is asked to stop")
        #expect(try await store.timeOutRuns(now: now, limit: 100).runs.isEmpty, "a run times out once")
        #expect(try await store.run(later.id)?.run.status.isFinished == false)
        #expect(try await store.run(unlimited.id)?.run.status.isFinished == false)

        _ = try await complete(store, running, .cancelled(message: "run timed out"), at: now)
        let retryAt = now.addingTimeInterval(1)
        let (record, tasks, _) = try retried(try await store.retryRun(expiring.id, tasks: nil, at: retryAt))
        #expect(tasks == ["slow", "after", "other"])
        #expect(record.reason == nil)
        #expect(record.deadline.map { close($0, retryAt.addingTimeInterval(5)) } == true, "a retry gets a fresh deadline")
        detail = try await self.detail(store, expiring.id)
        #expect(detail.run.reason == nil)
        #expect(detail.run.deadline.map { close($0, retryAt.addingTimeInterval(5)) } == true)
        #expect(try await store.timeOutRuns(now: retryAt, limit: 100).runs.isEmpty)
        #expect(try await store.timeOutRuns(now: retryAt.addingTimeInterval(6), limit: 100).runs.map(\.id) == [expiring.id])
    }
}
