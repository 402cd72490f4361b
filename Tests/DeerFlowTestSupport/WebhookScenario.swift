public import DeerFlowCore
import Foundation
import Testing

/// The webhook end-to-end test of both stores: a real `deerflow server` with API tokens, a
/// workflow with a signed webhook and one whose secret is not set, requests signed by
/// `openssl dgst -sha256 -hmac` as the README shows.
public enum WebhookScenario {
    public static let secret = "wh-Sup3rS3cret-Value-42"
    public static let apiToken = "tok-webhook-scenario"
    static let secretVariable = "DEERFLOW_TEST_HOOK_SECRET"

    /// The workflow files to write into the workflow directory.
    public static let workflows: [String: String] = [
        "deploy.yaml": """
            name: deploy
            params:
              ref: string
              pusher: {type: string, default: nobody}
              size: {type: int, default: 0}
            triggers:
              - webhook:
                  name: github-push
                  secret_env: \(secretVariable)
                  params:
                    ref: "{{ body.ref }}"
                    pusher: "{{ body.pusher.name | default(null) }}"
                    size: "{{ body.size | default(0) }}"
            tasks:
              - id: build
                type: shell
                command: [echo, "{{ params.ref }}"]
            """,
        "unsigned.yaml": """
            name: unsigned
            triggers: [{webhook: {name: no-secret, secret_env: DEERFLOW_TEST_UNSET_HOOK_SECRET}}]
            tasks: [{id: a, type: noop}]
            """,
    ]

    /// The environment of the server: the hook's secret and the API token.
    public static let environment = [secretVariable: secret, "DEERFLOW_API_TOKENS": apiToken, "DEERFLOW_TEST_UNSET_HOOK_SECRET": ""]

