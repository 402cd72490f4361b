import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Tracing over the wire: real `deerflow` processes export OTLP/HTTP protobuf to a loopback
/// receiver (`scripts/otlp_receiver.py`, decoding with `opentelemetry-proto`).
@Suite("Tracing end to end")
struct TracingEndToEndTests {
    /// A DAG whose last task calls `hook` (an `http` task, which carries its span's context).
    static func dag(hook: String) -> String {
        """
        name: dag
        tasks:
          - {id: extract, type: shell, script: echo extracted}
          - {id: left, type: noop, depends_on: [extract]}
          - {id: right, type: noop, depends_on: [extract]}
          - {id: load, type: shell, script: echo loaded, depends_on: [left, right]}
          - {id: notify, type: http, method: POST, url: "\(hook)", body: "{}", depends_on: [load]}
        """
    }

    @Test("a run triggered with a traceparent is one trace: caller → HTTP POST → workflow.run → every task.execute, across processes; an http task sends its span as traceparent")
    func oneTraceAcrossProcesses() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let hook = try await TestHTTPServer.start(fallback: .respond(status: 200, headers: [("Content-Type", "application/json")], body: "{}"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/dag.yaml", Self.dag(hook: hook.url("/hooks/loaded")))
        let database = "sqlite://" + directory.file("db.sqlite")
        func environment(_ service: String) -> [String: String] {
            ["OTEL_EXPORTER_OTLP_ENDPOINT": receiver.baseURL, "OTEL_SERVICE_NAME": service, "OTEL_TRACES_SAMPLER": "parentbased_always_on",
             "DEERFLOW_DATABASE_URL": ""]
        }
        // The server takes the request and creates the run; only the worker process executes tasks.
        let server = try ServerProcess([
            "server", "--no-workers", "--workflows", directory.file("workflows"), "--database", database, "--api-port", "0", "--metrics-port", "0",
        ], environment: environment("deerflow-server"))
        defer { server.stop() }
        let api = try await server.apiPort()
        let worker = try ServerProcess([
            "worker", "--workflows", directory.file("workflows"), "--database", database, "--metrics-port", "0",
        ], environment: environment("deerflow-worker"))
        defer { worker.stop() }
        _ = try await worker.metricsPort()

        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let callerSpanID = "00f067aa0ba902b7"
        let created = try await TestServer.send(
            "POST", "http://127.0.0.1:\(api)/api/v1/workflows/dag/runs", body: "{}",
            headers: ["traceparent": "00-\(traceID)-\(callerSpanID)-01", "Content-Type": "application/json"])
        #expect(created.status == 201, "\(created.text)")
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run: \(created.text)")
            return
        }
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(60))
        #expect(runs[id]?["status"]?.stringValue == "success", "\(runs)")

        // SIGTERM flushes each exporter's batch.
        for process in [server, worker] { process.signal(SIGTERM) }
        for process in [server, worker] { #expect(try await process.waitForExit() == 0, "\(process.log.suffix(2000))") }
        await hook.stop()
        let spans = try await receiver.waitForSpans(timeout: .seconds(30), description: "HTTP POST, workflow.run and 5 task.execute spans") { spans in
            spans.contains { $0.name == "workflow.run" } && spans.filter { $0.name == "task.execute" }.count >= 5
                && spans.contains { $0.name == "/api/v1/workflows/{name}/runs" }
        }
        let trace = spans.filter { $0.traceID == traceID }
        let http = try #require(trace.first { $0.name == "/api/v1/workflows/{name}/runs" }, "\(spans)")
        #expect(http.parentSpanID == callerSpanID, "the API span continues the caller's trace")
        #expect(http.resource["service.name"] == "deerflow-server")
        let workflowRun = try #require(trace.first { $0.name == "workflow.run" }, "\(spans)")
        #expect(workflowRun.parentSpanID == http.spanID)
        let executions = trace.filter { $0.name == "task.execute" }
        #expect(executions.count == 5, "every task.execute is in the caller's trace: \(spans)")
        for execution in executions {
            #expect(execution.parentSpanID == workflowRun.spanID, "\(execution)")
            #expect(execution.resource["service.name"] == "deerflow-worker", "executed by the worker process: \(execution)")
        }
        let tasks = Set(executions.compactMap { span -> String? in
            if case .stringValue(let task)? = span.attributes["deerflow.task_id"] { return task }
            return nil
        })
        #expect(tasks == ["extract", "left", "right", "load", "notify"], "\(executions)")
        // The shell task's output line in the worker's log stream carries its span's ids.
        let extract = try #require(executions.first { $0.attributes["deerflow.task_id"] == .stringValue("extract") })
        let lines = worker.log.split(separator: "\n").compactMap { line -> [String: JSONValue]? in
            guard case .object(let object)? = try? JSONValue(parsing: String(line)) else { return nil }
            return object
        }
        let output = try #require(lines.first { $0["message"] == "extracted" && $0["stream"] == "stdout" }, "\(worker.log.suffix(3000))")
        #expect(output["trace_id"] == .string(traceID) && output["span_id"] == .string(extract.spanID), "\(output)")
        #expect(output["run_id"] == .string(id) && output["task_id"] == "extract" && output["attempt"] == "1", "\(output)")
        // The called service sees the notify task's span as the parent of whatever it does next.
        let notify = try #require(executions.first { $0.attributes["deerflow.task_id"] == .stringValue("notify") })
        let calls = hook.requests
        #expect(calls.count == 1)
        #expect(calls.first?.header("traceparent") == "00-\(traceID)-\(notify.spanID)-01", "\(calls.map(\.headers))")
        #expect(spans.allSatisfy { $0.traceID == traceID || !$0.name.hasPrefix("task.") }, "no task span outside the trace")
    }

