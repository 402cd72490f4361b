import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback HTTP/1.1 server that records every request and answers from a script.
final class TestHTTPServer: Sendable {
    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(name: String, value: String)]
        var body: String

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    enum Answer: Sendable {
        case respond(status: Int, headers: [(String, String)] = [], body: String = "")
        /// Keep the connection open and never answer.
        case silence
    }

    private let state = Mutex<(requests: [Request], answers: [Answer])>(([], []))
    private let fallback: Answer
    private let channel: any Channel

    /// The server's port on 127.0.0.1.
    let port: Int

    private init(channel: any Channel, fallback: Answer) {
        self.channel = channel
        self.fallback = fallback
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a server on 127.0.0.1, port 0; answers are taken from ``enqueue(_:)`` in order, then `fallback`.
    static func start(fallback: Answer = .respond(status: 200, body: "ok")) async throws -> TestHTTPServer {
        let box = Mutex<TestHTTPServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    let server = box.withLock { $0 }
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let server = TestHTTPServer(channel: channel, fallback: fallback)
        box.withLock { $0 = server }
        return server
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    func enqueue(_ answers: Answer...) {
        state.withLock { $0.answers += answers }
    }

    var requests: [Request] { state.withLock { $0.requests } }

    func stop() async {
        try? await channel.close()
    }

    fileprivate func record(_ request: Request) -> Answer {
        state.withLock { state in
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
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: String(buffer: body))
                guard case .respond(let status, let headers, let text) = server.record(request) else { return }
                var responseHeaders = HTTPHeaders(headers)
                responseHeaders.replaceOrAdd(name: "Content-Length", value: "\(text.utf8.count)")
                let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: responseHeaders)
                context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
