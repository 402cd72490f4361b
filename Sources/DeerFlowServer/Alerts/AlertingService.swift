import DeerFlow
import DeerFlowAlerting
import DeerFlowCore
import DeerFlowHTTP
import DeerFlowNotifications
import DeerFlowUI
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Alerts without Prometheus: samples this process's own `/metrics` every scrape interval into a
/// short in-memory history, evaluates the alert rules over it with Prometheus' semantics
/// (pending → firing after `for` → resolved), sets `deerflow_alerts_firing`, and hands
/// transitions to the notification dispatcher.
///
/// Only the scheduler leader evaluates (the process that exports the cluster-wide gauges), so
/// a cluster notifies once; every process keeps sampling, so a new leader has history.
final class AlertingService: Service, Sendable {
    let rules: RuleFile
    /// Where the rules came from: a path, or the built-in rules.
    let rulesSource: String
    let interval: Duration
    let series: SeriesStore
    let evaluator: AlertEvaluator
    private let sample: @Sendable () async -> String
    private let evaluatesNow: @Sendable () -> Bool
    private let metrics: EngineMetrics
    private let dispatcher: NotificationDispatcher?
    private let logger: Logger
    private let lastEvaluation = Mutex<Date?>(nil)
    private let store: any StateStore
    /// After a start, alerts restored from the store are not resolved for missing data until the
    /// history covers the rules' longest range.
    private let warmUp: Duration
    private let startedAt = Mutex<Date?>(nil)
    /// Whether the saved alerts were read (once, when this process first evaluates).
    private let restored = Mutex(false)
    static let stateKey = "alerts.active"

    init(
        rules: RuleFile, rulesSource: String, interval: Duration, sample: @escaping @Sendable () async -> String,
        evaluates: @escaping @Sendable () -> Bool, store: any StateStore, metrics: EngineMetrics, dispatcher: NotificationDispatcher?,
        logger: Logger
    ) {
        self.store = store
        self.warmUp = .seconds(rules.longestRange.seconds + 2 * interval.seconds)
        self.rules = rules
        self.rulesSource = rulesSource
        self.interval = interval
        // Enough history for the longest range and `for` of the rules, plus two samples.
        let retention = Duration.seconds(rules.minimumRetention.seconds + 2 * interval.seconds)
        self.series = SeriesStore(configuration: .init(retention: retention, maxSeries: 20_000))
        self.evaluator = AlertEvaluator(rules: rules)
        self.sample = sample
        self.evaluatesNow = evaluates
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.logger = logger
    }

