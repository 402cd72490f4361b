import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

@Suite("End to end: metrics of a real run")
struct EndToEndMetricsTests {
    /// extract → (flaky, slow) → (load after flaky, report after slow).
    /// flaky fails once then succeeds; slow times out (no retries), so report is skipped.
    static func pipeline() -> Workflow {
        let attempts = Mutex(0)
        let flow = Workflow(name: "pipeline")
        flow.task(id: "extract") { _ in ["rows": 10] }
        flow.task(id: "flaky", dependsOn: ["extract"], retries: 2, retryDelay: .milliseconds(10)) { _ in
            let attempt = attempts.withLock { value -> Int in
                value += 1
                return value
            }
            if attempt == 1 { throw TestFailure("first attempt fails") }
            return "ok"
        }
        flow.task(id: "slow", dependsOn: ["extract"], timeout: .milliseconds(200)) { _ in
            try await Task.sleep(for: .seconds(30))
        }
        flow.task(id: "load", dependsOn: ["flaky"]) { _ in }
        flow.task(id: "report", dependsOn: ["slow"]) { _ in }
        return flow
    }

    @Test("counters and histograms hold exact values after a 3-level DAG with a retry and a timeout")
    func exactValues() async throws {
        let happy = Workflow(name: "happy")
        happy.task(id: "only", type: "step") { _ in }
        try await withTestServer(workflows: [Self.pipeline(), happy]) { server in
            let created = try await server.request("POST", "/api/v1/workflows/pipeline/runs", body: "{}")
            #expect(created.status == 201)
            let id = try #require(created.json.flatMap { value -> String? in
                if case .object(let object) = value { return object["id"]?.stringValue }
                return nil
            })
            let detail = try await server.engine.waitForRun(RunID(rawValue: id), pollInterval: .milliseconds(50))
            #expect(detail.run.status == .failed)
            #expect(detail.tasks.map(\.status) == [.success, .success, .timeout, .success, .upstreamFailed])
            let happyRun = try await server.engine.trigger("happy")
            _ = try await server.engine.waitForRun(happyRun.id, pollInterval: .milliseconds(50))

