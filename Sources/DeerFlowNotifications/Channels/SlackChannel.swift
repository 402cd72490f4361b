public import AsyncHTTPClient
public import DeerFlowCore
import Foundation
public import Logging

/// Posts notifications to a Slack incoming webhook.
///
/// The request is `POST <webhook>` with `Content-Type: application/json` and the body
/// `{"channel": "#x", "text": "<rendered>", "username": ..., "icon_emoji": ...}` (`channel`,
/// `username` and `icon_emoji` only when configured). The text is every alert of the notification
/// rendered with the template for its severity, separated by blank lines. Slack answers `200 ok`
/// (see ``deliver(_:)`` for how other answers count).
///
/// ```swift
/// let slack = SlackChannel(configuration: .init(url: "https://hooks.slack.com/services/T/B/X"))
/// try await slack.deliver(AlertNotification(channel: "slack", alerts: [alert]))
/// ```
public struct SlackChannel: NotificationChannel {
    /// Settings of a Slack channel (`notifications.channels.slack`).
    public struct Configuration: Sendable, Hashable {
        /// Name in `notifications.yaml`. Default `slack`.
        public var name: String
        /// The incoming-webhook URL (`webhook:`, or `url:` which overrides it).
        public var url: String
        /// Slack channel to post to (`#deerflow-alerts`); nil posts to the webhook's own channel.
        public var channel: String?
        /// Display name of the poster; nil keeps the webhook's.
        public var username: String?
        /// Icon of the poster (`:rotating_light:`); nil keeps the webhook's.
        public var iconEmoji: String?
        /// Text templates by severity; default ``NotificationTemplate/defaultSlack``.
        public var templates: NotificationTemplates
        /// Time for the whole request. Default 10s.
        public var timeout: Duration

        public init(
            name: String = "slack", url: String, channel: String? = nil, username: String? = nil, iconEmoji: String? = nil,
            templates: NotificationTemplates = NotificationTemplates(fallback: .defaultSlack), timeout: Duration = .seconds(10)
        ) {
            self.name = name
            self.url = url
            self.channel = channel
            self.username = username
            self.iconEmoji = iconEmoji
            self.templates = templates
            self.timeout = timeout
        }
    }

    public let configuration: Configuration
    private let http: HTTPDelivery

    public var name: String { configuration.name }

    /// - Parameters:
    ///   - httpClient: The client to post with. Default `HTTPClient.shared`.
    ///   - logger: Where request outcomes are logged at debug level.
    public init(configuration: Configuration, httpClient: HTTPClient = .shared, logger: Logger = Logger(label: "deerflow.notifications")) {
        self.configuration = configuration
        http = HTTPDelivery(client: httpClient, channel: configuration.name, timeout: configuration.timeout, logger: logger)
    }

    /// The JSON body posted for `notification`.
    public func payload(for notification: AlertNotification) -> JSONValue {
        var body: [String: JSONValue] = ["text": .string(configuration.templates.render(notification.alerts))]
        if let channel = configuration.channel { body["channel"] = .string(channel) }
        if let username = configuration.username { body["username"] = .string(username) }
        if let icon = configuration.iconEmoji { body["icon_emoji"] = .string(icon) }
        return .object(body)
    }

    /// Posts the notification. Slack's incoming webhooks answer `200` with the text `ok` when the
    /// message is posted, and errors with a 4xx status and a short text (`invalid_payload`,
    /// `no_service`, `channel_not_found`, ...), 5xx when Slack itself fails. So any 2xx is
    /// success, whatever its text (Slack-compatible receivers such as Mattermost answer other
    /// bodies) — except a JSON answer `{"ok": false, "error": ...}`, the Web API's way to refuse.
    /// A 4xx (but 429) is permanent, 429 and 5xx are retried.
    public func deliver(_ notification: AlertNotification) async throws(DeliveryError) {
        guard !notification.alerts.isEmpty else { return }
        let answer: HTTPDelivery.Answer
        do {
            answer = try await http.postJSON(payload(for: notification), to: configuration.url)
        } catch {
            var error = error
            if error.code == .rejected, let hint = Self.hint(error.message) { error.message += " — \(hint)" }
            throw error
        }
        if case .object(let object)? = try? JSONValue(parsing: answer.body), object["ok"] == .bool(false) {
            let reason = object["error"]?.stringValue ?? "no error given"
            throw DeliveryError(
                code: .rejected, channel: name,
                message: "Slack answered HTTP \(answer.status) with ok: false: \(reason)" + (Self.hint(reason).map { " — \($0)" } ?? ""),
                statusCode: answer.status)
        }
    }

    /// What to do about the errors Slack's incoming webhooks name in their answer.
    static func hint(_ answer: String) -> String? {
        let hints = [
            ("no_service", "the webhook URL is unknown or was revoked: create a new incoming webhook"),
            ("no_team", "the webhook's workspace is gone: create a new incoming webhook"),
            ("invalid_token", "the webhook URL is wrong or was revoked: create a new incoming webhook"),
            ("channel_not_found", "the channel does not exist: check `channel` in notifications.yaml"),
            ("channel_is_archived", "the channel is archived: unarchive it or point `channel` elsewhere"),
            ("action_prohibited", "the workspace does not let this webhook post there"),
            ("invalid_payload", "Slack could not read the message: check the channel's templates"),
        ]
        return hints.first { answer.contains($0.0) }?.1
    }
}
