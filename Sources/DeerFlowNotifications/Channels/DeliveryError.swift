import DeerFlowCore
import Foundation

/// Why a notification could not be delivered, and whether trying again later can help.
///
/// ```swift
/// do {
///     try await channel.deliver(notification)
/// } catch {
///     if error.isRetryable { outbox.retry(after: error.retryAfter ?? backoff) } else { outbox.giveUp(error) }
/// }
/// ```
public struct DeliveryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Value: String, Sendable, Hashable {
            case timeout, connectionFailed, serverError, rateLimited, protocolError
            case rejected, recipientRejected, invalidConfiguration
        }

        let value: Value

        /// No answer in time (connect, request, or an SMTP step). Retryable.
        public static let timeout = Code(value: .timeout)
        /// The connection could not be made or broke (refused, reset, DNS, TLS). Retryable.
        public static let connectionFailed = Code(value: .connectionFailed)
        /// HTTP 5xx, or an SMTP 4xx (transient) reply. Retryable.
        public static let serverError = Code(value: .serverError)
        /// HTTP 429; ``DeliveryError/retryAfter`` holds `Retry-After` when the server sent it. Retryable.
        public static let rateLimited = Code(value: .rateLimited)
        /// The server answered something that is not the protocol (garbled SMTP, an unexpected reply). Retryable.
        public static let protocolError = Code(value: .protocolError)
        /// HTTP 4xx other than 429, a Slack `{"ok": false}` answer, or an SMTP 5xx reply. Permanent.
        public static let rejected = Code(value: .rejected)
        /// The SMTP server refused a recipient with a 5xx reply; the message names it. Permanent.
        public static let recipientRejected = Code(value: .recipientRejected)
        /// The channel's settings cannot work (bad URL, TLS settings, STARTTLS or AUTH required but not offered). Permanent.
        public static let invalidConfiguration = Code(value: .invalidConfiguration)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// Name of the channel.
    public var channel: String
    /// What happened, with the server's answer where there is one.
    public var message: String
    /// The HTTP status or SMTP reply code, when the server answered.
    public var statusCode: Int?
    /// How long the server asked to wait (HTTP `Retry-After`, in seconds or as an HTTP date).
    public var retryAfter: Duration?

    public init(code: Code, channel: String, message: String, statusCode: Int? = nil, retryAfter: Duration? = nil) {
        self.code = code
        self.channel = channel
        self.message = message
        self.statusCode = statusCode
        self.retryAfter = retryAfter
    }

    /// Whether a later attempt may succeed: timeouts, connection failures, 5xx, 429, SMTP 4xx and
    /// protocol errors. Rejections (4xx, SMTP 5xx) and configuration errors are permanent.
    public var isRetryable: Bool {
        switch code.value {
        case .timeout, .connectionFailed, .serverError, .rateLimited, .protocolError: return true
        case .rejected, .recipientRejected, .invalidConfiguration: return false
        }
    }

    /// `channel 'slack': rate limited (HTTP 429): ...; retry after 3s`.
    public var description: String {
        var text = "channel '\(channel)': \(message)"
        if let retryAfter { text += " (retry after \(DurationText.format(retryAfter)))" }
        return text
    }
}

/// A destination for notifications: ``SlackChannel``, ``PagerDutyChannel``, ``EmailChannel``.
public protocol NotificationChannel: Sendable {
    /// The channel's name in `notifications.yaml`.
    var name: String { get }

    /// Sends one notification (all its alerts) and returns when the server accepted it.
    /// - Throws: ``DeliveryError``; ``DeliveryError/isRetryable`` says whether to try again.
    func deliver(_ notification: AlertNotification) async throws(DeliveryError)
}
