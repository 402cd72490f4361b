import DeerFlow
import DeerFlowCore
import DeerFlowServer
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import InMemoryTracing
import Logging
import Testing
import Tracing

/// Sub-workflows declared with the Swift DSL, in one process: outputs, the trace, registration checks.
@Suite("Sub-workflows in Swift")
struct SubWorkflowEngineTests {
    static func workflows() -> [Workflow] {
        let outer = Workflow(name: "outer")
        outer.subWorkflow(id: "call", workflow: "inner", params: ["n": "21"])
        let inner = Workflow(name: "inner", params: [ParamDefinition("n", type: .int)])
        inner.task(id: "double") { context in (context.params["n"]?.intValue ?? 0) * 2 }
        return [outer, inner]
    }

    @Test("subWorkflow(...) runs the child with its params and outputs its task outputs; the child's run span is a child of the task's span")
    func outputsAndTrace() async throws {
        let tracer = InMemoryTracer()
        try await withTracer(tracer) {
            try await withEngine(workflows: Self.workflows()) { engine in
                let run = try await engine.trigger("outer")
                let finished = try await engine.waitForRun(run.id, pollInterval: .milliseconds(20))
                #expect(finished.run.status == .success)
                #expect(finished.tasks.first?.output == ["double": 42], "\(finished.tasks)")
                let detail = try #require(try await engine.run(run.id))
                let child = try #require(detail.children.first)
                #expect(detail.children.count == 1 && child.workflow == "inner" && child.trigger == .workflow)
                #expect(child.parent == RunParent(runID: run.id, taskID: "call", attempt: 1))
                #expect(child.params == ["n": 21], "\"21\" is read as the child's int parameter")
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, tracer.finishedSpans.filter({ $0.operationName == "workflow.run" }).count < 2 {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        let spans = tracer.finishedSpans
        let runSpans = spans.filter { $0.operationName == "workflow.run" }
        let outerRun = try #require(runSpans.first { $0.attributes["deerflow.workflow"]?.toSpanAttribute() == .string("outer") })
        let innerRun = try #require(runSpans.first { $0.attributes["deerflow.workflow"]?.toSpanAttribute() == .string("inner") })
        let callSpan = try #require(spans.first { $0.operationName == "task.execute" && $0.attributes["deerflow.task_id"]?.toSpanAttribute() == .string("call") })
        #expect(callSpan.spanContext.parentSpanID == outerRun.spanContext.spanID)
        #expect(innerRun.spanContext.parentSpanID == callSpan.spanContext.spanID, "the child's run continues the task's span")
        #expect(innerRun.spanContext.traceID == outerRun.spanContext.traceID, "one trace for the chain")
        #expect(innerRun.attributes["deerflow.trigger"]?.toSpanAttribute() == .string("workflow"))
    }

    @Test("registering a workflow task whose child is missing or that closes a cycle is refused, naming the problem")
    func registration() {
        let lonely = Workflow(name: "lonely")
        lonely.subWorkflow(id: "call", workflow: "missing")
        #expect(throws: DeerFlowError.self) { try WorkflowRegistry([lonely]) }
        do {
            _ = try WorkflowRegistry([lonely])
        } catch {
            #expect("\(error)".contains("workflow 'lonely': tasks[0].workflow: unknown workflow 'missing'"), "\(error)")
        }
        let ping = Workflow(name: "ping")
        ping.subWorkflow(id: "to-pong", workflow: "pong")
        let pong = Workflow(name: "pong")
        pong.subWorkflow(id: "to-ping", workflow: "ping", wait: false)
        do {
            _ = try WorkflowRegistry([ping, pong])
            Issue.record("a cycle was registered")
        } catch {
            #expect("\(error)".contains("sub-workflow cycle: ping → pong → ping"), "\(error)")
        }
    }

    @Test("a process warns at start when a chain of waiting sub-workflows needs more worker slots than it has")
    func slotWarning() {
        let definitions = Self.workflows().map(\.definition) + [
            WorkflowDefinition(name: "top", tasks: [TaskDefinition(id: "x", action: .workflow(SubWorkflowAction(workflow: "outer")))]),
        ]
        let warning = DeerFlowRuntime.subWorkflowSlotWarning(definitions, slots: 2)
        #expect(warning?.hasPrefix("the sub-workflow chain top → outer → inner holds 2 worker slots while its last run needs another, but this worker has 2") == true, "\(warning ?? "none")")
        #expect(warning?.contains("give --slots 3 or more") == true)
        #expect(DeerFlowRuntime.subWorkflowSlotWarning(definitions, slots: 3) == nil)
    }

    @Test("a parent holding the only worker slot while its child waits for one is reported as a deadlock, and cancelling the parent cancels the child")
    func deadlockIsReported() async throws {
        let lines = LogRecorder(level: .error)
        var worker = WorkerService.Configuration.testing
        worker.slots = 1
        try await withEngine(workflows: Self.workflows(), worker: worker, logger: lines.logger) { engine in
            let run = try await engine.trigger("outer")
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, !lines.messages.contains(where: { $0.contains("every worker slot of this process (1) is held by a workflow task waiting for its child run") }) {
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(lines.messages.contains { $0.contains("every worker slot of this process (1)") && $0.contains("give more slots") }, "\(lines.messages)")
            let child = try #require(try await engine.run(run.id)?.children.first)
            #expect(child.status == .running || child.status == .pending)
            try await engine.cancel(run.id)
            let cancelled = try await engine.waitForRun(child.id, pollInterval: .milliseconds(50))
            #expect(cancelled.run.status == .cancelled)
        }
    }
}
