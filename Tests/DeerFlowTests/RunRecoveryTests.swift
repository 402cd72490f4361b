import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Retry, rerun and run timeouts through a real `deerflow server` and the CLI.
@Suite("Retry, rerun and run timeouts")
struct RunRecoveryTests {
    static func get(_ url: String) async throws -> [String: JSONValue] {
        let answer = try await TestServer.send("GET", url, body: nil, headers: [:])
        guard case .object(let object)? = answer.json else { throw TestFailure("GET \(url): \(answer.status) \(answer.text)") }
        return object
    }

    static func task(_ run: [String: JSONValue], _ id: String) -> [String: JSONValue] {
        guard case .array(let tasks)? = run["tasks"] else { return [:] }
        for case .object(let task) in tasks where task["id"]?.stringValue == id { return task }
        return [:]
    }

    static func attemptNumbers(_ task: [String: JSONValue]) -> [Int] {
        guard case .array(let attempts)? = task["attempts"] else { return [] }
        return attempts.compactMap { attempt in
            if case .object(let object) = attempt { return object["number"]?.intValue }
            return nil
        }
    }

    @Test("deerflow retry re-runs the failed tasks in the same run, survives kill -9 of the server, and deerflow rerun starts a linked run")
    func retrySurvivesKill() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fixed = directory.file("fixed")
        let go = directory.file("go")
        try directory.write("workflows/flaky.yaml", RetryScenario.flakyWorkflow(fixed: fixed, go: go))
        let arguments = [
            "server", "--workflows", directory.file("workflows"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ]
        let first = try ServerProcess(arguments)
        defer { first.stop() }
        let api = "http://127.0.0.1:\(try await first.apiPort())"
        let metrics = "http://127.0.0.1:\(try await first.metricsPort())/metrics"

        let failed = try await CLITests.deerflow(["run", "flaky", "--wait", "--api", api])
        #expect(failed.status == 1, "\(failed)")
        let id = try #require(CLITests.runID(in: failed.stdout), "\(failed)")
        var run = try await Self.get("\(api)/api/v1/runs/\(id)")
        #expect(run["status"]?.stringValue == "failed")
        #expect(Self.task(run, "load")["status"]?.stringValue == "upstream_failed")

        let unknown = try await CLITests.deerflow(["retry", id, "--task", "lod", "--api", api])
        #expect(unknown.status != 0, "\(unknown)")
        #expect(unknown.stderr.contains("unknown task lod"), "\(unknown)")
        #expect(unknown.stderr.contains("422"), "\(unknown)")
        let missing = try await TestServer.send("POST", "\(api)/api/v1/runs/01J0ABCDEF0123456789ABCDEF/retry", body: nil, headers: [:])
        #expect(missing.status == 404, "\(missing.text)")

        _ = FileManager.default.createFile(atPath: fixed, contents: Data())
        let retried = try await CLITests.deerflow(["retry", id, "--api", api])
        #expect(retried.status == 0, "\(retried)")
        #expect(retried.stdout.contains("run \(id): running again (retry 1)"), "\(retried)")
        let again = try await TestServer.send("POST", "\(api)/api/v1/runs/\(id)/retry", body: nil, headers: [:])
        #expect(again.status == 409, "\(again.text)")
        #expect(again.text.contains("is still running; only finished runs can be retried"), "\(again.text)")
        let early = try await TestServer.send("POST", "\(api)/api/v1/runs/\(id)/rerun", body: "{}", headers: [:])
        #expect(early.status == 409, "\(early.text)")
        let counted = try MetricSamples.parse(try await TestServer.send("GET", metrics, body: nil, headers: [:]).text)
        #expect(counted[#"deerflow_run_retries_total{workflow="flaky"}"#] == 1)
        #expect(first.log.contains("run retried"), "the retry is logged")

        try await eventually("the retried gate runs", timeout: .seconds(60)) {
            Self.task(try await Self.get("\(api)/api/v1/runs/\(id)"), "gate")["status"]?.stringValue == "running"
        }
        first.signal(SIGKILL)
        _ = try await first.waitForExit()

        let second = try ServerProcess(arguments)
        defer { second.stop() }
        let secondAPI = "http://127.0.0.1:\(try await second.apiPort())"
        _ = FileManager.default.createFile(atPath: go, contents: Data())
        try await eventually("the retried run finished after the restart", timeout: .seconds(120)) {
            run = try await Self.get("\(secondAPI)/api/v1/runs/\(id)")
            return run["finished_at"] != nil && run["finished_at"] != .null
        }
        #expect(run["status"]?.stringValue == "success", "\(run)\n\(second.log)")
        #expect(run["retries"]?.intValue == 1)
        #expect(Self.attemptNumbers(Self.task(run, "extract")) == [1], "the successful task was kept, not run again")
        let gateAttempts = Self.attemptNumbers(Self.task(run, "gate"))
        #expect(gateAttempts.first == 1 && gateAttempts.count >= 2 && gateAttempts == Array(1...gateAttempts.count), "\(gateAttempts)")
        #expect(Self.attemptNumbers(Self.task(run, "load")) == [1])
        if case .object(let progress)? = run["progress"] {
            #expect(progress["finished"]?.intValue == 3 && progress["failed"]?.intValue == 0, "\(progress)")
        }

        let rerun = try await CLITests.deerflow(["rerun", id, "--param", "who=second", "--api", secondAPI])
        #expect(rerun.status == 0, "\(rerun)")
        let newID = try #require(CLITests.runID(in: rerun.stdout), "\(rerun)")
        #expect(rerun.stdout.contains("as a rerun of \(id)"), "\(rerun)")
        var copy = try await Self.get("\(secondAPI)/api/v1/runs/\(newID)")
        #expect(copy["rerun_of"]?.stringValue == id)
        guard case .object(let params)? = copy["params"] else { throw TestFailure("no params: \(copy)") }
        #expect(params["who"]?.stringValue == "second")
        #expect(params["token"]?.stringValue == "[REDACTED]", "secret values are never echoed")
        try await eventually("the rerun finished", timeout: .seconds(60)) {
            copy = try await Self.get("\(secondAPI)/api/v1/runs/\(newID)")
            return copy["status"]?.stringValue == "success"
        }
        let log = try await TestServer.send("GET", "\(secondAPI)/api/v1/runs/\(newID)/tasks/gate/log", body: nil, headers: [:])
        #expect(log.text.contains("gate for second"), "\(log.text)")
        let status = try await CLITests.deerflow(["status", newID, "--api", secondAPI])
        #expect(status.stdout.contains("rerun of \(id)"), "\(status)")
        let badParam = try await CLITests.deerflow(["rerun", id, "--param", "whom=x", "--api", secondAPI])
        #expect(badParam.status == 64 && badParam.stderr.contains("has no parameter 'whom'"), "\(badParam)")
    }

