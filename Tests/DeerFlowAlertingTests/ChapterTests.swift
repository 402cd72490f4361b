import Foundation
import Testing
@testable import DeerFlowAlerting

/// The monitoring chapter's alert rules and dashboard queries, verbatim, over a synthetic
/// DeerFlow history (scrapes every 15 s in the text format swift-prometheus serves).
@Suite("Monitoring chapter rules and dashboards")
struct ChapterTests {
    /// `prometheus/alerts.yaml` from the chapter.
    static let alertsYAML = """
    # prometheus/alerts.yaml
    groups:
      - name: deerflow
        rules:
          - alert: HighWorkflowFailureRate
            expr: |
              sum(rate(deerflow_workflows_total{status="failed"}[5m]))
              /
              sum(rate(deerflow_workflows_total[5m])) > 0.1
            for: 5m
            labels:
              severity: critical
            annotations:
              summary: "High workflow failure rate"
              description: "Failure rate is {{ $value | humanizePercentage }}"

          - alert: TaskQueueBacklog
            expr: deerflow_tasks_queued > 1000
            for: 10m
            labels:
              severity: warning
            annotations:
              summary: "Task queue backlog"
              description: "{{ $value }} tasks in queue"

          - alert: WorkerPoolExhausted
            expr: deerflow_workers_active / deerflow_workers_total > 0.95
            for: 5m
            labels:
              severity: warning
            annotations:
              summary: "Worker pool near capacity"

          - alert: SchedulerLag
            expr: deerflow_scheduler_lag_seconds > 60
            for: 5m
            labels:
              severity: critical
            annotations:
              summary: "Scheduler lag detected"
              description: "Lag is {{ $value }} seconds"
    """

    /// The Grafana panels and the "Key Metrics Dashboard" queries from the chapter.
    static let dashboardQueries: [String: String] = [
        "Workflow Executions": "sum(rate(deerflow_workflows_total[5m])) by (status)",
        "Task Queue Depth": "deerflow_tasks_queued",
        "Worker Utilization": "deerflow_worker_utilization",
        "P95 Task Duration": "histogram_quantile(0.95, rate(deerflow_task_duration_seconds_bucket[5m]))",
        "Workflow Success Rate": """
        sum(rate(deerflow_workflows_total{status="success"}[1h]))
        /
        sum(rate(deerflow_workflows_total[1h])) * 100

        """,
        "Average Task Duration": """
        avg(rate(deerflow_task_duration_seconds_sum[5m])
        /
        rate(deerflow_task_duration_seconds_count[5m]))

        """,
        "Queue Wait Time": """
        histogram_quantile(0.95,
          rate(deerflow_task_queue_time_seconds_bucket[5m]))

        """,
        "Error Rate": """
        sum(rate(deerflow_tasks_total{status="failed"}[5m]))
        /
        sum(rate(deerflow_tasks_total[5m])) * 100

        """,
    ]

    /// When the synthetic system recovers.
    static let healthyAt = 4_200.0

