import DeerFlow
import DeerFlowCLI
import DeerFlowServer
import DeerFlowCore
import DeerFlowHTTP
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Drives every route of a live server, for successes and errors, and checks status codes, bodies
/// and headers. (That every answer conforms to openapi.yaml's schemas is schemathesis' job, run
/// against a live `deerflow server` by scripts/test.)
@Suite("API routes")
struct APIContractTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let workflows = [
        "greet.yaml": """
            name: greet
            params:
              who: {type: string, default: world}
              count: {type: int, default: 1}
              token: {type: string, default: "s3cret", secret: true}
            triggers:
              - webhook: {name: greet-hook, secret_env: API_CONTRACT_HOOK_SECRET, params: {who: "{{ body.who }}", count: "{{ body.count | default(1) }}"}}
            tasks:
              - id: hello
                type: shell
                script: echo "hello $DEERFLOW_PARAM_WHO"
            """,
        "slow.yaml": """
            name: slow
            tasks:
              - id: wait
                type: sleep
                duration: 30s
            """,
        "nightly.yaml": """
            name: nightly
            schedule: "0 2 * * *"
            tasks:
              - id: wait
                type: sleep
                duration: 30s
            """,
    ]

    /// Records what was exercised and every unexpected status.
    final class Checker: @unchecked Sendable {
        var exercised: Set<String> = []
        var problems: [String] = []

        func check(_ method: String, _ template: String, _ answer: TestServer.Answer, expect status: Int) {
            exercised.insert("\(method) \(template)")
            if answer.status != status {
                problems.append("\(method) \(template): expected \(status), got \(answer.status): \(answer.text.prefix(200))")
            }
            if answer.header("content-type")?.hasPrefix("application/json") == true, !answer.text.hasSuffix("\n") {
                problems.append("\(method) \(template) → \(answer.status): a JSON body must end with a newline")
            }
        }
    }

    /// A Slack channel nobody answers: webhook payloads are queued and retried in the background.
    static let notifications = """
        notifications:
          channels:
            slack:
              webhook: http://127.0.0.1:9/hook
          routing:
            - channels: [slack]
        """

    @Test("every route answers as documented, for successes and errors")
    func everyRoute() async throws {
        let checker = Checker()
        try await withTestServer(
            yamlWorkflows: Self.workflows, configFiles: ["notifications.yaml": Self.notifications],
            configure: { $0.api.environment = ["API_CONTRACT_HOOK_SECRET": "contract-secret"] }
        ) { server in
            func call(_ method: String, _ path: String, _ template: String, body: String? = nil, expect status: Int) async throws -> TestServer.Answer {
                let answer = try await server.request(method, path, body: body)
                checker.check(method, template, answer, expect: status)
                return answer
            }
            let document = try await call("GET", "/api/v1/openapi.yaml", "/api/v1/openapi.yaml", expect: 200)
            #expect(document.contentType == "application/yaml; charset=utf-8")
            let served = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
            #expect(document.text == served, "GET /api/v1/openapi.yaml serves the repository's openapi.yaml (run scripts/generate-openapi)")
            _ = try await call("GET", "/api/v1/workflows", "/api/v1/workflows", expect: 200)
            let greet = try await call("GET", "/api/v1/workflows/greet", "/api/v1/workflows/{name}", expect: 200)
            #expect(greet.text.contains("\"default\":\"[REDACTED]\""))
            _ = try await call("GET", "/api/v1/workflows/nope", "/api/v1/workflows/{name}", expect: 404)

            let runs = "/api/v1/workflows/{name}/runs"
            let created = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"params": {"who": "Ada", "count": 2, "token": "abc"}}"#, expect: 201)
            #expect(created.header("location")?.hasPrefix("/api/v1/runs/") == true)
            #expect(created.text.contains("\"token\":\"[REDACTED]\""))
            _ = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: "{not json", expect: 400)
            _ = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"parameters": {}}"#, expect: 400)
            let notObject = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"params": [1]}"#, expect: 400)
            #expect(notObject.text.contains("'params' must be a JSON object of parameter names to values, got array"), "\(notObject.text)")
            let null = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"params": null}"#, expect: 400)
            #expect(null.text.contains("got null"), "\(null.text)")
            let array = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: "[]", expect: 400)
            #expect(array.text.contains("the request body must be a JSON object"), "\(array.text)")
            let unknownField = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"parms": {}}"#, expect: 400)
            #expect(unknownField.text.contains("unknown field 'parms' in the request body; the only field is 'params'"), "\(unknownField.text)")
            _ = try await call("POST", "/api/v1/workflows/nope/runs", runs, body: "{}", expect: 404)
            _ = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"params": {"count": "two"}}"#, expect: 422)
            _ = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: #"{"params": {"unknown": 1}}"#, expect: 422)
            let huge = "{\"params\": {\"who\": \"" + String(repeating: "x", count: 1_100_000) + "\"}}"
            _ = try await call("POST", "/api/v1/workflows/greet/runs", runs, body: huge, expect: 413)

            let batch = "/api/v1/workflows/{name}/runs:batch"
            let batched = try await call("POST", "/api/v1/workflows/greet/runs:batch", batch, body: #"{"runs": [{"params": {"who": "A", "token": "t"}}, {}]}"#, expect: 201)
            #expect(batched.text.contains("\"token\":\"[REDACTED]\"") && !batched.text.contains("\"t\""), "\(batched.text)")
            _ = try await call("POST", "/api/v1/workflows/nope/runs:batch", batch, body: #"{"runs": [{}]}"#, expect: 404)
            _ = try await call("POST", "/api/v1/workflows/greet/runs:batch", batch, body: #"{"runs": []}"#, expect: 400)
            _ = try await call("POST", "/api/v1/workflows/greet/runs:batch", batch, body: #"{"runs": [{"params": null}]}"#, expect: 400)
            _ = try await call("POST", "/api/v1/workflows/greet/runs:batch", batch, body: #"{"runs": [{}, {"params": {"count": "two"}}]}"#, expect: 422)

            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
                Issue.record("no run id in \(created.text)")
                return
            }
            _ = try await server.engine.waitForRun(RunID(rawValue: id), pollInterval: .milliseconds(50))
            _ = try await call("GET", "/api/v1/runs", "/api/v1/runs", expect: 200)
            _ = try await call("GET", "/api/v1/runs?workflow=greet&status=success&limit=1", "/api/v1/runs", expect: 200)
            let weird = try await call("GET", "/api/v1/runs?status=weird", "/api/v1/runs", expect: 400)
            #expect(weird.text.contains("unknown status 'weird'; use one of pending, running, success, failed, cancelled"), "\(weird.text)")
            let zero = try await call("GET", "/api/v1/runs?limit=0", "/api/v1/runs", expect: 400)
            #expect(zero.text.contains("limit must be an integer from 1 to 1000, got '0'"), "\(zero.text)")
            let word = try await call("GET", "/api/v1/runs?limit=ten", "/api/v1/runs", expect: 400)
            #expect(word.text.contains("limit must be an integer from 1 to 1000, got 'ten'"), "\(word.text)")
            _ = try await call("GET", "/api/v1/runs?cursor=nope", "/api/v1/runs", expect: 400)
            // An empty value is checked like any other (openapi.yaml): an empty workflow name matches no run.
            for empty in ["status=", "limit=", "cursor="] {
                _ = try await call("GET", "/api/v1/runs?\(empty)", "/api/v1/runs", expect: 400)
            }
            let noWorkflow = try await call("GET", "/api/v1/runs?workflow=", "/api/v1/runs", expect: 200)
            #expect(noWorkflow.text.contains(#""runs":[]"#), "\(noWorkflow.text)")
            let detail = try await call("GET", "/api/v1/runs/\(id)", "/api/v1/runs/{id}", expect: 200)
            #expect(detail.text.contains("\"status\":\"success\""))
            _ = try await call("GET", "/api/v1/runs/01J0ABCDEF0123456789ABCDEF", "/api/v1/runs/{id}", expect: 404)

            let log = "/api/v1/runs/{id}/tasks/{task_id}/log"
            let text = try await call("GET", "/api/v1/runs/\(id)/tasks/hello/log", log, expect: 200)
            #expect(text.text.contains("hello Ada"))
            #expect(text.contentType == "text/plain; charset=utf-8")
            let followed = try await call("GET", "/api/v1/runs/\(id)/tasks/hello/log?follow=true", log, expect: 200)
            #expect(followed.text.hasPrefix("=== attempt 1 ===\nhello Ada"), "\(followed.text)")
            _ = try await call("GET", "/api/v1/runs/\(id)/tasks/hello/log?attempt=1&format=json", log, expect: 200)
            let attempt = try await call("GET", "/api/v1/runs/\(id)/tasks/hello/log?attempt=x", log, expect: 400)
            #expect(attempt.text.contains("attempt must be a positive integer, got 'x'"), "\(attempt.text)")
            _ = try await call("GET", "/api/v1/runs/\(id)/tasks/nope/log", log, expect: 404)

            let slow = try await server.request("POST", "/api/v1/workflows/slow/runs", body: "")
            guard case .object(let slowRun)? = slow.json, let slowID = slowRun["id"]?.stringValue else {
                Issue.record("no run id in \(slow.text)")
                return
            }
            let retry = "/api/v1/runs/{id}/retry"
            let rerun = "/api/v1/runs/{id}/rerun"
            let stillRunning = try await call("POST", "/api/v1/runs/\(slowID)/retry", retry, expect: 409)
            #expect(stillRunning.text.contains("only finished runs can be retried"), "\(stillRunning.text)")
            _ = try await call("POST", "/api/v1/runs/\(slowID)/rerun", rerun, body: "{}", expect: 409)
            let cancelled = try await call("POST", "/api/v1/runs/\(slowID)/cancel", "/api/v1/runs/{id}/cancel", expect: 200)
            #expect(cancelled.text.contains("\"status\":\"cancelled\""))
            _ = try await call("POST", "/api/v1/runs/\(slowID)/cancel", "/api/v1/runs/{id}/cancel", expect: 409)
            _ = try await call("POST", "/api/v1/runs/01J0ABCDEF0123456789ABCDEF/cancel", "/api/v1/runs/{id}/cancel", expect: 404)

            let pause = "/api/v1/workflows/{name}/pause"
            let paused = try await call("POST", "/api/v1/workflows/nightly/pause", pause, expect: 200)
            #expect(paused.text.contains("\"paused\":true"), "\(paused.text)")
            let noSchedule = try await call("POST", "/api/v1/workflows/greet/pause", pause, expect: 409)
            #expect(noSchedule.text.contains("workflow 'greet' has no schedule"), "\(noSchedule.text)")
            _ = try await call("POST", "/api/v1/workflows/nope/pause", pause, expect: 404)
            let unpause = "/api/v1/workflows/{name}/unpause"
            let unpaused = try await call("POST", "/api/v1/workflows/nightly/unpause", unpause, body: #"{"catch_up": true}"#, expect: 200)
            #expect(unpaused.text.contains("\"paused\":false"), "\(unpaused.text)")
            _ = try await call("POST", "/api/v1/workflows/nightly/unpause", unpause, expect: 200)
            _ = try await call("POST", "/api/v1/workflows/nightly/unpause", unpause, body: #"{"catch_up": "yes"}"#, expect: 400)
            let nullCatchUp = try await call("POST", "/api/v1/workflows/nightly/unpause", unpause, body: #"{"catch_up": null}"#, expect: 400)
            #expect(nullCatchUp.text.contains("'catch_up' must be true or false, got null"), "\(nullCatchUp.text)")
            _ = try await call("POST", "/api/v1/workflows/greet/unpause", unpause, expect: 409)
            _ = try await call("POST", "/api/v1/workflows/nope/unpause", unpause, expect: 404)

            let backfills = "/api/v1/workflows/{name}/backfills"
            let backfill = try await call("POST", "/api/v1/workflows/nightly/backfills", backfills, body: #"{"from": "2024-06-01", "to": "2024-06-03", "max_active": 1}"#, expect: 201)
            #expect(backfill.header("location")?.hasPrefix("/api/v1/backfills/bf-") == true)
            #expect(backfill.text.contains("\"fire_times\":2"), "\(backfill.text)")
            _ = try await call("POST", "/api/v1/workflows/nightly/backfills", backfills, body: "{not json", expect: 400)
            _ = try await call("POST", "/api/v1/workflows/nightly/backfills", backfills, body: #"{"from": "2024-06-01"}"#, expect: 400)
            _ = try await call("POST", "/api/v1/workflows/nightly/backfills", backfills, body: #"{"from": "2024-06-01", "to": "2024-06-03", "params": null}"#, expect: 400)
            let reversed = try await call("POST", "/api/v1/workflows/nightly/backfills", backfills, body: #"{"from": "2024-06-03", "to": "2024-06-01"}"#, expect: 422)
            #expect(reversed.text.contains("\"code\":\"invalid_request\""), "\(reversed.text)")
            _ = try await call("POST", "/api/v1/workflows/greet/backfills", backfills, body: #"{"from": "2024-06-01", "to": "2024-06-03"}"#, expect: 409)
            _ = try await call("POST", "/api/v1/workflows/nope/backfills", backfills, body: #"{"from": "2024-06-01", "to": "2024-06-03"}"#, expect: 404)
            guard case .object(let created)? = backfill.json, let backfillID = created["id"]?.stringValue else {
                Issue.record("no backfill id in \(backfill.text)")
                return
            }
            let shown = try await call("GET", "/api/v1/backfills/\(backfillID)", "/api/v1/backfills/{id}", expect: 200)
            #expect(shown.text.contains("\"status\":\"running\""), "\(shown.text)")
            _ = try await call("GET", "/api/v1/backfills/bf-nope", "/api/v1/backfills/{id}", expect: 404)
            let stopped = try await call("POST", "/api/v1/backfills/\(backfillID)/cancel", "/api/v1/backfills/{id}/cancel", expect: 200)
            #expect(stopped.text.contains("\"status\":\"cancelled\""), "\(stopped.text)")
            _ = try await call("POST", "/api/v1/backfills/\(backfillID)/cancel", "/api/v1/backfills/{id}/cancel", expect: 409)
            _ = try await call("POST", "/api/v1/backfills/bf-nope/cancel", "/api/v1/backfills/{id}/cancel", expect: 404)
            let nothing = try await call("POST", "/api/v1/runs/\(id)/retry", retry, expect: 409)
            #expect(nothing.text.contains("every task succeeded; nothing to retry"), "\(nothing.text)")
            let unknownTask = try await call("POST", "/api/v1/runs/\(id)/retry", retry, body: #"{"tasks": ["nope"]}"#, expect: 422)
            #expect(unknownTask.text.contains("\"code\":\"invalid_tasks\""), "\(unknownTask.text)")
            let badField = try await call("POST", "/api/v1/runs/\(id)/retry", retry, body: #"{"taks": []}"#, expect: 400)
            #expect(badField.text.contains("unknown field 'taks' in the request body; the only field is 'tasks'"), "\(badField.text)")
            let notList = try await call("POST", "/api/v1/runs/\(id)/retry", retry, body: #"{"tasks": "hello"}"#, expect: 400)
            #expect(notList.text.contains("'tasks' must be a list of task ids, got string"), "\(notList.text)")
            _ = try await call("POST", "/api/v1/runs/01J0ABCDEF0123456789ABCDEF/retry", retry, expect: 404)
            let retried = try await call("POST", "/api/v1/runs/\(id)/retry", retry, body: #"{"tasks": ["hello"]}"#, expect: 200)
            #expect(retried.text.contains("\"retries\":1") && retried.text.contains("\"token\":\"[REDACTED]\""), "\(retried.text)")
            let retriedRun = try await server.engine.waitForRun(RunID(rawValue: id), pollInterval: .milliseconds(50))
            #expect(retriedRun.tasks.first { $0.id == "hello" }?.attempts.map(\.number) == [1, 2])
            let copy = try await call("POST", "/api/v1/runs/\(id)/rerun", rerun, body: #"{"params": {"who": "Grace"}}"#, expect: 201)
            #expect(copy.text.contains("\"rerun_of\":\"\(id)\"") && copy.text.contains("\"token\":\"[REDACTED]\""), "\(copy.text)")
            #expect(copy.header("location")?.hasPrefix("/api/v1/runs/") == true)
            _ = try await call("POST", "/api/v1/runs/\(id)/rerun", rerun, body: #"{"params": {"count": "two"}}"#, expect: 422)
            _ = try await call("POST", "/api/v1/runs/\(id)/rerun", rerun, body: #"{"params": null}"#, expect: 400)
            let badRerun = try await call("POST", "/api/v1/runs/\(id)/rerun", rerun, body: #"{"parms": {}}"#, expect: 400)
            #expect(badRerun.text.contains("the only field is 'params'"), "\(badRerun.text)")
            _ = try await call("POST", "/api/v1/runs/01J0ABCDEF0123456789ABCDEF/rerun", rerun, body: "{}", expect: 404)

            _ = try await call("GET", "/api/v1/workers", "/api/v1/workers", expect: 200)
            let purge = "/api/v1/maintenance/purge"
            let counted = try await call("POST", purge, purge, body: #"{"older_than": "30d", "dry_run": true}"#, expect: 200)
            #expect(counted.text.contains("\"dry_run\":true"), "\(counted.text)")
            _ = try await call("POST", purge, purge, body: #"{"older_than": "30d", "task_logs_older_than": "7d", "vacuum": true}"#, expect: 200)
            _ = try await call("POST", purge, purge, body: #"{"older_than": "5s"}"#, expect: 422)
            _ = try await call("POST", purge, purge, body: "{}", expect: 422)
            _ = try await call("POST", purge, purge, body: #"{"older_than": 30}"#, expect: 400)
            let nullVacuum = try await call("POST", purge, purge, body: #"{"older_than": "30d", "vacuum": null}"#, expect: 400)
            #expect(nullVacuum.text.contains("'vacuum' must be true or false, got null"), "\(nullVacuum.text)")
            let alerts = try await call("GET", "/api/v1/alerts", "/api/v1/alerts", expect: 200)
            #expect(alerts.text.contains("\"rules\":[\"HighWorkflowFailureRate\""), "\(alerts.text)")
            let webhook = "/api/v1/alertmanager/webhook"
            let payload = #"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"SchedulerLag","severity":"critical"},"annotations":{},"startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#
            _ = try await call("POST", webhook, webhook, body: payload, expect: 202)
            _ = try await call("POST", webhook, webhook, body: #"{"alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-26T10:00:00Z"}]}"#, expect: 400)
            _ = try await call("POST", webhook, webhook, body: "nope", expect: 400)
            let hooks = "/api/v1/hooks/{name}"
            func hook(_ body: String, name: String = "greet-hook", signature: String? = nil, delivery: String? = nil, expect status: Int) async throws -> TestServer.Answer {
                var headers = ["X-Hub-Signature-256": signature ?? WebhookSignature.sign(Array(body.utf8), secret: "contract-secret")]
                if let delivery { headers["X-GitHub-Delivery"] = delivery }
                let answer = try await server.request("POST", "/api/v1/hooks/\(name)", body: body, headers: headers)
                checker.check("POST", hooks, answer, expect: status)
                return answer
            }
            func fields(_ answer: TestServer.Answer) -> [String: JSONValue] {
                if case .object(let object)? = answer.json { object } else { [:] }
            }
            let accepted = fields(try await hook(#"{"who": "hook", "count": "2"}"#, delivery: "d-1", expect: 202))
            #expect(accepted["duplicate"] == .bool(false) && accepted["run_id"] != nil, "\(accepted)")
            let repeated = fields(try await hook(#"{"who": "hook", "count": "2"}"#, delivery: "d-1", expect: 202))
            #expect(repeated["run_id"] == accepted["run_id"] && repeated["duplicate"] == .bool(true), "\(repeated)")
            if let id = accepted["run_id"]?.stringValue {
                let run = fields(try await server.request("GET", "/api/v1/runs/\(id)"))
                #expect(run["params"] == .object(["who": "hook", "count": 2, "token": "[REDACTED]"]), "\(run)")
            }
            _ = try await hook(#"{"who": "hook"}"#, signature: "sha256=" + String(repeating: "0", count: 64), expect: 401)
            _ = try await hook(#"{"nobody": 1}"#, expect: 422)
            _ = try await hook(#"{"who": "x", "count": "many"}"#, expect: 422)
            _ = try await hook("who=hook", expect: 400)
            _ = try await hook("", expect: 400)
            _ = try await hook("{}", name: "nope", expect: 404)
            _ = try await call("GET", "/health", "/health", expect: 200)
            _ = try await call("GET", "/health/live", "/health/live", expect: 200)
            _ = try await call("GET", "/health/ready", "/health/ready", expect: 200)
            let metrics = try await TestServer.send("GET", server.metricsURL, body: nil, headers: [:])
            checker.check("GET", "/metrics", metrics, expect: 200)

            let unknown = try await server.request("GET", "/api/v1/nothing")
            #expect(unknown.status == 404)
            #expect(unknown.text.contains("\"code\":\"not_found\""))
        }
        #expect(checker.problems.isEmpty, "\(checker.problems.joined(separator: "\n"))")
        let documented = Set(try AccessControlTests.documentedOperations().map { "\($0.method) \($0.path)" } + ["GET /metrics"])
        #expect(documented == checker.exercised, "documented but not exercised: \(documented.subtracting(checker.exercised)); exercised but not documented: \(checker.exercised.subtracting(documented))")
    }

    @Test("with tokens configured, /api/ needs a bearer token and health stays open")
    func bearerTokens() async throws {
        let checker = Checker()
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.api.tokens = ["t0ken"] }) { server in
            let missing = try await server.request("GET", "/api/v1/workflows")
            checker.check("GET", "/api/v1/workflows", missing, expect: 401)
            #expect(missing.header("www-authenticate")?.hasPrefix("Bearer") == true)
            let wrong = try await server.request("GET", "/api/v1/workflows", headers: ["Authorization": "Bearer nope"])
            checker.check("GET", "/api/v1/workflows", wrong, expect: 401)
            let right = try await server.request("GET", "/api/v1/workflows", headers: ["Authorization": "Bearer t0ken"])
            checker.check("GET", "/api/v1/workflows", right, expect: 200)
            let health = try await server.request("GET", "/health/live")
            checker.check("GET", "/health/live", health, expect: 200)
        }
        #expect(checker.problems.isEmpty, "\(checker.problems.joined(separator: "\n"))")
    }
}
