import DeerFlowNotifications
import Foundation
import NIOSSL
import Testing

/// The headers (unfolded, by lowercased name) and the body of a message as the server received it.
func parseMessage(_ text: String) -> (headers: [String: String], body: String) {
    guard let split = text.range(of: "\r\n\r\n") else { return ([:], text) }
    var headers: [String: String] = [:]
    var lastName: String?
    for line in text[..<split.lowerBound].components(separatedBy: "\r\n") {
        if line.hasPrefix(" ") || line.hasPrefix("\t"), let name = lastName {
            headers[name, default: ""] += line
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            lastName = name
        }
    }
    return (headers, String(text[split.upperBound...]))
}

/// Decodes RFC 2047 `=?UTF-8?B?...?=` words (white space between words is dropped, as the RFC says).
func decodeEncodedWords(_ header: String) -> String {
    let pattern = try! NSRegularExpression(pattern: #"=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=(\s+(?==\?))?"#)
    var result = header
    for match in pattern.matches(in: header, range: NSRange(header.startIndex..., in: header)).reversed() {
        let base64 = String(header[Range(match.range(at: 1), in: header)!])
        let decoded = Data(base64Encoded: base64).map { String(decoding: $0, as: UTF8.self) } ?? "?"
        result.replaceSubrange(Range(match.range, in: result)!, with: decoded)
    }
    return result
}

/// Decodes quoted-printable text with CRLF line breaks.
func decodeQuotedPrintable(_ text: String) -> String {
    var bytes: [UInt8] = []
    let input = Array(text.replacingOccurrences(of: "=\r\n", with: "").utf8)
    var index = 0
    while index < input.count {
        if input[index] == UInt8(ascii: "="), index + 2 < input.count, let byte = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
            bytes.append(byte)
            index += 3
        } else {
            bytes.append(input[index])
            index += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite("E-mail channel")
struct EmailChannelTests {
    func channel(_ server: TestSMTPServer, to: [String] = ["oncall@example.com"], configure: (inout EmailChannel.Configuration) -> Void = { _ in }) -> EmailChannel {
        var configuration = EmailChannel.Configuration(
            host: "127.0.0.1", port: server.port, from: "DeerFlow <alerts@example.com>", to: to, timeout: .seconds(5))
        configure(&configuration)
        return EmailChannel(configuration: configuration)
    }

    let alert = makeAlert(
        "SchedulerLag", annotations: ["summary": "Scheduler lag detected", "description": "Lag is 75 seconds\n.hidden line starting with a dot\n..two dots"],
        value: 75)

    @Test("sends a MIME message: EHLO, MAIL, RCPT per recipient, DATA with CRLF and dot-stuffing, QUIT")
    func dialogue() async throws {
        let server = try await TestSMTPServer.start(.init(multiLineGreeting: true))
        defer { Task { await server.stop() } }
        let email = channel(server, to: ["oncall@example.com", "Team Lead <lead@example.com>"]) {
            $0.templates.fallback = try! NotificationTemplate("{{ .AlertName }}: {{ .Description }}")
            $0.hello = "deerflow.test"
        }
        try await email.deliver(AlertNotification(channel: "email", alerts: [alert]))

        let transcript = server.transcript
        #expect(transcript.violations.isEmpty, "\(transcript.violations)")
        #expect(transcript.commands == [
            "EHLO deerflow.test",
            "MAIL FROM:<alerts@example.com> BODY=8BITMIME",
            "RCPT TO:<oncall@example.com>",
            "RCPT TO:<lead@example.com>",
            "DATA",
            "QUIT",
        ])
        let message = try #require(transcript.messages.first)
        #expect(message.from == "alerts@example.com")
        #expect(message.recipients == ["oncall@example.com", "lead@example.com"])
        // On the wire, every line starting with "." gets one more.
        #expect(message.raw.contains("\r\n..hidden line starting with a dot\r\n"))
        #expect(message.raw.contains("\r\n...two dots\r\n"))
        #expect(!message.raw.contains("\r\n.hidden"))
        let (headers, body) = parseMessage(message.text)
        #expect(headers["from"] == "\"DeerFlow\" <alerts@example.com>")
        #expect(headers["to"] == "oncall@example.com, \"Team Lead\" <lead@example.com>")
        #expect(headers["subject"] == "[firing] SchedulerLag")
        #expect(headers["mime-version"] == "1.0")
        #expect(headers["content-type"] == "text/plain; charset=utf-8")
        #expect(headers["content-transfer-encoding"] == "8bit")
        #expect(headers["message-id"]?.hasPrefix("<") == true && headers["message-id"]?.hasSuffix("@example.com>") == true)
        let date = try #require(headers["date"])
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        #expect(formatter.date(from: date) != nil, "\(date)")
        #expect(body == "SchedulerLag: Lag is 75 seconds\r\n.hidden line starting with a dot\r\n..two dots\r\n")
    }

    @Test("a grouped notification is one message; the subject counts the others")
    func grouped() async throws {
        let server = try await TestSMTPServer.start()
        defer { Task { await server.stop() } }
        let email = channel(server)
        try await email.deliver(AlertNotification(channel: "email", alerts: [makeAlert("A", value: 1), makeAlert("B", severity: "warning", value: nil)]))
        let transcript = server.transcript
        #expect(transcript.messages.count == 1)
        let (headers, body) = parseMessage(try #require(transcript.messages.first).text)
        #expect(headers["subject"] == "[firing] A (+1 more)")
        #expect(body == [
            "[firing] A", "Severity: critical", "Value: 1", "Started: 2024-06-01T12:00:00.000Z", "Labels: map[severity:critical]", "",
            "[firing] B", "Severity: warning", "Started: 2024-06-01T12:00:00.000Z", "Labels: map[severity:warning]", "",
        ].joined(separator: "\r\n"))
    }

    @Test("non-ASCII subject is RFC 2047 encoded; without 8BITMIME the body is quoted-printable")
    func encodings() async throws {
        let server = try await TestSMTPServer.start(.init(eightBitMIME: false))
        defer { Task { await server.stop() } }
        let longDescription = "Überlast in der Warteschlange – " + String(repeating: "sehr lange Zeile ", count: 10) + "= Ende \nzweite Zeile"
        let email = channel(server) {
            $0.subject = try! NotificationTemplate("⚠️ {{ .AlertName }} — Warteschlange überlastet, bitte prüfen: {{ .Summary }}")
            $0.templates.fallback = try! NotificationTemplate("{{ .Description }}")
        }
        try await email.deliver(AlertNotification(channel: "email", alerts: [makeAlert("TaskQueueBacklog", annotations: ["summary": "Rückstau", "description": longDescription])]))
        let transcript = server.transcript
        #expect(transcript.violations.isEmpty, "\(transcript.violations)")
        #expect(transcript.commands.contains("MAIL FROM:<alerts@example.com>"))
        let raw = try #require(transcript.messages.first).text
        #expect(raw.utf8.allSatisfy { $0 < 128 }, "the message must be 7-bit without 8BITMIME")
        for line in raw.components(separatedBy: "\r\n") { #expect(line.count <= 78, "\(line)") }
        let (headers, body) = parseMessage(raw)
        #expect(headers["content-transfer-encoding"] == "quoted-printable")
        let subject = try #require(headers["subject"])
        #expect(subject.hasPrefix("=?UTF-8?B?"))
        #expect(decodeEncodedWords(subject) == "⚠️ TaskQueueBacklog — Warteschlange überlastet, bitte prüfen: Rückstau")
        #expect(decodeQuotedPrintable(body) == longDescription.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
        #expect(body.contains("=20\r\n") && !body.contains(" \r\n"), "white space at the end of a line is encoded")
    }

    @Test("a recipient refused with 550 is a permanent error naming it; nothing is sent")
    func rejectedRecipient() async throws {
        let server = try await TestSMTPServer.start(.init(rejectedRecipients: ["nobody@example.com"]))
        defer { Task { await server.stop() } }
        let email = channel(server, to: ["oncall@example.com", "nobody@example.com"])
        let error = try #require(await deliveryError(email, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .recipientRejected)
        #expect(!error.isRetryable)
        #expect(error.statusCode == 550)
        #expect(error.message.contains("nobody@example.com"), "\(error)")
        #expect(server.transcript.messages.isEmpty)
        #expect(server.transcript.commands.suffix(2) == ["RCPT TO:<nobody@example.com>", "QUIT"])
    }

    @Test("a server that never answers is a timeout")
    func silentServer() async throws {
        let server = try await TestSMTPServer.start(.init(greet: false))
        defer { Task { await server.stop() } }
        let email = channel(server) { $0.timeout = .milliseconds(300) }
        let started = ContinuousClock.now
        let error = try #require(await deliveryError(email, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .timeout)
        #expect(error.isRetryable)
        #expect(error.message.contains("greeting"), "\(error)")
        // Generous for a loaded machine: a missing timeout would wait forever.
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test("a transient 4xx reply is retryable")
    func transientReply() async throws {
        let server = try await TestSMTPServer.start(.init(mailFromReply: "451 4.3.0 Temporary lookup failure"))
        defer { Task { await server.stop() } }
        let error = try #require(await deliveryError(channel(server), AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .serverError && error.isRetryable && error.statusCode == 451, "\(error)")
    }

    @Test("a refused connection is retryable")
    func refused() async throws {
        let server = try await TestSMTPServer.start()
        let port = server.port
        await server.stop()
        let email = EmailChannel(configuration: .init(host: "127.0.0.1", port: port, from: "a@example.com", to: ["b@example.com"], timeout: .seconds(2)))
        let error = try #require(await deliveryError(email, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .connectionFailed && error.isRetryable, "\(error)")
    }

    @Test("HELO when the server does not know EHLO")
    func heloFallback() async throws {
        let server = try await TestSMTPServer.start(.init(rejectEHLO: true))
        defer { Task { await server.stop() } }
        try await channel(server).deliver(AlertNotification(channel: "email", alerts: [alert]))
        let transcript = server.transcript
        #expect(transcript.commands.prefix(3) == ["EHLO localhost", "HELO localhost", "MAIL FROM:<alerts@example.com>"])
        #expect(transcript.messages.count == 1)
        #expect(parseMessage(transcript.messages[0].text).headers["content-transfer-encoding"] == "quoted-printable")
    }

    @Test("STARTTLS with a re-EHLO, then AUTH PLAIN over TLS", arguments: [false, true])
    func startTLSAndAuth(useCAFile: Bool) async throws {
        let serverContext = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(TestCertificate.certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(TestCertificate.privateKeyPEM.utf8), format: .pem))))
        let server = try await TestSMTPServer.start(.init(startTLS: serverContext, authMechanisms: ["PLAIN", "LOGIN"], credentials: ("alerts", "s3cret")))
        defer { Task { await server.stop() } }
        let caFile = try TestCertificate.writeCertificate()
        defer { try? FileManager.default.removeItem(atPath: caFile) }
        var configuration = EmailChannel.Configuration(
            host: "localhost", port: server.port, from: "alerts@example.com", to: ["oncall@example.com"], startTLS: .always,
            credentials: .init(username: "alerts", password: "s3cret"), timeout: .seconds(5))
        if useCAFile { configuration.tlsCAFile = caFile } else { configuration.tlsInsecureSkipVerify = true }
        try await EmailChannel(configuration: configuration).deliver(AlertNotification(channel: "email", alerts: [alert]))
        let transcript = server.transcript
        #expect(transcript.violations.isEmpty, "\(transcript.violations)")
        #expect(transcript.commands.prefix(2) == ["EHLO localhost", "STARTTLS"])
        #expect(transcript.tlsCommands.first == "EHLO localhost")
        #expect(transcript.tlsCommands.dropFirst().first?.hasPrefix("AUTH PLAIN ") == true)
        #expect(transcript.authenticatedUsers == ["alerts"])
        #expect(transcript.messages.count == 1)
    }

    @Test("an untrusted certificate fails STARTTLS")
    func untrustedCertificate() async throws {
        let serverContext = try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(TestCertificate.certificatePEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(TestCertificate.privateKeyPEM.utf8), format: .pem))))
        let server = try await TestSMTPServer.start(.init(startTLS: serverContext))
        defer { Task { await server.stop() } }
        let email = EmailChannel(configuration: .init(host: "localhost", port: server.port, from: "a@example.com", to: ["b@example.com"], timeout: .seconds(5)))
        let error = try #require(await deliveryError(email, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .connectionFailed, "\(error)")
        #expect(error.message.contains("TLS"), "\(error)")
        #expect(server.transcript.messages.isEmpty)
    }

    @Test("AUTH LOGIN to a loopback server without TLS")
    func authLogin() async throws {
        let server = try await TestSMTPServer.start(.init(authMechanisms: ["LOGIN"], credentials: ("alerts", "s3cret")))
        defer { Task { await server.stop() } }
        try await channel(server) { $0.credentials = .init(username: "alerts", password: "s3cret") }
            .deliver(AlertNotification(channel: "email", alerts: [alert]))
        #expect(server.transcript.authenticatedUsers == ["alerts"])
        #expect(server.transcript.commands[1] == "AUTH LOGIN")
    }

    @Test("wrong credentials are a permanent error")
    func wrongPassword() async throws {
        let server = try await TestSMTPServer.start(.init(authMechanisms: ["PLAIN"], credentials: ("alerts", "s3cret")))
        defer { Task { await server.stop() } }
        let email = channel(server) { $0.credentials = .init(username: "alerts", password: "wrong") }
        let error = try #require(await deliveryError(email, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .rejected && !error.isRetryable && error.statusCode == 535, "\(error)")
        #expect(!error.message.contains("wrong"))
    }

    @Test("starttls: true against a server without STARTTLS is a configuration error")
    func startTLSRequired() async throws {
        let server = try await TestSMTPServer.start()
        defer { Task { await server.stop() } }
        let error = try #require(await deliveryError(channel(server) { $0.startTLS = .always }, AlertNotification(channel: "email", alerts: [alert])))
        #expect(error.code == .invalidConfiguration && !error.isRetryable, "\(error)")
        #expect(server.transcript.messages.isEmpty)
    }
}

@Suite("E-mail settings")
struct EmailSettingsTests {
    @Test("the password never shows in descriptions")
    func passwordHidden() {
        var configuration = EmailChannel.Configuration(host: "smtp.example.com", from: "a@example.com", to: ["b@example.com"])
        configuration.credentials = .init(username: "alerts", password: "TOPSECRET")
        #expect(!"\(configuration)".contains("TOPSECRET"))
        #expect(!String(reflecting: configuration).contains("TOPSECRET"))
        #expect(configuration.port == 25)
        #expect(EmailChannel.Configuration(host: "h", from: "a@example.com", to: ["b@example.com"], startTLS: .always).port == 587)
    }
}
