import Foundation
import Testing
@testable import DeerFlowAlerting

/// Drives a store and an evaluator through scrapes and evaluations.
final class AlertScenario {
    let store = SeriesStore(retention: .seconds(3_900))
    let evaluator: AlertEvaluator
    private(set) var transitions: [(Double, AlertTransition)] = []

    init(_ yaml: String) throws {
        evaluator = AlertEvaluator(rules: try RuleFile.parse(yaml: yaml, file: "test.yaml"))
    }

    /// Scrapes `exposition(t)` and evaluates, at every `step` seconds in `times`.
    func run(_ times: StrideThrough<Double>, _ exposition: (Double) -> String) throws {
        for time in times {
            try store.ingest(exposition: exposition(time), at: at(time))
            for transition in evaluator.evaluate(at: at(time), store: store) {
                transitions.append((time, transition))
            }
        }
    }

    func transitions(_ kind: String) -> [(Double, Alert)] {
        transitions.compactMap { time, transition in
            switch (kind, transition) {
            case ("pending", .pending(let alert)), ("firing", .firing(let alert)), ("resolved", .resolved(let alert)):
                return (time, alert)
            default:
                return nil
            }
        }
    }
}

@Suite("Alert state machine")
struct AlertEvaluatorTests {
    static let backlog = """
    groups:
      - name: deerflow
        rules:
          - alert: Backlog
            expr: queued > 1000
            for: 10m
            labels:
              severity: warning
            annotations:
              description: "{{ $value }} tasks in queue"
    """

    @Test func pendingThenFiringAfterForThenResolved() throws {
        let scenario = try AlertScenario(Self.backlog)
        try scenario.run(stride(from: 0, through: 900, by: 60)) { time in "queued \(time < 720 ? 1500 + Int(time) : 10)" }

        let pending = scenario.transitions("pending")
        #expect(pending.map(\.0) == [0])
        #expect(pending.first?.1.state == .pending)
        #expect(pending.first?.1.activeAt == at(0))

        let firing = scenario.transitions("firing")
        #expect(firing.map(\.0) == [600])
        let alert = try #require(firing.first?.1)
        #expect(alert.state == .firing)
        #expect(alert.activeAt == at(0))
        #expect(alert.firedAt == at(600))
        #expect(alert.value == 2100)
        #expect(alert.labels == ["alertname": "Backlog", "severity": "warning"])
        #expect(alert.annotations == ["description": "2100 tasks in queue"])
        #expect(alert.group == "deerflow")
        #expect(alert.fingerprint == #"{alertname="Backlog", severity="warning"}"#)

        let resolved = scenario.transitions("resolved")
        #expect(resolved.map(\.0) == [720])
        #expect(resolved.first?.1.state == .resolved)
        #expect(resolved.first?.1.resolvedAt == at(720))
        #expect(resolved.first?.1.value == 2160)  // the last value seen while it held
        #expect(scenario.evaluator.activeAlerts.isEmpty)
        #expect(scenario.transitions.count == 3)  // each transition reported once
    }

    @Test func activeAlertsTrackValueAndAnnotations() throws {
        let scenario = try AlertScenario(Self.backlog)
        try scenario.run(stride(from: 0, through: 120, by: 60)) { time in "queued \(2000 + Int(time))" }
        let active = scenario.evaluator.activeAlerts
        #expect(active.count == 1)
        #expect(active.first?.state == .pending)
        #expect(active.first?.value == 2120)
        #expect(active.first?.annotations["description"] == "2120 tasks in queue")
        #expect(active.first?.activeAt == at(0))
    }

    @Test func pendingAlertThatStopsIsDroppedSilently() throws {
        let scenario = try AlertScenario(Self.backlog)
        try scenario.run(stride(from: 0, through: 600, by: 60)) { time in "queued \(time < 300 ? 5000 : 0)" }
        #expect(scenario.transitions("pending").count == 1)
        #expect(scenario.transitions("firing").isEmpty)
        #expect(scenario.transitions("resolved").isEmpty)
        #expect(scenario.evaluator.activeAlerts.isEmpty)
    }

    @Test func pendingRestartsAfterAGap() throws {
        let scenario = try AlertScenario(Self.backlog)
        // True 0-240, false at 300, true again from 360: activeAt restarts at 360, fires at 960.
        try scenario.run(stride(from: 0, through: 1_020, by: 60)) { time in "queued \(time == 300 ? 0 : 5000)" }
        #expect(scenario.transitions("pending").map(\.0) == [0, 360])
        #expect(scenario.transitions("firing").map(\.0) == [960])
    }

