import DeerFlowCore
import Foundation
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL

/// Sends notifications as plain-text e-mail over SMTP (RFC 5321), with SwiftNIO.
///
/// The dialogue: greeting `220`; `EHLO` (`HELO` when the server does not know EHLO); `STARTTLS`
/// and a second `EHLO` when the server offers it (``StartTLS/auto``) or always (``StartTLS/always``);
/// `AUTH PLAIN` (or `AUTH LOGIN` when the server offers only that) when credentials are set;
/// `MAIL FROM`, one `RCPT TO` per recipient, `DATA` with the message, `QUIT`. Every step waits at
/// most ``Configuration/timeout`` for the reply; multi-line replies are read whole.
///
/// The message has `Date`, `From`, `To`, `Subject` (RFC 2047-encoded when not ASCII),
/// `Message-ID`, `MIME-Version: 1.0`, `Content-Type: text/plain; charset=utf-8` and
/// `Content-Transfer-Encoding: 8bit` when the server offers `8BITMIME` (sent with `BODY=8BITMIME`),
/// else `quoted-printable`; lines end in CRLF and lines starting with `.` are dot-stuffed.
///
/// A grouped notification is one message: the body is every alert rendered with the template for
/// its severity, separated by blank lines; the subject is rendered for the first alert, followed
/// by ` (+N more)` when there are more.
///
/// Errors: SMTP 4xx replies, timeouts and connection failures are retryable; 5xx replies are
/// permanent, and a recipient refused with 5xx is a ``DeliveryError/Code/recipientRejected``
/// error naming it (nothing is sent then). Credentials are only sent over TLS, or to a loopback
/// address.
///
/// ```swift
/// let email = EmailChannel(configuration: .init(host: "smtp.example.com", from: "alerts@example.com", to: ["oncall@example.com"]))
/// try await email.deliver(AlertNotification(channel: "email", alerts: [alert]))
/// ```
public struct EmailChannel: NotificationChannel {
    /// When to use STARTTLS.
    public enum StartTLS: String, Sendable, Hashable {
        /// Use it when the server offers it (`starttls: auto`, the default).
        case auto
        /// Require it: fail when the server does not offer it (`starttls: true`).
        case always
        /// Never use it (`starttls: false`).
        case never
    }

