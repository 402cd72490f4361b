import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

@Suite("Engine")
struct EngineTests {
    @Test("a DAG runs in dependency order and passes outputs downstream")
    func dagRuns() async throws {
        let order = Mutex<[String]>([])
        let flow = Workflow(name: "dag")
        flow.task(id: "a") { _ in
            order.withLock { $0.append("a") }
            return ["rows": 3]
        }
        flow.task(id: "b", dependsOn: ["a"]) { context in
            let upstream: [String: Int] = try await context.output(of: "a")
            order.withLock { $0.append("b") }
            return upstream["rows", default: 0] * 2
        }
        flow.task(id: "c", dependsOn: ["a"]) { _ in order.withLock { $0.append("c") } }
        flow.task(id: "d", dependsOn: ["b", "c"]) { _ in order.withLock { $0.append("d") } }
        flow.task(id: "e", dependsOn: ["d"]) { _ in JSONValue.object(["kept": .array([.int(1), .string("as is")])]) }
        try await withEngine(workflows: [flow]) { engine in
            let run = try await engine.trigger("dag")
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .success)
            #expect(detail.tasks.map(\.status) == [.success, .success, .success, .success, .success])
            #expect(detail.tasks[0].output == .object(["rows": .int(3)]))
            #expect(detail.tasks[1].output == .int(6))
            #expect(detail.tasks[3].output == .null, "a task returning nothing stores null")
            #expect(detail.tasks[4].output == .object(["kept": .array([.int(1), .string("as is")])]))
            let seen = order.withLock { $0 }
            #expect(seen.first == "a")
            #expect(seen.last == "d")
            #expect(Set(seen) == ["a", "b", "c", "d"])
        }
    }

    @Test("a failing task with retries succeeds on a later attempt")
    func retries() async throws {
        let calls = Mutex(0)
        let flow = Workflow(name: "flaky")
        flow.task(id: "flaky", retries: 2, retryDelay: .milliseconds(10)) { _ in
            let call = calls.withLock { value -> Int in
                value += 1
                return value
            }
            if call < 3 { throw TestFailure("boom \(call)") }
            return "ok"
        }
        try await withEngine(workflows: [flow]) { engine in
            let run = try await engine.trigger("flaky")
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .success)
            #expect(detail.tasks[0].attempts.map(\.status) == [.failed, .failed, .success])
            #expect(detail.tasks[0].attempts[0].error == "boom 1")
        }
    }

    @Test("a failed task fails its run once independent branches have finished")
    func upstreamFailure() async throws {
        let flow = Workflow(name: "fails")
        flow.task(id: "bad") { _ in throw TestFailure("nope") }
        flow.task(id: "after", dependsOn: ["bad"]) { _ in }
        flow.task(id: "independent") { _ in try await Task.sleep(for: .milliseconds(100)) }
        try await withEngine(workflows: [flow]) { engine in
            let run = try await engine.trigger("fails")
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .failed)
            #expect(detail.tasks.map(\.status) == [.failed, .upstreamFailed, .success])
        }
    }

    @Test("a task over its timeout is stopped and counted as timeout")
    func timeout() async throws {
        let flow = Workflow(name: "slow")
        flow.task(id: "slow", timeout: .milliseconds(100)) { _ in try await Task.sleep(for: .seconds(30)) }
        try await withEngine(workflows: [flow]) { engine in
            let run = try await engine.trigger("slow")
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .failed)
            #expect(detail.tasks[0].status == .timeout)
            #expect(detail.tasks[0].attempts.first?.status == .timeout)
            #expect(detail.tasks[0].attempts.first?.error == "timed out after 100ms")
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}
