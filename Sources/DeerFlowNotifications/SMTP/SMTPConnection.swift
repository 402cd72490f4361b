import NIOCore
import NIOPosix
import NIOSSL

/// An open SMTP connection driven with async calls: one request, one reply, each within `timeout`.
struct SMTPConnection: Sendable {
    let channel: any Channel
    let timeout: TimeAmount
    /// The server's greeting (the first reply).
    let greeting: EventLoopFuture<SMTPReply>

    /// Connects; the greeting is awaited with ``awaitGreeting()``.
    static func connect(host: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount) async throws -> SMTPConnection {
        let eventLoop = group.next()
        let greeting = eventLoop.makePromise(of: SMTPReply.self)
        do {
            let channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(greeting: greeting, timeout: timeout))
                    }
                }
                .connect(host: host, port: port)
                .get()
            return SMTPConnection(channel: channel, timeout: timeout, greeting: greeting.futureResult)
        } catch {
            greeting.fail(error)
            throw error
        }
    }

    func awaitGreeting() async throws -> SMTPReply {
        try await greeting.get()
    }

    /// Sends one command line (CRLF is added) and waits for the reply.
    /// - Parameter step: How the command is named in errors (never the password).
    func command(_ line: String, step: String? = nil, isStartTLS: Bool = false) async throws -> SMTPReply {
        try await send(ByteBuffer(string: line + "\r\n"), step: step ?? line, isStartTLS: isStartTLS)
    }

    /// Sends bytes as they are and waits for the reply.
    func send(_ bytes: ByteBuffer, step: String, isStartTLS: Bool = false) async throws -> SMTPReply {
        let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
        let request = SMTPRequest(bytes: bytes, step: step, timeout: timeout, promise: promise, isStartTLS: isStartTLS)
        channel.writeAndFlush(request).whenFailure { promise.fail($0) }
        return try await promise.futureResult.get()
    }

    /// Puts TLS under the connection (after the server's `220` to STARTTLS); the handshake runs
    /// with the next command, and a failed handshake fails that command.
    func startTLS(context: NIOSSLContext, serverHostname: String?) async throws {
        let channel = self.channel
        try await channel.eventLoop.submit {
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
    }

    /// Closes the connection; errors are ignored.
    func close() async {
        try? await channel.close()
    }
}
