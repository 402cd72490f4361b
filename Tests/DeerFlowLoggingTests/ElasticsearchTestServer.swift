import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A loopback stand-in for Elasticsearch's `_bulk` endpoint: records every request with its
/// `_bulk` body checked and split into (index, document) pairs, keeps the documents it accepted,
/// and answers from a script (then `fallback`).
final class ElasticsearchTestServer: Sendable {
    /// One line of a `_bulk` body: the index its action line names, and the document line.
    struct Pair: Sendable, Equatable, CustomStringConvertible {
        var index: String
        var document: String

        var description: String { "\(index): \(document)" }
    }

    /// What is wrong with a request's body.
    struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
        var description: String
    }

    struct Request: Sendable {
        var method: String
        var uri: String
        var headers: [(name: String, value: String)]
        var body: String
        var arrival: ContinuousClock.Instant
        /// The body's pairs, or why it is not a valid `_bulk` body.
        var pairs: Result<[Pair], WireError>

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }

        /// The pairs, or none when the body is not valid.
        var validPairs: [Pair] { (try? pairs.get()) ?? [] }
        var documents: [String] { validPairs.map(\.document) }
    }

    enum Answer: Sendable {
        /// 200, `"errors": false`, an item with status 201 for every line.
        case accept
        /// 200 with one item per line with these statuses (lines beyond them get 201); `"errors"`
        /// is true when any is not 2xx.
        case items([Int])
        /// This status, with an Elasticsearch error body.
        case status(Int)
        /// Keep the connection open and never answer.
        case silence
        /// ``accept``, after this many milliseconds.
        case slow(milliseconds: Int64)
    }

    private final class ConnectionList: Sendable {
        let channels = Mutex<[any Channel]>([])
    }

    private struct State {
        var requests: [Request] = []
        var answers: [Answer] = []
        var accepted: [Pair] = []
    }

    private let state = Mutex(State())
    private let fallback: Answer
    private let channel: any Channel
    /// Accepted connections, closed by ``stop()`` so that kept-alive connections die too.
    private let connections: ConnectionList

    /// The server's port on 127.0.0.1.
    let port: Int

    private init(channel: any Channel, fallback: Answer, connections: ConnectionList) {
        self.channel = channel
        self.fallback = fallback
        self.connections = connections
        port = channel.localAddress?.port ?? 0
    }

    /// Starts a server on 127.0.0.1 (port 0: a free one); answers come from ``enqueue(_:)`` in
    /// order, then `fallback`.
    static func start(port: Int = 0, fallback: Answer = .accept) async throws -> ElasticsearchTestServer {
        let box = Mutex<ElasticsearchTestServer?>(nil)
        let connections = ConnectionList()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.channels.withLock { $0.append(channel) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: box.withLock { $0 }))
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        let server = ElasticsearchTestServer(channel: channel, fallback: fallback, connections: connections)
        box.withLock { $0 = server }
        return server
    }

    /// `http://127.0.0.1:<port>`.
    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    func enqueue(_ answers: Answer...) {
        state.withLock { $0.answers += answers }
    }

    var requests: [Request] { state.withLock { $0.requests } }

    /// Documents answered with a 2xx item, in the order they arrived.
    var accepted: [Pair] { state.withLock { $0.accepted } }
    var acceptedDocuments: [String] { accepted.map(\.document) }

    /// Closes the listening socket (new connections are refused) and the connections it accepted.
    func stop() async {
        try? await channel.close()
        for connection in connections.channels.withLock({ $0 }) { try? await connection.close() }
    }

    /// A port nothing listens on: bound, then closed.
    static func refusedPort() async throws -> Int {
        let server = try await start()
        await server.stop()
        return server.port
    }

    // MARK: Wire format

    /// Splits a `_bulk` body into pairs, checking it on the way: it ends with a newline, has an
    /// even number of lines, each action line is exactly `{"index":{"_index":"<name>"}}` and each
    /// document line is a JSON object.
    static func parse(_ body: String) -> Result<[Pair], WireError> {
        guard body.hasSuffix("\n") else { return .failure(WireError(description: "body does not end with a newline")) }
        let lines = body.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count % 2 == 0 else { return .failure(WireError(description: "odd number of lines: \(lines.count)")) }
        var pairs: [Pair] = []
        for index in stride(from: 0, to: lines.count, by: 2) {
            let action = lines[index]
            let document = lines[index + 1]
            guard let actionObject = jsonObject(action), actionObject.count == 1,
                  let inner = actionObject["index"] as? [String: Any], inner.count == 1, let name = inner["_index"] as? String
            else { return .failure(WireError(description: "line \(index + 1) is not an index action: \(action)")) }
            guard jsonObject(document) != nil else {
                return .failure(WireError(description: "line \(index + 2) is not a JSON object: \(document)"))
            }
            pairs.append(Pair(index: name, document: document))
        }
        return .success(pairs)
    }

    private static func jsonObject(_ line: String) -> [String: Any]? {
        guard !line.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) else { return nil }
        return object as? [String: Any]
    }

    private static func errorType(_ status: Int) -> String {
        switch status {
        case 400: return "mapper_parsing_exception"
        case 429: return "es_rejected_execution_exception"
        case 500...: return "unavailable_shards_exception"
        default: return "illegal_argument_exception"
        }
    }

    private static func json(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    /// Records a request and makes its answer: status, body and delay, or nil for silence.
    fileprivate func handle(_ request: Request) -> (status: Int, body: String, delay: Int64)? {
        state.withLock { state in
            state.requests.append(request)
            let answer = state.answers.isEmpty ? fallback : state.answers.removeFirst()
            let pairs = request.validPairs
            func itemsAnswer(_ statuses: [Int]) -> (Int, String, Int64) {
                var items: [[String: Any]] = []
                for (position, pair) in pairs.enumerated() {
                    let status = position < statuses.count ? statuses[position] : 201
                    var result: [String: Any] = ["_index": pair.index, "status": status]
                    if (200..<300).contains(status) {
                        state.accepted.append(pair)
                        result["result"] = "created"
                    } else {
                        result["error"] = ["type": Self.errorType(status), "reason": "test failure \(status) for line \(position)"]
                    }
                    items.append(["index": result])
                }
                let errors = items.contains { (($0["index"] as? [String: Any])?["status"] as? Int).map { !(200..<300).contains($0) } ?? true }
                return (200, Self.json(["took": 3, "errors": errors, "items": items]), 0)
            }
            switch answer {
            case .accept:
                return itemsAnswer([])
            case .items(let statuses):
                return itemsAnswer(statuses)
            case .status(let status):
                let body = Self.json(["error": ["type": Self.errorType(status), "reason": "test status \(status)"], "status": status])
                return (status, body, 0)
            case .silence:
                return nil
            case .slow(let milliseconds):
                let (status, body, _) = itemsAnswer([])
                return (status, body, milliseconds)
            }
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: ElasticsearchTestServer?
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(server: ElasticsearchTestServer?) {
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
                let text = String(buffer: body)
                let request = Request(
                    method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: text,
                    arrival: .now, pairs: ElasticsearchTestServer.parse(text))
                guard let (status, answer, delay) = server.handle(request) else { return }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Content-Length", value: "\(answer.utf8.count)")
                let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers)
                func respond() {
                    context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                }
                if delay > 0 {
                    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { respond() }
                } else {
                    respond()
                }
            }
        }
    }
}
