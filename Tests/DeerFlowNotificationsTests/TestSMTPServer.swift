import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A loopback SMTP server for tests: greeting, EHLO with multi-line capabilities, optional STARTTLS
/// and AUTH, MAIL/RCPT/DATA/QUIT. It records the commands and the raw `DATA` bytes, and notes
/// protocol violations by the client (bare LF, commands out of order).
final class TestSMTPServer: Sendable {
    struct Options: Sendable {
        /// Send the 220 greeting (false: accept the connection and stay silent).
        var greet = true
        /// Greet with a multi-line 220 reply.
        var multiLineGreeting = false
        /// Answer EHLO with 502 so the client must fall back to HELO.
        var rejectEHLO = false
        var eightBitMIME = true
        var startTLS: NIOSSLContext?
        /// Offered AUTH mechanisms and the accepted user and password.
        var authMechanisms: [String] = []
        var credentials: (username: String, password: String)?
        /// Recipients answered with `550 5.1.1 ... unknown user`.
        var rejectedRecipients: Set<String> = []
        /// Reply to MAIL FROM instead of 250.
        var mailFromReply: String?
    }

    /// One received message.
    struct Message: Sendable {
        var from: String
        var recipients: [String]
        /// The bytes between the DATA reply and the terminating `CRLF.CRLF`, as sent (dot-stuffed).
        var raw: String
        /// `raw` with dot-stuffing removed.
        var text: String {
            raw.components(separatedBy: "\r\n").map { $0.hasPrefix("..") ? String($0.dropFirst()) : $0 }.joined(separator: "\r\n")
        }
    }

    struct Transcript: Sendable {
        var commands: [String] = []
        var messages: [Message] = []
        var violations: [String] = []
        var authenticatedUsers: [String] = []
        var tlsCommands: [String] = []
    }

    private let transcriptBox = Mutex(Transcript())
    private let channel: any Channel
    let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start(_ options: Options = Options()) async throws -> TestSMTPServer {
        let box = Mutex<TestSMTPServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let server = box.withLock { $0 }
                    try channel.pipeline.syncOperations.addHandler(Handler(server: server, options: options))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let server = TestSMTPServer(channel: channel)
        box.withLock { $0 = server }
        return server
    }

    var transcript: Transcript { transcriptBox.withLock { $0 } }

    func stop() async {
        try? await channel.close()
    }

