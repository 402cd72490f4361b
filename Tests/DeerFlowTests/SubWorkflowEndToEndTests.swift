import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `type: workflow` tasks through a real `deerflow server` on SQLite.
@Suite("Sub-workflows end to end (SQLite)")
struct SubWorkflowEndToEndTests {
    @Test("a 3-level chain passes templated params down and outputs up, linked both ways; a failing or cancelled child fails its parent; cancelling the parent, its run timeout or its task timeout cancels the child; wait: false fires and forgets")
    func scenario() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (name, text) in SubWorkflowScenario.workflows { try directory.write("workflows/\(name)", text) }
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), workers: true)
        defer { server.stop() }
        try await SubWorkflowScenario.check(api: try await server.apiPort())
    }

    @Test("a server killed with kill -9 while a parent waits: after the restart its next attempt waits for the same child, the only one")
    func killWhileWaiting() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let go = directory.file("go")
        try directory.write("workflows/held-parent.yaml", "name: held-parent\ntasks:\n  - id: call\n    type: workflow\n    workflow: held-child\n")
        try directory.write("workflows/held-child.yaml", """
            name: held-child
            tasks:
              - id: hold
                type: shell
                script: 'while [ ! -f "\(go)" ]; do sleep 0.1; done; echo released'
            """)
        try directory.write("config/deerflow.yaml", "worker:\n  lease: 2s\nscheduler:\n  worker_timeout: 3s\n")
        let database = "sqlite://" + directory.file("db.sqlite")
        let first = try ServerProcess.server(database: database, workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { first.stop() }
        let api = try await first.apiPort()
        let parent = try await ClusterAPI.trigger(api: api, workflow: "held-parent")
        let child = try await SubWorkflowScenario.runningChild(api: api, of: parent)
        first.signal(SIGKILL)
        _ = try await first.waitForExit()

        let second = try ServerProcess.server(database: database, workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { second.stop() }
        let secondAPI = try await second.apiPort()
        _ = FileManager.default.createFile(atPath: go, contents: Data())
        let finished = try await ClusterAPI.waitForRuns(api: secondAPI, ids: [parent, child], timeout: .seconds(60))
        let run = try #require(finished[parent])
        #expect(run["status"]?.stringValue == "success", "\(run)\n\(second.log)")
        #expect(SubWorkflowScenario.children(run).map { $0["run_id"]?.stringValue } == [child], "one child, started by the first attempt: \(run)")
        #expect(finished[child]?["status"]?.stringValue == "success")
        guard case .array(let attempts)? = SubWorkflowScenario.task(run, "call")["attempts"] else { throw TestFailure("no attempts: \(run)") }
        #expect(attempts.count >= 2, "the killed attempt was reclaimed and the next one waited: \(attempts)")
        #expect(SubWorkflowScenario.task(run, "call")["output"] == ["hold": ["exit_code": 0]])

        let secondURL = "http://127.0.0.1:\(secondAPI)"
        let parentStatus = try await CLITests.deerflow(["status", parent, "--api", secondURL])
        #expect(parentStatus.stdout.contains("child runs:") && parentStatus.stdout.contains(child) && parentStatus.stdout.contains("call (attempt 1)"), "\(parentStatus)")
        let childStatus = try await CLITests.deerflow(["status", child, "--api", secondURL])
        #expect(childStatus.stdout.contains("started by task call (attempt 1) of run \(parent)"), "\(childStatus)")
    }

    @Test("deerflow validate names unknown child workflows and cycles with file:line, and warns only for single files")
    func validate() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/a.yaml", "name: a\ntasks:\n  - id: to-b\n    type: workflow\n    workflow: b\n")
        try directory.write("workflows/b.yaml", "name: b\ntasks:\n  - id: to-a\n    type: workflow\n    workflow: a\n  - id: lost\n    type: workflow\n    workflow: nowhere\n")
        let all = try await CLITests.deerflow(["validate", directory.file("workflows")])
        #expect(all.status == 1, "\(all)")
        #expect(all.stderr.contains("a.yaml:5:5: tasks[0].workflow: sub-workflow cycle: a → b → a"), "\(all)")
        #expect(all.stderr.contains("b.yaml:8:5: tasks[1].workflow: unknown workflow 'nowhere' (known: a, b)"), "\(all)")
        let single = try await CLITests.deerflow(["validate", directory.file("workflows/a.yaml")])
        #expect(single.status == 0, "\(single)")
        #expect(single.stderr.contains("a.yaml:5:5: tasks[0].workflow: warning: unknown workflow 'b'"), "\(single)")
    }
}