    @Test("tracing.ui_url: the UI's run page links the run's trace id to the configured trace UI; a ui_url without {trace_id} is refused")
    func traceLinkInTheUI() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/one.yaml", "name: one\ntasks:\n  - {id: a, type: noop}\n")
        try directory.write("config/tracing.yaml", """
            tracing:
              endpoint: \(receiver.baseURL)/v1/traces
              ui_url: https://jaeger.example.com/trace/{trace_id}?uiFind=x&a=b
            """)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let created = try await TestServer.send(
            "POST", "http://127.0.0.1:\(api)/api/v1/workflows/one/runs", body: "{}", headers: ["traceparent": "00-\(traceID)-00f067aa0ba902b7-01"])
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else { throw ProcessFailure("\(created.text)") }
        let page = try await TestServer.send("GET", "http://127.0.0.1:\(api)/runs/\(id)", body: nil, headers: [:]).text
        #expect(page.contains(#"<a href="https://jaeger.example.com/trace/\#(traceID)?uiFind=x&amp;a=b" rel="noopener">\#(traceID)</a>"#), "\(page)")

        try directory.write("config/tracing.yaml", "tracing:\n  endpoint: \(receiver.baseURL)/v1/traces\n  ui_url: https://jaeger.example.com/trace/\n")
        let refused = try ServerProcess.server(
            database: "sqlite://" + directory.file("db2.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { refused.stop() }
        #expect(try await refused.waitForExit(timeout: .seconds(30)) != 0)
        #expect(refused.log.contains("tracing.yaml:3:") && refused.log.contains("put {trace_id} where the trace's id goes"), "\(refused.log)")
    }

    @Test("with ratio sampling, a sampled run exports its workflow.run and every task.execute beneath it; an unsampled run exports none")
    func ratioSamplingKeepsTracesWhole() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/pair.yaml", """
            name: pair
            tasks:
              - {id: first, type: noop}
              - {id: second, type: shell, script: echo done, depends_on: [first]}
            """)
        // The server creates the runs and executes tasks (continuing the run's span held in
        // memory), and so does a worker process (continuing the context stored with the run).
        let database = "sqlite://" + directory.file("db.sqlite")
        let environment = [
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.baseURL, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5",
            "DEERFLOW_DATABASE_URL": "",
        ]
        let server = try ServerProcess([
            "server", "--workflows", directory.file("workflows"), "--database", database, "--api-port", "0", "--metrics-port", "0",
        ], environment: environment)
        defer { server.stop() }
        let worker = try ServerProcess([
            "worker", "--workflows", directory.file("workflows"), "--database", database, "--metrics-port", "0",
        ], environment: environment)
        defer { worker.stop() }
        _ = try await worker.metricsPort()
        let api = try await server.apiPort()
        var ids: [String] = []
        for _ in 0..<20 {
            let created = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/pair/runs", body: "{}", headers: [:])
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
                Issue.record("no run: \(created.text)")
                return
            }
            ids.append(id)
        }
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: ids, timeout: .seconds(60))
        #expect(runs.values.allSatisfy { $0["status"]?.stringValue == "success" }, "\(runs)")
        // SIGTERM flushes each exporter's batch.
        for process in [server, worker] { process.signal(SIGTERM) }
        for process in [server, worker] { #expect(try await process.waitForExit() == 0, "\(process.log.suffix(2000))") }

        let spans = try receiver.spans().filter { $0.name == "workflow.run" || $0.name == "task.execute" }
        let runSpans = spans.filter { $0.name == "workflow.run" }
        // 20 runs at ratio 0.5: all or none sampled has a probability of 2 in a million.
        #expect((1...19).contains(runSpans.count), "\(runSpans.count) of 20 runs sampled")
        for run in runSpans {
            let tasks = spans.filter { $0.name == "task.execute" && $0.traceID == run.traceID }
            #expect(tasks.count == 2 && tasks.allSatisfy { $0.parentSpanID == run.spanID }, "\(run): \(tasks)")
        }
        let sampledTraces = Set(runSpans.map(\.traceID))
        #expect(spans.filter { $0.name == "task.execute" }.allSatisfy { sampledTraces.contains($0.traceID) }, "a task span of an unsampled run: \(spans)")
    }
}

extension TracingEndToEndTests {
    @Test("parent_based sampling from tracing.yaml decides new traces before swift-otel: a sampled run exports the request, run, task and HTTP client spans; an unsampled one exports nothing and sends traceparent flag 00; a caller's flag decides for its run")
    func headSamplingKeepsW3CSemantics() async throws {
        let receiver = try await OTLPReceiver()
        defer { receiver.stop() }
        let hook = try await TestHTTPServer.start(fallback: .respond(status: 200, headers: [("Content-Type", "application/json")], body: "{}"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/call.yaml", """
            name: call
            tasks:
              - {id: first, type: shell, script: echo first}
              - {id: call, type: http, method: POST, url: "\(hook.url("/hook"))", body: "{}", depends_on: [first]}
            """)
        try directory.write("config/tracing.yaml", """
            tracing:
              endpoint: \(receiver.baseURL)/v1/traces
              sampler: parent_based
              ratio: 0.5
            """)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let sampledCaller = "4bf92f3577b34da6a3ce929d0e0e4736"
        let unsampledCaller = "5cf92f3577b34da6a3ce929d0e0e4737"
        var ids: [String] = []
        for index in 0..<22 {
            var headers = ["Content-Type": "application/json"]
            if index == 20 { headers["traceparent"] = "00-\(sampledCaller)-00f067aa0ba902b7-01" }
            if index == 21 { headers["traceparent"] = "00-\(unsampledCaller)-00f067aa0ba902b7-00" }
            let created = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/call/runs", body: "{}", headers: headers)
            guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else { throw ProcessFailure("no run: \(created.text)") }
            ids.append(id)
        }
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: ids, timeout: .seconds(60))
        #expect(runs.values.allSatisfy { $0["status"]?.stringValue == "success" }, "\(runs)")
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.log.suffix(2000))")
        await hook.stop()

        // Every call carries a well-formed traceparent; its flag says whether the run was sampled.
        let calls = hook.requests.compactMap { $0.header("traceparent") }
        #expect(calls.count == 22, "\(hook.requests.map(\.headers))")
        let parts = calls.map { $0.split(separator: "-").map(String.init) }
        for part in parts {
            #expect(part.count == 4 && part[0] == "00" && part[1].count == 32 && part[2].count == 16 && ["00", "01"].contains(part[3]), "\(part)")
            #expect(part.count == 4 && part[1] != String(repeating: "0", count: 32) && part[2] != String(repeating: "0", count: 16), "\(part)")
        }
        let sampledTraces = Set(parts.filter { $0.count == 4 && $0[3] == "01" }.map { $0[1] })
        let unsampledTraces = Set(parts.filter { $0.count == 4 && $0[3] == "00" }.map { $0[1] })
        #expect(sampledTraces.count + unsampledTraces.count == 22, "one trace per run: \(calls)")
        #expect(sampledTraces.contains(sampledCaller) && unsampledTraces.contains(unsampledCaller), "\(calls)")
        // 20 new traces at ratio 0.5: all or none sampled has a probability of 2 in a million.
        #expect((2...20).contains(sampledTraces.count), "\(sampledTraces.count - 1) of 20 new traces sampled")

        // (The test's own status polls are traces of their own, sampled at the same ratio.)
        let spans = try receiver.spans().filter { $0.name != "/api/v1/runs/{id}" }
        #expect(Set(spans.map(\.traceID)) == sampledTraces, "exported traces are exactly the sampled ones: \(spans.map { ($0.name, $0.traceID) })")
        for trace in sampledTraces {
            let names = spans.filter { $0.traceID == trace }.map(\.name).sorted()
            #expect(names == ["/api/v1/workflows/{name}/runs", "POST", "task.execute", "task.execute", "workflow.run"], "\(trace): \(names)")
        }
        // An unsampled run's task log lines still carry its trace id.
        let unsampledRoot = try #require(unsampledTraces.first { $0 != unsampledCaller })
        let logged = server.log.split(separator: "\n").contains { $0.contains(#""message":"first""#) && $0.contains(#""trace_id":"\#(unsampledRoot)""#) }
        #expect(logged, "no log line with the unsampled trace \(unsampledRoot): \(server.log.suffix(3000))")
    }
}
