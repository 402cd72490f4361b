import DeerFlow
import DeerFlowCLI
import DeerFlowServer
import DeerFlowCore
import DeerFlowHTTP
import DeerFlowUI
import Hummingbird
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing
import Yams

/// With tokens configured, no spelling of any documented route answers 2xx without the right
/// token. The table is built from openapi.yaml, and every route the server registers must be in
/// openapi.yaml, so a new route is in this table as soon as it exists.
@Suite("API access control")
struct AccessControlTests {
    static let token = "t0ken-right"

    /// The documented operations on the API listener (`/metrics` is on the metrics listener).
    static func documentedOperations() throws -> [(method: String, path: String)] {
        let text = try String(contentsOf: APIContractTests.repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        guard let document = try Yams.load(yaml: text) as? [String: Any], let paths = document["paths"] as? [String: Any] else {
            Issue.record("openapi.yaml has no paths")
            return []
        }
        var operations: [(String, String)] = []
        for (path, item) in paths where path != "/metrics" {
            for method in (item as? [String: Any])?.keys.sorted() ?? [] where ["get", "post", "put", "patch", "delete"].contains(method) {
                operations.append((method.uppercased(), path))
            }
        }
        return operations.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
    }

    /// The ways of writing one path that a client can send: the router may accept some of them.
    static func spellings(of path: String) -> [String] {
        let inner = path.dropFirst()
        var spellings = ["/\(inner)", "//\(inner)", "///\(inner)", "/./\(inner)", "/\(inner)/", "/\(inner)//"]
        if let slash = inner.firstIndex(of: "/") {
            spellings.append("/\(inner[..<slash])%2F\(inner[inner.index(after: slash)...])")
            spellings.append("/\(inner[..<slash])%2f\(inner[inner.index(after: slash)...])")
        }
        spellings.append("/" + inner.uppercased())
        spellings.append("/" + inner.prefix(1).uppercased() + inner.dropFirst())
        spellings.append("/%61" + inner.dropFirst()) // the first letter percent-encoded
        return spellings
    }

    static let hookSecret = "access-hook-secret"

    static let workflows = [
        "greet.yaml": """
            name: greet
            triggers: [{webhook: {name: greet, secret_env: ACCESS_HOOK_SECRET}}]
            tasks:
              - id: hello
                type: shell
                script: echo hello
            """,
    ]

    @Test("no spelling of any route answers 2xx without the right token", arguments: [false, true])
    func everySpellingNeedsTheToken(protectHealth: Bool) async throws {
        let operations = try Self.documentedOperations()
        #expect(operations.count >= 14)
        try await withTestServer(
            yamlWorkflows: Self.workflows, configFiles: ["notifications.yaml": APIContractTests.notifications],
            configure: {
                $0.api.tokens = [APIToken(Self.token)]
                $0.api.protectHealth = protectHealth
                $0.api.environment = ["ACCESS_HOOK_SECRET": Self.hookSecret]
            }
        ) { server in
            let authorized = ["Authorization": "Bearer \(Self.token)"]
            let created = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: authorized)
            #expect(created.status == 201)
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
                Issue.record("no run id in \(created.text)")
                return
            }
            _ = try await server.engine.waitForRun(RunID(rawValue: id), pollInterval: .milliseconds(20))
            // A backfill of a workflow the server does not load: it exists, and creates no runs.
            let backfill = try await server.engine.store.createBackfill(NewBackfill(
                id: "bf-access", workflow: "ghost", cron: "0 2 * * *", timeZone: "UTC", from: Date(timeIntervalSince1970: 1_717_200_000),
                to: Date(timeIntervalSince1970: 1_717_286_400), maxActive: 1, params: [:], fireTimes: 1,
                firstFireAt: Date(timeIntervalSince1970: 1_717_207_200), createdAt: Date()))
            func concrete(_ template: String) -> String {
                template.replacingOccurrences(of: "{name}", with: "greet")
                    .replacingOccurrences(of: "/backfills/{id}", with: "/backfills/\(backfill.id)")
                    .replacingOccurrences(of: "{id}", with: id)
                    .replacingOccurrences(of: "{task_id}", with: "hello")
            }
            let credentials: [(String, [(String, String)])] = [
                ("no token", []),
                ("a wrong token", [("Authorization", "Bearer t0ken-wrong")]),
                ("a token prefix", [("Authorization", "Bearer t0ken")]),
                ("another scheme", [("Authorization", "Basic \(Data("x:\(Self.token)".utf8).base64EncodedString())")]),
                ("an empty bearer", [("Authorization", "Bearer ")]),
            ]
            var problems: [String] = []
            for (method, template) in operations {
                let open = !protectHealth && template.hasPrefix("/health")
                for spelling in Self.spellings(of: concrete(template)) {
                    for (name, headers) in credentials {
                        let status = try await RawHTTP.send(port: server.apiPort, method: method, target: spelling, headers: headers, body: method == "POST" ? "{}" : "").status
                        if !open, (200..<300).contains(status) {
                            problems.append("\(method) \(spelling) with \(name): \(status)")
                        }
                    }
                }
                // A webhook is authenticated by the signature of its body, not by the token:
                // the right token without a signature is refused like no token.
                if APIServer.signedPaths.contains(template) {
                    let status = try await RawHTTP.send(
                        port: server.apiPort, method: method, target: concrete(template), headers: [("Authorization", "Bearer \(Self.token)")], body: "{}").status
                    if status != 401 { problems.append("\(method) \(concrete(template)) with the right token but no signature: \(status)") }
                    continue
                }
                // The canonical spelling with the right token is served (so the sweep above
                // could have seen a 2xx).
                let status = try await RawHTTP.send(
                    port: server.apiPort, method: method, target: concrete(template), headers: [("Authorization", "Bearer \(Self.token)")],
                    body: method == "POST" ? "{}" : "").status
                if status == 401 || status == 404 || status >= 500 {
                    problems.append("\(method) \(concrete(template)) with the right token: \(status)")
                }
            }
            #expect(problems.isEmpty, "answered without the right token:\n\(problems.joined(separator: "\n"))")
            // Nothing an unauthenticated request asked for happened: the three runs that exist
            // are the ones triggered and rerun with the right token, and the first was not
            // cancelled (nor retried: it succeeded).
            let page = try await server.engine.runs(RunQuery())
            #expect(page.runs.count == 3)
            #expect(page.runs.first { $0.id.rawValue == id }?.status == .success)
            // The webhook route's rule: no token needed, a signature of the body is.
            #expect(APIServer.signedPaths == ["/api/v1/hooks/{name}"])
            let signature = WebhookSignature.sign(Array("{}".utf8), secret: Self.hookSecret)
            let signed = try await RawHTTP.send(
                port: server.apiPort, method: "POST", target: "/api/v1/hooks/greet", headers: [("X-Hub-Signature-256", signature)], body: "{}")
            #expect(signed.status == 202)
            #expect(try await server.engine.runs(RunQuery()).runs.count == 4)
        }
    }

    @Test("every route the server registers is documented in openapi.yaml, so the table above covers it")
    func everyRouteIsDocumented() async throws {
        let documented = Set(try Self.documentedOperations().map { "\($0.method) \($0.path)" })
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            var configuration = APIConfiguration()
            configuration.alerts = NoAlerts()
            let router = APIServer.makeRouter(engine: server.engine, configuration: configuration, metrics: nil)
            let registered = Set(router.routes.map { "\($0.method) \($0.path)" })
            #expect(registered.contains("GET /api/v1/alerts"))
            #expect(registered.subtracting(documented).isEmpty, "registered but not in openapi.yaml: \(registered.subtracting(documented).sorted())")
            // With the UI: the API routes are the documented ones; every other route is a UI
            // route of WebUI.routes (covered by the UI's access test) or an open UI route.
            configuration.browser = WebUI(
                engine: server.engine, configuration: .init(tokens: [APIToken(Self.token)]), monitoring: nil, outbox: nil,
                live: LiveUpdates(store: server.engine.store, pollsStore: false))
            let withUI = Set(APIServer.makeRouter(engine: server.engine, configuration: configuration, metrics: nil).routes.map { "\($0.method) \($0.path)" })
            let api = withUI.filter { $0.contains(" /api/") || $0.contains(" /health") }
            #expect(api.subtracting(documented).isEmpty)
            let ui = Set(WebUI.routes.map { "\($0.method) \($0.path)" })
            let open: Set<String> = ["GET /login", "POST /login", "GET /static/deerflow.css", "GET /static/deerflow.js"]
            #expect(withUI.subtracting(api) == ui.union(open), "UI routes not in WebUI.routes: \(withUI.subtracting(api).subtracting(ui.union(open)).sorted())")
        }
    }

    @Test("no UI route answers 2xx without a session or token; the login form and assets are open", .serialized, arguments: WebUI.routes)
    func uiRoutesNeedASession(route: (method: String, path: String)) async throws {
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.api.tokens = [APIToken(Self.token)] }) { server in
            let created = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: ["Authorization": "Bearer \(Self.token)"])
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
                Issue.record("no run id in \(created.text)")
                return
            }
            let target = route.path.replacingOccurrences(of: "{id}", with: id).replacingOccurrences(of: "{name}", with: "greet")
                .replacingOccurrences(of: "{task}", with: "hello")
            for spelling in Self.spellings(of: target == "/" ? "/runs" : target) + (target == "/" ? ["/", "//"] : []) {
                for headers in [[], [("Cookie", "deerflow_session=forged")], [("Authorization", "Bearer t0ken-wrong")]] {
                    let status = try await RawHTTP.send(
                        port: server.apiPort, method: route.method, target: spelling, headers: headers, body: route.method == "POST" ? "{}" : "").status
                    #expect(!(200..<400).contains(status), "\(route.method) \(spelling) with \(headers): \(status)")
                }
            }
            for open in ["/login", "/static/deerflow.css", "/static/deerflow.js"] {
                #expect(try await RawHTTP.send(port: server.apiPort, method: "GET", target: open).status == 200)
            }
            #expect(try await server.engine.runs(RunQuery()).runs.count == 1)
        }
    }

    struct NoAlerts: AlertsEndpoint {
        func alertsDocument() async -> JSONValue { [:] }
        func receiveAlertmanagerWebhook(_ payload: JSONValue) async throws -> Int { 0 }
    }
}