    @Test("a workflow's run timeout fails the run with reason timeout, stops its running attempt, counts it; a retry gets a fresh deadline")
    func runTimeout() async throws {
        let slow = ["slow.yaml": """
            name: slow
            timeout: 2s
            tasks:
              - id: nap
                type: sleep
                duration: 60s
              - id: after
                type: noop
                depends_on: [nap]
            """]
        try await withTestServer(yamlWorkflows: slow) { server in
            let created = try await server.engine.trigger("slow")
            let deadline = try #require(created.deadline)
            #expect(abs(deadline.timeIntervalSince(created.createdAt) - 2) < 0.01)
            var detail = try await server.engine.waitForRun(created.id, pollInterval: .milliseconds(200))
            #expect(detail.run.status == .failed)
            #expect(detail.run.reason == "timeout")
            #expect(detail.tasks.first { $0.id == "after" }?.status == .cancelled)
            try await eventually("the running attempt was stopped") {
                let nap = try await server.engine.run(created.id)?.tasks.first { $0.id == "nap" }
                return nap?.attempts.last?.status == .cancelled
            }
            let nap = try await server.engine.run(created.id)?.tasks.first { $0.id == "nap" }
            #expect(nap?.attempts.last?.error == "run timed out", "the scheduler's process stops its own attempt saying why")
            let answer = try await Self.get("\(server.apiURL)/api/v1/runs/\(created.id)")
            #expect(answer["reason"]?.stringValue == "timeout")
            let samples = try MetricSamples.parse(try await TestServer.send("GET", server.metricsURL, body: nil, headers: [:]).text)
            #expect(samples[#"deerflow_run_timeouts_total{workflow="slow"}"#] == 1)
            #expect(samples[#"deerflow_workflows_total{status="failed",workflow="slow"}"#] == 1)

            let before = Date()
            let retried = try await server.engine.retry(created.id)
            #expect(retried.status == .running)
            #expect(retried.reason == nil)
            #expect((retried.deadline ?? .distantPast) >= before.addingTimeInterval(2), "a fresh deadline")
            detail = try await server.engine.waitForRun(created.id, pollInterval: .milliseconds(200))
            #expect(detail.run.reason == "timeout", "the retry timed out again")
            #expect(detail.tasks.first { $0.id == "nap" }?.attempts.map(\.number) == [1, 2])
        }
    }

