import DeerFlow
import DeerFlowCore
import Foundation
import Hummingbird
import Logging
import OpenAPIRuntime

/// Turns every error into `{"error": {"code", "message"}}` with the matching status.
///
/// A request to a known path with a method it does not have answers 405 `method_not_allowed`
/// with `Allow` listing the path's methods (the router says 404 for it).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let maxBodyBytes: Int
    var known = KnownRoutes()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            // The generated server wraps what a handler or a server middleware throws.
            let cause = (error as? ServerError)?.underlyingError ?? error
            switch cause {
            case let error as DeerFlowError:
                return JSONResponse.make(JSONResponse.error(error.code.rawValue, error.message), status: Self.status(of: error.code), headers: Self.headers(of: error.code))
            case let error as any HTTPResponseError:
                let status = error.status
                if status == .notFound, error is HTTPError, case let allowed = known.methods(of: request.uri.path), !allowed.isEmpty {
                    let message = "\(request.method) is not allowed on \(request.uri.path); allowed: \(allowed.joined(separator: ", "))"
                    return JSONResponse.make(
                        JSONResponse.error("method_not_allowed", message), status: .methodNotAllowed,
                        headers: [.allow: allowed.joined(separator: ", ")])
                }
                let (code, message) = describe(status, error: error, request: request)
                return JSONResponse.make(JSONResponse.error(code, message), status: status)
            default:
                // The details go to the server log, not to the client.
                logger.error("API request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
                return JSONResponse.make(JSONResponse.error("internal", "internal error; the server log has the details"), status: .internalServerError)
            }
        }
    }

    static func status(of code: DeerFlowError.Code) -> HTTPResponse.Status {
        switch code {
        case .badRequest: return .badRequest
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .payloadTooLarge: return .contentTooLarge
        case .invalidParams, .invalidRequest, .invalidTasks: return .unprocessableContent
        case .unavailable: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    static func headers(of code: DeerFlowError.Code) -> HTTPFields {
        switch code {
        case .unauthorized: return [.wwwAuthenticate: "Bearer realm=\"deerflow\""]
        case .unavailable: return [.retryAfter: String(DeerFlowError.retryAfterSeconds)]
        default: return [:]
        }
    }

    func describe(_ status: HTTPResponse.Status, error: any Error, request: Request) -> (String, String) {
        switch status {
        case .notFound: return ("not_found", "no route for \(request.method) \(request.uri.path); see GET /api/v1/openapi.yaml")
        case .contentTooLarge: return ("payload_too_large", "the request body is larger than \(maxBodyBytes) bytes")
        case .badRequest: return ("bad_request", "\((error as? HTTPError)?.body ?? "bad request")")
        default: return (status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"), "\((error as? HTTPError)?.body ?? status.reasonPhrase)")
        }
    }
}

/// Counts requests in `deerflow_api_requests_total{endpoint, status}` by route template, and
/// times them in `deerflow_api_request_duration_seconds{endpoint}` (from the request's head to the
/// response, errors included; a streamed body is timed to its start).
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let counter: MetricsRegistry.Counter
    let duration: MetricsRegistry.Histogram

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(context, status: response.status.code, since: start)
            return response
        } catch let error as any HTTPResponseError {
            record(context, status: error.status.code, since: start)
            throw error
        } catch {
            record(context, status: 500, since: start)
            throw error
        }
    }

    private func record(_ context: Context, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        var endpoint = context.endpointPath ?? "unmatched"
        if endpoint == "NotFound" { endpoint = "unmatched" }
        try? counter.labels(endpoint, String(status)).inc()
        try? duration.labels(endpoint).observe(elapsed.seconds)
    }
}

/// Which role each route needs (``AccessControlMiddleware``).
enum AccessRules {
    /// Routes a POST to which needs `operator`: triggering, cancelling, retrying and rerunning
/// runs, pausing and unpausing schedules, backfills — in the API and the UI's forms.
static let operatorRoutes: Set<String> = [
    "/api/v1/workflows/{name}/runs", "/api/v1/workflows/{name}/runs:batch", "/api/v1/workflows/{name}/pause", "/api/v1/workflows/{name}/unpause",
    "/api/v1/workflows/{name}/backfills", "/api/v1/backfills/{id}/cancel", "/api/v1/runs/{id}/cancel",
    "/api/v1/runs/{id}/retry", "/api/v1/runs/{id}/rerun",
    "/workflows/{name}/runs", "/workflows/{name}/pause", "/workflows/{name}/unpause", "/workflows/{name}/backfills",
    "/backfills/{id}/cancel", "/runs/{id}/cancel", "/runs/{id}/retry", "/runs/{id}/rerun",
]
/// Routes a POST to which any role may send (ending one's own UI session).
static let viewerPostRoutes: Set<String> = ["/logout"]

/// The role a request needs: reads `viewer`, operating `operator`, the rest `admin`.
static func requiredRole(method: HTTPRequest.Method, route: String) -> APIRole {
    if method == .get || method == .head || viewerPostRoutes.contains(route) { return .viewer }
    return operatorRoutes.contains(route) ? .operator : .admin
}
}