    /// `sha256=<hex>` of `body` by openssl, independent of DeerFlow's own code.
    public static func sign(_ body: String, secret: String = WebhookScenario.secret) throws -> String {
        let text = String(decoding: try Process.output(of: ["openssl", "dgst", "-sha256", "-hmac", secret], input: Data(body.utf8)).stdout, as: UTF8.self)
        guard let hex = text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), hex.count == 64 else {
            throw ProcessFailure("openssl printed no HMAC: \(text)")
        }
        return "sha256=" + hex
    }

    /// POSTs `body` to the hook, signed unless `signature` is given.
    public static func post(
        api: Int, hook: String = "github-push", body: String, delivery: String?, signature: String? = nil
    ) async throws -> TestServer.Answer {
        var headers = ["Content-Type": "application/json", "X-GitHub-Event": "push", "X-Hub-Signature-256": try signature ?? sign(body)]
        if let delivery { headers["X-GitHub-Delivery"] = delivery }
        return try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/hooks/\(hook)", body: body, headers: headers)
    }

    /// The runs of the server, through the API with the token.
    public static func runs(api: Int) async throws -> [[String: JSONValue]] {
        let answer = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs", body: nil, headers: ["Authorization": "Bearer \(apiToken)"])
        guard case .object(let page)? = answer.json, case .array(let runs)? = page["runs"] else { throw ProcessFailure("GET runs answered \(answer.status): \(answer.text)") }
        return runs.compactMap { if case .object(let run) = $0 { run } else { nil } }
    }

    /// The run id of a 202 answer.
    static func runID(_ answer: TestServer.Answer, duplicate: Bool, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        #expect(answer.status == 202, "\(answer.status): \(answer.text)", sourceLocation: sourceLocation)
        guard case .object(let object)? = answer.json else { return nil }
        #expect(object["duplicate"] == .bool(duplicate), "\(answer.text)", sourceLocation: sourceLocation)
        return object["run_id"]?.stringValue
    }

    /// The error code of an error answer.
    static func errorCode(_ answer: TestServer.Answer) -> String? {
        guard case .object(let object)? = answer.json, case .object(let error)? = object["error"] else { return nil }
        return error["code"]?.stringValue
    }

    public static let push = #"{"ref": "refs/heads/main", "pusher": {"name": "ada"}, "size": "3"}"#

    /// Every path of one server: a good signature starts one run with the mapped params (also
    /// when the same delivery arrives ten times at once), a repeat answers the same run, bad and
    /// missing signatures 401, an unmapped payload 422, a body that is not JSON 400, an unknown
    /// hook 404, a hook without secret 503; nothing needs the API token and nothing shows the
    /// secret. Returns the id of the first delivery's run (`delivery-1`).
    @discardableResult
    public static func check(api: Int, metrics: Int, server: ServerProcess) async throws -> String {
        let first = try await post(api: api, body: push, delivery: "delivery-1")
        let id = try #require(runID(first, duplicate: false))
        let runs = try await runs(api: api)
        #expect(runs.count == 1)
        #expect(runs.first?["params"] == .object(["ref": "refs/heads/main", "pusher": "ada", "size": 3]), "\(runs)")
        #expect(runs.first?["trigger"]?.stringValue == "webhook", "a webhook's run says so: \(runs)")
        let finished = try #require(try await waitForRun(api: api, id: id))
        #expect(finished["status"]?.stringValue == "success", "\(finished)")

        // The same delivery again: the same run, no new one.
        #expect(runID(try await post(api: api, body: push, delivery: "delivery-1"), duplicate: true) == id)
        // A new delivery sent ten times at once: one run.
        let answers = try await withThrowingTaskGroup(of: TestServer.Answer.self) { group in
            for _ in 0..<10 { group.addTask { try await post(api: api, body: push, delivery: "delivery-2") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.allSatisfy { $0.status == 202 }, "\(answers.map(\.text))")
        let concurrentIDs = Set(answers.compactMap { answer -> String? in
            guard case .object(let object)? = answer.json else { return nil }
            return object["run_id"]?.stringValue
        })
        #expect(concurrentIDs.count == 1 && !concurrentIDs.contains(id), "\(concurrentIDs)")
        #expect(answers.filter { if case .object(let object)? = $0.json { object["duplicate"] == .bool(false) } else { false } }.count == 1)

        // Refused requests create nothing.
        let forged = try await post(api: api, body: push, delivery: "delivery-3", signature: try sign(push, secret: "wrong"))
        #expect(forged.status == 401 && errorCode(forged) == "unauthorized", "\(forged.text)")
        let tampered = try await post(api: api, body: push.replacingOccurrences(of: "main", with: "evil"), delivery: "delivery-3", signature: try sign(push))
        #expect(tampered.status == 401)
        let unsigned = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/hooks/github-push", body: push, headers: ["X-GitHub-Delivery": "delivery-3"])
        #expect(unsigned.status == 401, "\(unsigned.text)")
        let withToken = try await TestServer.send(
            "POST", "http://127.0.0.1:\(api)/api/v1/hooks/github-push", body: push, headers: ["Authorization": "Bearer \(apiToken)"])
        #expect(withToken.status == 401, "the API token does not stand in for the signature: \(withToken.text)")
        let ping = try await post(api: api, body: #"{"zen": "Keep it logically awesome."}"#, delivery: "delivery-4")
        #expect(ping.status == 422 && errorCode(ping) == "invalid_params", "\(ping.text)")
        #expect(ping.text.contains("body.ref") || ping.text.contains("'ref'"), "\(ping.text)")
        let wrongType = try await post(api: api, body: #"{"ref": "main", "size": "many"}"#, delivery: "delivery-5")
        #expect(wrongType.status == 422 && wrongType.text.contains("size"), "\(wrongType.text)")
        let notJSON = try await post(api: api, body: "ref=main", delivery: "delivery-6")
        #expect(notJSON.status == 400 && errorCode(notJSON) == "bad_request", "\(notJSON.text)")
        let unknown = try await post(api: api, hook: "nope", body: push, delivery: "delivery-7")
        #expect(unknown.status == 404 && errorCode(unknown) == "not_found", "\(unknown.text)")
        #expect(!unknown.text.contains("github-push"), "a 404 lists no hook to an unauthenticated caller: \(unknown.text)")
        let noSecret = try await post(api: api, hook: "no-secret", body: "{}", delivery: "delivery-8", signature: try sign("{}", secret: "anything"))
        #expect(noSecret.status == 503 && noSecret.text.contains("DEERFLOW_TEST_UNSET_HOOK_SECRET"), "\(noSecret.text)")
        #expect(try await Self.runs(api: api).count == 2)
        // The next delivery after refusals of its id is accepted (a refusal records nothing).
        #expect(runID(try await post(api: api, body: push, delivery: "delivery-4"), duplicate: false) != nil)

        for (result, count) in [("accepted", 3.0), ("duplicate", 10.0), ("bad_signature", 4.0), ("unmapped", 2.0), ("bad_request", 1.0), ("no_secret", 1.0)] {
            let hook = result == "no_secret" ? "no-secret" : "github-push"
            #expect(await ClusterAPI.metric(port: metrics, "deerflow_webhook_requests_total{hook=\"\(hook)\",result=\"\(result)\"}") == count, "\(result)")
        }
        #expect(await ClusterAPI.metric(port: metrics, "deerflow_webhook_requests_total{hook=\"unknown\",result=\"not_found\"}") == 1)
        // The secret shows nowhere.
        let metricsText = try await TestServer.send("GET", "http://127.0.0.1:\(metrics)/metrics", body: nil, headers: [:]).text
        let runText = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)", body: nil, headers: ["Authorization": "Bearer \(apiToken)"]).text
        let workflowText = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/workflows/deploy", body: nil, headers: ["Authorization": "Bearer \(apiToken)"]).text
        // The UI's workflow page shows where to point the sender, and which variable holds the secret.
        let page = try await TestServer.send("GET", "http://127.0.0.1:\(api)/workflows/deploy", body: nil, headers: ["Authorization": "Bearer \(apiToken)"]).text
        #expect(page.contains("POST /api/v1/hooks/github-push") && page.contains(secretVariable), "\(page.prefix(300))")
        for text in [metricsText, runText, workflowText, page, server.log] {
            #expect(!text.contains(secret))
        }
        #expect(server.log.contains("webhook 'no-secret' has no secret"), "the server says at start which hook it refuses")
        return id
    }

    /// After a restart (or at another server of the same store), the first delivery repeated
    /// answers its run, and creates none.
    public static func checkRepeatAnswersTheSameRun(api: Int, id: String) async throws {
        let before = try await runs(api: api).count
        #expect(runID(try await post(api: api, body: push, delivery: "delivery-1"), duplicate: true) == id)
        #expect(try await runs(api: api).count == before)
    }

    /// Waits for a run to finish; nil after 30 s.
    static func waitForRun(api: Int, id: String) async throws -> [String: JSONValue]? {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let answer = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)", body: nil, headers: ["Authorization": "Bearer \(apiToken)"])
            if case .object(let run)? = answer.json, ["success", "failed", "cancelled"].contains(run["status"]?.stringValue ?? "") { return run }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}
