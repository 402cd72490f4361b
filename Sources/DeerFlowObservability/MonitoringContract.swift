import DeerFlow
import DeerFlowCore
import Foundation

/// The shipped monitoring contract, as code: the alert rules of `deploy/prometheus/alerts.yaml`
/// (with their `promtool test rules` cases), the panels of `deploy/grafana/deerflow-overview.json`
/// and the scrape config of `deploy/prometheus/prometheus.yml`. `deerflow export` writes them;
/// tests check every metric they reference against ``BuiltinMetric`` and evaluate every
/// expression in a real Prometheus scraping a real DeerFlow.
public struct MonitoringContract: Sendable {
    /// Labels added to every series by `metrics.yaml` (`prometheus.labels`); every selector in the
    /// exported expressions matches them, so rules and panels see only this deployment's series.
    public var constantLabels: [(String, String)]
    /// `metrics.yaml` `path`.
    public var metricsPath: String
    /// `metrics.yaml` `prometheus.scrape_interval`.
    public var scrapeInterval: Duration

    public init(constantLabels: [(String, String)] = [], metricsPath: String = "/metrics", scrapeInterval: Duration = .seconds(15)) {
        self.constantLabels = constantLabels.sorted { $0.0 < $1.0 }
        self.metricsPath = metricsPath
        self.scrapeInterval = scrapeInterval
    }

    // MARK: Selectors

    /// `name{matchers, constant labels}`.
    func select(_ metric: String, _ matchers: [(String, String)] = []) -> String {
        let all = matchers + constantLabels
        guard !all.isEmpty else { return metric }
        return metric + "{" + all.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
    }

    // MARK: Alert rules

    /// An alerting rule: `value` compared with `threshold` for `duration`.
    public struct AlertRule: Sendable {
        public var name: String
        /// The expression whose value is compared (what the alert reports as `$value`).
        public var value: String
        public var threshold: Double
        public var duration: String
        public var severity: String
        public var summary: String
        public var description: String?
        /// What it means and what to do (docs/monitoring.md).
        public var runbook: String

        /// The rule's `expr`.
        public var expression: String { "\(value) > \(MonitoringContract.number(threshold))" }
    }

    /// The chapter's four rules, with its thresholds, `for:`, labels and annotations. With constant
    /// labels, the aggregating rule keeps them (`sum by (environment)`), so alerts say where they fire.
    public var alertRules: [AlertRule] {
        let sum = constantLabels.isEmpty ? "sum" : "sum by (\(constantLabels.map(\.0).joined(separator: ", "))) "
        return [
            AlertRule(
                name: "HighWorkflowFailureRate",
                value: "\(sum)(rate(\(select("deerflow_workflows_total", [("status", "failed")]))[5m]))\n/\n\(sum)(rate(\(select("deerflow_workflows_total"))[5m]))",
                threshold: 0.1, duration: "5m", severity: "critical",
                summary: "High workflow failure rate", description: "Failure rate is {{ $value | humanizePercentage }}",
                runbook: "More than 10% of workflow runs finished failed over 5 minutes. Look at `deerflow_workflows_total` by workflow to find which ones, then at their failed runs (`deerflow runs --status failed`) and task logs (`deerflow logs RUN_ID`)."),
            AlertRule(
                name: "TaskQueueBacklog", value: select("deerflow_tasks_queued"), threshold: 1000, duration: "10m", severity: "warning",
                summary: "Task queue backlog", description: "{{ $value }} tasks in queue",
                runbook: "More than 1,000 tasks have been ready for 10 minutes without a worker. Check `deerflow_queue_depth` and `deerflow_queue_oldest_age_seconds` per queue, that workers serve that queue (`deerflow workers`), and add workers or slots."),
            AlertRule(
                name: "WorkerPoolExhausted", value: "\(select("deerflow_workers_active")) / \(select("deerflow_workers_total"))", threshold: 0.95, duration: "5m",
                severity: "warning", summary: "Worker pool near capacity", description: nil,
                runbook: "More than 95% of worker slots have been busy for 5 minutes: new tasks wait. Add workers (`deerflow worker --slots N`) or look for tasks that hang (long `deerflow_task_duration_seconds`)."),
            AlertRule(
                name: "SchedulerLag", value: select("deerflow_scheduler_lag_seconds"), threshold: 60, duration: "5m", severity: "critical",
                summary: "Scheduler lag detected", description: "Lag is {{ $value }} seconds",
                runbook: "A cron fire or an expired lease has waited more than a minute for the scheduler. Check that a server process with the scheduler runs (`/health` check `scheduler`), its logs, and the store's latency (`database` check)."),
        ]
    }

