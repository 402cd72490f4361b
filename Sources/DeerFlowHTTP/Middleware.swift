import DeerFlow
import DeerFlowCore
import Foundation
import Hummingbird
import Logging
import OpenAPIRuntime

/// Turns every error into `{"error": {"code", "message"}}` with the matching status.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let maxBodyBytes: Int

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
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .payloadTooLarge: return .contentTooLarge
        case .invalidParams, .invalidRequest, .invalidTasks: return .unprocessableContent
        case .unavailable: return .serviceUnavailable
        default: return .internalServerError
        }
    }

    static func headers(of code: DeerFlowError.Code) -> HTTPFields {
        code == .unauthorized ? [.wwwAuthenticate: "Bearer realm=\"deerflow\""] : [:]
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

/// Counts requests in `deerflow_api_requests_total{endpoint, status}` by route template.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let counter: MetricsRegistry.Counter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            record(context, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            record(context, status: error.status.code)
            throw error
        } catch {
            record(context, status: 500)
            throw error
        }
    }

    private func record(_ context: Context, status: Int) {
        var endpoint = context.endpointPath ?? "unmatched"
        if endpoint == "NotFound" { endpoint = "unmatched" }
        try? counter.labels(endpoint, String(status)).inc()
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
struct AccessControlMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [String]
    /// Route templates served without a token (`/health/live`).
    let openRoutes: Set<String>
    /// Route templates whose handler checks a signature of the request instead (`/api/v1/hooks/{name}`).
    var signedRoutes: Set<String> = []
    /// The browser routes beside the API: its session routes also accept a session cookie.
    var browser: (any BrowserRoutes)?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if tokens.isEmpty { return try await next(request, context) }
        if let route = context.endpointPath, openRoutes.contains(route) || signedRoutes.contains(route) { return try await next(request, context) }
        if let browser, let route = context.endpointPath, browser.sessionRoutes.contains(route), request.headers[.authorization] == nil {
            return browser.hasSession(request) ? try await next(request, context) : browser.unauthenticated(request)
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else {
            throw DeerFlowError(.unauthorized, "this API needs a bearer token: send 'Authorization: Bearer <token>' (tokens come from api.tokens or DEERFLOW_API_TOKENS)")
        }
        let given = Array(header.dropFirst("bearer ".count).utf8)
        // Compare against every token without stopping early, so timing reveals nothing.
        var matched = false
        for token in tokens {
            let expected = Array(token.utf8)
            var difference = UInt8(expected.count == given.count ? 0 : 1)
            for index in 0..<min(expected.count, given.count) { difference |= expected[index] ^ given[index] }
            if difference == 0 { matched = true }
        }
        guard matched else { throw DeerFlowError(.unauthorized, "the bearer token is not valid") }
        return try await next(request, context)
    }
}