    @Test("the run page offers Retry failed tasks and Rerun for a finished run, as CSRF-checked forms, and shows the reason and the links")
    func uiButtons() async throws {
        let workflows = ["once.yaml": """
            name: once
            timeout: 1h
            tasks:
              - id: ok
                type: noop
              - id: broken
                type: shell
                depends_on: [ok]
                script: 'test -f "$DEERFLOW_PARAM_MARKER" || exit 4'
            params:
              marker: {type: string, default: /nonexistent/marker}
            """]
        try await withTestServer(yamlWorkflows: workflows) { server in
            let marker = server.directory.file("marker")
            let created = try await server.engine.trigger("once", params: ["marker": .string(marker)])
            _ = try await server.engine.waitForRun(created.id, pollInterval: .milliseconds(50))
            let page = try await server.request("GET", "/runs/\(created.id)")
            #expect(page.text.contains("Retry failed tasks") && page.text.contains(">Rerun<"))
            let cookie = try #require(page.header("set-cookie")?.split(separator: ";").first.map(String.init))
            let csrf = try #require(page.text.firstMatch(of: /name="csrf" value="([^"]+)"/)?.1)
            let form = ["Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"]
            let forged = try await server.request("POST", "/runs/\(created.id)/retry", body: "csrf=forged", headers: form)
            #expect(forged.status == 400, "a form without this browser's CSRF token changes nothing")
            #expect(try await server.engine.run(created.id)?.run.retries == 0)

            _ = FileManager.default.createFile(atPath: marker, contents: Data())
            // The answer is a redirect (303) to the new run, which the test client follows.
            let rerun = try await server.request("POST", "/runs/\(created.id)/rerun", body: "csrf=\(csrf)", headers: form)
            #expect(rerun.status == 200)
            #expect(rerun.text.contains("This run was created as a rerun"))
            #expect(rerun.text.contains("Rerun of") && rerun.text.contains("href=\"/runs/\(created.id)\""))
            let runs = try await server.engine.runs(RunQuery(workflow: "once"))
            #expect(runs.runs.count == 2)
            #expect(runs.runs.first?.rerunOf == created.id)

            // The retry keeps the run's parameters: the marker exists now.
            let retried = try await server.request("POST", "/runs/\(created.id)/retry", body: "csrf=\(csrf)", headers: form)
            #expect(retried.status == 200 && retried.text.contains("The run is running again"))
            let detail = try await server.engine.waitForRun(created.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .success)
            let after = try await server.request("GET", "/runs/\(created.id)")
            #expect(after.text.contains("retried 1 time in place"))
            #expect(!after.text.contains("Retry failed tasks"), "nothing left to retry")
        }
    }

    @Test("the Swift DSL's run timeout is the YAML key's: the run's deadline, a timeout with reason; 0 is refused")
    func swiftTimeout() async throws {
        let workflow = Workflow(name: "dsl", timeout: .milliseconds(300))
        workflow.task(id: "wait") { _ in try await Task.sleep(for: .seconds(30)) }
        try await withEngine(workflows: [workflow]) { engine in
            let run = try await engine.trigger("dsl")
            #expect(run.deadline.map { abs($0.timeIntervalSince(run.createdAt) - 0.3) < 0.01 } == true)
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .failed && detail.run.reason == RunReason.timeout)
        }
        let zero = Workflow(name: "zero", timeout: .zero)
        zero.task(id: "a") { _ in }
        #expect(throws: (any Error).self) { try DeerFlowEngine(store: SQLiteWorkflowStore(path: "/nonexistent/never-opened.sqlite"), workflows: [zero]) }
    }
}
