public import DeerFlowCore
import Foundation
import Testing

/// Sub-workflows through a real server (SQLite and PostgreSQL): a 3-level chain passing outputs
/// up, a failing child failing its parent, cancelling a parent cancels its child (and cancelling
/// a child fails its parent's task), and a fire-and-forget child.
public enum SubWorkflowScenario {
    /// The workflow files, by file name.
    public static let workflows: [String: String] = [
        "chain-a.yaml": """
            name: chain-a
            params:
              day: {type: string, default: "2024-06-01"}
            tasks:
              - id: prep
                type: shell
                script: 'echo "{\\"n\\": 3}" > "$DEERFLOW_OUTPUT"'
              - id: call-b
                type: workflow
                depends_on: [prep]
                workflow: chain-b
                params: {day: "{{ params.day }}", n: "{{ tasks.prep.output.n }}"}
            """,
        "chain-b.yaml": """
            name: chain-b
            params:
              day: string
              n: int
            tasks:
              - id: call-c
                type: workflow
                workflow: chain-c
                params: {word: "day {{ params.day }} n {{ params.n }}"}
            """,
        "chain-c.yaml": """
            name: chain-c
            params:
              word: string
            tasks:
              - id: say
                type: shell
                env: {WORD: "{{ params.word }}"}
                script: 'printf "{\\"said\\": \\"%s\\"}" "$WORD" > "$DEERFLOW_OUTPUT"'
            """,
        "fail-parent.yaml": """
            name: fail-parent
            tasks:
              - id: call
                type: workflow
                workflow: fail-child
            """,
        "fail-child.yaml": """
            name: fail-child
            tasks:
              - id: explode
                type: shell
                script: 'echo boom >&2; exit 3'
            """,
        "slow-parent.yaml": """
            name: slow-parent
            tasks:
              - id: call
                type: workflow
                workflow: slow-child
            """,
        "slow-child.yaml": """
            name: slow-child
            tasks:
              - id: nap
                type: sleep
                duration: 60s
            """,
        "timed-parent.yaml": """
            name: timed-parent
            tasks:
              - id: call
                type: workflow
                workflow: slow-child
                timeout: 1s
            """,
        "deadline-parent.yaml": """
            name: deadline-parent
            timeout: 2s
            tasks:
              - id: call
                type: workflow
                workflow: slow-child
            """,
        "fire-parent.yaml": """
            name: fire-parent
            tasks:
              - id: fire
                type: workflow
                workflow: fire-child
                wait: false
            """,
        "fire-child.yaml": """
            name: fire-child
            tasks:
              - id: nap
                type: sleep
                duration: 1s
            """,
    ]

    /// A task of a run's answer.
    public static func task(_ run: [String: JSONValue], _ id: String) -> [String: JSONValue] {
        guard case .array(let tasks)? = run["tasks"] else { return [:] }
        for case .object(let task) in tasks where task["id"]?.stringValue == id { return task }
        return [:]
    }

    /// The `children` of a run's answer.
    public static func children(_ run: [String: JSONValue]) -> [[String: JSONValue]] {
        guard case .array(let children)? = run["children"] else { return [] }
        return children.compactMap { if case .object(let child) = $0 { child } else { nil } }
    }

    static func lastError(_ task: [String: JSONValue]) -> String {
        guard case .array(let attempts)? = task["attempts"], case .object(let last)? = attempts.last else { return "" }
        return last["error"]?.stringValue ?? ""
    }

    static func parent(_ run: [String: JSONValue]) -> [String: JSONValue] {
        if case .object(let parent)? = run["parent"] { return parent }
        return [:]
    }

    static func post(_ api: Int, _ path: String) async throws -> Int {
        try await TestServer.send("POST", "http://127.0.0.1:\(api)\(path)", body: nil, headers: [:]).status
    }

    /// Waits for the first child of `parent` to exist and be running; returns its id.
    public static func runningChild(api: Int, of parent: String) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let child = children(try await ClusterAPI.run(api: api, id: parent)).first, let id = child["run_id"]?.stringValue,
               try await ClusterAPI.run(api: api, id: id)["status"]?.stringValue == "running" {
                return id
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessFailure("run \(parent) started no running child within 30 s")
    }

