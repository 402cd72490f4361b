import ArgumentParser
import AsyncHTTPClient
import DeerFlowAPI
import DeerFlowCore
import DeerFlowServer
import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CLI's client of the DeerFlow API: DeerFlowAPI's generated `Client` over AsyncHTTPClient.
///
/// Every call goes through ``call(_:)``, which turns what can go wrong into a ``CLIError`` that
/// says what to do: no answer (``unreachable(_:)``), an error answer (its `message` and the
/// HTTP status), or an answer that does not match openapi.yaml.
struct APIClient: Sendable {
    let baseURL: String
    let token: String?
    /// The body of the last answer, for `--json` (the API's JSON exactly as it came).
    let lastBody = LastBody()

    /// The CLI's HTTP client: a refused connection fails at once (no retries until the deadline),
    /// a connection attempt gives up after 5 s. Lives as long as the process.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    /// Calls the API with a request timeout of 30 s.
    func call<Result: Sendable>(_ operation: (Client) async throws -> Result) async throws -> Result {
        try await call(timeout: .seconds(30), operation)
    }

    /// Calls the API; `timeout` bounds the wait for the answer (a day for a followed log).
    func call<Result: Sendable>(timeout: TimeAmount, _ operation: (Client) async throws -> Result) async throws -> Result {
        guard let url = URL(string: baseURL), url.scheme != nil, url.host != nil else {
            throw CLIError("'\(baseURL)' is not a URL such as http://127.0.0.1:8080; check --api or DEERFLOW_API_URL")
        }
        let client = Client(
            serverURL: url,
            configuration: APICoding.configuration,
            transport: AsyncHTTPClientTransport(configuration: .init(client: Self.http, timeout: timeout)),
            middlewares: [ClientSide(token: token, lastBody: lastBody)])
        do {
            return try await operation(client)
        } catch let error as ClientError {
            if let problem = error.underlyingError as? CLIError { throw problem }
            guard error.response != nil else { throw unreachable(error.underlyingError) }
            throw CLIError("unexpected answer from the API at \(baseURL) to \(error.operationID): \(error.causeDescription)")
        }
    }

    /// The text of the last answer's body, without its final newline.
    var lastText: String { lastBody.text.trimmingCharacters(in: .newlines) }
}

/// What the CLI adds to every request and answer: the bearer token, the error message of an
/// answer that is not 2xx, and a copy of each JSON answer's body.
struct ClientSide: ClientMiddleware {
    let token: String?
    let lastBody: LastBody

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let token { request.headerFields[.authorization] = "Bearer \(token)" }
        let (response, responseBody) = try await next(request, body, baseURL)
        let status = response.status.code
        guard (200..<300).contains(status) else {
            let text = try await String(collecting: responseBody ?? HTTPBody(), upTo: 1 << 20)
            if case .object(let object)? = try? JSONValue(parsing: text), case .object(let error)? = object["error"],
                let message = error["message"]?.stringValue
            {
                throw CLIError("\(message) (HTTP \(status))")
            }
            throw CLIError("the API answered HTTP \(status): \(text.prefix(300))")
        }
        guard let responseBody, response.headerFields[.contentType]?.hasPrefix("application/json") == true else {
            return (response, responseBody)
        }
        let bytes = try await ArraySlice<UInt8>(collecting: responseBody, upTo: 64 << 20)
        lastBody.text = String(decoding: bytes, as: UTF8.self)
        return (response, HTTPBody(bytes))
    }
}

/// The body of the last JSON answer of one ``APIClient``.
final class LastBody: Sendable {
    private let storage = Mutex("")

    var text: String {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

extension APIClient {
    /// The error of a request that got no answer: where it went, what to check, the cause in words.
    func unreachable(_ error: any Error) -> CLIError {
        CLIError("cannot reach the DeerFlow API at \(baseURL): is `deerflow server` running? (\(Self.reason(error)); --api or DEERFLOW_API_URL set another address)")
    }

    /// A transport error in a few words (`connection refused`), without NIO's wrapping.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return reason(first.error) }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve \(error.host): \(dns)" }
            return "cannot connect to \(error.host):\(error.port)"
        case let error as HTTPClientError where error == .connectTimeout:
            return "no connection within 5 s"
        case let error as HTTPClientError where [.deadlineExceeded, .readTimeout].contains(error):
            return "no answer within 30 s"
        default:
            return String(describing: error)
        }
    }
}

/// Options of commands that talk to the API.
struct ClientOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Base URL of the DeerFlow API (env DEERFLOW_API_URL). Default http://127.0.0.1:8080", valueName: "url"))
    var api: String?

    @Option(help: ArgumentHelp("Bearer token (env DEERFLOW_API_TOKEN).", valueName: "token"))
    var token: String?

    var client: APIClient {
        let environment = ProcessInfo.processInfo.environment
        var base = api ?? environment["DEERFLOW_API_URL"] ?? "http://127.0.0.1:8080"
        while base.hasSuffix("/") { base.removeLast() }
        return APIClient(baseURL: base, token: token ?? environment["DEERFLOW_API_TOKEN"])
    }
}
