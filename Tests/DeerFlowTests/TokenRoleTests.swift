import DeerFlow
import DeerFlowCore
import DeerFlowServer
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Roles of API tokens: viewer reads, operator also operates runs and schedules, admin does
/// everything; the UI's sessions carry the role of the token they were opened with.
@Suite("API token roles")
struct TokenRoleTests {
    static let tokens = [APIToken("viewer-t0ken", role: .viewer), APIToken("operator-t0ken", role: .operator), APIToken("admin-t0ken")]
    static let workflows = ["greet.yaml": "name: greet\ntasks:\n  - {id: a, type: sleep, duration: 30s}\n"]

    static func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }

    @Test("viewer reads and is refused operating with a 403 JSON error; operator operates but does not purge; admin purges; decisions are counted")
    func apiRoles() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.api.tokens = Self.tokens }) { server in
            #expect(try await server.request("GET", "/api/v1/runs", headers: Self.bearer("viewer-t0ken")).status == 200)
            let refused = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: Self.bearer("viewer-t0ken"))
            #expect(refused.status == 403, "\(refused.text)")
            #expect(refused.text.contains(#""code":"forbidden""#), "\(refused.text)")
            #expect(refused.text.contains("role is viewer") && refused.text.contains("needs operator"), "\(refused.text)")
            #expect(try await server.request("GET", "/api/v1/runs").status == 401)

            let created = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: Self.bearer("operator-t0ken"))
            #expect(created.status == 201, "\(created.text)")
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else { throw ProcessFailure("no run id: \(created.text)") }
            #expect(try await server.request("POST", "/api/v1/runs/\(id)/cancel", headers: Self.bearer("viewer-t0ken")).status == 403)
            #expect(try await server.request("POST", "/api/v1/runs/\(id)/cancel", headers: Self.bearer("operator-t0ken")).status == 200)
            let purge = #"{"older_than": "30d", "dry_run": true}"#
            #expect(try await server.request("POST", "/api/v1/maintenance/purge", body: purge, headers: Self.bearer("operator-t0ken")).status == 403)
            #expect(try await server.request("POST", "/api/v1/maintenance/purge", body: purge, headers: Self.bearer("admin-t0ken")).status == 200)

            let samples = try await server.metrics()
            #expect(samples[#"deerflow_api_access_total{outcome="forbidden",role="viewer"}"#] == 2)
            #expect(samples[#"deerflow_api_access_total{outcome="forbidden",role="operator"}"#] == 1)
            #expect(samples[#"deerflow_api_access_total{outcome="allowed",role="admin"}"#] == 1)
            #expect((samples[#"deerflow_api_access_total{outcome="unauthenticated",role="none"}"#] ?? 0) >= 1)
            #expect(!(try await server.metricsText()).contains("t0ken"), "no token in the metrics")
        }
    }

    @Test("a viewer's UI session hides the forms that operate and is refused if it sends one; an operator's session may")
    func uiRoles() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.api.tokens = Self.tokens }) { server in
            let created = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: Self.bearer("admin-t0ken"))
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else { throw ProcessFailure("no run id: \(created.text)") }
            func login(_ token: String) async throws -> (session: String, csrf: String) {
                let form = try await server.request("GET", "/login")
                guard let csrf = Self.cookie("deerflow_csrf", in: form) else { throw ProcessFailure("no CSRF cookie from GET /login") }
                let answer = try await TestServer.send(
                    "POST", server.apiURL + "/login", body: "token=\(token)&csrf=\(csrf)&next=%2F",
                    headers: ["Content-Type": "application/x-www-form-urlencoded", "Cookie": "deerflow_csrf=\(csrf)"], followRedirects: false)
                #expect(answer.status == 303, "\(answer.text)")
                guard let session = Self.cookie("deerflow_session", in: answer) else { throw ProcessFailure("no session cookie: \(answer.status) \(answer.text.prefix(300))") }
                return (session, csrf)
            }
            let viewer = try await login("viewer-t0ken")
            let cookies = ["Cookie": "deerflow_session=\(viewer.session); deerflow_csrf=\(viewer.csrf)"]
            let page = try await server.request("GET", "/runs/\(id)", headers: cookies)
            #expect(page.status == 200)
            #expect(page.text.contains(#"class="read-only""#) && page.text.contains("Signed in with a <strong>viewer</strong> token"))
            let cancel = try await server.request(
                "POST", "/runs/\(id)/cancel", body: "csrf=\(viewer.csrf)",
                headers: cookies.merging(["Content-Type": "application/x-www-form-urlencoded"]) { $1 })
            #expect(cancel.status == 403, "\(cancel.text)")

            let operatorSession = try await login("operator-t0ken")
            let operatorCookies = ["Cookie": "deerflow_session=\(operatorSession.session); deerflow_csrf=\(operatorSession.csrf)"]
            #expect(!(try await server.request("GET", "/runs/\(id)", headers: operatorCookies)).text.contains(#"class="read-only""#))
            let allowed = try await TestServer.send(
                "POST", server.apiURL + "/runs/\(id)/cancel", body: "csrf=\(operatorSession.csrf)",
                headers: operatorCookies.merging(["Content-Type": "application/x-www-form-urlencoded"]) { $1 }, followRedirects: false)
            #expect(allowed.status == 303, "\(allowed.text)")
        }
    }

    @Test("api.tokens takes strings (admin), {token, role} and {token_file, role}; a bad role or an unreadable file is a located error")
    func configForms() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("ci_token", "from-a-file\n")
        let config = try ServerConfigFile.parse(yaml: """
            api:
              tokens:
                - plain-token
                - {token: view-token, role: viewer}
                - {token_file: \(file), role: operator}
            """, file: "deerflow.yaml", environment: [:])
        #expect(config.apiTokens == [APIToken("plain-token"), APIToken("view-token", role: .viewer), APIToken("from-a-file", role: .operator)])
        #expect("\(APIToken("view-token", role: .viewer))" == "APIToken(viewer)", "a token's description does not show it")
        do {
            _ = try ServerConfigFile.parse(yaml: """
                api:
                  tokens:
                    - {token: x, role: root}
                    - {token_file: /nonexistent/token}
                """, file: "deerflow.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:3:") && $0.contains("root") }, "\(messages)")
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:4:") && $0.contains("cannot read token file /nonexistent/token") }, "\(messages)")
        }
    }

    static func cookie(_ name: String, in answer: TestServer.Answer) -> String? {
        for (header, value) in answer.headers where header.lowercased() == "set-cookie" && value.hasPrefix(name + "=") {
            return String(value.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }
}
