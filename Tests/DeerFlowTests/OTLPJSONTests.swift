import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import OTel
import Testing
import Tracing

/// Why `protocol: http/json` is refused (TracingConfigFile.protocolProblem): swift-otel's OTLP/JSON
/// writes trace and span ids base64-encoded, where the OTLP/JSON specification wants lowercase hex
/// (`"traceId": "5b8efff798038103d269b633813fc60c"`), so a collector answers 400.
@Suite("OTLP/JSON ids (swift-otel)")
struct OTLPJSONTests {
    @Test("swift-otel's http/json export writes the trace id of a span; the spec's form is the hex of its traceparent")
    func traceIDEncoding() async throws {
        let collector = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "{}"))
        defer { Task { await collector.stop() } }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "deerflow-test"
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = collector.url("/v1/traces")
        configuration.traces.otlpExporter.protocol = .httpJSON
        configuration.traces.sampler = .alwaysOn
        configuration.traces.batchSpanProcessor.scheduleDelay = .milliseconds(50)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        let quiet = Logger(label: "deerflow.test", factory: { _ in SwiftLogNoOpLogHandler() })
        let traceparent = try await withServices([service], logger: quiet) {
            let span = tracer.startSpan("probe", context: .topLevel)
            var headers: [String: String] = [:]
            tracer.inject(span.context, into: &headers, using: DictionaryInjector())
            span.end()
            try await eventually("the span was exported", timeout: .seconds(60)) { !collector.requests.isEmpty }
            return headers["traceparent"] ?? ""
        }
        // The W3C traceparent carries the trace id as the OTLP/JSON specification wants it: hex.
        let fields = traceparent.split(separator: "-")
        try #require(fields.count == 4, "traceparent \(traceparent)")
        let hex = String(fields[1])
        let body = try #require(collector.requests.first?.body)
        let exported = try #require(Self.traceID(in: body), "no traceId in \(body)")
        withKnownIssue("swift-otel writes OTLP/JSON ids base64-encoded; once this passes, http/json can be accepted again") {
            #expect(exported == hex, "exported \(exported), the specification's form is \(hex)")
        }
        // What it writes instead: the same 16 bytes, base64-encoded.
        let bytes = stride(from: 0, to: hex.count, by: 2).compactMap { offset -> UInt8? in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)
        }
        #expect(exported == Data(bytes).base64EncodedString() || exported == hex, "\(exported)")
    }

    /// `resourceSpans[0].scopeSpans[0].spans[0].traceId` of an OTLP/JSON export request.
    static func traceID(in body: String) -> String? {
        guard case .object(let request)? = try? JSONValue(parsing: body),
              case .array(let resources)? = request["resourceSpans"], case .object(let resource)? = resources.first,
              case .array(let scopes)? = resource["scopeSpans"], case .object(let scope)? = scopes.first,
              case .array(let spans)? = scope["spans"], case .object(let span)? = spans.first
        else { return nil }
        return span["traceId"]?.stringValue
    }
}
