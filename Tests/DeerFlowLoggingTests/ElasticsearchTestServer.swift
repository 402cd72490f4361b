import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
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
        var received: TestHTTPServer.Request
        /// The body's pairs, or why it is not a valid `_bulk` body.
        var pairs: Result<[Pair], WireError>

        var method: String { received.method }
        var uri: String { received.uri }
        var headers: [(name: String, value: String)] { received.headers }
        var body: String { received.body }
        var arrival: ContinuousClock.Instant { received.arrival }

        func header(_ name: String) -> String? { received.header(name) }

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

    private struct State {
        var requests: [Request] = []
        var answers: [Answer] = []
        var accepted: [Pair] = []
    }

    private let state = Mutex(State())
    private let fallback: Answer
    private let http = Mutex<TestHTTPServer?>(nil)

    /// The server's port on 127.0.0.1.
    var port: Int { http.withLock { $0?.port ?? 0 } }

    private init(fallback: Answer) {
        self.fallback = fallback
    }

    /// Starts a server on 127.0.0.1 (port 0: a free one); answers come from ``enqueue(_:)`` in
    /// order, then `fallback`.
    static func start(port: Int = 0, fallback: Answer = .accept) async throws -> ElasticsearchTestServer {
        let server = ElasticsearchTestServer(fallback: fallback)
        let http = try await TestHTTPServer.start(port: port) { [weak server] request in
            server?.handle(request) ?? .silence
        }
        server.http.withLock { $0 = http }
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
        await http.withLock { $0 }?.stop()
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

    private static let jsonHeaders = [("Content-Type", "application/json")]

    private static func json(_ object: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    /// Records a request and makes its answer.
    private func handle(_ received: TestHTTPServer.Request) -> TestHTTPServer.Answer {
        let request = Request(received: received, pairs: Self.parse(received.body))
        return state.withLock { state in
            state.requests.append(request)
            let answer = state.answers.isEmpty ? fallback : state.answers.removeFirst()
            let pairs = request.validPairs
            func itemsAnswer(_ statuses: [Int], delay: Duration = .zero) -> TestHTTPServer.Answer {
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
                return .respond(status: 200, headers: Self.jsonHeaders, body: Self.json(["took": 3, "errors": errors, "items": items]), delay: delay)
            }
            switch answer {
            case .accept:
                return itemsAnswer([])
            case .items(let statuses):
                return itemsAnswer(statuses)
            case .status(let status):
                let body = Self.json(["error": ["type": Self.errorType(status), "reason": "test status \(status)"], "status": status])
                return .respond(status: status, headers: Self.jsonHeaders, body: body)
            case .silence:
                return .silence
            case .slow(let milliseconds):
                return itemsAnswer([], delay: .milliseconds(milliseconds))
            }
        }
    }
}
