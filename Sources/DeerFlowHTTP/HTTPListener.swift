import DeerFlow
import DeerFlowCore
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// How DeerFlow's listeners (the API and the metrics endpoint) hold connections: the
/// ``ConnectionLimits`` timeouts, Hummingbird's `MaximumAvailableConnections` for the connection
/// limit, and the JSON error body for requests the HTTP parser refuses.
enum HTTPListener {
    /// The application configuration of a listener, with its connection limit.
    static func configuration(host: String, port: Int, serverName: String, limits: ConnectionLimits, logger: Logger) -> ApplicationConfiguration {
        ApplicationConfiguration(
            address: .hostname(host, port: port), serverName: serverName,
            availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: logger))
    }

    /// The event loops of DeerFlow's HTTP servers, one per core: their own, not NIO's shared
    /// singleton, because handlers run on them (``EventLoopBoundChannel``): a page that takes a
    /// few milliseconds to render then delays other HTTP requests on its loop, never the
    /// PostgreSQL connections, HTTP clients and exporters that use the singleton.
    static let eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)

    /// An HTTP/1.1 server whose connections keep to `limits`' deadlines, each connection's
    /// requests handled on its event loop (``EventLoopBoundChannel``).
    static func server(limits: ConnectionLimits, logger: Logger) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            // Hummingbird's own `idleTimeout` is left off: ConnectionDeadlineHandler replaces it.
            EventLoopBoundChannel(inner: HTTP1Channel(
                responder: responder, configuration: .init(additionalChannelHandlers: [ConnectionDeadlineHandler(limits: limits, logger: logger)])))
        }
    }
}

/// Runs a connection's task (reading requests, the handlers, writing responses) on the
/// connection's own event loop, its task executor preference.
///
/// Hummingbird runs each connection's task on Swift's shared pool: every request then wakes a
/// pool thread when its bytes arrive from the event loop, and the event loop again to write the
/// answer. Two thread wake-ups per request were about half of a `GET /health/live`'s time and CPU
/// on the 2-core machine. On the event loop, a request is read, answered and written in one go;
/// work that prefers another executor (a SQLite connection's thread) still runs there. Handlers
/// never wait on the loop: every wait in them is an `await`. (A SQLite read, and a lone write
/// transaction, run on the loop when they need not wait for another process's lock: see the
/// SQLite store's `SerializedConnection`.)
struct EventLoopBoundChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: value.channel.eventLoop)) {
            await inner.handle(value: value, logger: logger)
        }
    }
}

