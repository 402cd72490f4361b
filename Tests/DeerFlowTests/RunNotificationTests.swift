import DeerFlow
import DeerFlowCLI
import DeerFlowServer
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// A workflow's `notify:` sends a message for each failed run at once (no rate window), and one
/// when the workflow recovers, through the outbox to the channels of notifications.yaml.
@Suite("Run notifications")
struct RunNotificationTests {
    static func notifications(slack: String) -> String {
        """
        notifications:
          channels:
            slack:
              webhook: \(slack)
              templates:
                warning: "{{ .AlertName }} {{ .Status }}: {{ .Description }}"
          routing:
            - channels: [slack]
        """
    }

    @Test("the first failure is notified with the run, its failed task and error and a link; the recovery too; nothing twice")
    func failureAndRecovery() async throws {
        let slack = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "ok"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fixed = directory.file("fixed")
        let workflows = [
            "nightly.yaml": """
                name: nightly
                notify:
                  on_failure: [slack]
                  on_recovery: [slack]
                tasks:
                  - {id: load, type: shell, script: "test -f '\(fixed)' || { echo 'disk full' >&2; exit 3; }"}
                """,
        ]
        try await withTestServer(
            yamlWorkflows: workflows, configFiles: ["notifications.yaml": Self.notifications(slack: slack.url("/hook"))],
            configure: { $0.alerting.enabled = false }
        ) { server in
            let failed = try await server.engine.trigger("nightly")
            #expect(try await server.engine.waitForRun(failed.id, pollInterval: .milliseconds(20)).run.status == .failed)
            try await eventually("Slack got the failure", timeout: .seconds(60)) { slack.requests.count >= 1 }
            let failure = try #require(slack.requests.first).body
            #expect(failure.contains("WorkflowRunFailed firing"), "\(failure)")
            #expect(failure.contains(failed.id.rawValue))
            #expect(failure.contains("load (failed): exited with code 3: disk full"), "\(failure)")
            #expect(failure.contains("http://127.0.0.1:\(server.apiPort)/api/v1/runs/\(failed.id.rawValue)"), "\(failure)")

            // A second failure is notified too (each run), then the fix recovers it.
            let again = try await server.engine.trigger("nightly")
            _ = try await server.engine.waitForRun(again.id, pollInterval: .milliseconds(20))
            try directory.write("fixed", "")
            let recovered = try await server.engine.trigger("nightly")
            #expect(try await server.engine.waitForRun(recovered.id, pollInterval: .milliseconds(20)).run.status == .success)
            try await eventually("Slack got the recovery", timeout: .seconds(60)) { slack.requests.count >= 3 }
            // Deliveries may arrive in any order.
            let bodies = slack.requests.map(\.body)
            #expect(bodies.filter { $0.contains("WorkflowRunFailed firing") }.count == 2, "\(bodies)")
            let recoveries = bodies.filter { $0.contains("WorkflowRunFailed resolved") }
            #expect(recoveries.count == 1, "\(bodies)")
            #expect(recoveries.first?.contains("Run \(recovered.id.rawValue) of nightly succeeded after the previous run failed") == true, "\(bodies)")
            // A further success is not a recovery.
            let fine = try await server.engine.trigger("nightly")
            _ = try await server.engine.waitForRun(fine.id, pollInterval: .milliseconds(20))
            try await Task.sleep(for: .seconds(2))
            #expect(slack.requests.count == 3, "\(slack.requests.map(\.body))")
            let outbox = try await server.runtime.store.outbox(status: nil, limit: 10)
            #expect(outbox.count == 3)
        }
        await slack.stop()
    }

    @Test("a run that finished while no process queued its notification (a kill in between) is notified by the next process's sweep, once")
    func sweepAfterKill() async throws {
        let slack = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "ok"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "sqlite://" + directory.file("shared.sqlite")
        let task = "tasks:\n  - {id: load, type: shell, script: \"echo 'disk full' >&2; exit 3\"}\n"
        // The first process finishes the run but queues nothing, as if killed right after the
        // run's transaction committed.
        let failedID = try await withTestServer(yamlWorkflows: ["nightly.yaml": "name: nightly\n" + task], configure: { $0.databaseURL = database }) { server in
            let run = try await server.engine.trigger("nightly")
            #expect(try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(20)).run.status == .failed)
            return run.id
        }
        try await withTestServer(
            yamlWorkflows: ["nightly.yaml": "name: nightly\nnotify:\n  on_failure: [slack]\n" + task],
            configFiles: ["notifications.yaml": Self.notifications(slack: slack.url("/hook"))],
            configure: { $0.databaseURL = database; $0.alerting.enabled = false }
        ) { server in
            try await eventually("the sweep at start notified the failure", timeout: .seconds(60)) { slack.requests.count >= 1 }
            #expect(slack.requests.first?.body.contains(failedID.rawValue) == true, "\(slack.requests.map(\.body))")
            #expect(try await server.runtime.store.outbox(status: nil, limit: 10).count == 1)
        }
        #expect(slack.requests.count == 1, "\(slack.requests.map(\.body))")
        await slack.stop()
    }

    @Test("a notify channel missing from notifications.yaml stops the start with a clear error")
    func unknownChannel() async throws {
        let workflows = ["a.yaml": "name: a\nnotify: {on_failure: [pagerduty]}\ntasks:\n  - {id: x, type: noop}\n"]
        await #expect {
            try await withTestServer(yamlWorkflows: workflows, configFiles: ["notifications.yaml": Self.notifications(slack: "http://127.0.0.1:9/hook")]) { _ in }
        } throws: { error in
            "\(error)".contains("workflow 'a': notify names channel 'pagerduty', but its channels are slack")
        }
    }
}
