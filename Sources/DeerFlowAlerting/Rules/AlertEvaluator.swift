public import Foundation
import DeerFlowCore
import Synchronization

/// One alert instance: a rule's output series with its labels.
public struct Alert: Sendable, Equatable {
    public enum State: String, Sendable {
        /// The condition holds, for less than the rule's `for`.
        case pending
        /// The condition has held for at least `for`.
        case firing
        /// A firing alert whose condition stopped (after `keep_firing_for`, if set).
        case resolved
    }

    /// The rule's `alert` name (also the `alertname` label).
    public var name: String
    /// The rule group's name.
    public var group: String
    /// The series labels without `__name__`, plus the rule labels, plus `alertname`.
    public var labels: [String: String]
    /// Annotations rendered with this alert's labels and value.
    public var annotations: [String: String]
    public var state: State
    /// When the condition was first seen true (start of pending).
    public var activeAt: Date
    /// When the alert started firing.
    public var firedAt: Date?
    /// When the firing alert resolved.
    public var resolvedAt: Date?
    /// The expression's sample value at the latest evaluation where the condition held.
    public var value: Double

    public init(
        name: String, group: String, labels: [String: String], annotations: [String: String], state: State, activeAt: Date,
        firedAt: Date?, resolvedAt: Date?, value: Double
    ) {
        self.name = name
        self.group = group
        self.labels = labels
        self.annotations = annotations
        self.state = state
        self.activeAt = activeAt
        self.firedAt = firedAt
        self.resolvedAt = resolvedAt
        self.value = value
    }

    /// A stable identity of the alert across evaluations (its sorted label set, rendered like
    /// `{alertname="X", severity="critical"}`), e.g. for a PagerDuty `dedup_key`.
    public var fingerprint: String { LabelSet(labels).description }

    public static func == (lhs: Alert, rhs: Alert) -> Bool {
        lhs.name == rhs.name && lhs.group == rhs.group && lhs.labels == rhs.labels
            && lhs.annotations == rhs.annotations && lhs.state == rhs.state && lhs.activeAt == rhs.activeAt
            && lhs.firedAt == rhs.firedAt && lhs.resolvedAt == rhs.resolvedAt
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// A change of an alert's state reported by ``AlertEvaluator/evaluate(at:store:)``.
public enum AlertTransition: Sendable, Equatable {
    /// A new alert whose rule has a `for` duration: it is pending (not notified by Prometheus).
    case pending(Alert)
    /// The alert started firing (at once for `for: 0`).
    case firing(Alert)
    /// A firing alert stopped; reported once, with `resolvedAt`.
    case resolved(Alert)

    public var alert: Alert {
        switch self {
        case let .pending(alert), let .firing(alert), let .resolved(alert): return alert
        }
    }
}

/// A rule whose evaluation failed; its alerts keep their state, as in Prometheus.
public struct RuleEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var group: String
    public var alert: String
    public var message: String

    public var description: String { "group \"\(group)\", alert \"\(alert)\": \(message)" }
}

/// Evaluates alerting rules over a ``SeriesStore`` with Prometheus' alert state machine
/// (`rules/alerting.go`, `AlertingRule.Eval`).
///
/// For every rule and every series of the expression's result (a scalar result counts as one
/// series with no labels):
/// - the alert's labels are the series labels without `__name__`, plus the rule labels
///   (templated; an empty value removes a label), plus `alertname`;
/// - a new label set becomes **pending** with `activeAt` = now, and **fires** once
///   `now - activeAt >= for` (in the same evaluation for `for: 0`);
/// - while it holds, value and annotations are updated each evaluation;
/// - when the series disappears from the result, a pending alert is dropped silently and a
///   firing alert is **resolved** (reported once) — after `keep_firing_for`, if set;
/// - a result with two series that map to the same alert labels, or an evaluation error, leaves
///   the rule's alerts unchanged and is reported in ``lastEvaluationErrors``.
///
/// Call ``evaluate(at:store:)`` at the group's interval (default 1 minute), after ingesting.
///
/// ```swift
/// let evaluator = AlertEvaluator(rules: try RuleFile.parse(yaml: text, file: "alerts.yaml"))
/// for transition in evaluator.evaluate(at: .now, store: store) { route(transition) }
/// ```
public final class AlertEvaluator: Sendable {
    private struct ActiveAlert {
        var alert: Alert
        var activeAtMilliseconds: Int64
        var keepFiringSince: Int64?
    }

    private struct State {
        /// Per group, per rule: active alerts by label set.
        var active: [[[LabelSet: ActiveAlert]]]
        var errors: [RuleEvaluationError] = []
    }

    public let rules: RuleFile
    /// Which Prometheus' evaluation details the expressions follow.
    public let compatibility: PromQLCompatibility
    private let externalLabels: [String: String]
    private let state: Mutex<State>

    /// - Parameters:
    ///   - rules: The loaded rule file.
    ///   - externalLabels: Values for `$externalLabels` in templates. Default: none.
    ///   - compatibility: Which Prometheus to agree with. Default: Prometheus 3.
    public init(rules: RuleFile, externalLabels: [String: String] = [:], compatibility: PromQLCompatibility = .prometheus3) {
        self.rules = rules
        self.compatibility = compatibility
        self.externalLabels = externalLabels
        self.state = Mutex(State(active: rules.groups.map { group in group.rules.map { _ in [:] } }))
    }

    /// Pending and firing alerts, sorted by rule order then labels.
    public var activeAlerts: [Alert] {
        state.withLock { state in
            state.active.flatMap { $0 }.flatMap { alerts in
                alerts.values.map(\.alert).sorted { LabelSet($0.labels) < LabelSet($1.labels) }
            }
        }
    }