    /// Runs every case against the API of a server with workers (at least 3 slots).
    public static func check(api: Int) async throws {
        // A 3-level chain: outputs come up, each child links to its parent and back.
        let a = try await ClusterAPI.trigger(api: api, workflow: "chain-a")
        let runA = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [a], timeout: .seconds(60))[a])
        #expect(runA["status"]?.stringValue == "success", "\(runA)")
        let expected: JSONValue = ["call-c": ["say": ["said": "day 2024-06-01 n 3"]]]
        #expect(task(runA, "call-b")["output"] == expected, "\(task(runA, "call-b"))")
        let childrenOfA = children(runA)
        #expect(childrenOfA.count == 1 && childrenOfA.first?["task_id"]?.stringValue == "call-b" && childrenOfA.first?["attempt"]?.intValue == 1,
                "\(childrenOfA)")
        let b = try #require(childrenOfA.first?["run_id"]?.stringValue)
        let runB = try await ClusterAPI.run(api: api, id: b)
        #expect(runB["workflow"]?.stringValue == "chain-b" && runB["trigger"]?.stringValue == "workflow", "\(runB)")
        #expect(parent(runB) == ["run_id": .string(a), "task_id": "call-b", "attempt": 1], "\(runB)")
        #expect(runB["params"] == ["day": "2024-06-01", "n": 3], "templates rendered; a whole-expression template keeps the output's number")
        let c = try #require(children(runB).first?["run_id"]?.stringValue, "\(runB)")
        let runC = try await ClusterAPI.run(api: api, id: c)
        #expect(parent(runC)["run_id"]?.stringValue == b && runC["status"]?.stringValue == "success", "\(runC)")
        #expect(parent(runA).isEmpty && runA["parent"] == .null, "a run not started by a workflow task has parent null")
        let page = try await TestServer.send("GET", "http://127.0.0.1:\(api)/runs/\(b)", body: nil, headers: [:])
        #expect(page.status == 200, "\(page.status)")
        #expect(page.text.contains("href=\"/runs/\(a)\"") && page.text.contains("href=\"/runs/\(c)\""), "the run page links parent and child: \(page.text)")

        // A failing child fails its parent's task, naming the child run and its failed task.
        let failing = try await ClusterAPI.trigger(api: api, workflow: "fail-parent")
        let failed = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [failing], timeout: .seconds(60))[failing])
        #expect(failed["status"]?.stringValue == "failed", "\(failed)")
        let failedChild = try #require(children(failed).first?["run_id"]?.stringValue, "\(failed)")
        let message = lastError(task(failed, "call"))
        #expect(message.hasPrefix("child run \(failedChild) (workflow 'fail-child') failed: task 'explode' failed"), "\(message)")
        // Retrying the parent after its child failed starts a new child, for the new attempt.
        #expect(try await post(api, "/api/v1/runs/\(failing)/retry") == 200)
        let retried = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [failing], timeout: .seconds(60))[failing])
        #expect(retried["status"]?.stringValue == "failed", "\(retried)")
        #expect(children(retried).map { $0["attempt"]?.intValue } == [1, 2] && children(retried).first?["run_id"]?.stringValue == failedChild, "\(children(retried))")

        // Cancelling the parent cancels the running child.
        let slow = try await ClusterAPI.trigger(api: api, workflow: "slow-parent")
        let slowChild = try await runningChild(api: api, of: slow)
        #expect(try await post(api, "/api/v1/runs/\(slow)/cancel") == 200)
        let stopped = try await ClusterAPI.waitForRuns(api: api, ids: [slow, slowChild], timeout: .seconds(30))
        #expect(stopped[slow]?["status"]?.stringValue == "cancelled")
        #expect(stopped[slowChild]?["status"]?.stringValue == "cancelled", "\(stopped[slowChild] ?? [:])")

        // Cancelling the child fails the parent's task.
        let orphaned = try await ClusterAPI.trigger(api: api, workflow: "slow-parent")
        let cancelledChild = try await runningChild(api: api, of: orphaned)
        #expect(try await post(api, "/api/v1/runs/\(cancelledChild)/cancel") == 200)
        let orphanedRun = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [orphaned], timeout: .seconds(30))[orphaned])
        #expect(orphanedRun["status"]?.stringValue == "failed", "\(orphanedRun)")
        #expect(lastError(task(orphanedRun, "call")) == "child run \(cancelledChild) (workflow 'slow-child') was cancelled", "\(orphanedRun)")

        // A workflow task's own timeout cancels its child.
        let timed = try await ClusterAPI.trigger(api: api, workflow: "timed-parent")
        let timedRun = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [timed], timeout: .seconds(30))[timed])
        #expect(timedRun["status"]?.stringValue == "failed" && task(timedRun, "call")["status"]?.stringValue == "timeout", "\(timedRun)")
        let timedChild = try #require(children(timedRun).first?["run_id"]?.stringValue, "\(timedRun)")
        let timedOut = try await ClusterAPI.waitForRuns(api: api, ids: [timedChild], timeout: .seconds(30))[timedChild]
        #expect(timedOut?["status"]?.stringValue == "cancelled", "\(timedOut ?? [:])")

        // The parent's run timeout cancels its child.
        let deadline = try await ClusterAPI.trigger(api: api, workflow: "deadline-parent")
        let deadlineRun = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [deadline], timeout: .seconds(30))[deadline])
        #expect(deadlineRun["status"]?.stringValue == "failed" && deadlineRun["reason"]?.stringValue == "timeout", "\(deadlineRun)")
        let deadlineChild = try #require(children(deadlineRun).first?["run_id"]?.stringValue, "\(deadlineRun)")
        let expired = try await ClusterAPI.waitForRuns(api: api, ids: [deadlineChild], timeout: .seconds(30))[deadlineChild]
        #expect(expired?["status"]?.stringValue == "cancelled", "\(expired ?? [:])")

        // wait: false succeeds at once with the child's run id; the child runs on.
        let fire = try await ClusterAPI.trigger(api: api, workflow: "fire-parent")
        let fired = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [fire], timeout: .seconds(30))[fire])
        #expect(fired["status"]?.stringValue == "success", "\(fired)")
        guard case .object(let output)? = task(fired, "fire")["output"], let firedChild = output["run_id"]?.stringValue else {
            throw ProcessFailure("fire-parent's task has no run_id output: \(fired)")
        }
        #expect(children(fired).first?["run_id"]?.stringValue == firedChild)
        let child = try await ClusterAPI.waitForRuns(api: api, ids: [firedChild], timeout: .seconds(30))[firedChild]
        #expect(child?["status"]?.stringValue == "success" && parent(child ?? [:])["run_id"]?.stringValue == fire, "\(child ?? [:])")
    }
}
