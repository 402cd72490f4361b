import DeerFlow
import DeerFlowCLI
import DeerFlowServer
import DeerFlowCore
import DeerFlowObservability
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// The shipped dashboards, alert rules and scrape config: generated from code, referencing only
/// real metrics, accepted by promtool, and evaluating to data in a real Prometheus.
@Suite("Monitoring contract")
struct MonitoringContractTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func committed(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("every metric named by a panel or a rule is one DeerFlow exposes")
    func namesExist() throws {
        let exposed = MonitoringContract.exposedSeriesNames
        let expression = try NSRegularExpression(pattern: "deerflow_[a-z_]+")
        for (source, text) in MonitoringContract().expressions {
            let names = expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range, in: text).map { String(text[$0]) } }
            #expect(!names.isEmpty, "\(source) references no metric")
            for name in names { #expect(exposed.contains(name), "\(source) references \(name), which DeerFlow does not expose") }
        }
    }

    @Test("the committed files in deploy/ are exactly what `deerflow export` writes")
    func committedFilesMatchExport() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        for (kind, out) in [("dashboards", "grafana"), ("alerts", "prometheus"), ("prometheus-config", "prometheus")] {
            let process = try ServerProcess(["export", kind, "--out", directory.file(out)])
            #expect(try await process.waitForExit() == 0, "\(process.log)")
        }
        for file in ["grafana/deerflow-overview.json", "prometheus/alerts.yaml", "prometheus/alerts_test.yaml", "prometheus/prometheus.yml"] {
            let exported = try String(contentsOfFile: directory.file(file), encoding: .utf8)
            #expect(try Self.committed("deploy/" + file) == exported, "deploy/\(file) differs from `deerflow export`; run scripts/export-deploy")
        }
    }

    @Test("export honours metrics.yaml: constant labels in every selector, path and interval in the scrape config")
    func exportHonoursMetricsYAML() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/metrics.yaml", """
            metrics:
              path: /internal/metrics
              prometheus:
                scrape_interval: 30s
                labels: {environment: production}
            """)
        for kind in ["alerts", "prometheus-config", "dashboards"] {
            let process = try ServerProcess(["export", kind, "--out", directory.file("out"), "--config", directory.file("config"), "--target", "deerflow:9090"])
            #expect(try await process.waitForExit() == 0, "\(process.log)")
        }
        let alerts = try String(contentsOfFile: directory.file("out/alerts.yaml"), encoding: .utf8)
        #expect(alerts.contains(#"deerflow_tasks_queued{environment="production"} > 1000"#))
        #expect(alerts.contains(#"deerflow_workflows_total{status="failed",environment="production"}"#))
        let config = try String(contentsOfFile: directory.file("out/prometheus.yml"), encoding: .utf8)
        #expect(config.contains("metrics_path: /internal/metrics"))
        #expect(config.contains("scrape_interval: 30s"))
        #expect(config.contains("'deerflow:9090'"))
        let dashboard = try String(contentsOfFile: directory.file("out/deerflow-overview.json"), encoding: .utf8)
        #expect(dashboard.contains(#"deerflow_tasks_queued{environment=\"production\"}"#))
        // The generated rule tests still pass with the labels.
        #expect(try Promtool.run(["check", "rules", directory.file("out/alerts.yaml")]).contains("SUCCESS: 4 rules found"))
        let tested = try Promtool.run(["test", "rules", directory.file("out/alerts_test.yaml")])
        #expect(tested.contains("SUCCESS"), "\(tested)")
    }

    @Test("promtool accepts the rules and their tests pass")
    func promtoolRules() throws {
        let rules = Self.repositoryRoot.appendingPathComponent("deploy/prometheus/alerts.yaml").path
        let checked = try Promtool.run(["check", "rules", rules])
        #expect(checked.contains("SUCCESS: 4 rules found"), "\(checked)")
        let tests = Self.repositoryRoot.appendingPathComponent("deploy/prometheus/alerts_test.yaml").path
        let tested = try Promtool.run(["test", "rules", tests])
        #expect(tested.contains("SUCCESS"), "\(tested)")
        #expect(!tested.contains("FAILED"), "\(tested)")
    }

    @Test("the dashboard is a well-formed Grafana model with every chapter panel")
    func dashboardShape() throws {
        let data = Data(try Self.committed("deploy/grafana/deerflow-overview.json").utf8)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(dashboard["uid"] as? String == "deerflow-overview")
        #expect(dashboard["schemaVersion"] as? Int == 39)
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let titles = panels.compactMap { $0["title"] as? String }
        for title in ["Workflow Executions", "Task Queue Depth", "Worker Utilization", "P95 Task Duration", "Workflow Success Rate",
                      "Average Task Duration", "Queue Wait Time (p95)", "Error Rate", "Scheduler Lag", "Workers Active vs Total",
                      "API Requests", "Queue Depth per Queue"] {
            #expect(titles.contains(title), "missing panel \(title)")
        }
        #expect(panels.first { $0["title"] as? String == "Worker Utilization" }?["type"] as? String == "heatmap")
        var cells: Set<String> = []
        for panel in panels {
            let targets = try #require(panel["targets"] as? [[String: Any]])
            #expect(!targets.isEmpty)
            for target in targets {
                #expect(target["refId"] is String && target["expr"] is String)
            }
            let datasource = panel["datasource"] as? [String: Any]
            #expect(datasource?["uid"] as? String == "${datasource}")
            let grid = try #require(panel["gridPos"] as? [String: Int])
            for x in grid["x", default: 0]..<(grid["x", default: 0] + grid["w", default: 0]) {
                for y in grid["y", default: 0]..<(grid["y", default: 0] + grid["h", default: 0]) {
                    #expect(cells.insert("\(x),\(y)").inserted, "panels overlap at \(x),\(y)")
                }
            }
        }
        let success = panels.first { $0["title"] as? String == "Workflow Success Rate" }
        let thresholds = ((success?["fieldConfig"] as? [String: Any])?["defaults"] as? [String: Any])?["thresholds"] as? [String: Any]
        let steps = (thresholds?["steps"] as? [[String: Any]])?.compactMap { $0["value"] as? Double }
        #expect(steps == [95, 99])
    }

    @Test("in a real Prometheus scraping a real DeerFlow, every panel and rule expression evaluates to data", .timeLimit(.minutes(3)))
    func realPrometheus() async throws {
        let workflows = [
            "ok.yaml": "name: ok\ntasks:\n  - id: a\n    type: noop\n  - id: b\n    type: sleep\n    duration: 50ms\n    depends_on: [a]\n",
            "fails.yaml": "name: fails\ntasks:\n  - id: a\n    type: shell\n    script: exit 1\n",
            "retries.yaml": "name: retries\ntasks:\n  - id: flaky\n    type: shell\n    script: '[ \"$DEERFLOW_ATTEMPT\" -ge 2 ]'\n    retries: 2\n    retry_delay: 10ms\n",
            "backlog.yaml": "name: backlog\ntasks:\n  - id: waits\n    type: noop\n    queue: backlog\n",
        ]
        try await withTestServer(yamlWorkflows: workflows) { server in
            let contract = MonitoringContract(scrapeInterval: .seconds(1))
            let prometheus = try PrometheusServer(
                config: contract.prometheusConfig(targets: ["127.0.0.1:\(server.metricsPort)"]),
                files: ["alerts.yaml": contract.alertsYAML()])
            defer { prometheus.stop() }
            try await prometheus.waitUntilReady()
            // Work spread over several scrapes, so rates have two samples in their windows.
            for round in 0..<4 {
                for name in ["ok", "fails", "retries", "backlog"] {
                    let run = try await server.engine.trigger(name)
                    if name != "backlog" { _ = try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(20)) }
                }
                _ = try await server.request("GET", "/api/v1/workflows")
                if round < 3 { try await Task.sleep(for: .milliseconds(1200)) }
            }
            try await Task.sleep(for: .seconds(3))
            var empty: [String] = []
            for (source, expression) in contract.expressions {
                let result = try await prometheus.query(expression)
                // A rule's full expression is empty while it is not firing; its value part must have data.
                if !(source.hasPrefix("alert ") && !source.hasSuffix(" value")) && result.isEmpty {
                    empty.append("\(source): \(expression)")
                }
            }
            #expect(empty.isEmpty, "expressions without data:\n\(empty.joined(separator: "\n"))\nprometheus log:\n\(prometheus.log)")
            // The rules file loaded: Prometheus lists the four rules.
            let rules = try await TestServer.send("GET", prometheus.url + "/api/v1/rules", body: nil, headers: [:])
            for name in contract.alertRules.map(\.name) { #expect(rules.text.contains("\"name\":\"\(name)\"")) }
            // promtool check metrics on a real scrape.
            let lint = try Promtool.run(["check", "metrics"], input: try await server.metricsText())
            #expect(lint.trimmingCharacters(in: .whitespacesAndNewlines) == #"deerflow_workers_total non-counter metrics should not have "_total" suffix"#)
        }
    }
}

@Suite("Metric catalogue")
struct MetricCatalogueTests {
    @Test("metrics.yaml refuses constant labels that built-in metrics use, and the list is complete")
    func builtinLabels() {
        let used = Set(BuiltinMetric.allCases.flatMap(\.descriptor.labels))
        #expect(used == MetricsConfigFile.builtinLabelNames)
        do {
            _ = try MetricsConfigFile.parse(yaml: "metrics:\n  prometheus:\n    labels: {status: prod}\n", file: "metrics.yaml", environment: [:])
            Issue.record("accepted a constant label named status")
        } catch {
            #expect(error.description.contains("metrics.yaml:3:"))
            #expect(error.description.contains("'status' is a label of DeerFlow's built-in metrics"))
        }
    }
}