    @Test func forZeroFiresAtOnce() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: Lag
                expr: lag > 60
                labels: {severity: critical}
        """)
        try scenario.run(stride(from: 0, through: 180, by: 60)) { time in "lag \(time < 120 ? 90 : 0)" }
        #expect(scenario.transitions("pending").isEmpty)
        #expect(scenario.transitions("firing").map(\.0) == [0])
        #expect(scenario.transitions("firing").first?.1.firedAt == at(0))
        #expect(scenario.transitions("resolved").map(\.0) == [120])
    }

    @Test func oneAlertPerOutputSeriesWithMergedLabels() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            labels: {team: core, severity: info}
            rules:
              - alert: QueueDeep
                expr: deerflow_queue_depth > 100
                labels:
                  severity: warning
                  queue_upper: "{{ $labels.queue | toUpper }}"
                annotations:
                  summary: "Queue {{ $labels.queue }} has {{ $value }} tasks"
        """)
        try scenario.run(stride(from: 0, through: 0, by: 60)) { _ in
            "deerflow_queue_depth{queue=\"etl\"} 150\ndeerflow_queue_depth{queue=\"ml\"} 300\ndeerflow_queue_depth{queue=\"small\"} 5"
        }
        let firing = scenario.transitions("firing").map(\.1)
        #expect(firing.map(\.labels) == [
            ["alertname": "QueueDeep", "queue": "etl", "queue_upper": "ETL", "severity": "warning", "team": "core"],
            ["alertname": "QueueDeep", "queue": "ml", "queue_upper": "ML", "severity": "warning", "team": "core"],
        ])
        #expect(firing.map { $0.annotations["summary"] } == ["Queue etl has 150 tasks", "Queue ml has 300 tasks"])
    }

    @Test func ruleLabelsClashingSeriesIntoOneLabelSetIsAnError() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: QueueDeep
                expr: deerflow_queue_depth > 100
                labels:
                  queue: all
        """)
        try scenario.run(stride(from: 0, through: 0, by: 60)) { _ in
            "deerflow_queue_depth{queue=\"etl\"} 150\ndeerflow_queue_depth{queue=\"ml\"} 300"
        }
        #expect(scenario.transitions.isEmpty)
        #expect(scenario.evaluator.lastEvaluationErrors == [RuleEvaluationError(
            group: "g", alert: "QueueDeep", message: "vector contains metrics with the same labelset after applying alert labels"
        )])
    }

    @Test func evaluationErrorKeepsExistingAlerts() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: Ratio
                expr: a / on(x) b > 1
        """)
        try scenario.run(stride(from: 0, through: 0, by: 60)) { _ in "a{x=\"1\"} 5\nb{x=\"1\"} 2" }
        #expect(scenario.transitions("firing").count == 1)
        // b now has two series per match group: many-to-many, an error; the alert stays firing.
        try scenario.run(stride(from: 60, through: 60, by: 60)) { _ in "a{x=\"1\"} 5\nb{x=\"1\",y=\"1\"} 2\nb{x=\"1\",y=\"2\"} 2" }
        #expect(scenario.transitions("resolved").isEmpty)
        #expect(scenario.evaluator.activeAlerts.map(\.state) == [.firing])
        #expect(scenario.evaluator.lastEvaluationErrors.first?.message.contains("many-to-many matching not allowed") == true)
    }

    @Test func keepFiringForDelaysResolution() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: Lag
                expr: lag > 60
                keep_firing_for: 2m
        """)
        try scenario.run(stride(from: 0, through: 300, by: 60)) { time in "lag \(time < 60 ? 90 : 0)" }
        #expect(scenario.transitions("firing").map(\.0) == [0])
        // False from 60: keeps firing while now - 60 < 120, resolves at 180.
        #expect(scenario.transitions("resolved").map(\.0) == [180])
    }

    @Test func scalarResultIsOneAlertWithoutSeriesLabels() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: Always
                expr: "1"
                annotations: {value: "{{ $value }}"}
        """)
        try scenario.run(stride(from: 0, through: 0, by: 60)) { _ in "x 1" }
        #expect(scenario.transitions("firing").first?.1.labels == ["alertname": "Always"])
        #expect(scenario.transitions("firing").first?.1.annotations == ["value": "1"])
    }

    @Test func staleSeriesResolvesTheAlertAtTheNextScrape() throws {
        let scenario = try AlertScenario("""
        groups:
          - name: g
            rules:
              - alert: WorkerBusy
                expr: deerflow_worker_utilization > 0.9
        """)
        try scenario.run(stride(from: 0, through: 120, by: 60)) { time in
            time < 60 ? "deerflow_worker_utilization{worker=\"w1\"} 1" : "deerflow_workers_total 4"
        }
        #expect(scenario.transitions("firing").map(\.0) == [0])
        #expect(scenario.transitions("resolved").map(\.0) == [60])
    }
}