            let metrics = try await server.metrics()
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
                metrics[MetricSamples.key(name, labels)]
            }
            #expect(value("deerflow_tasks_total", ["type": "extract", "status": "success"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "flaky", "status": "retried"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "flaky", "status": "success"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "slow", "status": "timeout"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "load", "status": "success"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "step", "status": "success"]) == 1)
            #expect(value("deerflow_tasks_total", ["type": "report", "status": "success"]) == 0, "declared at 0, never run (upstream failed)")
            let tasksTotal = metrics.filter { $0.key.hasPrefix("deerflow_tasks_total{") }.values.reduce(0, +)
            #expect(tasksTotal == 6)
            #expect(value("deerflow_task_retries_total", ["type": "flaky"]) == 1)
            #expect(value("deerflow_workflows_total", ["workflow": "pipeline", "status": "failed"]) == 1)
            #expect(value("deerflow_workflows_total", ["workflow": "happy", "status": "success"]) == 1)
            #expect(value("deerflow_workflow_duration_seconds_count", ["workflow": "pipeline"]) == 1)
            #expect(value("deerflow_task_duration_seconds_count", ["type": "flaky"]) == 2)
            #expect(value("deerflow_task_duration_seconds_count", ["type": "slow"]) == 1)
            #expect((value("deerflow_task_duration_seconds_sum", ["type": "slow"]) ?? 0) >= 0.2)
            #expect(value("deerflow_task_duration_seconds_bucket", ["type": "slow", "le": "0.1"]) == 0)
            #expect(value("deerflow_task_duration_seconds_bucket", ["type": "slow", "le": "+Inf"]) == 1)
            #expect(value("deerflow_task_queue_time_seconds_count", ["type": "flaky", "queue": "default"]) == 2)
            #expect(value("deerflow_workflows_active") == 0)
            #expect(value("deerflow_tasks_queued") == 0)
            #expect(value("deerflow_queue_depth", ["queue": "default"]) == 0)
            #expect(value("deerflow_workers_total") == 4)
            #expect(value("deerflow_workers_active") == 0)
            #expect(value("deerflow_scheduler_lag_seconds") == 0)
            #expect(value("deerflow_api_requests_total", ["endpoint": "/api/v1/workflows/{name}/runs", "status": "201"]) == 1)
            // The trigger's time in the server: one observation, in a bucket above 50 µs and below 10 s.
            let trigger = ["endpoint": "/api/v1/workflows/{name}/runs"]
            #expect(value("deerflow_api_request_duration_seconds_count", trigger) == 1)
            #expect(value("deerflow_api_request_duration_seconds_bucket", trigger.merging(["le": "+Inf"]) { $1 }) == 1)
            #expect(value("deerflow_api_request_duration_seconds_bucket", trigger.merging(["le": "5e-05"]) { $1 }) == 0)
            #expect(value("deerflow_api_request_duration_seconds_bucket", trigger.merging(["le": "10.0"]) { $1 }) == 1)
            #expect((value("deerflow_api_request_duration_seconds_sum", trigger) ?? 0) > 0)
            let worker = metrics.keys.first { $0.hasPrefix("deerflow_worker_tasks_processed_total{") }
            #expect(worker.map { metrics[$0] } == 6)
            #expect(metrics.keys.contains { $0.hasPrefix("deerflow_worker_utilization{worker=") })
            #expect(value("deerflow_health_check_status", ["check": "database"]) == 1)

            let text = try await server.metricsText()
            // Metrics that get series only when something happens (a budget exceeded, a schedule, dropped log lines,
            // a concurrency limit configured) are left out.
            let eventDriven: Set<BuiltinMetric> = [
                .seriesDropped, .scheduleFireDelay, .schedulesMissed, .scheduleNextFire, .schedulePaused, .logLinesDropped, .spansDropped, .alertsFiring,
                .notificationsTotal, .runsWaitingForLimit, .queueConcurrencyLimit, .queueRunning, .taskMetricUpdatesRejected, .webhookRequests, .apiAccess,
            ]
            for metric in BuiltinMetric.allCases where !eventDriven.contains(metric) {
                #expect(text.contains("# TYPE \(metric.rawValue) \(metric.descriptor.kind == .histogram ? "histogram" : metric.descriptor.kind.rawValue)"), "missing TYPE of \(metric.rawValue)")
                #expect(text.contains("# HELP \(metric.rawValue) "), "missing HELP of \(metric.rawValue)")
            }
        }
    }

    @Test("metrics.yaml constant labels appear on every series and custom metrics are exposed")
    func constantLabelsAndCustomMetrics() async throws {
        let metricsYAML = """
            metrics:
              enabled: true
              port: 9090
              path: /custom-metrics
              prometheus:
                scrape_interval: 15s
                labels:
                  environment: production
                  service: deerflow
              custom_metrics:
                - name: data_processed_bytes
                  type: counter
                  description: "Total bytes processed"
                  labels: [workflow, task]
                - name: processing_latency
                  type: histogram
                  description: "Processing latency distribution"
                  buckets: [0.1, 0.5, 1, 5, 10, 30, 60]
            """
        let flow = Workflow(name: "custom")
        flow.task(id: "work") { context in
            let bytes = try context.metrics.counter(named: "data_processed_bytes")
            try bytes.labels(context.workflow.name, context.task.id).inc(2048)
            let latency = try context.metrics.histogram(named: "processing_latency")
            try latency.time { () -> Void in }
            let records = try context.metrics.counter("deerflow_records_processed_total", help: "Total records processed", labels: ["workflow", "task", "status"])
            try records.labels(["workflow": context.workflow.name, "task": context.task.id, "status": "success"]).inc()
        }
        try await withTestServer(workflows: [flow], configFiles: ["metrics.yaml": metricsYAML]) { server in
            let run = try await server.engine.trigger("custom")
            let detail = try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .success)
            let text = try await TestServer.Answer.fetch("http://127.0.0.1:\(server.metricsPort)/custom-metrics")
            let samples = try MetricSamples.parse(text)
            let constant = ["environment": "production", "service": "deerflow"]
            #expect(samples[MetricSamples.key("data_processed_bytes_total", constant.merging(["workflow": "custom", "task": "work"]) { $1 })] == 2048)
            #expect(samples[MetricSamples.key("processing_latency_count", constant)] == 1)
            #expect(samples[MetricSamples.key("deerflow_records_processed_total", constant.merging(["workflow": "custom", "task": "work", "status": "success"]) { $1 })] == 1)
            #expect(samples.keys.allSatisfy { $0.contains("environment=\"production\"") && $0.contains("service=\"deerflow\"") })
            #expect(text.contains("# HELP data_processed_bytes_total Total bytes processed"))
        }
    }
}

extension TestServer.Answer {
    static func fetch(_ url: String) async throws -> String {
        try await TestServer.send("GET", url, body: nil, headers: [:]).text
    }
}