    /// The `value` annotation of every rule: Alertmanager passes annotations on, not the value, so
    /// this is how an alert that reaches DeerFlow's Alertmanager webhook gets its `{{ .Value }}`.
    public static let valueAnnotation = "{{ $value }}"

    /// `deploy/prometheus/alerts.yaml`.
    public func alertsYAML() -> String {
        var lines = [
            "# DeerFlow alert rules. Generated by `deerflow export alerts`; tested by alerts_test.yaml (promtool test rules).",
            "groups:",
            "  - name: deerflow",
            "    rules:",
        ]
        for rule in alertRules {
            lines.append("      - alert: \(rule.name)")
            if rule.expression.contains("\n") {
                lines.append("        expr: |")
                for line in rule.expression.split(separator: "\n") { lines.append("          \(line)") }
            } else {
                lines.append("        expr: \(rule.expression)")
            }
            lines.append("        for: \(rule.duration)")
            lines.append("        labels:")
            lines.append("          severity: \(rule.severity)")
            lines.append("        annotations:")
            lines.append("          summary: \(Self.quoted(rule.summary))")
            if let description = rule.description { lines.append("          description: \(Self.quoted(description))") }
            lines.append("          value: \(Self.quoted(Self.valueAnnotation))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `deploy/prometheus/alerts_test.yaml`: for each rule a history that fires it (checking labels
    /// and rendered annotations) and one just under the threshold that does not.
    public func alertsTestYAML() -> String {
        let labels = constantLabels.map { "\($0.0)=\"\($0.1)\"" }
        func series(_ name: String, _ extra: [String] = []) -> String {
            let all = extra + labels
            return all.isEmpty ? name : "\(name){\(all.joined(separator: ","))}"
        }
        func expected(_ rule: AlertRule, labels extra: [(String, String)] = [], description: String?, value: String) -> [String] {
            var out = [
                "          - exp_labels:",
                "              alertname: \(rule.name)",
                "              severity: \(rule.severity)",
            ]
            for (key, value) in extra { out.append("              \(key): \(Self.quoted(value))") }
            out.append("            exp_annotations:")
            out.append("              summary: \(Self.quoted(rule.summary))")
            if let description { out.append("              description: \(Self.quoted(description))") }
            out.append("              value: \(Self.quoted(value))")
            return out
        }
        let rules = Dictionary(uniqueKeysWithValues: alertRules.map { ($0.name, $0) })
        let constant = constantLabels
        var lines = [
            "# promtool test rules alerts_test.yaml — generated by `deerflow export alerts`.",
            "rule_files:",
            "  - alerts.yaml",
            "evaluation_interval: 1m",
            "tests:",
        ]
        func test(_ comment: String, _ inputs: [(String, String)], rule: String, at time: String, fires: [String]?) {
            lines.append("  # \(comment)")
            lines.append("  - interval: 1m")
            lines.append("    input_series:")
            for (name, values) in inputs {
                lines.append("      - series: \(Self.quoted(name))")
                lines.append("        values: \(Self.quoted(values))")
            }
            lines.append("    alert_rule_test:")
            lines.append("      - eval_time: \(time)")
            lines.append("        alertname: \(rule)")
            if let fires {
                lines.append("        exp_alerts:")
                lines += fires
            } else {
                lines.append("        exp_alerts: []")
            }
        }
        if let rule = rules["HighWorkflowFailureRate"] {
            test("HighWorkflowFailureRate fires: 30% of runs fail for more than 5 minutes",
                 [(series("deerflow_workflows_total", ["workflow=\"etl\"", "status=\"failed\""]), "0+3x20"),
                  (series("deerflow_workflows_total", ["workflow=\"etl\"", "status=\"success\""]), "0+7x20")],
                 rule: rule.name, at: "12m", fires: expected(rule, labels: constant, description: "Failure rate is 30%", value: "0.3"))
            test("HighWorkflowFailureRate stays quiet at exactly 10% (the rule needs more than 10%)",
                 [(series("deerflow_workflows_total", ["workflow=\"etl\"", "status=\"failed\""]), "0+1x20"),
                  (series("deerflow_workflows_total", ["workflow=\"etl\"", "status=\"success\""]), "0+9x20")],
                 rule: rule.name, at: "12m", fires: nil)
        }
        if let rule = rules["TaskQueueBacklog"] {
            test("TaskQueueBacklog fires after 10 minutes above 1000",
                 [(series("deerflow_tasks_queued"), "1500x20")], rule: rule.name, at: "12m",
                 fires: expected(rule, labels: constant, description: "1500 tasks in queue", value: "1500"))
            test("TaskQueueBacklog stays quiet at 1000", [(series("deerflow_tasks_queued"), "1000x20")], rule: rule.name, at: "12m", fires: nil)
        }
        if let rule = rules["WorkerPoolExhausted"] {
            test("WorkerPoolExhausted fires when every slot is busy for 5 minutes",
                 [(series("deerflow_workers_active"), "20x10"), (series("deerflow_workers_total"), "20x10")],
                 rule: rule.name, at: "7m", fires: expected(rule, labels: constant, description: nil, value: "1"))
            test("WorkerPoolExhausted stays quiet at 95%",
                 [(series("deerflow_workers_active"), "19x10"), (series("deerflow_workers_total"), "20x10")], rule: rule.name, at: "7m", fires: nil)
        }
        if let rule = rules["SchedulerLag"] {
            test("SchedulerLag fires after 5 minutes of two-minute lag",
                 [(series("deerflow_scheduler_lag_seconds"), "120x10")], rule: rule.name, at: "7m",
                 fires: expected(rule, labels: constant, description: "Lag is 120 seconds", value: "120"))
            test("SchedulerLag stays quiet at 60 seconds", [(series("deerflow_scheduler_lag_seconds"), "60x10")], rule: rule.name, at: "7m", fires: nil)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Dashboard

    /// A dashboard panel.
    public struct Panel: Sendable {
        public var title: String
        public var type: String
        public var description: String
        public var targets: [(expr: String, legend: String?)]
        public var unit: String?
        /// Absolute thresholds (`[(value, color)]`, the first value nil = base).
        public var thresholds: [(Double?, String)]?
        public var width: Int = 12
        public var height: Int = 8
    }

    /// Every panel: the chapter's eight, then scheduler lag, workers, API requests and queues.
    public var panels: [Panel] {
        [
            Panel(title: "Workflow Executions", type: "timeseries", description: "Finished runs per second by status.",
                  targets: [("sum(rate(\(select("deerflow_workflows_total"))[5m])) by (status)", "{{status}}")], unit: "ops"),
            Panel(title: "Task Queue Depth", type: "gauge", description: "Tasks ready and waiting for a worker (cluster-wide).",
                  targets: [(select("deerflow_tasks_queued"), "Queued Tasks")], unit: "short",
                  thresholds: [(nil, "green"), (500, "yellow"), (1000, "red")], width: 6),
            Panel(title: "Worker Utilization", type: "heatmap", description: "Busy slots / slots per worker.",
                  targets: [(select("deerflow_worker_utilization"), "{{worker}}")], unit: "percentunit", width: 6),
            Panel(title: "P95 Task Duration", type: "stat", description: "95th percentile of attempt execution time, per task type.",
                  targets: [("histogram_quantile(0.95, rate(\(select("deerflow_task_duration_seconds_bucket"))[5m]))", "{{type}}")], unit: "s", width: 6),
            Panel(title: "Workflow Success Rate", type: "stat", description: "Share of runs that succeeded over the last hour (critical below 95%, warning below 99%).",
                  targets: [("sum(rate(\(select("deerflow_workflows_total", [("status", "success")]))[1h]))\n/\nsum(rate(\(select("deerflow_workflows_total"))[1h])) * 100", nil)],
                  unit: "percent", thresholds: [(nil, "red"), (95, "yellow"), (99, "green")], width: 6),
            Panel(title: "Average Task Duration", type: "stat", description: "Mean attempt execution time over 5 minutes, averaged over task types.",
                  targets: [("avg(rate(\(select("deerflow_task_duration_seconds_sum"))[5m])\n/\nrate(\(select("deerflow_task_duration_seconds_count"))[5m]))", nil)], unit: "s", width: 6),
            Panel(title: "Queue Wait Time (p95)", type: "stat", description: "95th percentile of time from ready to picked up by a worker.",
                  targets: [("histogram_quantile(0.95,\n  rate(\(select("deerflow_task_queue_time_seconds_bucket"))[5m]))", "{{type}} {{queue}}")], unit: "s", width: 6),
            Panel(title: "Error Rate", type: "stat", description: "Share of finished attempts that failed for good over 5 minutes.",
                  targets: [("sum(rate(\(select("deerflow_tasks_total", [("status", "failed")]))[5m]))\n/\nsum(rate(\(select("deerflow_tasks_total"))[5m])) * 100", nil)],
                  unit: "percent", thresholds: [(nil, "green"), (5, "yellow"), (10, "red")], width: 6),
            Panel(title: "Scheduler Lag", type: "timeseries", description: "How late the scheduler is; the SchedulerLag alert fires above 60 s for 5 minutes.",
                  targets: [(select("deerflow_scheduler_lag_seconds"), "lag")], unit: "s",
                  thresholds: [(nil, "green"), (30, "yellow"), (60, "red")]),
            Panel(title: "Workers Active vs Total", type: "timeseries", description: "Busy slots and all slots of live workers.",
                  targets: [(select("deerflow_workers_active"), "active"), (select("deerflow_workers_total"), "total")], unit: "short"),
            Panel(title: "API Requests", type: "timeseries", description: "API requests per second by route and status code.",
                  targets: [("sum(rate(\(select("deerflow_api_requests_total"))[5m])) by (endpoint, status)", "{{endpoint}} {{status}}")], unit: "reqps"),
            Panel(title: "Queue Depth per Queue", type: "timeseries", description: "Ready tasks per queue; with the oldest ready task's age, the signal to scale workers on.",
                  targets: [(select("deerflow_queue_depth"), "{{queue}}"), (select("deerflow_queue_oldest_age_seconds"), "oldest age {{queue}} (s)")], unit: "short"),
        ]
    }

    /// `deploy/grafana/deerflow-overview.json`: a Grafana dashboard model, importable through the
    /// UI (Dashboards → Import) and loadable by file provisioning; the data source is a variable.
    public func dashboardJSON() -> String {
        var x = 0
        var y = 0
        var panelValues: [JSONValue] = []
        for (index, panel) in panels.enumerated() {
            if x + panel.width > 24 {
                x = 0
                y += 8
            }
            var fieldConfig: [String: JSONValue] = ["unit": .string(panel.unit ?? "short")]
            if let thresholds = panel.thresholds {
                fieldConfig["thresholds"] = [
                    "mode": "absolute",
                    "steps": .array(thresholds.map { value, color in ["color": .string(color), "value": value.map(JSONValue.double) ?? .null] }),
                ]
            }
            let refIDs = ["A", "B", "C", "D"]
            var object: [String: JSONValue] = [
                "id": .int(index + 1),
                "title": .string(panel.title),
                "type": .string(panel.type),
                "description": .string(panel.description),
                "datasource": ["type": "prometheus", "uid": "${datasource}"],
                "gridPos": ["x": .int(x), "y": .int(y), "w": .int(panel.width), "h": .int(panel.height)],
                "fieldConfig": ["defaults": .object(fieldConfig), "overrides": []],
                "targets": .array(panel.targets.enumerated().map { offset, target in
                    var value: [String: JSONValue] = [
                        "refId": .string(refIDs[offset]),
                        "expr": .string(target.expr),
                        "datasource": ["type": "prometheus", "uid": "${datasource}"],
                    ]
                    if let legend = target.legend { value["legendFormat"] = .string(legend) }
                    return .object(value)
                }),
            ]
            if panel.type == "heatmap" {
                object["options"] = ["calculate": false, "yAxis": ["unit": "percentunit"], "cellGap": 1]
            } else if panel.type == "stat" || panel.type == "gauge" {
                object["options"] = ["reduceOptions": ["calcs": ["lastNotNull"], "fields": "", "values": false]]
            }
            panelValues.append(.object(object))
            x += panel.width
        }
        let dashboard: JSONValue = [
            "uid": "deerflow-overview",
            "title": "Deer Flow Overview",
            "description": "DeerFlow workflows, tasks, queues, workers, scheduler and API. Generated by `deerflow export dashboards`.",
            "tags": ["deerflow"],
            "timezone": "browser",
            "schemaVersion": 39,
            "version": 1,
            "editable": true,
            "refresh": "30s",
            "time": ["from": "now-6h", "to": "now"],
            "templating": ["list": [[
                "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
                "current": [:], "hide": 0, "refresh": 1, "options": [],
            ]]],
            "annotations": ["list": []],
            "panels": .array(panelValues),
        ]
        return Self.prettyJSON(dashboard)
    }

    // MARK: Prometheus configuration

    /// `deploy/prometheus/prometheus.yml`: scrapes DeerFlow at the metrics path and interval of
    /// `metrics.yaml` and loads the alert rules.
    public func prometheusConfig(targets: [String] = ["localhost:9090"]) -> String {
        let interval = DurationText.format(scrapeInterval)
        return """
            # Prometheus configuration for DeerFlow. Generated by `deerflow export prometheus-config`.
            global:
              scrape_interval: \(interval)
              evaluation_interval: \(interval)

            rule_files:
              - alerts.yaml

            scrape_configs:
              - job_name: deerflow
                metrics_path: \(metricsPath)
                static_configs:
                  - targets: [\(targets.map { "'\($0)'" }.joined(separator: ", "))]

            """
    }

    // MARK: Checks

    /// Every expression of the rules and panels.
    public var expressions: [(source: String, expr: String)] {
        alertRules.flatMap { [("alert \($0.name)", $0.expression), ("alert \($0.name) value", $0.value)] }
            + panels.flatMap { panel in panel.targets.map { ("panel \(panel.title)", $0.expr) } }
    }

    /// Names of the series a metric of the catalogue exposes (histograms: `_bucket`, `_sum`, `_count`).
    public static var exposedSeriesNames: Set<String> {
        var names: Set<String> = []
        for metric in BuiltinMetric.allCases {
            if metric.descriptor.kind == .histogram {
                for suffix in ["_bucket", "_sum", "_count"] { names.insert(metric.rawValue + suffix) }
            } else {
                names.insert(metric.rawValue)
            }
        }
        return names
    }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func quoted(_ text: String) -> String {
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }

    static func prettyJSON(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
