import DeerFlowCore
import Instrumentation
import Logging
import Synchronization
import Tracing

/// Decides whether a new trace is sampled before swift-otel sees it, and makes the spans of a
/// trace that is not sampled without calling into swift-otel at all.
///
/// With a `parent_based` sampler and a ratio below 1, most traces are not recorded, yet swift-otel
/// still generates ids (one `getrandom` each), runs its sampler and builds a span for each of them:
/// about 4 µs per run, as much as DeerFlow's whole budget for tracing at ratio 0.01. Here a new
/// trace (a span without a parent) is sampled with probability `ratio`; a sampled one goes to
/// swift-otel, configured to record every root it is given and to follow the parent below it, so
/// the decision is made once. A trace that is not sampled gets ids of its own and the W3C flags
/// `00`: its spans record nothing, `traceparent` carries `…-00` to tasks and downstream services,
/// and log lines carry its `trace_id`. Spans with a parent (a caller's `traceparent`, a sampled
/// span) are swift-otel's, as before.
struct HeadSamplingTracer<Inner: Tracer>: Tracer {
    typealias Span = HeadSampledSpan<Inner.Span>

    let inner: Inner
    /// A new trace is sampled when its draw is below this: 0 never, `.max` always.
    let bound: UInt64

    init(inner: Inner, ratio: Double) {
        self.inner = inner
        bound = ratio <= 0 ? 0 : ratio >= 1 ? .max : UInt64(ratio * Double(UInt64.max))
    }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> Span {
        var context = context()
        switch context[HeadSamplingKey.self] {
        case .unsampled(let trace)?:
            // Below a span that is not sampled: not sampled either (what `parent_based` decides).
            context[HeadSamplingKey.self] = .unsampled(UnsampledTrace(high: trace.high, low: trace.low, spanID: TraceIDs.next()))
            return Span(unsampled: context, operationName: operationName)
        case .parent?:
            break
        case nil:
            let draw = TraceIDs.next()
            guard bound == .max || draw < bound else {
                context[HeadSamplingKey.self] = .unsampled(UnsampledTrace(high: TraceIDs.next(), low: draw, spanID: TraceIDs.next()))
                return Span(unsampled: context, operationName: operationName)
            }
        }
        return Span(recorded: inner.startSpan(operationName, context: context, ofKind: kind, at: instant(), function: function, file: fileID, line: line))
    }

    @available(*, deprecated, message: "deprecated by swift-distributed-tracing; passed on")
    func forceFlush() { inner.forceFlush() }

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject) where Inject.Carrier == Carrier {
        if case .unsampled(let trace)? = context[HeadSamplingKey.self] {
            injector.inject(trace.traceparent, forKey: "traceparent", into: &carrier)
        } else {
            inner.inject(context, into: &carrier, using: injector)
        }
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract) where Extract.Carrier == Carrier {
        let before = context.count
        inner.extract(carrier, into: &context, using: extractor)
        // swift-otel adds its span context only for a valid `traceparent` (the only propagator
        // DeerFlow allows): the trace has a parent now, and its flags decide.
        if context.count > before { context[HeadSamplingKey.self] = .parent }
    }
}

/// A span of ``HeadSamplingTracer``: swift-otel's, or one of a trace that is not sampled, which
/// only carries its context.
struct HeadSampledSpan<Inner: Tracing.Span>: Tracing.Span {
    let recorded: Inner?
    let context: ServiceContext
    private let name: String

    init(recorded: Inner) {
        self.recorded = recorded
        var context = recorded.context
        context[HeadSamplingKey.self] = .parent
        self.context = context
        name = ""
    }

    init(unsampled context: ServiceContext, operationName: String) {
        recorded = nil
        self.context = context
        name = operationName
    }

    var operationName: String {
        get { recorded?.operationName ?? name }
        nonmutating set { recorded?.operationName = newValue }
    }

    var attributes: SpanAttributes {
        get { recorded?.attributes ?? [:] }
        nonmutating set { recorded?.attributes = newValue }
    }

    var isRecording: Bool { recorded?.isRecording ?? false }

    func setStatus(_ status: SpanStatus) { recorded?.setStatus(status) }
    func addEvent(_ event: SpanEvent) { recorded?.addEvent(event) }
    func addLink(_ link: SpanLink) { recorded?.addLink(link) }

    func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        recorded?.recordError(error, attributes: attributes, at: instant())
    }

    func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        recorded?.end(at: instant())
    }
}

/// What ``HeadSamplingTracer`` knows of a context's trace.
enum HeadSampling: Sendable {
    /// swift-otel holds the span context (sampled or not): it decides below it.
    case parent
    /// A trace that is not sampled, made here.
    case unsampled(UnsampledTrace)

    /// Adds `trace_id`, `span_id` and `trace_flags` of the current span to log records: a trace
    /// that is not sampled from ``HeadSamplingTracer``'s context, others from swift-otel's provider.
    static func loggingMetadataProvider(otel: Logger.MetadataProvider) -> Logger.MetadataProvider {
        Logger.MetadataProvider {
            guard let context = ServiceContext.current else { return [:] }
            if case .unsampled(let trace)? = context[HeadSamplingKey.self] {
                return ["trace_id": "\(trace.traceID)", "span_id": "\(TraceIDs.hex(trace.spanID))", "trace_flags": "0"]
            }
            return otel.get()
        }
    }
}

enum HeadSamplingKey: ServiceContextKey {
    typealias Value = HeadSampling
}

/// Ids of a trace that is not sampled: the trace id as two halves, the current span's id.
struct UnsampledTrace: Sendable {
    let high: UInt64
    let low: UInt64
    let spanID: UInt64

    var traceID: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            TraceIDs.writeHex(high, into: buffer, at: 0)
            TraceIDs.writeHex(low, into: buffer, at: 16)
            return 32
        }
    }

    /// W3C `traceparent` with the flags `00` (not sampled): `00-<trace id>-<span id>-00`.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            let zero = UInt8(ascii: "0"), dash = UInt8(ascii: "-")
            (buffer[0], buffer[1], buffer[2], buffer[35], buffer[52], buffer[53], buffer[54]) = (zero, zero, dash, dash, dash, zero, zero)
            TraceIDs.writeHex(high, into: buffer, at: 3)
            TraceIDs.writeHex(low, into: buffer, at: 19)
            TraceIDs.writeHex(spanID, into: buffer, at: 36)
            return 55
        }
    }
}

/// Random ids for traces that are not sampled: ``ProcessRandom``'s numbers (seeded once per
/// process, no system call per id), never zero as W3C asks; not secrets.
enum TraceIDs {
    /// The next 64 random bits, never zero.
    static func next() -> UInt64 {
        var random = ProcessRandom()
        let value = random.next()
        return value == 0 ? 1 : value
    }

    /// 16 lower-case hex digits.
    static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            writeHex(value, into: buffer, at: 0)
            return 16
        }
    }

    /// Writes 16 lower-case hex digits of `value` from `offset` on.
    static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
            buffer[offset + index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }
}