    /// A user name and password for SMTP AUTH.
    public struct Credentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
        public var username: String
        public var password: String

        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }

        /// The user name only.
        public var description: String { "\(username) (password hidden)" }
        public var debugDescription: String { description }
    }

    /// Settings of an e-mail channel (`notifications.channels.email`).
    public struct Configuration: Sendable, Hashable {
        /// Name in `notifications.yaml`. Default `email`.
        public var name: String
        /// The SMTP server (`smtp_host`).
        public var host: String
        /// The SMTP port (`smtp_port`). Default 587 with `starttls: true`, else 25.
        public var port: Int
        /// Sender, `alerts@example.com` or `DeerFlow <alerts@example.com>`.
        public var from: String
        /// Recipients, at least one.
        public var to: [String]
        /// Default ``StartTLS/auto``.
        public var startTLS: StartTLS
        /// AUTH credentials; nil (default) sends none.
        public var credentials: Credentials?
        /// Subject template. Default ``NotificationTemplate/defaultEmailSubject`` (`[{{ .Status }}] {{ .AlertName }}`).
        public var subject: NotificationTemplate
        /// Body templates by severity. Default ``NotificationTemplate/defaultEmailBody``.
        public var templates: NotificationTemplates
        /// The name given in EHLO/HELO. Default `localhost`.
        public var hello: String
        /// Longest wait for the connection and for each reply. Default 30s.
        public var timeout: Duration
        /// Accept any server certificate (`tls.insecure_skip_verify`). Default false.
        public var tlsInsecureSkipVerify: Bool
        /// PEM file of the CA certificates to trust instead of the system's (`tls.ca_file`).
        public var tlsCAFile: String?

        public init(
            name: String = "email", host: String, port: Int? = nil, from: String, to: [String], startTLS: StartTLS = .auto,
            credentials: Credentials? = nil, timeout: Duration = .seconds(30)
        ) {
            self.name = name
            self.host = host
            self.port = port ?? (startTLS == .always ? 587 : 25)
            self.from = from
            self.to = to
            self.startTLS = startTLS
            self.credentials = credentials
            self.subject = .defaultEmailSubject
            self.templates = NotificationTemplates(fallback: .defaultEmailBody)
            self.hello = "localhost"
            self.timeout = timeout
            self.tlsInsecureSkipVerify = false
            self.tlsCAFile = nil
        }
    }

    public let configuration: Configuration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    public var name: String { configuration.name }

    /// - Parameters:
    ///   - eventLoopGroup: Where connections run. Default `MultiThreadedEventLoopGroup.singleton`.
    ///   - logger: Where the dialogue's outcome is logged at debug level (never the password).
    public init(
        configuration: Configuration, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "deerflow.notifications")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Subject and body of the message for `notification`.
    public func content(for notification: AlertNotification) -> (subject: String, body: String) {
        guard let first = notification.alerts.first else { return ("", "") }
        var subject = configuration.subject.render(first).trimmingCharacters(in: .whitespacesAndNewlines)
        if notification.alerts.count > 1 { subject += " (+\(notification.alerts.count - 1) more)" }
        return (subject, configuration.templates.render(notification.alerts))
    }

    public func deliver(_ notification: AlertNotification) async throws(DeliveryError) {
        guard !notification.alerts.isEmpty else { return }
        let (subject, body) = content(for: notification)
        let domain = EmailAddress.addrSpec(of: configuration.from).split(separator: "@").last.map(String.init) ?? "deerflow"
        let message = MIMEMessage(
            from: configuration.from, to: configuration.to, subject: subject, body: body, date: Date(),
            messageID: "<\(UUID().uuidString.lowercased()).deerflow@\(domain)>")
        try await send(message)
    }

    // MARK: The SMTP dialogue

    private var endpoint: String { "\(configuration.host):\(configuration.port)" }

    func send(_ message: MIMEMessage) async throws(DeliveryError) {
        let timeout = TimeAmount.nanoseconds(Int64(configuration.timeout.seconds * 1e9))
        let connection: SMTPConnection
        do {
            connection = try await SMTPConnection.connect(host: configuration.host, port: configuration.port, group: eventLoopGroup, timeout: timeout)
        } catch {
            throw failure(error, step: "connect")
        }
        do {
            try await dialogue(connection, message)
        } catch {
            // The server refused something but is still talking: end the session politely.
            if error.statusCode != nil { _ = try? await connection.command("QUIT") }
            await connection.close()
            throw error
        }
        await connection.close()
    }

    private func dialogue(_ connection: SMTPConnection, _ message: MIMEMessage) async throws(DeliveryError) {
        var step = "greeting"
        do {
            try expect(try await connection.awaitGreeting(), 220, step: step)
            step = "EHLO"
            var capabilities = try await hello(connection)
            var secure = false
            if configuration.startTLS != .never, capabilities["STARTTLS"] != nil {
                step = "STARTTLS"
                try expect(try await connection.command("STARTTLS", isStartTLS: true), 220, step: step)
                try await connection.startTLS(context: try tlsContext(), serverHostname: Self.isIPAddress(configuration.host) ? nil : configuration.host)
                step = "EHLO after STARTTLS"
                capabilities = try await hello(connection, afterTLS: true)
                secure = true
            } else if configuration.startTLS == .always {
                throw DeliveryError(
                    code: .invalidConfiguration, channel: name,
                    message: "\(endpoint) does not offer STARTTLS, but the channel has starttls: true (use starttls: auto or false, or another port)")
            }
            if let credentials = configuration.credentials {
                step = "AUTH"
                try await authenticate(connection, credentials, capabilities: capabilities, secure: secure)
            }
            let addresses = (from: EmailAddress.addrSpec(of: message.from), to: message.to.map(EmailAddress.addrSpec(of:)))
            let encoding = MIMEMessage.transferEncoding(for: message.body, serverAccepts8Bit: capabilities["8BITMIME"] != nil)
            step = "MAIL FROM"
            let bodyParameter = encoding == .eightBit ? " BODY=8BITMIME" : ""
            try expect(try await connection.command("MAIL FROM:<\(addresses.from)>\(bodyParameter)"), 250, step: step)
            for recipient in addresses.to {
                step = "RCPT TO:<\(recipient)>"
                let reply = try await connection.command("RCPT TO:<\(recipient)>")
                if reply.code == 250 || reply.code == 251 { continue }
                if (500..<600).contains(reply.code) {
                    throw DeliveryError(
                        code: .recipientRejected, channel: name, message: "\(endpoint) refused recipient <\(recipient)>: \(reply)", statusCode: reply.code)
                }
                try expect(reply, 250, step: step)
            }
            step = "DATA"
            try expect(try await connection.command("DATA"), 354, step: step)
            step = "message data"
            let data = MIMEMessage.dotStuffed(message.render(encoding: encoding))
            try expect(try await connection.send(ByteBuffer(string: data), step: step), 250, step: step)
            logger.debug("e-mail notification accepted", metadata: ["channel": "\(name)", "server": "\(endpoint)"])
            // The message is accepted; a failing QUIT changes nothing.
            _ = try? await connection.command("QUIT")
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw failure(error, step: step)
        }
    }

    /// EHLO, or HELO when the server does not know EHLO; the EHLO capabilities by keyword
    /// (`AUTH` → `["PLAIN", "LOGIN"]`).
    private func hello(_ connection: SMTPConnection, afterTLS: Bool = false) async throws -> [String: [String]] {
        let reply = try await connection.command("EHLO \(configuration.hello)")
        if reply.code == 250 {
            var capabilities: [String: [String]] = [:]
            for line in reply.lines.dropFirst() {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "=" }).map(String.init)
                guard let keyword = words.first?.uppercased() else { continue }
                capabilities[keyword, default: []] += words.dropFirst().map { $0.uppercased() }
            }
            return capabilities
        }
        if !afterTLS, [500, 502, 504, 550].contains(reply.code) {
            try expect(try await connection.command("HELO \(configuration.hello)"), 250, step: "HELO")
            return [:]
        }
        try expect(reply, 250, step: afterTLS ? "EHLO after STARTTLS" : "EHLO")
        return [:]
    }

    private func authenticate(_ connection: SMTPConnection, _ credentials: Credentials, capabilities: [String: [String]], secure: Bool) async throws {
        guard secure || Self.isLoopback(configuration.host) else {
            throw DeliveryError(
                code: .invalidConfiguration, channel: name,
                message: "refusing to send the SMTP password to \(endpoint) unencrypted: the server does not offer STARTTLS (or starttls is false)")
        }
        guard let mechanisms = capabilities["AUTH"] else {
            throw DeliveryError(code: .invalidConfiguration, channel: name, message: "\(endpoint) does not offer AUTH, but the channel has a username and password")
        }
        if mechanisms.contains("PLAIN") {
            let token = Data(("\u{0}" + credentials.username + "\u{0}" + credentials.password).utf8).base64EncodedString()
            try expectAuth(try await connection.command("AUTH PLAIN \(token)", step: "AUTH PLAIN"), 235)
        } else if mechanisms.contains("LOGIN") {
            try expectAuth(try await connection.command("AUTH LOGIN"), 334)
            try expectAuth(try await connection.command(Data(credentials.username.utf8).base64EncodedString(), step: "AUTH LOGIN user name"), 334)
            try expectAuth(try await connection.command(Data(credentials.password.utf8).base64EncodedString(), step: "AUTH LOGIN password"), 235)
        } else {
            throw DeliveryError(
                code: .invalidConfiguration, channel: name,
                message: "\(endpoint) offers AUTH \(mechanisms.joined(separator: " ")), but DeerFlow supports only PLAIN and LOGIN")
        }
    }

    private func expectAuth(_ reply: SMTPReply, _ code: Int) throws(DeliveryError) {
        if reply.code == 535 {
            throw DeliveryError(code: .rejected, channel: name, message: "\(endpoint) rejected the user name or password: \(reply)", statusCode: reply.code)
        }
        try expect(reply, code, step: "AUTH")
    }

    /// Checks a reply: the expected code passes; 4xx is a retryable ``DeliveryError/Code/serverError``,
    /// 5xx a permanent ``DeliveryError/Code/rejected``, anything else a protocol error.
    private func expect(_ reply: SMTPReply, _ code: Int, step: String) throws(DeliveryError) {
        if reply.code == code { return }
        let text = "\(endpoint) answered \(reply) to \(step)"
        switch reply.code {
        case 400..<500: throw DeliveryError(code: .serverError, channel: name, message: text, statusCode: reply.code)
        case 500..<600: throw DeliveryError(code: .rejected, channel: name, message: text, statusCode: reply.code)
        default: throw DeliveryError(code: .protocolError, channel: name, message: "\(text) (expected \(code))", statusCode: reply.code)
        }
    }

    private func failure(_ error: any Error, step: String) -> DeliveryError {
        if let error = error as? DeliveryError { return error }
        if let error = error as? SMTPConnectionError {
            switch error {
            case .timeout(let step):
                return DeliveryError(code: .timeout, channel: name, message: "no answer from \(endpoint) to \(step) within \(DurationText.format(configuration.timeout))")
            case .closed(let step):
                return DeliveryError(code: .connectionFailed, channel: name, message: "\(endpoint) closed the connection during \(step)")
            case .protocolViolation(let message):
                return DeliveryError(code: .protocolError, channel: name, message: "\(endpoint) broke the SMTP protocol during \(step): \(message)")
            }
        }
        if case ChannelError.connectTimeout = error {
            return DeliveryError(code: .timeout, channel: name, message: "connecting to \(endpoint) timed out after \(DurationText.format(configuration.timeout))")
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return DeliveryError(
                code: .connectionFailed, channel: name,
                message: "TLS with \(endpoint) failed during \(step): \(error) (check the server's certificate, tls.ca_file or tls.insecure_skip_verify)")
        }
        return DeliveryError(code: .connectionFailed, channel: name, message: "cannot talk to \(endpoint) (\(step)): \(error)")
    }

    private func tlsContext() throws(DeliveryError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        if configuration.tlsInsecureSkipVerify { tls.certificateVerification = .none }
        if let caFile = configuration.tlsCAFile { tls.trustRoots = .file(caFile) }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw DeliveryError(code: .invalidConfiguration, channel: name, message: "cannot set up TLS: \(error)")
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
