import DeerFlow
import DeerFlowCore
import Foundation
import Testing

/// Runs started by `workflow` tasks: the parent they record and the one child per parent attempt.
extension WorkflowStoreConformance {
    static let subWorkflowChecks: [Check<any WorkflowStore>] = [
        Check(name: "a child run records its parent attempt, is listed among the parent's children, and is created once per parent attempt", run: childRuns),
    ]

    static func childRuns(_ store: any WorkflowStore) async throws {
        let parent = newRun("parent", tasks: [("call", [])])
        _ = try await store.createRun(parent)
        let other = newRun("parent", tasks: [("call", [])])
        _ = try await store.createRun(other)

        var first = newRun("child", tasks: [("x", [])], trigger: .workflow)
        first.parent = RunParent(runID: parent.id, taskID: "call", attempt: 1)
        let created = try await store.createRun(first)
        #expect(created?.parent == first.parent)
        #expect(created?.trigger == .workflow)
        let stored = try await detail(store, first.id)
        #expect(stored.run.parent == first.parent, "the run's detail carries its parent")
        #expect(stored.tasks.first?.status == .queued, "a child run queues its roots like any run")

        var twin = newRun("child", tasks: [("x", [])], trigger: .workflow)
        twin.parent = first.parent
        #expect(try await store.createRun(twin) == nil, "a second child of the same parent attempt is not created")
        #expect(try await store.run(twin.id) == nil)

        var retried = newRun("child", tasks: [("x", [])], trigger: .workflow)
        retried.parent = RunParent(runID: parent.id, taskID: "call", attempt: 2)
        #expect(try await store.createRun(retried) != nil, "the next attempt may start a child of its own")

        let children = try await store.childRuns(of: parent.id)
        #expect(children.map(\.id) == [first.id, retried.id], "oldest first")
        #expect(children.map { $0.parent?.attempt } == [1, 2])
        #expect(try await store.childRuns(of: other.id).isEmpty)
        #expect(try await store.childRuns(of: first.id).isEmpty)
        let listed = try await store.runs(RunQuery(workflow: "child"))
        #expect(Set(listed.runs.compactMap { $0.parent?.runID }) == [parent.id], "listings carry the parent too")
        #expect(try await store.run(parent.id)?.run.parent == nil)
    }
}
