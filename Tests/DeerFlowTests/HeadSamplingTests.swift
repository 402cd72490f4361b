@testable import DeerFlowObservability
import DeerFlow
import InMemoryTracing
import Logging
import Testing
import Tracing

/// The sampling decision DeerFlow makes for new traces before swift-otel (`HeadSamplingTracer`),
/// against an in-memory tracer standing in for swift-otel: a trace that is not sampled must not
/// reach it at all.
@Suite("Head sampling")
struct HeadSamplingTests {
    @Test("a new trace reaches the inner tracer with probability ratio; an unsampled trace and every span below it never do")
    func newTracesAreSampledAtTheRatio() {
        let inner = InMemoryTracer()
        for (ratio, range) in [(0.0, 0...0), (1.0, 2_000...2_000), (0.25, 400...600)] {
            inner.clearAll(includingActive: true)
            let tracer = HeadSamplingTracer(inner: inner, ratio: ratio)
            var unsampled = 0
            for _ in 0..<2_000 {
                let root = tracer.startSpan("workflow.run", context: .topLevel)
                if !root.isRecording {
                    unsampled += 1
                    let child = tracer.startSpan("task.execute", context: root.context)
                    #expect(!child.isRecording)
                    child.end()
                }
                root.end()
            }
            #expect(range.contains(inner.finishedSpans.count), "ratio \(ratio): \(inner.finishedSpans.count) of 2,000 sampled")
            #expect(inner.finishedSpans.count + unsampled == 2_000)
            #expect(inner.finishedSpans.allSatisfy { $0.operationName == "workflow.run" })
        }
    }

    @Test("an unsampled trace passes on a W3C traceparent with flag 00 and its own ids; a child keeps the trace id and gets a new span id")
    func unsampledTracesCarryW3CContext() throws {
        let tracer = HeadSamplingTracer(inner: InMemoryTracer(), ratio: 0)
        let root = tracer.startSpan("workflow.run", context: .topLevel)
        let child = tracer.startSpan("task.execute", context: root.context)
        var rootHeaders: [String: String] = [:]
        var childHeaders: [String: String] = [:]
        tracer.inject(root.context, into: &rootHeaders, using: DictionaryInjector())
        tracer.inject(child.context, into: &childHeaders, using: DictionaryInjector())
        let rootParts = try #require(rootHeaders["traceparent"]).split(separator: "-").map(String.init)
        let childParts = try #require(childHeaders["traceparent"]).split(separator: "-").map(String.init)
        #expect(rootParts.count == 4 && rootParts[0] == "00" && rootParts[1].count == 32 && rootParts[2].count == 16 && rootParts[3] == "00", "\(rootParts)")
        #expect(rootParts[1].allSatisfy(\.isHexDigit) && rootParts[1] != String(repeating: "0", count: 32))
        #expect(childParts[1] == rootParts[1] && childParts[2] != rootParts[2] && childParts[3] == "00", "\(childParts)")

        let metadata = ServiceContext.withValue(child.context) {
            HeadSampling.loggingMetadataProvider(otel: Logger.MetadataProvider { [:] }).get()
        }
        #expect(metadata["trace_id"] == .string(rootParts[1]) && metadata["span_id"] == .string(childParts[2]) && metadata["trace_flags"] == "0", "\(metadata)")
    }

    @Test("a span with a parent the inner tracer extracted (a caller's traceparent) is the inner tracer's, whatever the ratio")
    func extractedParentsDecideThemselves() {
        let inner = InMemoryTracer()
        let tracer = HeadSamplingTracer(inner: inner, ratio: 0)
        var context = ServiceContext.topLevel
        tracer.extract([InMemoryTracer.traceIDKey: "trace-1", InMemoryTracer.spanIDKey: "span-1"], into: &context, using: DictionaryExtractor())
        let span = tracer.startSpan("POST /runs", context: context)
        let child = tracer.startSpan("workflow.run", context: span.context)
        child.end()
        span.end()
        #expect(inner.finishedSpans.map(\.operationName) == ["workflow.run", "POST /runs"])

        // A carrier without a context leaves the trace new: decided by the ratio (0 here).
        var empty = ServiceContext.topLevel
        tracer.extract(["other": "x"], into: &empty, using: DictionaryExtractor())
        #expect(!tracer.startSpan("GET /runs", context: empty).isRecording)
    }
}