    func run() async throws {
        logger.info("alert rules loaded", metadata: [
            "rules": "\(rules.groups.flatMap(\.rules).map(\.name).joined(separator: ", "))", "source": "\(rulesSource)",
            "interval_seconds": "\(interval.seconds)",
        ])
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.tick(at: Date())
                try? await Sleep.for(self.interval)
            }
        }
    }

    /// One sample and, in the evaluating process, one evaluation.
    func tick(at now: Date) async {
        let started = startedAt.withLock { started -> Date in
            if let started { return started }
            started = now
            return now
        }
        let text = await sample()
        do {
            _ = try series.ingest(exposition: text, at: now)
        } catch {
            logger.error("alerting: could not read this process's metrics", metadata: ["error": "\(error)"])
            return
        }
        guard evaluatesNow() else {
            // Another process evaluates; if this one leads later, it starts from the saved state.
            restored.withLock { $0 = false }
            return
        }
        await restoreIfNeeded(now: now)
        let warming = now.timeIntervalSince(started) < warmUp.seconds
        let transitions = evaluator.evaluate(at: now, store: series, holdingMissing: warming)
        lastEvaluation.withLock { $0 = now }
        for error in evaluator.lastEvaluationErrors {
            logger.warning("alert rule could not be evaluated", metadata: ["rule": "\(error.alert)", "error": "\(error.message)"])
        }
        let active = evaluator.activeAlerts
        let firing = active.filter { $0.state == .firing }
        metrics.update(firingAlerts: firing.map { ($0.name, $0.labels["severity"] ?? "") })
        for transition in transitions {
            switch transition {
            case .pending(let alert):
                logger.info("alert pending", metadata: Self.metadata(alert))
            case .firing(let alert):
                logger.notice("alert firing", metadata: Self.metadata(alert))
            case .resolved(let alert):
                logger.notice("alert resolved", metadata: Self.metadata(alert))
            }
        }
        await dispatcher?.handle(transitions, firing: firing, now: now)
        if !transitions.isEmpty { await save(active) }
    }

    /// Reads the alerts the last evaluating process saved (this one before a restart, or the
    /// previous leader), so `for` keeps counting and firing alerts are not notified again.
    private func restoreIfNeeded(now: Date) async {
        guard !restored.withLock({ $0 }) else { return }
        do {
            let saved = try await store.state(forKey: Self.stateKey)
            let alerts = saved.map(Self.decodeAlerts) ?? []
            evaluator.restore(alerts)
            await dispatcher?.restore(firing: alerts.filter { $0.state == .firing }, now: now)
            restored.withLock { $0 = true }
            if !alerts.isEmpty {
                logger.info("alerts restored", metadata: ["alerts": "\(alerts.map { "\($0.name) (\($0.state.rawValue))" }.joined(separator: ", "))"])
            }
        } catch {
            logger.warning("could not read saved alerts; evaluating from scratch", metadata: ["error": "\(error)"])
        }
    }

    private func save(_ active: [Alert]) async {
        do {
            try await store.saveState(Self.encodeAlerts(active), forKey: Self.stateKey)
        } catch {
            logger.warning("could not save the active alerts", metadata: ["error": "\(error)"])
        }
    }

    static func encodeAlerts(_ alerts: [Alert]) -> String {
        JSONValue.array(alerts.map { alert in
            .object([
                "name": .string(alert.name), "group": .string(alert.group), "state": .string(alert.state.rawValue),
                "labels": .object(alert.labels.mapValues(JSONValue.string)),
                "annotations": .object(alert.annotations.mapValues(JSONValue.string)),
                "active_at": .double(alert.activeAt.timeIntervalSince1970),
                "fired_at": alert.firedAt.map { .double($0.timeIntervalSince1970) } ?? .null,
                "value": alert.value.isFinite ? .double(alert.value) : .null,
            ])
        }).compactJSON
    }

    static func decodeAlerts(_ text: String) -> [Alert] {
        guard case .array(let items)? = try? JSONValue(parsing: text) else { return [] }
        return items.compactMap { item -> Alert? in
            guard case .object(let object) = item, let name = object["name"]?.stringValue, let group = object["group"]?.stringValue,
                  let state = object["state"]?.stringValue.flatMap(Alert.State.init(rawValue:)), let activeAt = object["active_at"]?.doubleValue,
                  case .object(let labels)? = object["labels"]
            else { return nil }
            var annotations: [String: String] = [:]
            if case .object(let values)? = object["annotations"] { annotations = values.compactMapValues(\.stringValue) }
            return Alert(
                name: name, group: group, labels: labels.compactMapValues(\.stringValue), annotations: annotations, state: state,
                activeAt: Date(timeIntervalSince1970: activeAt), firedAt: object["fired_at"]?.doubleValue.map(Date.init(timeIntervalSince1970:)),
                resolvedAt: nil, value: object["value"]?.doubleValue ?? .nan)
        }
    }

    static func metadata(_ alert: Alert) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["alertname": "\(alert.name)", "value": "\(alert.value)"]
        for (key, value) in alert.labels where key != "alertname" { metadata["label_\(key)"] = "\(value)" }
        if let summary = alert.annotations["summary"] { metadata["summary"] = "\(summary)" }
        return metadata
    }

    /// The `GET /api/v1/alerts` document.
    func document() -> JSONValue {
        let alerts: [JSONValue] = evaluator.activeAlerts.map { alert in
            var object: [String: JSONValue] = [
                "name": .string(alert.name),
                "state": .string(alert.state.rawValue),
                "labels": .object(alert.labels.mapValues(JSONValue.string)),
                "annotations": .object(alert.annotations.mapValues(JSONValue.string)),
                "active_at": .string(Timestamp.rfc3339(alert.activeAt)),
                "value": alert.value.isFinite ? .double(alert.value) : .null,
            ]
            object["fired_at"] = alert.firedAt.map { .string(Timestamp.rfc3339($0)) } ?? .null
            return .object(object)
        }
        let evaluated = lastEvaluation.withLock { $0 }
        return .object([
            "evaluating": .bool(evaluatesNow()),
            "rules_source": .string(rulesSource),
            "rules": .array(rules.groups.flatMap(\.rules).map { .string($0.name) }),
            "interval_seconds": .double(interval.seconds),
            "last_evaluation": evaluated.map { .string(Timestamp.rfc3339($0)) } ?? .null,
            "history": .object([
                "series": .int(series.seriesCount), "samples": .int(series.sampleCount), "retention_seconds": .double(series.retention.seconds),
            ]),
            "errors": .array(evaluator.lastEvaluationErrors.map { .string($0.description) }),
            "alerts": .array(alerts),
        ])
    }
}

