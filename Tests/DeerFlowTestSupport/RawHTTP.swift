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

extension RawHTTP {
    /// Sends `bytes` as they are (a malformed request line, a 100 KB header) on a new connection
    /// and reads until the server closes it: the status code, the head and the body.
    public static func exchange(port: Int, bytes: [UInt8], timeout: Duration = .seconds(30)) async throws -> (status: Int, head: String, body: String) {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let received = try await channel.executeThenClose { inbound, outbound in
            try? await outbound.write(ByteBuffer(bytes: bytes))
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    var text = ""
                    do {
                        for try await buffer in inbound { text += String(buffer: buffer) }
                    } catch {
                        // A reset after the answer: what arrived counts.
                    }
                    return text
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let first else { throw ProcessFailure("the server did not close the connection within \(timeout)") }
                return first
            }
        }
        let parts = received.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}

/// A connection that sends bytes when told and notices when the server closes it: a slow client.
public final class RawConnection: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    /// Connects to 127.0.0.1:`port`.
    public static func open(port: Int) async throws -> RawConnection {
        RawConnection(channel: try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get())
    }

    /// Sends `text`; a failure (the server closed the connection) is ignored.
    public func send(_ text: String) async {
        try? await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Whether the server (or `close()`) closed the connection.
    public var isClosed: Bool { !channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }
}