/// Requires `Authorization: Bearer <token>` on every route except the open ones.
///
/// It runs inside the route group every route is registered on, that is after the router has
/// matched the request, and decides on the matched route template (`context.endpointPath`), not
/// on the request's path: every spelling of a path the router accepts (`//api/v1/runs`,
/// `/api/v1/runs/`) reaches the same decision as the route itself. A route is protected unless
/// its template is listed in `openRoutes` (served to anyone) or `signedRoutes` (a webhook: the
/// handler authenticates every request by its signature, token or not).
///
/// Each token has a role (``APIRole``): GET needs `viewer`, operating runs and schedules
/// (``AccessRules/operatorRoutes``) `operator`, anything else `admin`. A session of the UI has the role of the
/// token it was opened with. Every decision is counted in `deerflow_api_access_total{role, outcome}`.
struct AccessControlMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [APIToken]
    /// Route templates served without a token (`/health/live`).
    let openRoutes: Set<String>
    /// Route templates whose handler checks a signature of the request instead (`/api/v1/hooks/{name}`).
    var signedRoutes: Set<String> = []
    /// The browser routes beside the API: its session routes also accept a session cookie.
    var browser: (any BrowserRoutes)?
    /// `deerflow_api_access_total{role, outcome}`; nil: not counted.
    var decisions: MetricsRegistry.Counter?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if tokens.isEmpty { return try await next(request, context) }
        if let route = context.endpointPath, openRoutes.contains(route) || signedRoutes.contains(route) { return try await next(request, context) }
        let route = context.endpointPath ?? request.uri.path
        if let browser, browser.sessionRoutes.contains(route), request.headers[.authorization] == nil {
            guard let role = browser.sessionRole(request) else {
                count("none", "unauthenticated")
                return browser.unauthenticated(request)
            }
            try authorize(role, request: request, route: route)
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            count("none", "unauthenticated")
            throw DeerFlowError(.unauthorized, "this API needs a bearer token: send 'Authorization: Bearer <token>' (tokens come from api.tokens or DEERFLOW_API_TOKENS)")
        }
        guard let token = APIToken.match(header.dropFirst("bearer ".count), in: tokens) else {
            count("none", "unauthenticated")
            throw DeerFlowError(.unauthorized, "the bearer token is not valid")
        }
        try authorize(token.role, request: request, route: route)
        return try await next(request, context)
    }

    private func authorize(_ role: APIRole, request: Request, route: String) throws {
        let needed = AccessRules.requiredRole(method: request.method, route: route)
        guard role >= needed else {
            count(role.rawValue, "forbidden")
            throw DeerFlowError(.forbidden, "this token's role is \(role.rawValue); \(request.method.rawValue) \(route) needs \(needed.rawValue) (roles: viewer reads, operator also runs and pauses, admin does everything)")
        }
        count(role.rawValue, "allowed")
    }

    private func count(_ role: String, _ outcome: String) {
        try? decisions?.labels(role, outcome).inc()
    }
}

/// Sends an answer whose length is known and at most `limit` bytes in one write with its head.
///
/// The generated API's answers reach Hummingbird as a body closure (swift-openapi-hummingbird
/// wraps each `HTTPBody` so), and Hummingbird writes such a body after flushing the head: two
/// `write` system calls per answer, and the client wakes twice (strace of `GET /health/live`).
/// A body held as one `ByteBuffer` goes out with its head in one `writev`, so this middleware
/// collects bounded bodies into one buffer; a body that already is one buffer is kept, not copied.
/// Streamed answers (unknown length: events, log follow) and larger ones pass through unchanged.
struct SingleWriteMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Larger bodies are streamed as they come.
    var limit = 1 << 20

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard let length = response.body.contentLength, length <= limit else { return response }
        let collected = CollectedBody()
        let body = response.body
        try await body.write(BodyCollector(target: collected))
        let buffer = collected.buffer ?? ByteBuffer()
        if let trailers = collected.trailers {
            response.body = ResponseBody(contentLength: buffer.readableBytes) { writer in
                try await writer.write(buffer)
                try await writer.finish(trailers)
            }
        } else {
            response.body = ResponseBody(byteBuffer: buffer)
        }
        return response
    }

    /// What a ``BodyCollector`` was given. Used by one request's task only.
    final class CollectedBody: @unchecked Sendable {
        var buffer: ByteBuffer?
        var trailers: HTTPFields?
    }

    struct BodyCollector: ResponseBodyWriter {
        let target: CollectedBody

        mutating func write(_ part: ByteBuffer) async throws {
            if target.buffer == nil {
                target.buffer = part
            } else {
                var part = part
                target.buffer?.writeBuffer(&part)
            }
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            target.trailers = trailingHeaders
        }
    }
}
