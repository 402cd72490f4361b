import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

/// A triggered run's first tasks start on an idle worker of the same process in the run's own
/// transaction (no claim transaction, no wake-up to claim), and only when that overtakes nothing.
@Suite("Direct start of triggered runs")
struct DirectStartTests {
    @Test("only tasks without dependencies in the claim's queues start, up to the claim's limit; none of a limited queue or of a run waiting for max_active_runs")
    func rules() {
        var run = WorkflowStoreConformance.newRun(tasks: [("a", []), ("b", ["a"]), ("c", []), ("d", []), ("e", [])])
        run.tasks[2].queue = "other"
        run.tasks[3].queue = "reports"
        func starts(limit: Int, queues: [String] = ["default", "reports"], limits: LimitSnapshot = LimitSnapshot()) -> [String] {
            let claim = ClaimRequest(worker: "w", queues: queues, limit: limit, leaseDuration: .seconds(30), onlyNewlyReady: true)
            return RunInsertion.directStarts(of: run, claim: claim, limits: limits).map(\.id)
        }
        #expect(starts(limit: 10) == ["a", "d", "e"])
        #expect(starts(limit: 2) == ["a", "d"])
        #expect(starts(limit: 0) == [])
        #expect(starts(limit: 10, queues: ["other"]) == ["c"])
        #expect(starts(limit: 10, limits: LimitSnapshot(queueLimits: ["reports": 2])) == ["a", "e"])
        #expect(starts(limit: 10, limits: LimitSnapshot(runLimits: ["flow": 1])) == [])
    }

    @Test("a run triggered while the worker is idle starts at once on it, and observers hear created, started and finished in order; while every slot is busy, runs wait in the queue and start when one frees")
    func engineStartsOnIdleWorker() async throws {
        let recorder = EventRecorder()
        let gate = Mutex(false)
        let two = Workflow(name: "two")
        two.task(id: "a") { _ in }
        two.task(id: "b") { _ in }
        two.task(id: "c", dependsOn: ["a", "b"]) { _ in }
        let held = Workflow(name: "held")
        held.task(id: "wait") { _ in
            while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        }
        try await withEngine(workflows: [two, held], observers: [recorder]) { engine in
            // Settle the worker: its first claims have run and found the queues empty.
            let warmUp = try await engine.trigger("two")
            #expect(try await engine.waitForRun(warmUp.id, pollInterval: .milliseconds(20)).run.status == .success)

            let run = try await engine.trigger("two")
            #expect(run.status == .running, "an idle worker starts the run in its trigger's transaction")
            #expect(run.startedAt == run.createdAt)
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(20))
            #expect(detail.run.status == .success)
            let first = detail.tasks.prefix(2).flatMap(\.attempts)
            #expect(first.count == 2)
            #expect(first.allSatisfy { $0.queuedAt == $0.startedAt && $0.worker == engine.localWorkerLoad.first?.id })
            let names = recorder.names(of: run.id)
            #expect(names.first == "runCreated")
            #expect(names.filter { $0 == "runStarted" }.count == 1)
            #expect(names.firstIndex(of: "runStarted") ?? .max < names.firstIndex(of: "attemptStarted") ?? -1)
            #expect(names.firstIndex(of: "attemptStarted") ?? .max < names.firstIndex(of: "attemptFinished") ?? -1)
            #expect(names.last == "runFinished")

            // Every slot busy (the testing worker has 4): the next run waits in the queue.
            let slots = engine.localWorkerLoad.first?.slots ?? 0
            var holding: [RunRecord] = []
            for _ in 0..<slots { holding.append(try await engine.trigger("held")) }
            try await waitUntil { engine.localWorkerLoad.first?.busy == slots }
            let waiting = try await engine.trigger("two")
            #expect(waiting.status == .pending)
            gate.withLock { $0 = true }
            #expect(try await engine.waitForRun(waiting.id, pollInterval: .milliseconds(20)).run.status == .success)
            for run in holding {
                #expect(try await engine.waitForRun(run.id, pollInterval: .milliseconds(20)).run.status == .success)
            }
        }
    }

    private func waitUntil(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TestFailure("condition not met within 60 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Engine events, in the order observers heard them.
private final class EventRecorder: EngineObserver {
    private let events = Mutex<[EngineEvent]>([])

    func engine(didEmit events: [EngineEvent]) {
        self.events.withLock { $0 += events }
    }

    /// The kinds of events about `run`, in order.
    func names(of run: RunID) -> [String] {
        events.withLock { events in
            events.compactMap { event -> String? in
                switch event {
                case .runCreated(let id, _, _, _): return id == run ? "runCreated" : nil
                case .runStarted(let id, _, _): return id == run ? "runStarted" : nil
                case .attemptStarted(let info, _, _): return info.runID == run ? "attemptStarted" : nil
                case .attemptFinished(let info, _, _, _, _, _): return info.runID == run ? "attemptFinished" : nil
                case .runFinished(let id, _, _, _, _, _): return id == run ? "runFinished" : nil
                default: return nil
                }
            }
        }
    }
}
