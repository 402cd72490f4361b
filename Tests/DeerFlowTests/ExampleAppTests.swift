import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// examples/swift-app: a user's package that depends on DeerFlow by path and runs its Swift
/// workflows with DeerFlow's commands. scripts/test builds it into the same build directory.
@Suite("Example Swift application")
struct ExampleAppTests {
    static func executable() throws -> String {
        guard let path = ServerProcess.builtExecutable("InstrumentedWorkflows") else {
            throw ProcessFailure("the example is not built: run scripts/test, or `swift build --scratch-path .build` in examples/swift-app")
        }
        return path
    }

    @Test("its executable offers DeerFlow's subcommands")
    func subcommands() async throws {
        let help = try ServerProcess(["--help"], executable: try Self.executable())
        #expect(try await help.waitForExit() == 0)
        for command in ["server", "worker", "run", "demo", "validate"] { #expect(help.log.contains(command)) }
    }

    @Test("`server` runs the Swift workflow, and its custom metrics reach /metrics")
    func serverRunsSwiftWorkflow() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/logging.yaml", "logging:\n  level: INFO\n  format: json\n")
        let server = try ServerProcess(
            ["server", "--config", directory.file("config"), "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0"],
            executable: try Self.executable())
        defer { server.stop() }
        let api = try await server.apiPort()
        let metrics = try await server.metricsPort()
        let created = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/instrumented_workflow/runs", body: #"{"params": {"batch": 20}}"#, headers: [:])
        #expect(created.status == 201, "\(created.text)")
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else { return }
        var status = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let answer = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)", body: nil, headers: [:])
            if case .object(let object)? = answer.json { status = object["status"]?.stringValue ?? "" }
            if status == "success" || status == "failed" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(status == "success", "\(server.log)")
        let scrape = try MetricSamples.parse(try await TestServer.send("GET", "http://127.0.0.1:\(metrics)/metrics", body: nil, headers: [:]).text)
        let labels = ["workflow": "instrumented_workflow", "task": "process_records"]
        #expect(scrape[MetricSamples.key("deerflow_records_processed_total", labels.merging(["status": "success"]) { $1 })] == 18)
        #expect(scrape[MetricSamples.key("deerflow_records_processed_total", labels.merging(["status": "error"]) { $1 })] == 2)
        #expect(scrape[MetricSamples.key("deerflow_processing_time_seconds_count", labels)] == 1)
        // A swift-metrics counter of the task's own code, with metrics.yaml's constant labels if any.
        #expect(scrape[MetricSamples.key("instrumented_reports_total", ["source": "swift-metrics"])] == 1, "\(scrape.keys.sorted())")
        let log = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)/tasks/fetch_records/log", body: nil, headers: [:])
        #expect(log.text.contains("Starting task processing"))
        // The task's log line on the process's output: JSON with the run's ids and nested metadata.
        let line = try #require(server.log.split(separator: "\n").first { $0.contains("Starting task processing") })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["workflow"] as? String == "instrumented_workflow")
        #expect((object["workflow_id"] as? String)?.hasPrefix("instrumented_workflow@") == true)
        #expect(object["run_id"] as? String == id)
        #expect(object["task_id"] as? String == "fetch_records")
        #expect(object["execution_id"] as? String == "\(id):fetch_records:1")
        #expect(object["attempt"] as? String == "1")
        #expect((object["params"] as? [String: Any])?["batch"] as? String == "20")
        #expect(object["level"] as? String == "info")
    }
}
