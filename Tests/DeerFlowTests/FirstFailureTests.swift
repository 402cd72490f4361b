import DeerFlow
import DeerFlowCore
import DeerFlowObservability
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// The first failure of a workflow after a start is an increase of its failed-runs counter, in
/// Prometheus and in DeerFlow's own rule evaluation: the counters of every loaded workflow exist
/// at 0 from the start (a series born at 1 shows no increase).
@Suite("The first failure after a start", .serialized)
struct FirstFailureTests {
    static let workflows = [
        "fails.yaml": "name: fails\ntasks:\n  - {id: boom, type: shell, script: exit 3}\n",
        "ok.yaml": "name: ok\ntasks:\n  - {id: fine, type: noop}\n",
    ]
    static let expression = #"sum by (workflow) (increase(deerflow_workflows_total{status="failed"}[1m])) > 0"#

    @Test("every loaded workflow's and task type's outcome counters exist at 0 before anything ran")
    func countersStartAtZero() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let samples = try await server.metrics()
            for workflow in ["fails", "ok"] {
                for status in ["success", "failed", "cancelled"] {
                    let key = MetricSamples.key("deerflow_workflows_total", ["workflow": workflow, "status": status])
                    #expect(samples[key] == 0, "\(key)")
                }
            }
            for type in ["shell", "noop"] {
                for status in ["success", "failed", "retried", "timeout", "cancelled"] {
                    let key = MetricSamples.key("deerflow_tasks_total", ["type": type, "status": status])
                    #expect(samples[key] == 0, "\(key)")
                }
            }
        }
    }

    @Test("the in-process evaluator fires an increase(...) > 0 rule on the first failure")
    func inProcessEvaluator() async throws {
        let rules = """
            groups:
              - name: first
                rules:
                  - alert: WorkflowFailed
                    expr: '\(Self.expression)'
                    labels: {severity: warning}
                    annotations: {summary: "{{ $labels.workflow }} failed"}
            """
        try await withTestServer(
            yamlWorkflows: Self.workflows,
            configFiles: ["metrics.yaml": "metrics:\n  prometheus:\n    scrape_interval: 1s\n", "alerts.yaml": rules]
        ) { server in
            // A few samples of the counters at 0 first, as after any start.
            try await Task.sleep(for: .milliseconds(2500))
            let run = try await server.engine.trigger("fails")
            #expect(try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(20)).run.status == .failed)
            var state: String?
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                let answer = try await server.request("GET", "/api/v1/alerts")
                if case .object(let document)? = answer.json, case .array(let alerts)? = document["alerts"] {
                    for case .object(let alert) in alerts where alert["name"]?.stringValue == "WorkflowFailed" {
                        state = alert["state"]?.stringValue
                    }
                }
                if state == "firing" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(state == "firing", "the first failure did not fire WorkflowFailed")
        }
    }

    @Test("a real Prometheus sees the first failure as an increase")
    func prometheus() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let contract = MonitoringContract(scrapeInterval: .seconds(1))
            let prometheus = try PrometheusServer(config: contract.prometheusConfig(targets: ["127.0.0.1:\(server.metricsPort)"]))
            defer { prometheus.stop() }
            try await prometheus.waitUntilReady()
            // Prometheus has scraped the counter at 0 (as it would after any start) before the failure.
            let scraped = ContinuousClock.now + .seconds(30)
            while try await prometheus.query(#"deerflow_workflows_total{workflow="fails",status="failed"} == 0"#).isEmpty {
                guard ContinuousClock.now < scraped else { throw TestFailure("Prometheus did not scrape the counter at 0:\n\(prometheus.log)") }
                try await Task.sleep(for: .milliseconds(200))
            }
            let run = try await server.engine.trigger("fails")
            _ = try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(20))
            var workflows: [String] = []
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                workflows = try await prometheus.query(Self.expression).compactMap { ($0["metric"] as? [String: String])?["workflow"] }
                if !workflows.isEmpty { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(workflows == ["fails"], "\(prometheus.log)")
        }
    }
}