    /// A `/metrics` page at `time`: steady traffic, 20% of workflows and 1 in 11 tasks failing,
    /// a backlog of 1500, a saturated pool and 120 s of scheduler lag until `healthyAt`.
    static func exposition(at time: Double) -> String {
        let k = Int(time / 15)
        let healthy = time >= healthyAt
        let failedWorkflows = healthy ? Int(healthyAt / 15) : k
        func histogram(_ name: String, _ labels: String, _ bounds: [(String, Int)], sum: Double) -> String {
            var lines = ["# HELP \(name) Histogram.", "# TYPE \(name) histogram"]
            for (le, perScrape) in bounds {
                lines.append("\(name)_bucket{\(labels),le=\"\(le)\"} \(perScrape * k)")
            }
            lines.append("\(name)_sum{\(labels)} \(sum * Double(k))")
            lines.append("\(name)_count{\(labels)} \(bounds.last!.1 * k)")
            return lines.joined(separator: "\n")
        }
        return """
        # HELP deerflow_workflows_total Workflow runs finished.
        # TYPE deerflow_workflows_total counter
        deerflow_workflows_total{workflow="etl",status="success"} \(4 * k)
        deerflow_workflows_total{workflow="etl",status="failed"} \(failedWorkflows)
        deerflow_workflows_total{workflow="etl",status="cancelled"} 0
        # TYPE deerflow_tasks_total counter
        deerflow_tasks_total{type="shell",status="success"} \(10 * k)
        deerflow_tasks_total{type="shell",status="failed"} \(k)
        \(histogram("deerflow_task_duration_seconds", "type=\"shell\"", [("0.1", 4), ("0.5", 12), ("1", 17), ("2.5", 20), ("+Inf", 20)], sum: 9))
        \(histogram("deerflow_task_queue_time_seconds", "type=\"shell\",queue=\"default\"", [("0.5", 10), ("1", 15), ("5", 18), ("10", 20), ("+Inf", 20)], sum: 40))
        # TYPE deerflow_tasks_queued gauge
        deerflow_tasks_queued \(healthy ? 10 : 1500)
        # TYPE deerflow_queue_depth gauge
        deerflow_queue_depth{queue="default"} \(healthy ? 10 : 1500)
        # TYPE deerflow_workers_total gauge
        deerflow_workers_total 20
        # TYPE deerflow_workers_active gauge
        deerflow_workers_active \(healthy ? 5 : 20)
        # TYPE deerflow_worker_utilization gauge
        deerflow_worker_utilization{worker="w1"} 1
        deerflow_worker_utilization{worker="w2"} 0.5
        # TYPE deerflow_scheduler_lag_seconds gauge
        deerflow_scheduler_lag_seconds \(healthy ? 0 : 120)

        """
    }

    @Test func chapterRulesLoad() throws {
        let rules = try RuleFile.parse(yaml: Self.alertsYAML, file: "deploy/prometheus/alerts.yaml")
        #expect(rules.groups.map(\.name) == ["deerflow"])
        let group = try #require(rules.groups.first)
        #expect(group.rules.map(\.name) == ["HighWorkflowFailureRate", "TaskQueueBacklog", "WorkerPoolExhausted", "SchedulerLag"])
        #expect(group.rules.map(\.holdDuration) == [.seconds(300), .seconds(600), .seconds(300), .seconds(300)])
        #expect(group.rules.map { $0.labels["severity"] } == ["critical", "warning", "warning", "critical"])
        #expect(rules.minimumRetention == .seconds(360))
    }

    @Test func dashboardQueriesParse() throws {
        for (panel, query) in Self.dashboardQueries {
            #expect(throws: Never.self, "\(panel)") { try PromQLExpression(parsing: query) }
        }
    }

    @Test func dashboardQueriesEvaluateToData() throws {
        let store = SeriesStore(retention: .seconds(3_900))
        for time in stride(from: 0.0, through: 3_900, by: 15) {
            try store.ingest(exposition: Self.exposition(at: time), at: at(time))
        }
        func run(_ panel: String) throws -> [Sample] {
            try vector(Self.dashboardQueries[panel]!, at: 3_900, store)
        }
        let executions = try run("Workflow Executions")
        #expect(executions.map { $0.labels } == [["status": "cancelled"], ["status": "failed"], ["status": "success"]])
        #expect(isClose(value(executions, ["status": "success"]), 4.0 / 15))
        #expect(isClose(value(executions, ["status": "failed"]), 1.0 / 15))
        #expect(value(executions, ["status": "cancelled"]) == 0)

        #expect(try run("Task Queue Depth") == [Sample(labels: ["__name__": "deerflow_tasks_queued"], value: 1500)])
        #expect(try run("Worker Utilization").map(\.value) == [1, 0.5])
        #expect(isClose(try run("P95 Task Duration").first?.value, 2))  // 1 + 1.5 × 2/3
        #expect(try run("P95 Task Duration").map(\.labels) == [["type": "shell"]])
        #expect(isClose(try run("Workflow Success Rate").first?.value, 80))
        #expect(isClose(try run("Average Task Duration").first?.value, 0.45))
        #expect(isClose(try run("Queue Wait Time").first?.value, 7.5))  // 5 + 5 × 1/2
        #expect(try run("Queue Wait Time").map(\.labels) == [["type": "shell", "queue": "default"]])
        #expect(isClose(try run("Error Rate").first?.value, 100.0 / 11))

        // Bounded memory: 1h05m of 15 s scrapes per series at most.
        #expect(store.seriesCount == 26)
        #expect(store.sampleCount <= 26 * 260)
    }