    fileprivate func update(_ body: (inout Transcript) -> Void) {
        transcriptBox.withLock { body(&$0) }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let server: TestSMTPServer?
        let options: Options
        var buffer = ByteBuffer()
        var inData = false
        var greeted = false
        var tls = false
        var from: String?
        var recipients: [String] = []
        var loginStep: Int?
        var loginUser = ""

        init(server: TestSMTPServer?, options: Options) {
            self.server = server
            self.options = options
        }

        func channelActive(context: ChannelHandlerContext) {
            if options.greet {
                send(options.multiLineGreeting ? ["220-test.local ESMTP DeerFlow test server", "220-more greeting text", "220 ready"] : ["220 test.local ESMTP ready"], context)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            process(context)
        }

        private func process(_ context: ChannelHandlerContext) {
            while true {
                let view = buffer.readableBytesView
                if inData {
                    let bytes = Array(view)
                    guard let end = Self.terminator(in: bytes) else { return }
                    let raw = String(decoding: bytes[..<end.start], as: UTF8.self)
                    buffer.moveReaderIndex(forwardBy: end.end)
                    checkLineEndings(Array(bytes[..<end.start]), what: "DATA")
                    let message = Message(from: from ?? "", recipients: recipients, raw: raw)
                    server?.update { $0.messages.append(message) }
                    inData = false
                    from = nil
                    recipients = []
                    send(["250 2.0.0 Ok: queued"], context)
                    continue
                }
                guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return }
                let lineBytes = Array(view[view.startIndex..<newline])
                buffer.moveReaderIndex(to: newline + 1)
                if lineBytes.last != UInt8(ascii: "\r") {
                    server?.update { $0.violations.append("command line without CRLF: \(String(decoding: lineBytes, as: UTF8.self))") }
                }
                let line = String(decoding: lineBytes.last == UInt8(ascii: "\r") ? lineBytes.dropLast() : lineBytes[...], as: UTF8.self)
                let wasTLS = tls
                server?.update {
                    $0.commands.append(line)
                    if wasTLS { $0.tlsCommands.append(line) }
                }
                if handle(line, context) == false { return }
            }
        }

        /// The `CRLF.CRLF` ending DATA (or `.CRLF` right at the start): where the data ends and where the terminator ends.
        static func terminator(in bytes: [UInt8]) -> (start: Int, end: Int)? {
            if bytes.starts(with: Array(".\r\n".utf8)) { return (0, 3) }
            let pattern = Array("\r\n.\r\n".utf8)
            guard bytes.count >= pattern.count else { return nil }
            for index in 0...(bytes.count - pattern.count) where bytes[index..<(index + pattern.count)].elementsEqual(pattern) {
                return (index + 2, index + pattern.count)
            }
            return nil
        }

        private func checkLineEndings(_ bytes: [UInt8], what: String) {
            for (index, byte) in bytes.enumerated() {
                if byte == UInt8(ascii: "\n"), index == 0 || bytes[index - 1] != UInt8(ascii: "\r") {
                    server?.update { $0.violations.append("bare LF in \(what) at byte \(index)") }
                }
                if byte == UInt8(ascii: "\r"), index + 1 >= bytes.count || bytes[index + 1] != UInt8(ascii: "\n") {
                    server?.update { $0.violations.append("bare CR in \(what) at byte \(index)") }
                }
            }
            var lineStart = 0
            for index in 0..<bytes.count where bytes[index] == UInt8(ascii: "\n") {
                if index - lineStart > 1000 { server?.update { $0.violations.append("line longer than 998 bytes in \(what)") } }
                lineStart = index + 1
            }
        }

        /// Handles a command; false when the connection is done or changed (STARTTLS).
        private func handle(_ line: String, _ context: ChannelHandlerContext) -> Bool {
            if let step = loginStep {
                let decoded = Data(base64Encoded: line).map { String(decoding: $0, as: UTF8.self) } ?? ""
                if step == 0 {
                    loginUser = decoded
                    loginStep = 1
                    send(["334 UGFzc3dvcmQ6"], context)
                } else {
                    loginStep = nil
                    authenticate(user: loginUser, password: decoded, context)
                }
                return true
            }
            let upper = line.uppercased()
            if upper.hasPrefix("EHLO ") {
                if options.rejectEHLO {
                    send(["502 5.5.2 Error: command not recognized"], context)
                    return true
                }
                greeted = true
                var lines = ["250-test.local greets \(line.dropFirst(5))", "250-PIPELINING", "250-SIZE 10240000"]
                if options.eightBitMIME { lines.append("250-8BITMIME") }
                if options.startTLS != nil, !tls { lines.append("250-STARTTLS") }
                if !options.authMechanisms.isEmpty { lines.append("250-AUTH " + options.authMechanisms.joined(separator: " ")) }
                lines.append("250 SMTPUTF8")
                send(lines, context)
            } else if upper.hasPrefix("HELO ") {
                greeted = true
                send(["250 test.local"], context)
            } else if upper == "STARTTLS", let tlsContext = options.startTLS, !tls {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "220 2.0.0 Ready to start TLS\r\n"))).assumeIsolated().whenSuccess {
                    try? channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext), position: .first)
                }
                tls = true
                greeted = false
                buffer.clear()  // RFC 3207: nothing sent before TLS counts after it.
                return false
            } else if upper.hasPrefix("AUTH PLAIN ") {
                let token = String(line.dropFirst("AUTH PLAIN ".count))
                let parts = (Data(base64Encoded: token).map { String(decoding: $0, as: UTF8.self) } ?? "").split(separator: "\u{0}", omittingEmptySubsequences: false)
                authenticate(user: parts.count == 3 ? String(parts[1]) : "", password: parts.count == 3 ? String(parts[2]) : "", context)
            } else if upper == "AUTH LOGIN" {
                loginStep = 0
                send(["334 VXNlcm5hbWU6"], context)
            } else if upper.hasPrefix("MAIL FROM:") {
                guard greeted else {
                    server?.update { $0.violations.append("MAIL before EHLO/HELO") }
                    send(["503 5.5.1 Error: send HELO/EHLO first"], context)
                    return true
                }
                if let reply = options.mailFromReply {
                    send([reply], context)
                    return true
                }
                from = Self.path(in: line)
                send(["250 2.1.0 Ok"], context)
            } else if upper.hasPrefix("RCPT TO:") {
                let recipient = Self.path(in: line)
                if from == nil {
                    send(["503 5.5.1 Error: need MAIL command"], context)
                } else if options.rejectedRecipients.contains(recipient) {
                    send(["550 5.1.1 <\(recipient)>: Recipient address rejected: User unknown in local recipient table"], context)
                } else {
                    recipients.append(recipient)
                    send(["250 2.1.5 Ok"], context)
                }
            } else if upper == "DATA" {
                guard !recipients.isEmpty else {
                    send(["554 5.5.1 Error: no valid recipients"], context)
                    return true
                }
                inData = true
                send(["354 End data with <CR><LF>.<CR><LF>"], context)
            } else if upper == "RSET" {
                from = nil
                recipients = []
                send(["250 2.0.0 Ok"], context)
            } else if upper == "QUIT" {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "221 2.0.0 Bye\r\n"))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
                return false
            } else {
                send(["502 5.5.2 Error: command not recognized"], context)
            }
            return true
        }

        private func authenticate(user: String, password: String, _ context: ChannelHandlerContext) {
            if let credentials = options.credentials, credentials.username == user, credentials.password == password {
                server?.update { $0.authenticatedUsers.append(user) }
                send(["235 2.7.0 Authentication successful"], context)
            } else {
                send(["535 5.7.8 Error: authentication failed"], context)
            }
        }

        static func path(in line: String) -> String {
            guard let open = line.firstIndex(of: "<"), let close = line[open...].firstIndex(of: ">") else { return "" }
            return String(line[line.index(after: open)..<close])
        }

        private func send(_ lines: [String], _ context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: lines.map { $0 + "\r\n" }.joined())), promise: nil)
        }
    }
}