/// The alert endpoints of one process: its rule evaluation (when metrics are on) and its
/// notification dispatcher (when `notifications.yaml` configures one).
struct ProcessAlerts: AlertsEndpoint {
    let alerting: AlertingService?
    let dispatcher: NotificationDispatcher?

    func alertsDocument() async -> JSONValue {
        guard let alerting else {
            return ["evaluating": false, "alerts": [], "reason": "in-process alerting is off: metrics.enabled is false"]
        }
        return alerting.document()
    }

    func receiveAlertmanagerWebhook(_ payload: JSONValue) async throws -> Int {
        guard let dispatcher else {
            throw DeerFlowError(.conflict, "no notification channels: put a notifications.yaml in the --config directory to route Alertmanager's alerts")
        }
        let alerts = try AlertmanagerWebhook.alerts(from: payload)
        return await dispatcher.handleExternal(alerts, now: Date())
    }
}

/// Alertmanager's webhook payload (version 4): `{"version": "4", "status": ..., "alerts": [...]}`.
enum AlertmanagerWebhook {
    static func alerts(from payload: JSONValue) throws -> [NotificationAlert] {
        guard case .object(let object) = payload else {
            throw DeerFlowError(.badRequest, "the webhook body must be a JSON object (Alertmanager webhook payload, version 4)")
        }
        if let version = object["version"]?.stringValue, version != "4" {
            throw DeerFlowError(.badRequest, "webhook payload version \(version) is not supported; Alertmanager sends version 4")
        }
        guard case .array(let items)? = object["alerts"] else {
            throw DeerFlowError(.badRequest, "the webhook payload has no 'alerts' array")
        }
        return try items.enumerated().map { index, item in
            guard case .object(let alert) = item else { throw DeerFlowError(.badRequest, "alerts[\(index)] is not an object") }
            let labels = try stringMap(alert["labels"], "alerts[\(index)].labels")
            let annotations = try stringMap(alert["annotations"], "alerts[\(index)].annotations")
            guard let name = labels["alertname"], !name.isEmpty else {
                throw DeerFlowError(.badRequest, "alerts[\(index)].labels has no alertname")
            }
            let statusText = alert["status"]?.stringValue ?? object["status"]?.stringValue ?? ""
            guard let status = NotificationAlert.Status(rawValue: statusText) else {
                throw DeerFlowError(.badRequest, "alerts[\(index)].status is '\(statusText)'; expected firing or resolved")
            }
            guard let startsText = alert["startsAt"]?.stringValue, let startsAt = Timestamp.parse(startsText) else {
                throw DeerFlowError(.badRequest, "alerts[\(index)].startsAt is missing or not an RFC 3339 time")
            }
            // Alertmanager sends 0001-01-01T00:00:00Z as "no end".
            let endsAt = alert["endsAt"]?.stringValue.flatMap(Timestamp.parse).flatMap { $0.timeIntervalSince1970 > 0 ? $0 : nil }
            // Alertmanager sends no value; rules exported by DeerFlow carry it as the `value`
            // annotation (`{{ $value }}`), which becomes the alert's `{{ .Value }}`.
            return NotificationAlert(
                name: name, labels: labels, annotations: annotations, value: annotations["value"].flatMap { Double($0) }, status: status, startsAt: startsAt,
                endsAt: status == .resolved ? endsAt : nil, fingerprint: alert["fingerprint"]?.stringValue)
        }
    }

    private static func stringMap(_ value: JSONValue?, _ what: String) throws -> [String: String] {
        guard let value else { return [:] }
        guard case .object(let object) = value else { throw DeerFlowError(.badRequest, "\(what) must be an object of strings") }
        return try object.mapValues { item in
            guard let text = item.stringValue else { throw DeerFlowError(.badRequest, "\(what) must be an object of strings") }
            return text
        }
    }
}

/// The web UI's view of the process's alerting: history, active alerts, whether it evaluates.
extension AlertingService: UIMonitoring {
    var history: SeriesStore { series }
    func activeAlerts() -> [Alert] { evaluator.activeAlerts }
    var evaluates: Bool { evaluatesNow() }
}
