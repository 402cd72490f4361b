import DeerFlowCore
import Foundation
import Tracing
public import Instrumentation

/// Trace context helpers: what the monitoring chapter calls `inject_context` / `extract_context`.
///
/// ```swift
/// var headers: [String: String] = [:]
/// DeerFlowTracing.inject(into: &headers)            // traceparent / tracestate of the current span
/// request.headers = headers
///
/// let parent = DeerFlowTracing.extract(from: incoming.headers)
/// try await withSpan("downstream", context: parent) { span in ... }
/// ```
public enum DeerFlowTracing {
    /// Writes the context (default: the current one) into a header dictionary, as W3C
    /// `traceparent` / `tracestate` with the OpenTelemetry tracer.
    public static func inject(_ context: ServiceContext = .current ?? .topLevel, into headers: inout [String: String]) {
        InstrumentationSystem.tracer.inject(context, into: &headers, using: DictionaryInjector())
    }

    /// Reads a context out of a header dictionary (keys are matched case-insensitively).
    public static func extract(from headers: [String: String]) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.tracer.extract(headers, into: &context, using: DictionaryExtractor())
        return context
    }

    /// Span attribute keys DeerFlow sets.
    public enum Attribute {
        public static let workflow = "deerflow.workflow"
        public static let runID = "deerflow.run_id"
        public static let taskID = "deerflow.task_id"
        public static let taskType = "deerflow.task.type"
        public static let attempt = "deerflow.attempt"
        public static let queue = "deerflow.queue"
        /// Milliseconds the attempt waited in its queue (on `task.execute` and its `dequeued` event).
        public static let queueWait = "deerflow.queue.wait_ms"
        public static let trigger = "deerflow.trigger"
        public static let schedule = "deerflow.schedule"
        public static let status = "deerflow.status"
    }
}

/// Writes into `[String: String]`.
public struct DictionaryInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// Reads from `[String: String]`, ignoring the case of keys.
public struct DictionaryExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: [String: String]) -> String? {
        if let value = carrier[key] { return value }
        let lowered = key.lowercased()
        return carrier.first { $0.key.lowercased() == lowered }?.value
    }
}

/// A `Date` as a tracing instant (spans that start or end at a recorded time).
struct DateInstant: TracerInstant {
    let nanosecondsSinceEpoch: UInt64

    init(_ date: Date) {
        nanosecondsSinceEpoch = UInt64(max(0, date.timeIntervalSince1970 * 1_000_000_000))
    }

    static func < (lhs: DateInstant, rhs: DateInstant) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

/// Trace context stored with a run: the injected carrier as `key=value` lines (header names have
/// no `=` and header values no line breaks), e.g. `traceparent=00-4bf9…-00f0…-01`. Parsed for every
/// attempt, so it is kept simpler than JSON; rows written as a JSON object by earlier versions
/// still decode.
enum StoredTraceContext {
    static func encode(_ context: ServiceContext, tracer: any Tracer) -> String? {
        var carrier: [String: String] = [:]
        tracer.inject(context, into: &carrier, using: DictionaryInjector())
        guard !carrier.isEmpty else { return nil }
        if carrier.count == 1, let (key, value) = carrier.first { return key + "=" + value }
        return carrier.sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }.joined(separator: "\n")
    }

    static func carrier(_ stored: String?) -> [String: String] {
        guard let stored, !stored.isEmpty else { return [:] }
        if stored.utf8.first == UInt8(ascii: "{") {
            guard case .object(let object)? = try? JSONValue(parsing: stored) else { return [:] }
            return object.compactMapValues(\.stringValue)
        }
        var carrier: [String: String] = [:]
        for line in stored.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            carrier[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return carrier
    }

    /// Whether a carrier's `traceparent` says its trace is sampled (flag bit 0 of the last field);
    /// true when there is none or it cannot be read, so that a span is made and decides.
    static func isSampled(_ carrier: [String: String]) -> Bool {
        guard let value = carrier["traceparent"] else { return true }
        let fields = value.split(separator: "-")
        guard fields.count >= 4, let flags = UInt8(fields[3], radix: 16) else { return true }
        return flags & 1 == 1
    }

    /// The run's context and whether its trace is sampled, from the stored text (parsed once).
    static func decode(_ stored: String?, tracer: any Tracer) -> (context: ServiceContext, sampled: Bool) {
        var context = ServiceContext.topLevel
        let carrier = carrier(stored)
        guard !carrier.isEmpty else { return (context, true) }
        tracer.extract(carrier, into: &context, using: DictionaryExtractor())
        return (context, isSampled(carrier))
    }
}

extension Tracer {
    /// Whether spans are recorded at all (false for the no-op tracer, when tracing is off).
    var isRecording: Bool { !(self is NoOpTracer) }
}
