public import AsyncHTTPClient
public import DeerFlowCore
import Foundation
public import Logging

/// Sends alerts to PagerDuty's Events API v2, one event per alert (PagerDuty does not group).
///
/// A firing alert is a `trigger` event:
///
/// ```json
/// {"routing_key": "<service_key>", "event_action": "trigger", "dedup_key": "deerflow-<fingerprint>",
///  "payload": {"summary": "SchedulerLag: Scheduler lag detected", "source": "deerflow",
///              "severity": "critical", "timestamp": "2024-06-01T12:00:00.000Z",
///              "custom_details": {"labels": {...}, "annotations": {...}, "value": 75}}}
/// ```
///
/// (`component`, `group` and `class` are added when configured.) A resolved alert is
/// `{"routing_key", "event_action": "resolve", "dedup_key"}`. The `dedup_key` depends only on the
/// alert's name and labels, so trigger and resolve of one alert meet in one incident, and sending
/// an event again (a retry) does not open a second one. PagerDuty answers `202` with
/// `{"status": "success", ...}`.
///
/// When an event of a notification fails, the error is thrown and the events after it are not sent;
/// retrying the notification re-sends the earlier ones too, which PagerDuty deduplicates by `dedup_key`.
public struct PagerDutyChannel: NotificationChannel {
    /// The severities the Events API accepts.
    public enum Severity: String, Sendable, Hashable, CaseIterable {
        case critical, error, warning, info
    }

    /// Settings of a PagerDuty channel (`notifications.channels.pagerduty`).
    public struct Configuration: Sendable, Hashable {
        /// Name in `notifications.yaml`. Default `pagerduty`.
        public var name: String
        /// The integration's routing key (`service_key:` or `routing_key:`).
        public var routingKey: String
        /// The Events API endpoint. Default `https://events.pagerduty.com/v2/enqueue`.
        public var url: String
        /// The alert's `severity` label → PagerDuty severity. A severity not in the mapping is used
        /// as is when PagerDuty knows it, else it becomes `error` (as in Alertmanager).
        public var severityMapping: [String: Severity]
        /// `payload.summary`; nil (default) gives `<AlertName>: <summary annotation>` (the description
        /// when there is no summary, the bare name when there is neither). Cut to 1024 characters.
        public var summary: NotificationTemplate?
        /// `payload.component`, `payload.group`, `payload.class`; sent when set and not empty.
        public var component: NotificationTemplate?
        public var group: NotificationTemplate?
        public var `class`: NotificationTemplate?
        /// `payload.source`. Default `deerflow`.
        public var source: String
        /// Time for each request. Default 10s.
        public var timeout: Duration

        public static let defaultURL = "https://events.pagerduty.com/v2/enqueue"

        public init(
            name: String = "pagerduty", routingKey: String, url: String = Configuration.defaultURL, severityMapping: [String: Severity] = [:],
            source: String = "deerflow", timeout: Duration = .seconds(10)
        ) {
            self.name = name
            self.routingKey = routingKey
            self.url = url
            self.severityMapping = severityMapping
            self.source = source
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

    /// The `dedup_key` of an alert: `deerflow-` followed by its fingerprint.
    public static func dedupKey(for alert: NotificationAlert) -> String {
        "deerflow-" + alert.fingerprint
    }

    /// The PagerDuty severity of an alert.
    public func severity(of alert: NotificationAlert) -> Severity {
        configuration.severityMapping[alert.severity] ?? Severity(rawValue: alert.severity) ?? .error
    }

    /// The event sent for `alert`.
    public func event(for alert: NotificationAlert) -> JSONValue {
        var event: [String: JSONValue] = [
            "routing_key": .string(configuration.routingKey),
            "dedup_key": .string(Self.dedupKey(for: alert)),
        ]
        guard alert.status == .firing else {
            event["event_action"] = "resolve"
            return .object(event)
        }
        event["event_action"] = "trigger"
        var summary = configuration.summary.map { $0.render(alert) } ?? NotificationTemplate.defaultPagerDutySummary(alert)
        summary = summary.trimmingCharacters(in: .whitespacesAndNewlines)
        if summary.isEmpty { summary = alert.name }
        if summary.count > 1024 { summary = String(summary.prefix(1023)) + "…" }
        var details: [String: JSONValue] = [
            "labels": .object(alert.labels.mapValues { .string($0) }),
            "annotations": .object(alert.annotations.mapValues { .string($0) }),
        ]
        if let value = alert.value { details["value"] = value.isFinite ? .double(value) : .string(GoFormat.shortest(value)) }
        var payload: [String: JSONValue] = [
            "summary": .string(summary),
            "source": .string(configuration.source),
            "severity": .string(severity(of: alert).rawValue),
            "timestamp": .string(Timestamp.rfc3339(alert.startsAt)),
            "custom_details": .object(details),
        ]
        for (key, template) in [("component", configuration.component), ("group", configuration.group), ("class", configuration.class)] {
            if let text = template?.render(alert).trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty { payload[key] = .string(text) }
        }
        event["payload"] = .object(payload)
        return .object(event)
    }

    public func deliver(_ notification: AlertNotification) async throws(DeliveryError) {
        for alert in notification.alerts {
            let answer = try await http.postJSON(event(for: alert), to: configuration.url)
            if let body = try? JSONValue(parsing: answer.body), case .object(let object) = body,
               let status = object["status"]?.stringValue, status != "success"
            {
                throw DeliveryError(
                    code: .rejected, channel: name, message: "PagerDuty answered HTTP \(answer.status) with status '\(status)'\(HTTPDelivery.shorten(answer.body))",
                    statusCode: answer.status)
            }
        }
    }
}
