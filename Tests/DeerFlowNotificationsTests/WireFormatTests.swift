@testable import DeerFlowNotifications
import Foundation
import NIOCore
import NIOEmbedded
import Testing

@Suite("Retry-After")
struct RetryAfterTests {
    let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT

    @Test("seconds and the three HTTP-date formats", arguments: [
        ("3", Duration.seconds(3)),
        (" 120 ", .seconds(120)),
        ("0", .zero),
        ("Sun, 06 Nov 1994 08:49:47 GMT", .seconds(10)),
        ("Sunday, 06-Nov-94 08:50:37 GMT", .seconds(60)),
        ("Sun Nov  6 08:49:40 1994", .seconds(3)),
        ("Sun, 06 Nov 1994 08:00:00 GMT", .zero),
    ])
    func parse(text: String, expected: Duration) {
        #expect(HTTPDelivery.parseRetryAfter(text, now: now) == expected)
    }

    @Test("anything else is ignored", arguments: ["", "-1", "soon", "1.5", "Sun, 06 Nov 1994"])
    func invalid(text: String) {
        #expect(HTTPDelivery.parseRetryAfter(text, now: now) == nil)
    }
}

@Suite("MIME message")
struct MIMEMessageTests {
    func message(subject: String = "[firing] SchedulerLag", body: String = "text") -> MIMEMessage {
        MIMEMessage(
            from: "alerts@example.com", to: ["oncall@example.com"], subject: subject, body: body,
            date: Date(timeIntervalSince1970: 1_717_243_200), messageID: "<id@example.com>")
    }

    @Test("headers, CRLF line endings and the date format")
    func headers() {
        let text = message(body: "line 1\nline 2\r\nline 3").render(encoding: .eightBit)
        #expect(text == [
            "Date: Sat, 01 Jun 2024 12:00:00 +0000",
            "From: alerts@example.com",
            "To: oncall@example.com",
            "Subject: [firing] SchedulerLag",
            "Message-ID: <id@example.com>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated",
            "X-Mailer: DeerFlow",
            "",
            "line 1", "line 2", "line 3", "",
        ].joined(separator: "\r\n"))
    }

    @Test("data cannot add headers through the subject")
    func headerInjection() {
        let text = message(subject: "x\r\nBcc: victim@example.com").render(encoding: .eightBit)
        #expect(text.contains("Subject: x Bcc: victim@example.com\r\n"))
        #expect(!text.contains("\r\nBcc:"))
    }

    @Test("encoded words stay within 76 characters per line and never split a character")
    func encodedWords() {
        let subject = String(repeating: "Überlast ⚠️ ", count: 12)
        let header = MIMEMessage.headerLine("Subject", subject)
        for line in header.components(separatedBy: "\r\n") { #expect(line.count <= 76, "\(line)") }
        #expect(decodeEncodedWords(String(header.dropFirst("Subject: ".count))) == subject)
        // Text that looks like an encoded word is encoded, so it reads back as written.
        #expect(MIMEMessage.headerLine("Subject", "=?UTF-8?B?eA==?=").hasPrefix("Subject: =?UTF-8?B?"))
    }

    @Test("long ASCII subjects fold at spaces")
    func folding() {
        let subject = String(repeating: "word ", count: 30).trimmingCharacters(in: .whitespaces)
        let header = MIMEMessage.headerLine("Subject", subject)
        #expect(header.components(separatedBy: "\r\n").allSatisfy { $0.count <= 78 })
        #expect(header.replacingOccurrences(of: "\r\n", with: "") == "Subject: " + subject)
    }

    @Test("dot-stuffing and the terminator")
    func dotStuffing() {
        #expect(MIMEMessage.dotStuffed("a\r\n.b\r\n..c\r\n.\r\n") == "a\r\n..b\r\n...c\r\n..\r\n.\r\n")
    }

    @Test("quoted-printable")
    func quotedPrintable() {
        #expect(MIMEMessage.quotedPrintable("a=b ü\t") == "a=3Db =C3=BC=09")
        let long = MIMEMessage.quotedPrintable(String(repeating: "x", count: 200))
        #expect(long.components(separatedBy: "=\r\n").allSatisfy { $0.count <= 76 })
        #expect(long.replacingOccurrences(of: "=\r\n", with: "") == String(repeating: "x", count: 200))
    }

    @Test("addresses", arguments: [
        ("oncall@example.com", "oncall@example.com"),
        ("Team Lead <lead@example.com>", "\"Team Lead\" <lead@example.com>"),
        ("\"Ops\" <ops@example.com>", "\"Ops\" <ops@example.com>"),
    ])
    func addresses(input: String, header: String) {
        #expect(MIMEMessage.formatAddress(input) == header)
    }

    @Test("address validation")
    func validation() {
        for valid in ["a@example.com", "first.last+tag@sub.example.co", "x@[127.0.0.1]", "Name <a@b.c>"] {
            #expect(EmailAddress.parse(valid) != nil, "\(valid)")
        }
        for invalid in ["", "a", "a@", "@b.c", "a b@c.d", "a@b..c", ".a@b.c", "a@-b.c", "Name <a@b.c", "ü@example.com"] {
            #expect(EmailAddress.parse(invalid) == nil, "\(invalid)")
        }
        #expect(MIMEMessage.formatAddress("Jürgen <j@example.com>").hasPrefix("=?UTF-8?B?"))
    }
}

