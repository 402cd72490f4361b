import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request sent exactly as given — the target unnormalised (`//x`, `/./x`, `%2F`),
/// the headers as they are, no tracing headers added — as HTTP client libraries do not.
public enum RawHTTP {
    /// Sends the request on a new connection and returns the status and body. A server may
    /// answer and close before it read the body (a 401): the answer still counts.
    public static func send(
        port: Int, method: String, target: String, headers: [(String, String)] = [], body: String = ""
    ) async throws -> (status: Int, body: String) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target)
            head.headers.add(name: "Host", value: "127.0.0.1:\(port)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            head.headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            if !body.isEmpty, !head.headers.contains(name: "Content-Type") { head.headers.add(name: "Content-Type", value: "application/json") }
            var writeError: (any Error)?
            do {
                var parts: [HTTPClientRequestPart] = [.head(head)]
                if !body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(string: body)))) }
                parts.append(.end(nil))
                try await outbound.write(contentsOf: parts)
            } catch {
                writeError = error
            }
            var status = 0
            var received = ""
            do {
                for try await part in inbound {
                    switch part {
                    case .head(let head): status = Int(head.status.code)
                    case .body(let buffer): received += String(buffer: buffer)
                    case .end: return (status, received)
                    }
                }
            } catch {
                if status == 0 { throw writeError ?? error }
            }
            if status == 0, let writeError { throw writeError }
            return (status, received)
        }
    }
}