    @Test func chapterAlertsFireAndResolveOnASyntheticHistory() throws {
        let store = SeriesStore(retention: .seconds(3_900))
        let evaluator = AlertEvaluator(rules: try RuleFile.parse(yaml: Self.alertsYAML, file: "alerts.yaml"))
        var firing: [String: (Double, Alert)] = [:]
        var resolved: [String: [(Double, Alert)]] = [:]
        var pending: [String: Double] = [:]
        for time in stride(from: 0.0, through: 4_500, by: 15) {
            try store.ingest(exposition: Self.exposition(at: time), at: at(time))
            guard time.truncatingRemainder(dividingBy: 60) == 0 else { continue }
            for transition in evaluator.evaluate(at: at(time), store: store) {
                switch transition {
                case let .pending(alert): pending[alert.name] = time
                case let .firing(alert): firing[alert.name] = (time, alert)
                case let .resolved(alert): resolved[alert.name, default: []].append((time, alert))
                }
            }
            #expect(evaluator.lastEvaluationErrors.isEmpty)
        }

        // Rates need two samples: the failure ratio exists from the evaluation at 60 s.
        #expect(pending == ["HighWorkflowFailureRate": 60, "TaskQueueBacklog": 0, "WorkerPoolExhausted": 0, "SchedulerLag": 0])
        #expect(firing.mapValues(\.0) == ["HighWorkflowFailureRate": 360, "TaskQueueBacklog": 600, "WorkerPoolExhausted": 300, "SchedulerLag": 300])

        let failureRate = try #require(firing["HighWorkflowFailureRate"]?.1)
        #expect(isClose(failureRate.value, 0.2))
        #expect(failureRate.labels == ["alertname": "HighWorkflowFailureRate", "severity": "critical"])
        #expect(failureRate.annotations == ["summary": "High workflow failure rate", "description": "Failure rate is 20%"])
        #expect(firing["TaskQueueBacklog"]?.1.annotations["description"] == "1500 tasks in queue")
        #expect(firing["SchedulerLag"]?.1.annotations["description"] == "Lag is 120 seconds")
        #expect(firing["WorkerPoolExhausted"]?.1.value == 1)
        #expect(firing["WorkerPoolExhausted"]?.1.annotations == ["summary": "Worker pool near capacity"])

        // Recovery at 4200 s: the gauges resolve at once; the failure ratio once the 5m window
        // has seen the failures stop.
        #expect(resolved["TaskQueueBacklog"]?.map(\.0) == [4_200])
        #expect(resolved["WorkerPoolExhausted"]?.map(\.0) == [4_200])
        #expect(resolved["SchedulerLag"]?.map(\.0) == [4_200])
        let failureResolved = try #require(resolved["HighWorkflowFailureRate"])
        #expect(failureResolved.count == 1)
        #expect(failureResolved[0].0 > 4_200 && failureResolved[0].0 <= 4_500)
        #expect(failureResolved[0].1.resolvedAt == at(failureResolved[0].0))
        #expect(evaluator.activeAlerts.isEmpty)
    }
}