    /// Rules that failed in the latest evaluation.
    public var lastEvaluationErrors: [RuleEvaluationError] { state.withLock { $0.errors } }

    /// Puts back pending and firing alerts saved before a restart, so `for` keeps counting from
    /// their `activeAt` and a firing alert is not reported firing again. Alerts of rules that no
    /// longer exist are ignored. Call before the first evaluation.
    public func restore(_ alerts: [Alert]) {
        state.withLock { state in
            for alert in alerts where alert.state != .resolved {
                guard let groupIndex = rules.groups.firstIndex(where: { $0.name == alert.group }),
                      let ruleIndex = rules.groups[groupIndex].rules.firstIndex(where: { $0.name == alert.name })
                else { continue }
                state.active[groupIndex][ruleIndex][LabelSet(alert.labels)] = ActiveAlert(
                    alert: alert, activeAtMilliseconds: SeriesStore.milliseconds(alert.activeAt))
            }
        }
    }

    /// Evaluates every rule at `time` and returns the state changes, in rule order.
    ///
    /// - Parameter holdingMissing: keep alerts whose series is missing from the result as they
    ///   are instead of resolving them: while the history after a restart is still shorter than
    ///   the rules' ranges, "no data" does not mean "resolved".
    @discardableResult
    public func evaluate(at time: Date, store: SeriesStore, holdingMissing: Bool = false) -> [AlertTransition] {
        let now = SeriesStore.milliseconds(time)
        var results: [[Result<[Sample], RuleEvaluationError>]] = []
        for group in rules.groups {
            results.append(group.rules.map { rule -> Result<[Sample], RuleEvaluationError> in
                do throws(PromQLError) {
                    return .success(try rule.expression.evaluate(at: time, in: store, compatibility: compatibility).samples)
                } catch {
                    return .failure(RuleEvaluationError(group: group.name, alert: rule.name, message: error.description))
                }
            })
        }
        return state.withLock { state in
            state.errors = []
            var transitions: [AlertTransition] = []
            for (groupIndex, group) in rules.groups.enumerated() {
                for (ruleIndex, rule) in group.rules.enumerated() {
                    switch results[groupIndex][ruleIndex] {
                    case let .failure(error):
                        state.errors.append(error)
                    case let .success(samples):
                        do throws(RuleEvaluationError) {
                            transitions += try apply(
                                samples, rule: rule, group: group, now: now, holdingMissing: holdingMissing,
                                active: &state.active[groupIndex][ruleIndex]
                            )
                        } catch {
                            state.errors.append(error)
                        }
                    }
                }
            }
            return transitions
        }
    }

    private static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1_000)
    }

    private func apply(
        _ samples: [Sample], rule: AlertingRule, group: RuleGroup, now: Int64, holdingMissing: Bool, active: inout [LabelSet: ActiveAlert]
    ) throws(RuleEvaluationError) -> [AlertTransition] {
        var current: [LabelSet: ActiveAlert] = [:]
        for sample in samples {
            var labels = LabelSet(sample.labels).dropping(LabelSet.metricName)
            for (name, value) in group.labels.sorted(by: { $0.key < $1.key }) {
                labels = labels.setting(name, to: value)
            }
            for (name, template) in rule.labelTemplates {
                labels = labels.setting(name, to: template.render(labels: sample.labels, value: sample.value, externalLabels: externalLabels))
            }
            labels = labels.setting("alertname", to: rule.name)
            var annotations: [String: String] = [:]
            for (name, template) in rule.annotationTemplates {
                annotations[name] = template.render(labels: sample.labels, value: sample.value, externalLabels: externalLabels)
            }
            guard current[labels] == nil else {
                throw RuleEvaluationError(group: group.name, alert: rule.name, message: "vector contains metrics with the same labelset after applying alert labels")
            }
            current[labels] = ActiveAlert(
                alert: Alert(
                    name: rule.name, group: group.name, labels: labels.dictionary, annotations: annotations,
                    state: .pending, activeAt: Self.date(now), firedAt: nil, resolvedAt: nil, value: sample.value
                ),
                activeAtMilliseconds: now
            )
        }

        var transitions: [AlertTransition] = []
        var created: Set<LabelSet> = []
        for (labels, alert) in current {
            if var existing = active[labels] {
                existing.alert.value = alert.alert.value
                existing.alert.annotations = alert.alert.annotations
                active[labels] = existing
            } else {
                active[labels] = alert
                created.insert(labels)
            }
        }

        let holdMilliseconds = rule.holdDuration.milliseconds
        let keepFiringMilliseconds = rule.keepFiringFor.milliseconds
        for labels in active.keys.sorted() {
            guard var entry = active[labels] else { continue }
            if current[labels] == nil {
                if holdingMissing { continue }
                var keepFiring = false
                if entry.alert.state == .firing && keepFiringMilliseconds > 0 {
                    let since = entry.keepFiringSince ?? now
                    entry.keepFiringSince = since
                    keepFiring = now - since < keepFiringMilliseconds
                }
                if !keepFiring {
                    active[labels] = nil
                    if entry.alert.state == .firing {
                        entry.alert.state = .resolved
                        entry.alert.resolvedAt = Self.date(now)
                        transitions.append(.resolved(entry.alert))
                    }
                    continue
                }
            } else {
                entry.keepFiringSince = nil
            }
            if entry.alert.state == .pending && now - entry.activeAtMilliseconds >= holdMilliseconds {
                entry.alert.state = .firing
                entry.alert.firedAt = Self.date(now)
                transitions.append(.firing(entry.alert))
            } else if created.contains(labels) {
                transitions.append(.pending(entry.alert))
            }
            active[labels] = entry
        }
        return transitions
    }
}
