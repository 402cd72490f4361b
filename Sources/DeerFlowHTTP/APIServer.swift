public import DeerFlow
import DeerFlowAPI
public import DeerFlowCore
import Foundation
import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import OpenAPIHummingbird
import OpenAPIRuntime
import Synchronization

/// Settings of the HTTP API.
public struct APIConfiguration: Sendable {
    /// Address to listen on; default `127.0.0.1` (use `0.0.0.0` to accept remote clients).
    public var host: String = "127.0.0.1"
    /// Port; default 8080; 0 picks a free port (logged, and passed to `onListening`).
    public var port: Int = 8080
    /// Bearer tokens every route requires (but the health routes, unless `protectHealth`); empty:
    /// no authentication.
    public var tokens: [APIToken] = []
    /// Whether `/health` endpoints also require a token; default false.
    public var protectHealth: Bool = false
    /// Largest accepted request body; default 1 MiB.
    public var maxBodyBytes: Int = 1 << 20
    /// Header, body and idle timeouts and the connection limit (`api.header_timeout`, ...).
    public var connections = ConnectionLimits()
    /// Serves `/api/v1/alerts` and the Alertmanager webhook; nil: those routes answer 404.
    public var alerts: (any AlertsEndpoint)?
    /// Routes served beside the API (the web UI), on the same route group and access control;
    /// nil: none.
    public var browser: (any BrowserRoutes)?
    /// Deletes old history for `POST /api/v1/maintenance/purge`; nil: that route answers 404.
    public var purger: HistoryPurger?
    /// Where the webhooks' secrets are read (`secret_env`), once, when the router is made;
    /// default this process's environment.
    public var environment: [String: String] = ProcessInfo.processInfo.environment

    public init() {}
}

/// Routes a browser uses beside the API on its listener (the web UI). They are registered on the
/// API's route group, so ``AccessControlMiddleware`` decides on them like on every route: open
/// ones by name, session routes with a session cookie (or a bearer token), the rest with a token.
public protocol BrowserRoutes: Sendable {
    /// Registers the routes on the API's route group.
    func register(on routes: RouterGroup<BasicRequestContext>)
    /// Route templates a session cookie authenticates when API tokens are configured.
    var sessionRoutes: Set<String> { get }
    /// Route templates served without credentials (the login form, the stylesheet and script).
    var openRoutes: Set<String> { get }
    /// The role of the request's valid session; nil without one.
    func sessionRole(_ request: Request) -> APIRole?
    /// The answer to a request of a session route that has neither session nor token: the login
    /// form with status 401.
    func unauthenticated(_ request: Request) -> Response
}

/// What the alert endpoints serve; the process's alerting (rule evaluation and notifications)
/// implements it.
public protocol AlertsEndpoint: Sendable {
    /// `GET /api/v1/alerts`: pending and firing alerts of DeerFlow's own rule evaluation, with
    /// the rules and the size of the sampled history.
    func alertsDocument() async -> JSONValue
    /// `POST /api/v1/alertmanager/webhook`: an Alertmanager webhook payload (version 4), routed
    /// like DeerFlow's own alerts. Returns the number of notifications queued.
    /// - Throws: ``DeerFlowError`` with `.badRequest` for a payload that is not one.
    func receiveAlertmanagerWebhook(_ payload: JSONValue) async throws -> Int
}

