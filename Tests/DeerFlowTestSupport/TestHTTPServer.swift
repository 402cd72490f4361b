import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback HTTP/1.1 server that records every request and answers from a script, or from a
/// handler that looks at each request (a stand-in for a service's public API, checking its wire
/// format).
public final class TestHTTPServer: Sendable {
    /// One request as received.
    public struct Request: Sendable {
        public var method: String
        public var uri: String
        public var headers: [(name: String, value: String)]
        public var body: String
        /// When the request's last byte arrived.
        public var arrival: ContinuousClock.Instant

        /// The first value of a header, by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// How the server answers a request.
    public enum Answer: Sendable {
        case respond(status: Int, headers: [(String, String)] = [], body: String = "", delay: Duration = .zero)
        /// Keep the connection open and never answer.
        case silence
    }

    private final class ConnectionList: Sendable {
        let channels = Mutex<[any Channel]>([])
    }

    private let state = Mutex<(requests: [Request], answers: [Answer])>(([], []))
    private let fallback: Answer
    private let handler: (@Sendable (Request) -> Answer)?
    private let channel: any Channel
    private let connections: ConnectionList

    /// The server's port on 127.0.0.1.
    public let port: Int

    private init(channel: any Channel, fallback: Answer, handler: (@Sendable (Request) -> Answer)?, connections: ConnectionList) {
        self.channel = channel
        self.fallback = fallback
        self.handler = handler
        self.connections = connections
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a server on 127.0.0.1 (port 0: a free one); answers are taken from ``enqueue(_:)``
    /// in order, then `fallback`.
    public static func start(port: Int = 0, fallback: Answer = .respond(status: 200, body: "ok")) async throws -> TestHTTPServer {
        try await start(port: port, fallback: fallback, handler: nil)
    }

    /// Starts a server on 127.0.0.1 (port 0: a free one) that answers what `handler` says.
    public static func start(port: Int = 0, handler: @escaping @Sendable (Request) -> Answer) async throws -> TestHTTPServer {
        try await start(port: port, fallback: .silence, handler: handler)
    }

    private static func start(port: Int, fallback: Answer, handler: (@Sendable (Request) -> Answer)?) async throws -> TestHTTPServer {
        let box = Mutex<TestHTTPServer?>(nil)
        let connections = ConnectionList()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.channels.withLock { $0.append(channel) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    let server = box.withLock { $0 }
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        let server = TestHTTPServer(channel: channel, fallback: fallback, handler: handler, connections: connections)
        box.withLock { $0 = server }
        return server
    }

    /// `http://127.0.0.1:PORT` + `path`.
    public func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    /// Answers for the next requests, in order.
    public func enqueue(_ answers: Answer...) {
        state.withLock { $0.answers += answers }
    }

    /// Every request received so far.
    public var requests: [Request] { state.withLock { $0.requests } }

    /// Closes the listening socket (new connections are refused) and the connections it accepted.
    public func stop() async {
        try? await channel.close()
        for connection in connections.channels.withLock({ $0 }) { try? await connection.close() }
    }

    fileprivate func record(_ request: Request) -> Answer {
        // A Prometheus of another test may still scrape the port its DeerFlow listened on, which
        // the system can hand to this server once that DeerFlow stopped: such a scrape is not a
        // request of this test.
        if request.header("User-Agent")?.hasPrefix("Prometheus/") == true { return .respond(status: 404, body: "") }
        if let handler {
            let answer = handler(request)
            state.withLock { $0.requests.append(request) }
            return answer
        }
        return state.withLock { state in
            state.requests.append(request)
            return state.answers.isEmpty ? fallback : state.answers.removeFirst()
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: TestHTTPServer?
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(server: TestHTTPServer?) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let head, let server else { return }
                let request = Request(
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: String(buffer: body),
                    arrival: .now)
                guard case .respond(let status, let headers, let text, let delay) = server.record(request) else { return }
                var responseHeaders = HTTPHeaders(headers)
                responseHeaders.replaceOrAdd(name: "Content-Length", value: "\(text.utf8.count)")
                let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders)
                func respond() {
                    context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
                if delay > .zero {
                    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay.components.seconds) * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000)) { respond() }
                } else {
                    respond()
                }
            }
        }
    }
}
