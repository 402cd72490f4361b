public import DeerFlow
public import DeerFlowAlerting
public import DeerFlowCore
public import DeerFlowHTTP
import Foundation
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore

/// What the UI shows of the process's alerting: the sampled metric history, the active alerts
/// and the dashboard panels. The server's alerting service provides it.
public protocol UIMonitoring: Sendable {
    /// The in-process metric history (the alert evaluator's).
    var history: SeriesStore { get }
    /// Pending and firing alerts.
    func activeAlerts() -> [Alert]
    /// Whether this process evaluates the rules (the scheduler leader does).
    var evaluates: Bool { get }
}

/// A panel of the Metrics page: PromQL expressions drawn over the last hour.
public struct UIPanel: Sendable {
    public var title: String
    public var expressions: [String]
    /// Grafana's unit (`s`, `percentunit`, `short`, ...), for the figures.
    public var unit: String

    public init(title: String, expressions: [String], unit: String) {
        self.title = title
        self.expressions = expressions
        self.unit = unit
    }
}

/// The DeerFlow web UI: server-rendered pages at `/` of the API listener, registered on the API's
/// route group (``BrowserRoutes``) so its access control applies.
///
/// ```swift
/// var api = APIConfiguration()
/// api.browser = WebUI(engine: engine, configuration: .init(tokens: api.tokens), live: live)
/// ```
public struct WebUI: BrowserRoutes {
    /// Settings of the UI.
    public struct Configuration: Sendable {
        /// The API tokens; with any, the UI asks for one at login.
        public var tokens: [APIToken]
        /// How long a login lasts; default 12 hours.
        public var sessionLifetime: Duration = .seconds(12 * 3600)
        /// Mark cookies `Secure` (the UI is reached over TLS, e.g. `api.public_url` is https).
        public var secureCookies = false
        /// Dashboard panels for the Metrics page.
        public var panels: [UIPanel] = []
        /// Titles of the dashboard's panels only Grafana draws (heatmaps), named on the Metrics page.
        public var grafanaOnlyPanels: [String] = []
        /// `tracing.ui_url`: where a run's trace is shown, `{trace_id}` replaced; nil: no link.
        public var traceURL: String?

        public init(tokens: [APIToken]) {
            self.tokens = tokens
        }
    }

    let engine: DeerFlowEngine
    let configuration: Configuration
    let monitoring: (any UIMonitoring)?
    let outbox: (any OutboxStore)?
    let live: LiveUpdates
    let sessions: Sessions
    /// Results shared by the pages of every browser for a moment (the overview's figures, charts).
    let caches = PageCaches()

    /// - Parameters:
    ///   - monitoring: the process's alerting (history, alerts); nil when alerting is off.
    ///   - outbox: the notification outbox, for the Alerts page.
    ///   - live: the live-update hub, observing `engine`.
    public init(engine: DeerFlowEngine, configuration: Configuration, monitoring: (any UIMonitoring)?, outbox: (any OutboxStore)?, live: LiveUpdates) {
        self.engine = engine
        self.configuration = configuration
        self.monitoring = monitoring
        self.outbox = outbox
        self.live = live
        sessions = Sessions(tokens: configuration.tokens, lifetime: configuration.sessionLifetime, secureCookies: configuration.secureCookies)
    }

    static let stylesheetPath = "/static/deerflow.css"
    static let scriptPath = "/static/deerflow.js"

