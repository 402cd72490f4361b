import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import InMemoryTracing
import Logging
import Synchronization
import Testing
import Tracing

/// Spans of runs, tasks and API calls, recorded by an in-memory tracer.
@Suite("Tracing (in-memory tracer)")
struct TracingTests {
    static func pipeline() -> Workflow {
        let attempts = Mutex(0)
        let flow = Workflow(name: "traced")
        flow.task(id: "extract") { _ in "rows" }
        flow.task(id: "flaky", dependsOn: ["extract"], retries: 1, retryDelay: .milliseconds(10)) { context in
            let attempt = attempts.withLock { value -> Int in
                value += 1
                return value
            }
            // Task code makes child spans with the ordinary API.
            withSpan("process_batch") { span in
                span.attributes["batch_size"] = 100
            }
            if attempt == 1 { throw TestFailure("first attempt fails") }
        }
        return flow
    }

    @Test("API request → workflow.run → task.execute spans with their queue wait, retries as siblings, errors recorded")
    func spanTree() async throws {
        let tracer = InMemoryTracer()
        try await withTracer(tracer) {
            try await withTestServer(workflows: [Self.pipeline()]) { server in
                // The caller's own span: the request continues it.
                let caller = tracer.startSpan("caller")
                var headers: [String: String] = [:]
                tracer.inject(caller.context, into: &headers, using: DictionaryInjector())
                // A client that adds no trace headers of its own (AsyncHTTPClient's depend on the
                // tracer its shared client was created with).
                let answer = try await RawHTTP.send(
                    port: server.apiPort, method: "POST", target: "/api/v1/workflows/traced/runs",
                    headers: headers.map { ($0.key, $0.value) }, body: "{}")
                let created = (status: answer.status, json: try? JSONValue(parsing: answer.body))
                caller.end()
                guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
                    Issue.record("no run: \(answer.body)")
                    return
                }
                _ = try await server.engine.waitForRun(RunID(rawValue: id), pollInterval: .milliseconds(20))
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline, !tracer.finishedSpans.contains(where: { $0.operationName == "workflow.run" }) {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let spans = tracer.finishedSpans
                func named(_ name: String) -> [FinishedInMemorySpan] { spans.filter { $0.operationName == name } }
                let http = try #require(named("/api/v1/workflows/{name}/runs").first)
                let callerSpan = try #require(named("caller").first)
                #expect(http.spanContext.traceID == callerSpan.spanContext.traceID)
                let parentOfServer = spans.first { $0.spanContext.spanID == http.spanContext.parentSpanID }
                #expect(http.spanContext.parentSpanID == callerSpan.spanContext.spanID || parentOfServer?.spanContext.parentSpanID == callerSpan.spanContext.spanID,
                        "the server span continues the caller's trace")
                #expect(http.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(201))
                let runSpan = try #require(named("workflow.run").first)
                #expect(runSpan.spanContext.parentSpanID == http.spanContext.spanID)
                #expect(runSpan.attributes["deerflow.run_id"]?.toSpanAttribute() == .string(id))
                #expect(runSpan.attributes["deerflow.workflow"]?.toSpanAttribute() == .string("traced"))
                #expect(runSpan.status?.code == .ok)
                let executions = named("task.execute")
                #expect(executions.count == 3, "extract, flaky #1, flaky #2")
                for span in executions {
                    #expect(span.spanContext.parentSpanID == runSpan.spanContext.spanID, "\(span.operationName) is a child of the run span")
                    #expect(span.spanContext.traceID == callerSpan.spanContext.traceID)
                }
                func attempt(_ span: FinishedInMemorySpan) -> Int64 {
                    if case .int64(let number)? = span.attributes["deerflow.attempt"]?.toSpanAttribute() { return number }
                    return 0
                }
                let flaky = executions.filter { $0.attributes["deerflow.task_id"]?.toSpanAttribute() == .string("flaky") }
                    .sorted { attempt($0) < attempt($1) }
                #expect(flaky.map { $0.attributes["deerflow.attempt"]?.toSpanAttribute() } == [.int64(1), .int64(2)])
                #expect(flaky.first?.status?.code == .error)
                #expect(flaky.first?.errors.isEmpty == false)
                #expect(flaky.last?.status?.code == .ok)
                for key in ["deerflow.workflow", "deerflow.run_id", "deerflow.task_id", "deerflow.task.type", "deerflow.attempt", "deerflow.queue"] {
                    #expect(flaky.first?.attributes[key] != nil, "missing \(key)")
                }
                // Time in the queue: an attribute and a `dequeued` event at the span's start.
                for span in executions {
                    guard case .double(let waited)? = span.attributes["deerflow.queue.wait_ms"]?.toSpanAttribute() else {
                        Issue.record("no deerflow.queue.wait_ms on \(span.operationName)")
                        continue
                    }
                    #expect(waited >= 0)
                    let event = span.events.first { $0.name == "dequeued" }
                    #expect(event?.nanosecondsSinceEpoch == span.startInstant.nanosecondsSinceEpoch)
                    #expect(event?.attributes["deerflow.queue.wait_ms"]?.toSpanAttribute() == .double(waited))
                }
                #expect(named("task.queued").isEmpty)
                // The task's own spans are children of its task.execute span.
                let batches = named("process_batch")
                #expect(batches.count == 2)
                #expect(Set(batches.compactMap(\.spanContext.parentSpanID)) == Set(flaky.map(\.spanContext.spanID)))
            }
        }
    }

    @Test("\"run finished\" is logged in the run's trace context, so it carries the trace_id \"run created\" has")
    func runFinishedCarriesTheTrace() async throws {
        let tracer = InMemoryTracer()
        let lines = LogRecorder(level: .info)
        let flow = Workflow(name: "logged")
        flow.task(TaskDefinition(id: "a", action: .noop))
        try await withTracer(tracer) {
            try await withEngine(workflows: [flow]) { engine in
                engine.addObserver(LoggingObserver(logger: lines.logger, engine: engine))
                let caller = tracer.startSpan("caller")
                defer { caller.end() }
                let run = try await ServiceContext.withValue(caller.context) { try await engine.trigger("logged") }
                _ = try await engine.waitForRun(run.id, pollInterval: .milliseconds(20))
                let trace = try #require(caller.context.inMemorySpanContext?.traceID)
                try await eventually("run finished was logged") { lines.traceIDs(of: "run finished").count == 1 }
                #expect(lines.traceIDs(of: "run created") == [trace])
                #expect(lines.traceIDs(of: "run finished") == [trace], "\(lines.traceIDs(of: "run finished"))")
            }
        }
    }

    @Test("a scheduled run's span is a root with the schedule attribute")
    func scheduledRoot() async throws {
        let tracer = InMemoryTracer()
        let flow = Workflow(name: "nightly", schedule: "0 2 * * *", timeZone: "Europe/Berlin")
        flow.task(TaskDefinition(id: "a", action: .noop))
        let registry = try WorkflowRegistry([flow])
        try await withTracer(tracer) {
            try await withEngine(workflows: [flow]) { engine in
                let entry = try #require(registry["nightly"])
                let newRun = try engine.makeRunForTesting(entry)
                _ = try await engine.store.createRun(newRun)
                engine.wakeLocalWorkersForTesting()
                _ = try await engine.waitForRun(newRun.id, pollInterval: .milliseconds(20))
            }
        }
        let run = try #require(tracer.finishedSpans.first { $0.operationName == "workflow.run" })
        #expect(run.spanContext.parentSpanID == nil)
        #expect(run.attributes["deerflow.schedule"]?.toSpanAttribute() == .string("0 2 * * * (Europe/Berlin)"))
        #expect(run.attributes["deerflow.trigger"]?.toSpanAttribute() == .string("schedule"))
    }

    @Test("inject and extract round-trip a context through headers")
    func injectExtract() async throws {
        let tracer = InMemoryTracer()
        withTracer(tracer) {
            let span = tracer.startSpan("outer")
            var headers: [String: String] = [:]
            DeerFlowTracing.inject(span.context, into: &headers)
            #expect(!headers.isEmpty)
            let context = DeerFlowTracing.extract(from: headers)
            let child = tracer.startSpan("inner", context: context)
            #expect(child.context.inMemorySpanContext?.parentSpanID == span.context.inMemorySpanContext?.spanID)
            child.end()
            span.end()
        }
    }
}
