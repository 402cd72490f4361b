import DeerFlow
import Hummingbird
import Tracing

/// A server span `HTTP <method> <route>` per API request, continuing the caller's
/// `traceparent`; handlers (and the runs they create) run inside it.
struct RequestTracingMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let tracer = InstrumentationSystem.tracer
        guard !(tracer is NoOpTracer) else { return try await next(request, context) }
        var carrier: [String: String] = [:]
        for field in request.headers { carrier[field.name.canonicalName] = field.value }
        var parent = ServiceContext.current ?? .topLevel
        tracer.extract(carrier, into: &parent, using: DictionaryExtractor())
        let method = request.method.rawValue
        let span = tracer.startSpan("HTTP \(method)", context: parent, ofKind: .server)
        span.attributes["http.request.method"] = method
        span.attributes["url.path"] = request.uri.path
        defer { span.end() }
        do {
            let response = try await ServiceContext.withValue(span.context) {
                try await next(request, context)
            }
            finish(span, context: context, method: method, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            finish(span, context: context, method: method, status: error.status.code)
            throw error
        } catch {
            span.recordError(error)
            finish(span, context: context, method: method, status: 500)
            throw error
        }
    }

    private func finish(_ span: any Span, context: Context, method: String, status: Int) {
        let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 }
        if let route {
            span.operationName = "HTTP \(method) \(route)"
            span.attributes["http.route"] = route
        }
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(SpanStatus(code: .error)) }
    }
}