/// The HTTP API: workflows, runs, task logs, workers, health and the OpenAPI document, as
/// openapi.yaml describes them (the handlers implement the generated `APIProtocol`).
public enum APIServer {
    /// The application serving the API. Run it as a Service.
    ///
    /// - Parameters:
    ///   - onListening: receives the port once the server listens (the chosen one for port 0).
    public static func makeApplication(
        engine: DeerFlowEngine,
        configuration: APIConfiguration,
        metrics: EngineMetrics?,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(engine: engine, configuration: configuration, metrics: metrics),
            server: HTTPListener.server(limits: configuration.connections, logger: engine.logger),
            configuration: HTTPListener.configuration(
                host: configuration.host, port: configuration.port, serverName: "deerflow", limits: configuration.connections, logger: engine.logger),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? configuration.port
                var metadata: Logger.Metadata = ["url": "http://\(configuration.host):\(port)/api/v1/", "port": "\(port)"]
                if configuration.browser != nil { metadata["ui"] = "http://\(configuration.host):\(port)/" }
                engine.logger.info("API listening", metadata: metadata)
                await onListening(port)
            },
            eventLoopGroupProvider: .shared(HTTPListener.eventLoopGroup),
            logger: engine.logger
        )
    }

    /// The route templates of the health endpoints; open without a token unless
    /// `api.protect_health`.
    static let healthPaths: Set<String> = ["/health", "/health/live", "/health/ready"]

    /// The route templates authenticated by a signature of the request instead of a bearer token
    /// (a webhook's sender cannot send one): ``Webhooks`` checks it, for every request.
    public static let signedPaths: Set<String> = ["/api/v1/hooks/{name}"]

    /// The router of the API (tests drive it without a socket).
    public static func makeRouter(engine: DeerFlowEngine, configuration: APIConfiguration, metrics: EngineMetrics?) -> Router<BasicRequestContext> {
        // HEAD on every GET route (the GET's status and headers, no body), as HTTP asks of a
        // server (RFC 9110 §9.3.2): uptime checks and link checkers send it.
        let router = Router(context: BasicRequestContext.self, options: .autoGenerateHeadEndpoints)
        if let metrics { router.add(middleware: RequestMetricsMiddleware(counter: metrics.apiRequests, duration: metrics.apiRequestDuration)) }
        // A server span per request, named by the matched route, continuing the caller's traceparent;
        // left out when tracing is off (its no-op spans were 3 % of a trivial request's CPU).
        if engine.isTracing { router.add(middleware: TracingMiddleware()) }
        // The API's routes, for the 405 answer to a method a known path does not have; filled
        // below as the operations are registered.
        let known = KnownRoutes()
        router.add(middleware: JSONErrorMiddleware(logger: engine.logger, maxBodyBytes: configuration.maxBodyBytes, known: known))
        // The generated API's answers would go out as two writes (head, then body).
        router.add(middleware: SingleWriteMiddleware())
        // Every route is registered on this group, so the token check runs after routing, on the
        // route that will answer (see AccessControlMiddleware): deny by default, open by name.
        let browser = configuration.browser
        let routes = router.group().add(middleware: AccessControlMiddleware(
            tokens: configuration.tokens,
            openRoutes: (configuration.protectHealth ? [] : healthPaths).union(browser?.openRoutes ?? []),
            signedRoutes: signedPaths,
            browser: browser,
            decisions: metrics?.accessDecisions))
        let webhooks = Webhooks(workflows: engine.workflows.all.map(\.definition), environment: configuration.environment)
        for problem in webhooks.problems { engine.logger.error("\(problem)") }
        let transport = RoutesTransport(
            routes: routes, known: known,
            leftOut: Set(configuration.alerts == nil ? ["/api/v1/alerts", "/api/v1/alertmanager/webhook"] : [])
                .union(configuration.purger == nil ? ["/api/v1/maintenance/purge"] : []))
        do {
            try APIService(
                engine: engine, alerts: configuration.alerts, purger: configuration.purger, webhooks: webhooks,
                webhookRequests: metrics?.webhookRequests
            ).registerHandlers(
                on: transport,
                configuration: APICoding.configuration,
                middlewares: [WebhookHeadersMiddleware(), RequestShapeMiddleware(maxBodyBytes: configuration.maxBodyBytes)])
        } catch {
            // Registering fails only for a server URL with an invalid path; the default is "/".
            preconditionFailure("the API's routes could not be registered: \(error)")
        }
        browser?.register(on: routes)
        return router
    }
}

/// Registers the generated operations on the route group that checks tokens, leaving out the
/// routes of features this server does not have (they answer 404, as unknown routes do).
struct RoutesTransport: ServerTransport {
    let routes: RouterGroup<BasicRequestContext>
    let known: KnownRoutes
    let leftOut: Set<String>

    func register(
        _ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method,
        path: String
    ) throws {
        guard !leftOut.contains(path) else { return }
        routes.register(handler, method: method, path: path)
        known.add(method, path)
        // The router answers HEAD wherever GET is (`.autoGenerateHeadEndpoints`).
        if method == .get { known.add(.head, path) }
    }
}

/// The API's route templates and their methods, so that a request whose path is a route's but
/// whose method is not answers 405 with `Allow` (RFC 9110 §15.5.6), not 404: Hummingbird's router
/// answers 404 for both and cannot list a path's methods.
final class KnownRoutes: Sendable {
    private let routes = Mutex<[(segments: [Substring], method: HTTPRequest.Method)]>([])

    func add(_ method: HTTPRequest.Method, _ template: String) {
        let segments = template.split(separator: "/")
        routes.withLock { $0.append((segments, method)) }
    }

    /// The methods of the routes whose template matches `path` (`{name}` matches any one
    /// segment; empty segments are ignored, as the router does), sorted; empty for an unknown path.
    func methods(of path: String) -> [String] {
        let segments = path.split(separator: "/")
        let methods = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == segments.count
                    && zip(route.segments, segments).allSatisfy { $0.first == "{" || $0 == $1 }
            }.map(\.method.rawValue)
        }
        return Set(methods).sorted()
    }
}

/// Serializes JSON responses.
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: value.compactJSON + "\n")))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ code: String, _ message: String) -> JSONValue {
        ["error": ["code": .string(code), "message": .string(message)]]
    }
}
