import ArgumentParser
import AsyncHTTPClient
import DeerFlow
import DeerFlowCore
import DeerFlowServer
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small client of the DeerFlow API for the CLI commands.
struct APIClient: Sendable {
    let baseURL: String
    let token: String?

    struct Response: Sendable {
        let status: Int
        let text: String
        var json: JSONValue? { try? JSONValue(parsing: text) }
    }

    /// The CLI's HTTP client: a refused connection fails at once (no retries until the deadline),
    /// a connection attempt gives up after 5 s. Lives as long as the process.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func get(_ path: String) async throws -> Response {
        try await send(.GET, path, body: nil)
    }

    func post(_ path: String, body: JSONValue?) async throws -> Response {
        try await send(.POST, path, body: body)
    }

    /// GETs a streamed answer and hands each chunk to `output` as it arrives.
    func stream(_ path: String, output: (String) -> Void) async throws {
        var request = HTTPClientRequest(url: baseURL + path)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            response = try await Self.http.execute(request, timeout: .hours(24))
        } catch {
            throw unreachable(error)
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            let message = (try? JSONValue(parsing: text)).flatMap { value -> String? in
                if case .object(let object) = value, case .object(let error)? = object["error"] { return error["message"]?.stringValue }
                return nil
            }
            throw CLIError("\(message ?? text) (HTTP \(response.status.code))")
        }
        for try await chunk in response.body { output(String(buffer: chunk)) }
    }

    /// Sends a request; a non-2xx answer throws the API's error message.
    func send(_ method: HTTPMethod, _ path: String, body: JSONValue?) async throws -> Response {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.compactJSON))
        }
        let response: HTTPClientResponse
        do {
            response = try await Self.http.execute(request, timeout: .seconds(30))
        } catch {
            throw unreachable(error)
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let result = Response(status: Int(response.status.code), text: String(buffer: buffer))
        guard (200..<300).contains(result.status) else {
            if case .object(let object)? = result.json, case .object(let error)? = object["error"], let message = error["message"]?.stringValue {
                throw CLIError("\(message) (HTTP \(result.status))")
            }
            throw CLIError("the API answered HTTP \(result.status): \(result.text.prefix(300))")
        }
        return result
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
