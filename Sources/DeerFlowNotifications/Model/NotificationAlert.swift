import DeerFlowCore
public import Foundation

/// One alert as the notification layer sees it: a firing or resolved instance of an alerting rule.
///
/// The evaluator (or the Alertmanager webhook) builds these; routing, templates and channels read
/// them. The value is `Codable` so an outbox can store it.
///
/// ```swift
/// let alert = NotificationAlert(
///     name: "SchedulerLag", labels: ["severity": "critical"],
///     annotations: ["summary": "Scheduler lag detected", "description": "Lag is 75 seconds"],
///     value: 75, status: .firing, startsAt: Date())
/// ```
public struct NotificationAlert: Sendable, Hashable, Codable {
    /// Whether the alert is firing or has resolved.
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        case firing
        case resolved
    }

    /// The rule's `alert:` name (also the `alertname` label).
    public var name: String
    /// The alert's labels (`severity`, and whatever the rule and the series add).
    public var labels: [String: String]
    /// The rule's annotations after expansion (`summary`, `description`, ...).
    public var annotations: [String: String]
    /// The value of the rule's expression when the alert was last evaluated; nil when unknown.
    public var value: Double?
    public var status: Status
    /// When the alert started firing.
    public var startsAt: Date
    /// When it resolved; nil while firing.
    public var endsAt: Date?
    /// Stable identity of the alert across evaluations and restarts (see ``fingerprint(name:labels:)``).
    public var fingerprint: String

    /// - Parameters:
    ///   - fingerprint: The alert's identity; nil (the default) computes it with
    ///     ``fingerprint(name:labels:)``.
    public init(
        name: String, labels: [String: String] = [:], annotations: [String: String] = [:], value: Double? = nil,
        status: Status = .firing, startsAt: Date, endsAt: Date? = nil, fingerprint: String? = nil
    ) {
        self.name = name
        self.labels = labels
        self.annotations = annotations
        self.value = value
        self.status = status
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.fingerprint = fingerprint ?? Self.fingerprint(name: name, labels: labels)
    }

    /// The `severity` label, or the empty string.
    public var severity: String { labels["severity"] ?? "" }

    /// A stable hash of the alert name and its label set: 16 lowercase hex digits (64-bit FNV-1a over
    /// the labels sorted by name, with `alertname` set to `name`). Equal for equal inputs in every
    /// process and on every platform, unlike `Hasher`; the order of `labels` does not matter, and
    /// neither does whether `labels` already contains `alertname`.
    ///
    /// ```swift
    /// NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["severity": "critical"])  // "…16 hex digits…"
    /// ```
    public static func fingerprint(name: String, labels: [String: String]) -> String {
        var all = labels
        all["alertname"] = name
        var hash = FNV1a()
        for (key, value) in all.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            // 0xff never occurs in UTF-8, so the separators keep ("ab","c") and ("a","bc") apart.
            hash.combine(key.utf8)
            hash.combine(CollectionOfOne(0xff))
            hash.combine(value.utf8)
            hash.combine(CollectionOfOne(0xfe))
        }
        return hash.hex
    }
}

/// The alerts one channel receives from one evaluation: one message for Slack and e-mail, one
/// event per alert for PagerDuty.
///
/// (Not called `Notification`, which would clash with Foundation's type in every file that
/// imports both modules.)
public struct AlertNotification: Sendable, Hashable, Codable {
    /// Name of the channel in `notifications.yaml` (`slack`, `pagerduty`, `email`, or a custom name).
    public var channel: String
    /// The alerts, firing and resolved, in the order they were routed; never empty when built by
    /// ``NotificationRouter``.
    public var alerts: [NotificationAlert]

    public init(channel: String, alerts: [NotificationAlert]) {
        self.channel = channel
        self.alerts = alerts
    }

    /// `.firing` when any alert is firing, else `.resolved` (Alertmanager's group status).
    public var status: NotificationAlert.Status {
        alerts.contains { $0.status == .firing } ? .firing : .resolved
    }
}
