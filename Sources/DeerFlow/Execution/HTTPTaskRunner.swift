import AsyncHTTPClient
import DeerFlowCore
import Foundation
import NIOCore
import NIOHTTP1

/// Runs `http` tasks: one request; a status outside `expect_status` (default 2xx) fails the
/// attempt; the response body (JSON when it parses, text otherwise) is the output.
enum HTTPTaskRunner {
    /// Response bodies above this size fail the attempt rather than filling memory.
    static let maxBodyBytes = 10 << 20

    static func run(_ action: HTTPAction, log: TaskLog, client: HTTPClient = .shared) async throws -> JSONValue {
        var request = HTTPClientRequest(url: action.url)
        request.method = HTTPMethod(rawValue: action.method)
        for (name, value) in action.headers.sorted(by: { $0.key < $1.key }) {
            request.headers.add(name: name, value: value)
        }
        // Continue the trace in the called service: traceparent / tracestate of the task's span.
        var carrier: [String: String] = [:]
        DeerFlowTracing.inject(into: &carrier)
        for (name, value) in carrier where !request.headers.contains(name: name) { request.headers.add(name: name, value: value) }
        if let body = action.body {
            request.body = .bytes(ByteBuffer(string: body))
            if !request.headers.contains(name: "content-type") {
                let looksLikeJSON = (try? JSONValue(parsing: body)) != nil
                request.headers.add(name: "Content-Type", value: looksLikeJSON ? "application/json" : "text/plain; charset=utf-8")
            }
        }
        log.append("[deerflow] \(action.method) \(action.url)\n")
        let response = try await client.execute(request, deadline: .distantFuture)
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw HTTPTaskError(message: "response body of \(action.url) is larger than \(maxBodyBytes) bytes")
        }
        let text = String(buffer: body)
        let status = Int(response.status.code)
        log.append("[deerflow] HTTP \(status), \(body.readableBytes) bytes\n")
        guard action.accepts(status: status) else {
            let expected = action.expectStatus.isEmpty ? "2xx" : action.expectStatus.map(String.init).joined(separator: ", ")
            throw HTTPTaskError(message: "\(action.method) \(action.url) answered \(status), expected \(expected): \(text.prefix(300))")
        }
        if let json = try? JSONValue(parsing: text) { return json }
        return .string(text)
    }
}

/// An `http` task whose request failed or whose status was not accepted.
struct HTTPTaskError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
