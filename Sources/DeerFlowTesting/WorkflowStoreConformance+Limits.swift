import DeerFlow
import DeerFlowCore
import Foundation
import Testing

extension WorkflowStoreConformance {
    /// The checks of concurrency limits (``LimitStore``), part of ``all``.
    static let limitChecks: [Check<any WorkflowStore>] = [
        Check(name: "max_active_runs: further runs wait pending without attempts and start in creation order as earlier runs finish", run: maxActiveRuns),
        Check(name: "max_active_runs: a cancel frees a place, a raised or removed limit starts waiting runs", run: maxActiveRunsChanges),
        Check(name: "queue concurrency: claims never run more attempts of a limited queue than its limit", run: queueConcurrency),
        Check(name: "queue concurrency: newly ready dependents of a limited queue are not started around the limit", run: queueConcurrencyDirectStart),
    ]

    /// Runs of `workflow` that are active and not waiting (what `max_active_runs` bounds).
    static func admittedRuns(_ store: any WorkflowStore, _ workflow: String) async throws -> [RunRecord] {
        try await store.runs(RunQuery(workflow: workflow, limit: 1000)).runs.filter { !$0.status.isFinished && $0.waitingReason == nil }
    }

    static func maxActiveRuns(_ store: any WorkflowStore) async throws {
        try await store.saveRunLimits(["limited": 2], now: Date())
        let start = Date()
        let runs = (0..<5).map { newRun("limited", tasks: [("a", []), ("b", ["a"])], at: start.addingTimeInterval(Double($0) * 0.001)) }
        var created: [RunRecord] = []
        for run in runs { if let record = try await store.createRun(run) { created.append(record) } }
        #expect(created.map(\.waitingReason) == [nil, nil, "max_active_runs 2 reached", "max_active_runs 2 reached", "max_active_runs 2 reached"])
        // A workflow without a limit is not affected.
        let free = newRun("free", tasks: [("a", [])])
        #expect(try await store.createRun(free)?.waitingReason == nil)

        let waiting = try await detail(store, runs[2].id)
        #expect(waiting.run.status == .pending)
        #expect(waiting.run.waitingReason == "max_active_runs 2 reached")
        #expect(statuses(waiting) == ["a": .pending, "b": .pending])
        #expect(waiting.tasks.allSatisfy { $0.attempts.isEmpty })
        #expect(try await store.limitUsage().waitingRuns == ["limited": 3])
        #expect(try await store.limitUsage().runLimits == ["limited": 2])

        // Only the admitted runs' tasks can be claimed: runs 0 and 1, and the unlimited run.
        var order: [RunID] = []
        let first = try await claim(store, limit: 10)
        #expect(Set(first.map(\.runID)) == [runs[0].id, runs[1].id, free.id])
        _ = try await complete(store, first.filter { $0.runID == free.id }, .success(output: .null))

        // Finish the runs one task at a time: each run that finishes lets the oldest waiting one start.
        var running = first.filter { $0.runID != free.id }
        var finishedRuns: [RunID] = []
        var rounds = 0
        while !running.isEmpty && rounds < 50 {
            rounds += 1
            let attempt = running.removeFirst()
            let result = try await complete(store, [attempt], .success(output: .null), claim: 10)
            for event in result.events {
                if case .runFinished(let id, _, .success, _, _, _) = event { finishedRuns.append(id) }
            }
            for claimed in result.claimed where claimed.taskID == "a" { order.append(claimed.runID) }
            running += result.claimed
            let admitted = try await admittedRuns(store, "limited")
            #expect(admitted.count <= 2, "more than 2 runs of 'limited' active: \(admitted.map(\.id))")
        }
        #expect(order == [runs[2].id, runs[3].id, runs[4].id], "waiting runs must start in creation order")
        #expect(Set(finishedRuns) == Set(runs.map(\.id)))
        #expect(try await store.limitUsage().waitingRuns["limited"] == nil)
        for run in runs { #expect(try await detail(store, run.id).run.status == .success) }
    }

    static func maxActiveRunsChanges(_ store: any WorkflowStore) async throws {
        try await store.saveRunLimits(["limited": 1], now: Date())
        let start = Date()
        let runs = (0..<5).map { newRun("limited", tasks: [("a", [])], at: start.addingTimeInterval(Double($0) * 0.001)) }
        for run in runs { _ = try await store.createRun(run) }
        #expect(try await admittedRuns(store, "limited").map(\.id) == [runs[0].id])

        // Cancelling a waiting run starts nothing; cancelling the active one starts the next.
        guard case .cancelled = try await store.cancelRun(runs[1].id, at: Date()) else { throw ConformanceFailure("run 1 was not cancelled") }
        #expect(try await admittedRuns(store, "limited").map(\.id) == [runs[0].id])
        guard case .cancelled = try await store.cancelRun(runs[0].id, at: Date()) else { throw ConformanceFailure("run 0 was not cancelled") }
        #expect(try await admittedRuns(store, "limited").map(\.id) == [runs[2].id])
        #expect(try await detail(store, runs[2].id).tasks.first?.attempts.map(\.status) == [.queued])

        // A raised limit starts waiting runs at once and names the new limit for those left.
        let more = newRun("limited", tasks: [("a", [])], at: start.addingTimeInterval(0.01))
        _ = try await store.createRun(more)
        try await store.saveRunLimits(["limited": 3], now: Date())
        #expect(Set(try await admittedRuns(store, "limited").map(\.id)) == [runs[2].id, runs[3].id, runs[4].id])
        #expect(try await detail(store, more.id).run.waitingReason == "max_active_runs 3 reached")
        // A removed limit starts every waiting run.
        try await store.saveRunLimits(["limited": nil], now: Date())
        #expect(try await admittedRuns(store, "limited").count == 4)
        #expect(try await store.limitUsage().runLimits.isEmpty)
        try await finishAll(store)
        #expect(try await detail(store, more.id).run.status == .success)
    }

    static func queueConcurrency(_ store: any WorkflowStore) async throws {
        try await store.saveQueueLimits(["reports": 2])
        let limited = newRun(tasks: (0..<5).map { ("r\($0)", []) }, queue: "reports")
        let other = newRun(tasks: (0..<3).map { ("d\($0)", []) })
        _ = try await store.createRun(limited)
        _ = try await store.createRun(other)
        let queues = ["default", "reports"]
        let first = try await claim(store, queues: queues, limit: 10)
        #expect(first.filter { $0.queue == "reports" }.count == 2)
        #expect(first.filter { $0.queue == "default" }.count == 3, "an unlimited queue is not affected")
        #expect(try await claim(store, worker: "w2", queues: queues, limit: 10).isEmpty)
        #expect(try await store.limitUsage().queues == ["reports": LimitUsage.Queue(limit: 2, running: 2)])

        // Each finished attempt frees one place, claimed in the same exchange.
        var running = first.filter { $0.queue == "reports" }
        var done = 0
        while let attempt = running.first {
            running.removeFirst()
            let result = try await store.exchange(ExchangeRequest(
                completions: [AttemptCompletion(attemptID: attempt.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0)],
                claim: ClaimRequest(worker: "w1", queues: queues, limit: 10, leaseDuration: lease), now: Date()))
            done += 1
            running += result.claimed
            #expect(running.count <= 2, "more than 2 attempts of 'reports' running")
            #expect(result.claimed.count == (done <= 3 ? 1 : 0))
        }
        #expect(done == 5)

        // A removed limit lets everything through.
        let again = newRun(tasks: (0..<4).map { ("r\($0)", []) }, queue: "reports")
        _ = try await store.createRun(again)
        try await store.saveQueueLimits([:])
        #expect(try await claim(store, queues: ["reports"], limit: 10).count == 4)
        #expect(try await store.limitUsage().queues.isEmpty)
    }

    static func queueConcurrencyDirectStart(_ store: any WorkflowStore) async throws {
        try await store.saveQueueLimits(["reports": 1])
        let chain = newRun(tasks: [("a", []), ("b", ["a"])], queue: "reports")
        _ = try await store.createRun(chain)
        let first = try await claim(store, queues: ["reports"], limit: 5)
        #expect(first.map(\.taskID) == ["a"])
        let other = newRun(tasks: [("c", [])], queue: "reports")
        _ = try await store.createRun(other)
        // A worker that found the queue empty asks for newly ready dependents: b must go through the queue.
        let result = try await store.exchange(ExchangeRequest(
            completions: [AttemptCompletion(attemptID: first[0].id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0)],
            claim: ClaimRequest(worker: "w1", queues: ["reports"], limit: 5, leaseDuration: lease, onlyNewlyReady: true), now: Date()))
        #expect(result.claimed.isEmpty)
        #expect(result.leftReadyQueued, "the worker must claim from the queue next, not wait for its poll")
        let next = try await claim(store, queues: ["reports"], limit: 5)
        #expect(next.count == 1)
        #expect(try await claim(store, worker: "w2", queues: ["reports"], limit: 5).isEmpty)
        if let reason = try await store.limitUsage().queueWaitingReason("reports") {
            #expect(reason == "queue 'reports' concurrency 1 reached")
        } else {
            Issue.record("a full queue has a waiting reason")
        }
    }
}