/// Closes a connection whose client misses a deadline of ``ConnectionLimits``, and answers a
/// request the HTTP parser refuses with the API's JSON error.
///
/// Hand-written because neither Hummingbird nor NIO has these deadlines: Hummingbird's
/// `idleTimeout` (`HTTPConnectionStateHandler`) and NIO's `IdleStateHandler` measure inactivity,
/// restarted by every byte or body part, so a client sending its body one byte every few seconds
/// keeps its connection forever, and a request head cannot be given a shorter deadline than a
/// kept-alive connection's idle time. And Hummingbird answers a parser error with an empty 400
/// (`HTTPChannelHandler.handleHTTP`), or, for a head it cannot convert, with nothing at all.
///
/// It sits after the HTTP codec (it sees request and response parts) and keeps one deadline:
/// the head (header timeout from the connection's opening, idle timeout from the end of the
/// previous response), the body (body timeout from the end of the head), none while a request
/// is being answered.
final class ConnectionDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let logger: Logger
    /// Requests whose head arrived and whose response has not ended.
    private var unanswered = 0
    /// Whether a request's head arrived and its end has not.
    private var readingBody = false
    /// Whether a request was read on this connection (the next head has the idle timeout).
    private var servedOne = false
    /// When the connection is closed unless the awaited part arrives first, and why.
    private var due: (at: NIODeadline, reason: String)?
    /// The one timer that checks `due`, moved only when `due` comes before it: arming a timer per
    /// request (and cancelling it at the next) was 2 % of a trivial request's CPU.
    private var timer: (at: NIODeadline, task: Scheduled<Void>)?
    /// Whether a request was refused (``errorCaught(context:error:)``): what follows of it is dropped.
    private var refused = false

    init(limits: ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { awaitHead(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if due == nil { awaitHead(context) }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            readingBody = true
            servedOne = true
            arm(context, after: limits.bodyTimeout, "the request body did not arrive within api.body_timeout")
        case .body:
            break
        case .end:
            readingBody = false
            if unanswered == 0 { awaitHead(context) } else { disarm() }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0, !readingBody { awaitHead(context) }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A request the parser or the conversion to HTTP types refused, between requests: answer
        // it here with the JSON error and close (the parser reads nothing more). During a request
        // the error goes on to Hummingbird, which ends that request.
        guard error is HTTPParserError || error is HTTP1TypeConversionError, unanswered == 0, !readingBody, context.channel.isActive else {
            context.fireErrorCaught(error)
            return
        }
        disarm()
        refused = true
        let (status, body) = Self.answer(to: error)
        var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
        buffer.writeString(body)
        let head = HTTPResponse(status: status, headerFields: [
            .contentType: "application/json; charset=utf-8", .contentLength: String(buffer.readableBytes), .connection: "close",
        ])
        logger.debug("HTTP request refused by the parser", metadata: ["error": "\(error)"])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// The status and JSON error body for a request the parser refused.
    static func answer(to error: any Error) -> (HTTPResponse.Status, String) {
        let (status, code, message): (HTTPResponse.Status, String, String)
        switch error as? HTTPParserError {
        case .headerOverflow?:
            (status, code, message) = (.requestHeaderFieldsTooLarge, "request_header_fields_too_large", "the request's headers are larger than 80 KiB")
        case .invalidURL?, .invalidPath?, .invalidQueryString?, .invalidFragment?:
            (status, code, message) = (.badRequest, "bad_request", "the request target is not a valid URL path; percent-encode spaces and other special characters")
        case .invalidMethod?:
            (status, code, message) = (.badRequest, "bad_request", "the request method is not a valid HTTP method")
        case .invalidHeaderToken?, .invalidCharactersUsed?:
            (status, code, message) = (.badRequest, "bad_request", "a request header is not 'Name: value' with a valid name and value")
        case .some:
            (status, code, message) = (.badRequest, "bad_request", "the request is not valid HTTP/1.1")
        case nil:
            (status, code, message) = (.badRequest, "bad_request", "the request's method, target or headers are not valid HTTP")
        }
        return (status, JSONResponse.error(code, message).compactJSON + "\n")
    }

    /// Waits for the next request's head: the header timeout on a new connection, the idle
    /// timeout after a response.
    private func awaitHead(_ context: ChannelHandlerContext) {
        if servedOne {
            arm(context, after: limits.idleTimeout, "no request within api.idle_timeout")
        } else {
            arm(context, after: limits.headerTimeout, "the request head did not arrive within api.header_timeout")
        }
    }

    private func arm(_ context: ChannelHandlerContext, after timeout: Duration, _ reason: String) {
        let at = NIODeadline.now() + TimeAmount(timeout)
        due = (at, reason)
        if let timer, timer.at <= at { return }
        timer?.task.cancel()
        schedule(context, at: at)
    }

    private func schedule(_ context: ChannelHandlerContext, at: NIODeadline) {
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [weak self] () -> Void in
            self?.timerFired(context)
        }
        timer = (at, task)
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        timer = nil
        guard let due else { return }
        if due.at <= .now() {
            self.due = nil
            logger.debug("closing an HTTP connection", metadata: ["reason": "\(due.reason)"])
            context.close(promise: nil)
        } else {
            schedule(context, at: due.at)
        }
    }

    /// No deadline until the next `arm` (a request is being answered).
    private func disarm() {
        due = nil
    }

    /// The connection is gone: the timer too.
    private func stop() {
        due = nil
        timer?.task.cancel()
        timer = nil
    }
}

@available(*, unavailable)
extension ConnectionDeadlineHandler: Sendable {}
