@testable import DeerFlow
import InMemoryTracing
import Testing
import Tracing

@Suite("Trace context stored with runs")
struct StoredTraceContextTests {
    @Test("a run's context round-trips through the stored text, several keys and '=' in values included")
    func roundTrip() {
        let tracer = InMemoryTracer()
        let span = tracer.startSpan("workflow.run")
        defer { span.end() }
        let stored = StoredTraceContext.encode(span.context, tracer: tracer)
        #expect(stored?.contains("\n") == true, "the in-memory tracer injects two keys: \(stored ?? "nil")")
        let context = StoredTraceContext.decode(stored, tracer: tracer).context
        #expect(context.inMemorySpanContext?.traceID == span.context.inMemorySpanContext?.traceID)
        #expect(context.inMemorySpanContext?.spanID == span.context.inMemorySpanContext?.spanID)
        let carrier = StoredTraceContext.carrier("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\ntracestate=rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        #expect(carrier == [
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        ])
    }

    @Test("contexts stored as JSON by earlier versions still decode; empty and nil give none")
    func legacyJSON() {
        let carrier = StoredTraceContext.carrier(#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#)
        #expect(carrier == ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
        #expect(StoredTraceContext.carrier(nil).isEmpty)
        #expect(StoredTraceContext.carrier("").isEmpty)
    }

    @Test("the stored traceparent's sampled flag decides whether a task gets a span; without a readable one it does")
    func sampledFlag() {
        #expect(StoredTraceContext.isSampled(StoredTraceContext.carrier("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")))
        #expect(!StoredTraceContext.isSampled(StoredTraceContext.carrier("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")))
        #expect(!StoredTraceContext.isSampled(StoredTraceContext.carrier("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\ntracestate=rojo=1")))
        #expect(StoredTraceContext.isSampled(StoredTraceContext.carrier("traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")))
        #expect(!StoredTraceContext.isSampled(StoredTraceContext.carrier(#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}"#)))
        #expect(StoredTraceContext.isSampled(StoredTraceContext.carrier(nil)))
        #expect(StoredTraceContext.isSampled(StoredTraceContext.carrier("traceparent=garbage")))
    }
}
