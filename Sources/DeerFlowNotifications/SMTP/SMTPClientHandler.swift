import NIOCore

/// A reply of an SMTP server: its code and the text of each line (`250-SIZE 1000` → `SIZE 1000`).
struct SMTPReply: Sendable, Hashable, CustomStringConvertible {
    var code: Int
    var lines: [String]

    /// The reply as one line, for messages: `550 5.1.1 <x@example.com>: Recipient address rejected`.
    var description: String { "\(code) " + lines.joined(separator: " ") }
}

/// Failures below the SMTP dialogue.
enum SMTPConnectionError: Error, Sendable {
    /// No complete reply within the step's timeout.
    case timeout(step: String)
    /// The server closed the connection before replying.
    case closed(step: String)
    /// The server sent something that is not an SMTP reply, or a reply nobody asked for.
    case protocolViolation(String)
}

/// One command (or the message data) and the promise for its reply.
struct SMTPRequest: Sendable {
    var bytes: ByteBuffer
    var step: String
    var timeout: TimeAmount
    var promise: EventLoopPromise<SMTPReply>
    /// After the reply to STARTTLS nothing may be buffered (RFC 3207 §4: discard knowledge from before TLS).
    var isStartTLS = false
}

/// The SMTP client end of a channel: writes requests, splits the server's bytes into replies
/// (multi-line `250-...` continuations included) and answers the requests in order, each within its
/// timeout. The first reply answers the greeting promise given at creation.
final class SMTPClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = SMTPRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var step: String
        var timeout: TimeAmount
        var promise: EventLoopPromise<SMTPReply>
        var isStartTLS: Bool
        var timer: Scheduled<Void>?
    }

    /// Longest line accepted (RFC 5321 allows 512 octets per reply line; servers exceed it).
    static let maximumLineLength = 64 * 1024

    private var pending = CircularBuffer<Pending>()
    private var buffer = ByteBuffer()
    private var replyCode: Int?
    private var replyLines: [String] = []

    init(greeting: EventLoopPromise<SMTPReply>, timeout: TimeAmount) {
        pending.append(Pending(step: "greeting", timeout: timeout, promise: greeting, isStartTLS: false, timer: nil))
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startTimer(context: context) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        pending.append(Pending(step: request.step, timeout: request.timeout, promise: request.promise, isStartTLS: request.isStartTLS, timer: nil))
        if pending.count == 1 { startTimer(context: context) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        while let lineEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = lineEnd - buffer.readerIndex
            var line = buffer.readString(length: length) ?? ""
            buffer.moveReaderIndex(forwardBy: 1)
            if line.hasSuffix("\r") { line.removeLast() }
            guard handle(line: line, context: context) else { return }
        }
        if buffer.readableBytes > Self.maximumLineLength {
            fail(SMTPConnectionError.protocolViolation("reply line longer than \(Self.maximumLineLength) bytes"), context: context)
            return
        }
        buffer.discardReadBytes()
    }

    /// Adds a line to the reply being read; false when the connection was failed.
    private func handle(line: String, context: ChannelHandlerContext) -> Bool {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= 48 && $0 <= 57 }), let code = Int(String(line.prefix(3))),
              bytes.count == 3 || bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-")
        else {
            fail(SMTPConnectionError.protocolViolation("not an SMTP reply: '\(line.prefix(200))'"), context: context)
            return false
        }
        if let replyCode, replyCode != code {
            fail(SMTPConnectionError.protocolViolation("reply code changed from \(replyCode) to \(code) inside a multi-line reply"), context: context)
            return false
        }
        replyCode = code
        replyLines.append(bytes.count > 4 ? String(line.dropFirst(4)) : "")
        if bytes.count > 3, bytes[3] == UInt8(ascii: "-") { return true }
        let reply = SMTPReply(code: code, lines: replyLines)
        replyCode = nil
        replyLines = []
        guard var request = pending.popFirst() else {
            fail(SMTPConnectionError.protocolViolation("unexpected reply '\(reply)' without a command"), context: context)
            return false
        }
        request.timer?.cancel()
        request.timer = nil
        if request.isStartTLS, buffer.readableBytes > 0 {
            request.promise.fail(SMTPConnectionError.protocolViolation("data after the reply to STARTTLS (possible command injection)"))
            fail(SMTPConnectionError.protocolViolation("data after the reply to STARTTLS"), context: context)
            return false
        }
        request.promise.succeed(reply)
        startTimer(context: context)
        return true
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll { SMTPConnectionError.closed(step: $0) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll { SMTPConnectionError.closed(step: $0) }
    }

    /// Starts the timeout of the oldest unanswered request, unless it runs already.
    private func startTimer(context: ChannelHandlerContext) {
        guard let first = pending.first, first.timer == nil else { return }
        let step = first.step
        let loop = context.eventLoop.assumeIsolated()
        let timer = loop.scheduleTask(in: first.timeout) { [self] in
            fail(SMTPConnectionError.timeout(step: step), context: context)
        }
        pending[pending.startIndex].timer = timer
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        failAll { _ in error }
        context.close(promise: nil)
    }

    private func failAll(_ error: (String) -> any Error) {
        while let request = pending.popFirst() {
            request.timer?.cancel()
            request.promise.fail(error(request.step))
        }
    }
}
