import Testing
@testable import DeerFlowCore

@Suite("Which tasks a retry resets")
struct RunRetryPlanTests {
    /// extract → transform → load, extract → audit; `statuses` in that order.
    func tasks(_ statuses: [TaskStatus], attempts: [Int] = [1, 1, 1, 1]) -> [RunRetryPlan.Task] {
        let ids = ["extract", "transform", "load", "audit"]
        let dependents = [[1, 3], [2], [], []]
        return statuses.indices.map { RunRetryPlan.Task(index: $0, id: ids[$0], status: statuses[$0], dependents: dependents[$0], attempts: attempts[$0]) }
    }

    @Test("without a selection every unsuccessful task is reset; only those waiting for nothing reset are ready")
    func unsuccessful() throws {
        let plan = try RunRetryPlan.plan(tasks: tasks([.success, .failed, .upstreamFailed, .success], attempts: [1, 3, 0, 1]), selected: nil)
        #expect(plan.resets.map(\.id) == ["transform", "load"])
        #expect(plan.resets.map(\.dependenciesRemaining) == [0, 1])
        #expect(plan.resets.map(\.nextAttempt) == [4, 1])
        #expect(plan.resets.map(\.isReady) == [true, false])
        #expect(plan.progress == RunProgress(total: 4, finished: 2, failed: 0))
    }

    @Test("a selection resets the selected tasks and everything downstream, successful ones included")
    func downstream() throws {
        let plan = try RunRetryPlan.plan(tasks: tasks([.success, .success, .success, .success]), selected: ["extract"])
        #expect(plan.resets.map(\.id) == ["extract", "transform", "load", "audit"])
        #expect(plan.resets.map(\.dependenciesRemaining) == [0, 1, 1, 1])
        #expect(plan.progress == RunProgress(total: 4, finished: 0, failed: 0))
    }

    @Test("kept tasks that failed or were cancelled count as failed, so the run still ends failed")
    func keptFailures() throws {
        let plan = try RunRetryPlan.plan(tasks: tasks([.success, .success, .success, .cancelled]), selected: ["load"])
        #expect(plan.resets.map(\.id) == ["load"])
        #expect(plan.progress == RunProgress(total: 4, finished: 3, failed: 1))
    }

    @Test("refusals: unknown tasks, a failed dependency left out, unfinished tasks, nothing to retry")
    func refusals() {
        #expect(throws: RunRetryPlan.Refusal.self) { try RunRetryPlan.plan(tasks: tasks([.success, .failed, .upstreamFailed, .success]), selected: ["nope"]) }
        do {
            _ = try RunRetryPlan.plan(tasks: tasks([.failed, .upstreamFailed, .upstreamFailed, .upstreamFailed]), selected: ["load"])
            Issue.record("load waits for transform, which is not retried")
        } catch {
            #expect(error.code == .invalidSelection)
            #expect(error.message.contains("load depends on transform"))
        }
        do {
            _ = try RunRetryPlan.plan(tasks: tasks([.success, .running, .pending, .success]), selected: nil)
            Issue.record("running tasks are refused")
        } catch {
            #expect(error.code == .conflict)
        }
        do {
            _ = try RunRetryPlan.plan(tasks: tasks([.success, .success, .success, .success]), selected: nil)
            Issue.record("nothing to retry")
        } catch {
            #expect(error.code == .conflict)
        }
        #expect(throws: RunRetryPlan.Refusal.self) { try RunRetryPlan.plan(tasks: tasks([.success, .success, .success, .success]), selected: []) }
    }
}
