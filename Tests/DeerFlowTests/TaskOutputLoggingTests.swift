import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// YAML tasks reach the monitoring pipelines: their output lines in the process's log stream
/// (here shipped to a stand-in Elasticsearch), and metrics of metrics.yaml updated through
/// `$DEERFLOW_METRICS`.
@Suite("Shell tasks in the log stream and the metrics", .serialized)
struct TaskOutputLoggingTests {
    static let secret = "Sh1pped-S3cret-Value"

    @Test("each line a shell task writes reaches Elasticsearch with the task's ids and its stream, redacted, within the line budget")
    func outputShipped() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (receiver, port) = try await LoggingTests.startBulkReceiver(in: directory)
        defer { receiver.stop() }
        try directory.write("config/logging.yaml", """
            logging:
              level: INFO
              task_output_lines: 5
              handlers:
                console: {enabled: true}
                elasticsearch:
                  hosts: ["http://127.0.0.1:\(port)"]
                  flush_interval: 60s
            """)
        try directory.write("workflows/hello.yaml", """
            name: hello
            params:
              token: {type: string, secret: true, default: \(Self.secret)}
            tasks:
              - id: say
                type: shell
                script: |
                  echo "a warning" >&2
                  sleep 0.3
                  echo "hello, world"
                  echo "token is $DEERFLOW_PARAM_TOKEN"
                  for i in 1 2 3 4 5 6; do echo "line $i"; done
            """)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let metricsPort = try await server.metricsPort()
        let id = try await ClusterAPI.trigger(api: api, workflow: "hello")
        #expect(try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(30))[id]?["status"] == "success")
        let dropped = await ClusterAPI.metric(port: metricsPort, #"deerflow_log_lines_dropped_total{handler="task_output"}"#)
        server.signal(SIGTERM)
        _ = try await server.waitForExit()

        let lines = LoggingTests.bulkDocuments(in: directory).filter { $0["task_id"] as? String == "say" && $0["stream"] != nil }
        let hello = try #require(lines.first { $0["message"] as? String == "hello, world" }, "\(lines)")
        #expect(hello["stream"] as? String == "stdout")
        #expect(hello["workflow"] as? String == "hello" && hello["run_id"] as? String == id && hello["attempt"] as? String == "1")
        #expect(hello["execution_id"] as? String == "\(id):say:1" && (hello["workflow_id"] as? String)?.hasPrefix("hello@") == true)
        #expect(lines.contains { $0["message"] as? String == "a warning" && $0["stream"] as? String == "stderr" }, "\(lines)")
        #expect(lines.contains { $0["message"] as? String == "token is [REDACTED]" }, "\(lines)")
        #expect(lines.count == 5, "the budget is 5 lines: \(lines.map { $0["message"] ?? "" })")
        #expect(dropped == 4, "9 lines, 5 logged")
        #expect(!server.log.contains(Self.secret))
    }

    @Test("a shell task updates metrics.yaml's counter and histogram through $DEERFLOW_METRICS; bad lines are rejected, counted and logged, the task succeeds; /metrics passes promtool")
    func customMetrics() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/metrics.yaml", """
            metrics:
              custom_metrics:
                - name: data_processed_bytes
                  type: counter
                  description: "Total bytes processed"
                  labels: [workflow, task, table]
                - name: processing_latency
                  type: histogram
                  description: "Processing latency distribution"
                  labels: [workflow, task]
                  buckets: [0.1, 0.5, 1, 5, 10, 30, 60]
                - name: batches
                  type: counter
                  description: "Batches"
            """)
        try directory.write("workflows/metered.yaml", """
            name: metered
            tasks:
              - id: process
                type: shell
                script: |
                  m="$DEERFLOW_METRICS"
                  echo "data_processed_bytes +1024 table=events" >> "$m"
                  echo "data_processed_bytes 24 table=events" >> "$m"
                  echo "processing_latency 0.42" >> "$m"
                  echo "batches 1" >> "$m"
                  echo "data_processed_bytes -5 table=events" >> "$m"
                  echo "deerflow_tasks_total 100" >> "$m"
                  echo "processing_latency 0.3 color=red" >> "$m"
                  echo "processing_latency fast" >> "$m"
            """)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let metricsPort = try await server.metricsPort()
        let before = try await TestServer.send("GET", "http://127.0.0.1:\(metricsPort)/metrics", body: nil, headers: [:]).text
        #expect(before.contains("# TYPE data_processed_bytes_total counter") && before.contains("# TYPE processing_latency histogram"), "declared before any update")
        #expect(before.contains("\nbatches_total 0\n"), "a counter without labels starts at 0")

        let id = try await ClusterAPI.trigger(api: api, workflow: "metered")
        #expect(try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(30))[id]?["status"] == "success")
        let text = try await TestServer.send("GET", "http://127.0.0.1:\(metricsPort)/metrics", body: nil, headers: [:]).text
        let samples = try MetricSamples.parse(text)
        #expect(samples[#"data_processed_bytes_total{table="events",task="process",workflow="metered"}"#] == 1048)
        #expect(samples[#"processing_latency_count{task="process",workflow="metered"}"#] == 1)
        #expect(samples[#"processing_latency_sum{task="process",workflow="metered"}"#] == 0.42)
        #expect(samples["batches_total"] == 1)
        #expect(samples[#"deerflow_task_metric_updates_rejected_total{workflow="metered"}"#] == 4)
        #expect(samples[#"deerflow_tasks_total{status="success",type="shell"}"#] == 1, "DeerFlow's own metrics are not a task's to change")
        let log = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)/tasks/process/log", body: nil, headers: [:]).text
        #expect(log.contains("$DEERFLOW_METRICS line 5: counter 'data_processed_bytes' only goes up"), "\(log)")
        #expect(log.contains("line 6: no metric 'deerflow_tasks_total' in metrics.yaml's custom_metrics"), "\(log)")
        #expect(log.contains("line 7: metric 'processing_latency' has no label 'color'"), "\(log)")
        #expect(log.contains("line 8: 'fast' is not a number"), "\(log)")
        let lint = try Promtool.run(["check", "metrics"], input: text).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        #expect(lint == [#"deerflow_workers_total non-counter metrics should not have "_total" suffix"#], "\(lint)")
    }
}