    /// Every page and action of the UI (method, route template), for the access-control tests.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/"), ("GET", "/runs"), ("GET", "/runs/jump"), ("GET", "/runs/{id}"), ("POST", "/runs/{id}/cancel"),
        ("POST", "/runs/{id}/retry"), ("POST", "/runs/{id}/rerun"),
        ("GET", "/runs/{id}/tasks/{task}/log.txt"), ("GET", "/runs/{id}/tasks/{task}/log/live"),
        ("GET", "/workflows"), ("GET", "/workflows/{name}"), ("POST", "/workflows/{name}/runs"),
        ("POST", "/workflows/{name}/pause"), ("POST", "/workflows/{name}/unpause"), ("POST", "/workflows/{name}/backfills"),
        ("POST", "/backfills/{id}/cancel"),
        ("GET", "/workers"), ("GET", "/alerts"), ("GET", "/dashboard"), ("GET", "/live"), ("POST", "/logout"),
    ]

    public var openRoutes: Set<String> { ["/login", Self.stylesheetPath, Self.scriptPath] }
    public var sessionRoutes: Set<String> { Set(Self.routes.map(\.path)) }

    public func sessionRole(_ request: Request) -> APIRole? { sessions.role(request) }

    public func unauthenticated(_ request: Request) -> Response {
        if request.method != .get || request.uri.path.hasPrefix("/live") || request.uri.path.hasSuffix("/live") {
            return Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "log in first: open / in a browser\n")))
        }
        var next = request.uri.path
        if let query = request.uri.query { next += "?" + query }
        return loginPage(request, next: next, error: nil, status: .unauthorized)
    }

    public func register(on routes: RouterGroup<BasicRequestContext>) {
        let ui = self
        routes.get("/") { request, _ in await ui.guarded(request) { try await ui.overview(request) } }
        routes.get("/runs") { request, context in await ui.guarded(request) { try await ui.runsPage(request, context: context) } }
        routes.get("/runs/jump") { request, context in await ui.guarded(request) { try await ui.jump(request, context: context) } }
        routes.get("/runs/{id}") { request, context in
            await ui.guarded(request) { try await ui.runPage(request, context: context, id: context.parameters.get("id") ?? "") }
        }
        routes.post("/runs/{id}/cancel") { request, context in
            await ui.guarded(request) { try await ui.cancel(request, id: context.parameters.get("id") ?? "") }
        }
        routes.post("/workflows/{name}/pause") { request, context in
            await ui.guarded(request) { try await ui.setPaused(request, name: context.parameters.get("name") ?? "", paused: true) }
        }
        routes.post("/workflows/{name}/unpause") { request, context in
            await ui.guarded(request) { try await ui.setPaused(request, name: context.parameters.get("name") ?? "", paused: false) }
        }
        routes.post("/workflows/{name}/backfills") { request, context in
            await ui.guarded(request) { try await ui.createBackfill(request, name: context.parameters.get("name") ?? "") }
        }
        routes.post("/backfills/{id}/cancel") { request, context in
            await ui.guarded(request) { try await ui.cancelBackfill(request, id: context.parameters.get("id") ?? "") }
        }
        routes.post("/runs/{id}/retry") { request, context in
            await ui.guarded(request) { try await ui.retry(request, id: context.parameters.get("id") ?? "") }
        }
        routes.post("/runs/{id}/rerun") { request, context in
            await ui.guarded(request) { try await ui.rerun(request, id: context.parameters.get("id") ?? "") }
        }
        routes.get("/runs/{id}/tasks/{task}/log.txt") { request, context in
            await ui.guarded(request) {
                try await ui.logDownload(request, context: context, id: context.parameters.get("id") ?? "", task: context.parameters.get("task") ?? "")
            }
        }
        routes.get("/runs/{id}/tasks/{task}/log/live") { request, context in
            await ui.guarded(request) {
                try await ui.logStream(request, context: context, id: context.parameters.get("id") ?? "", task: context.parameters.get("task") ?? "")
            }
        }
        routes.get("/workflows") { request, _ in await ui.guarded(request) { try await ui.workflowsPage(request, form: nil) } }
        routes.get("/workflows/{name}") { request, context in
            await ui.guarded(request) { try await ui.workflowPage(request, context: context, name: context.parameters.get("name") ?? "", form: nil) }
        }
        routes.post("/workflows/{name}/runs") { request, context in
            await ui.guarded(request) { try await ui.trigger(request, context: context, name: context.parameters.get("name") ?? "") }
        }
        routes.get("/workers") { request, _ in await ui.guarded(request) { try await ui.workersPage(request) } }
        routes.get("/alerts") { request, _ in await ui.guarded(request) { try await ui.alertsPage(request) } }
        routes.get("/dashboard") { request, _ in await ui.guarded(request) { ui.dashboardPage(request) } }
        routes.get("/live") { request, context in await ui.guarded(request) { ui.liveStream(request, context: context) } }
        routes.get("/login") { request, context in await ui.guarded(request) { ui.loginForm(request, context: context) } }
        routes.post("/login") { request, _ in await ui.guarded(request) { try await ui.login(request) } }
        routes.post("/logout") { request, _ in await ui.guarded(request) { try await ui.logout(request) } }
        routes.get(RouterPath(Self.stylesheetPath)) { request, _ in Self.asset(Stylesheet.text, type: "text/css; charset=utf-8", for: request) }
        routes.get(RouterPath(Self.scriptPath)) { request, _ in Self.asset(Script.text, type: "text/javascript; charset=utf-8", for: request) }
    }

    // MARK: Responses

    /// The Content-Security-Policy of every UI answer: this origin's stylesheet and script only
    /// (no inline script or style, no foreign origin), no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    static func headers(type: String, cache: String = "no-store") -> HTTPFields {
        [
            .contentType: type, .contentSecurityPolicy: contentSecurityPolicy, .xContentTypeOptions: "nosniff",
            .cacheControl: cache,
        ]
    }

    /// `text` with the UI's headers, gzip-compressed for a browser that accepts it (``Compression``).
    static func answer(
        _ text: String, type: String, status: HTTPResponse.Status = .ok, cache: String = "no-store", for request: Request
    ) -> Response {
        var headers = headers(type: type, cache: cache)
        let body = Compression.body(text, for: request, headers: &headers)
        return Response(status: status, headers: headers, body: body)
    }

    static func asset(_ text: String, type: String, for request: Request) -> Response {
        answer(text, type: type, cache: "public, max-age=300", for: request)
    }

    /// Runs a page handler; an error becomes an HTML page saying what to do, not a JSON body.
    func guarded(_ request: Request, _ body: () async throws -> Response) async -> Response {
        do {
            // One CSRF token per request: the forms a page renders and the cookie it sets agree.
            let csrf = sessions.csrf(for: request)
            return try await Self.$requestCSRF.withValue(csrf.token) {
                var response = try await body()
                if csrf.cookie != nil, !response.headers[values: .setCookie].contains(where: { $0.hasPrefix(Sessions.csrfCookieName + "=") }),
                   let cookie = csrf.cookie {
                    response.setCookie(cookie)
                }
                return response
            }
        } catch let error as DeerFlowError {
            let status: HTTPResponse.Status
            switch error.code {
            case .notFound: status = .notFound
            case .conflict: status = .conflict
            case .badRequest, .invalidParams, .invalidRequest: status = .badRequest
            case .unavailable: status = .serviceUnavailable
            default: status = .internalServerError
            }
            var response = errorPage(request, status: status, message: error.message)
            // The store is down (PostgreSQL outage): like the API, say when to try again.
            if status == .serviceUnavailable { response.headers[.retryAfter] = String(DeerFlowError.retryAfterSeconds) }
            return response
        } catch {
            engine.logger.error("UI request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return errorPage(request, status: .internalServerError, message: "internal error; the server log has the details")
        }
    }

    func errorPage(_ request: Request, status: HTTPResponse.Status, message: String) -> Response {
        let heading: String
        switch status {
        case .notFound: heading = "Not found"
        case .serviceUnavailable: heading = "The store is not answering; try again in a few seconds"
        default: heading = "Something went wrong"
        }
        let content = Templates.render("error", ["heading": heading, "message": message, "back": "/", "backLabel": "Back to the overview"])
        return page(request, title: status == .notFound ? "Not found" : "Error", section: "", content: content, status: status)
    }

    /// The CSRF token of the request being handled (see ``guarded(_:_:)``).
    @TaskLocal static var requestCSRF: String?

    /// The request's CSRF token; the cookie is set by ``guarded(_:_:)`` when the browser has none.
    func csrfToken(for request: Request) -> (token: String, cookie: Cookie?) {
        if let token = Self.requestCSRF { return (token, nil) }
        return sessions.csrf(for: request)
    }

    /// A page in the layout, with the CSRF cookie set when the browser has none.
    func page(_ request: Request, title: String, section: String, content: String, live: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        let csrf = csrfToken(for: request)
        let nav: [[String: Any]] = [("/", "Overview"), ("/runs", "Runs"), ("/workflows", "Workflows"), ("/workers", "Workers"), ("/alerts", "Alerts"), ("/dashboard", "Metrics")]
            .map { ["href": $0.0, "label": $0.1, "current": $0.0 == section] }
        var context: [String: Any] = [
            "title": title, "content": content, "nav": nav, "version": DeerFlowVersion.current,
            "logout": sessions.required && sessions.isValid(request), "csrf": csrf.token,
            // A viewer's session: the forms that operate are hidden (and refused if sent anyway).
            "readOnly": sessions.required && request.headers[.authorization] == nil && (sessions.role(request) ?? .admin) < .operator,
        ]
        context["live"] = Format.orFalse(live)
        var response = Self.answer(Templates.render("layout", context), type: "text/html; charset=utf-8", status: status, for: request)
        if let cookie = csrf.cookie { response.setCookie(cookie) }
        return response
    }

    static func redirect(_ location: String, cookies: [Cookie] = []) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }

    /// The query of a request, decoded like a form (`+` is a space).
    static func query(_ request: Request) -> [String: String] {
        (try? URLEncodedFormDecoder().decode([String: String].self, from: request.uri.query ?? "")) ?? [:]
    }

    /// A POSTed form, after its CSRF token was checked.
    func form<Form: Decodable>(_ request: Request, as type: Form.Type, csrf: KeyPath<Form, String?>) async throws -> Form {
        var request = request
        let buffer = try await request.collectBody(upTo: 1 << 20)
        let form: Form
        do {
            form = try URLEncodedFormDecoder().decode(Form.self, from: String(buffer: buffer))
        } catch {
            throw DeerFlowError(.badRequest, "the form could not be read: \(error)")
        }
        guard sessions.checkCSRF(request, formValue: form[keyPath: csrf]) else {
            throw DeerFlowError(.badRequest, "the form's CSRF token does not match this browser's: reload the page and submit the form again")
        }
        return form
    }

    // MARK: Login

    struct LoginForm: Decodable {
        var csrf: String?
        var token: String?
        var next: String?
    }

    struct CSRFForm: Decodable {
        var csrf: String?
    }

    func loginForm(_ request: Request, context: BasicRequestContext) -> Response {
        guard sessions.required else { return Self.redirect("/") }
        return loginPage(request, next: Self.query(request)["next"] ?? "/", error: nil, status: .ok)
    }

    func loginPage(_ request: Request, next: String, error: String?, status: HTTPResponse.Status) -> Response {
        let csrf = csrfToken(for: request)
        var context: [String: Any] = ["next": Self.safeNext(next), "csrf": csrf.token]
        context["error"] = Format.orFalse(error)
        let content = Templates.render("login", context)
        let html = Templates.render("layout", [
            "title": "Log in", "content": content, "nav": [[String: Any]](), "version": DeerFlowVersion.current, "logout": false, "live": false,
        ])
        var response = Self.answer(html, type: "text/html; charset=utf-8", status: status, for: request)
        if let cookie = csrf.cookie { response.setCookie(cookie) }
        return response
    }

    func login(_ request: Request) async throws -> Response {
        guard sessions.required else { return Self.redirect("/") }
        let form = try await self.form(request, as: LoginForm.self, csrf: \.csrf)
        guard let token = form.token, let matched = sessions.accepts(token: token) else {
            return loginPage(request, next: form.next ?? "/", error: "That token is not one of this server's API tokens.", status: .unauthorized)
        }
        return Self.redirect(Self.safeNext(form.next ?? "/"), cookies: [sessions.create(role: matched.role)])
    }

    func logout(_ request: Request) async throws -> Response {
        _ = try await form(request, as: CSRFForm.self, csrf: \.csrf)
        return Self.redirect(sessions.required ? "/login" : "/", cookies: [sessions.end(request)])
    }

    /// Only a path of this site (not `//host`, not a URL) is followed after login.
    static func safeNext(_ next: String) -> String {
        guard next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), !next.contains("\n"), !next.contains("\r") else { return "/" }
        return next
    }

    // MARK: Live updates

    /// `GET /live[?run=ID]`: server-sent events; `change` whenever the run (or anything) changed,
    /// at most every 300 ms. The stream ends after 10 minutes (browsers reconnect) or at shutdown.
    func liveStream(_ request: Request, context: BasicRequestContext) -> Response {
        let runText = Self.query(request)["run"]
        let run = runText.flatMap { RunID.isWellFormed($0) ? RunID(rawValue: $0) : nil }
        let updates = live.subscribe(run: run)
        var headers = Self.headers(type: "text/event-stream")
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
            let deadline = ContinuousClock.now + .seconds(600)
            // Changes are gathered before the page is told: a run page follows its run closely; a
            // page of everything (overview, runs list) refreshes at most every 2 s, so a busy
            // cluster does not have every open overview re-rendered many times a second.
            let gather: Duration = run == nil ? .seconds(2) : .milliseconds(300)
            for await changed in updates {
                if ContinuousClock.now > deadline { break }
                if changed {
                    try await Sleep.for(gather)
                    try await writer.write(ByteBuffer(string: "event: change\ndata: {}\n\n"))
                } else {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
            }
            try await writer.finish(nil)
        })
    }
}