@Suite("SMTP reply reading")
struct SMTPReplyTests {
    /// Feeds `input` to a handler that sent `requests` commands after the greeting; the replies to
    /// the greeting and to each command, or their errors, and whether the channel is still open.
    func replies(_ input: [String], requests: Int = 0, startTLS: Bool = false) throws -> (results: [Result<SMTPReply, any Error>], open: Bool) {
        let channel = EmbeddedChannel()
        let greeting = channel.eventLoop.makePromise(of: SMTPReply.self)
        try channel.pipeline.syncOperations.addHandler(SMTPClientHandler(greeting: greeting, timeout: .seconds(5)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 25)).wait()
        var futures = [greeting.futureResult]
        for index in 0..<requests {
            let promise = channel.eventLoop.makePromise(of: SMTPReply.self)
            try channel.writeOutbound(SMTPRequest(bytes: ByteBuffer(string: "NOOP\r\n"), step: "NOOP \(index)", timeout: .seconds(5), promise: promise, isStartTLS: startTLS))
            futures.append(promise.futureResult)
        }
        for chunk in input { _ = try? channel.writeInbound(ByteBuffer(string: chunk)) }
        let open = channel.isActive
        // EmbeddedChannel runs everything inline: a completed future has its value now.
        let results = futures.map { future -> Result<SMTPReply, any Error> in
            let box = ResultBox()
            future.whenComplete { box.result = $0 }
            return box.result ?? .failure(SMTPConnectionError.closed(step: "still pending"))
        }
        _ = try? channel.finish()
        return (results, open)
    }

    @Test("multi-line replies, split across reads")
    func multiLine() throws {
        let (results, open) = try replies(["220 hi\r\n250-first\r\n250-SEC", "OND\r\n250 last\r\n", "550 no\r\n"], requests: 2)
        #expect(try results[0].get() == SMTPReply(code: 220, lines: ["hi"]))
        #expect(try results[1].get() == SMTPReply(code: 250, lines: ["first", "SECOND", "last"]))
        #expect(try results[2].get() == SMTPReply(code: 550, lines: ["no"]))
        #expect(open)
    }

    @Test("garbage and a code changing inside a reply are protocol errors", arguments: ["hello\r\n", "220-a\r\n250 b\r\n", "22\r\n"])
    func garbage(input: String) throws {
        let (results, open) = try replies([input])
        #expect(throws: SMTPConnectionError.self) { try results[0].get() }
        #expect(!open)
    }

    @Test("a reply nobody asked for closes the connection")
    func unsolicited() throws {
        let (results, open) = try replies(["220 hi\r\n250 unsolicited\r\n"])
        #expect((try? results[0].get()) != nil)
        #expect(!open)
    }

    @Test("data after the reply to STARTTLS is rejected (RFC 3207 command injection)")
    func startTLSInjection() throws {
        let (results, open) = try replies(["220 hi\r\n", "220 go ahead\r\n250 injected\r\n"], requests: 1, startTLS: true)
        #expect(throws: SMTPConnectionError.self) { try results[1].get() }
        #expect(!open)
    }
}

/// Holds a future's result; only touched on the embedded event loop's thread.
private final class ResultBox: @unchecked Sendable {
    var result: Result<SMTPReply, any Error>?
}
