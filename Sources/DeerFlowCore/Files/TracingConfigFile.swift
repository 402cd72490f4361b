import Foundation

/// Settings of `tracing.yaml`. Tracing is off unless this file enables it or an
/// `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variable is set; the
/// standard `OTEL_*` variables override the file.
///
/// ```yaml
/// tracing:
///   enabled: true
///   endpoint: http://otel-collector:4318/v1/traces   # OTLP over HTTP
///   protocol: http/protobuf                          # the only one: http/json and gRPC are refused
///   service_name: deerflow
///   headers: {authorization: "Bearer ${OTEL_TOKEN}"}
///   sampler: parent_based                            # always | never | ratio | parent_based
///   ratio: 0.1                                       # for ratio and parent_based
///   ui_url: https://jaeger.example.com/trace/{trace_id}   # the UI links a run's trace there
///   batch:
///     max_size: 512
///     interval: 5s
///     queue_size: 2048
///     export_timeout: 30s
/// ```
public struct TracingConfigFile: Sendable, Hashable {
    /// How spans are sampled.
    public enum Sampler: String, Sendable, Hashable, CaseIterable {
        /// Every span.
        case always
        /// No span.
        case never
        /// A share of traces (`ratio`), decided by trace id.
        case ratio
        /// Follow the caller's sampling decision; for new traces, `ratio` (default 1.0).
        case parentBased = "parent_based"
    }

    public var enabled: Bool = false
    /// Full URL of the OTLP/HTTP traces endpoint; default `http://localhost:4318/v1/traces`.
    public var endpoint: String?
    /// `http/protobuf`, the only protocol accepted (see ``protocolProblem(_:)``).
    public var protocolName: String = "http/protobuf"
    public var serviceName: String = "deerflow"
    /// Where a trace is shown (Jaeger, Tempo, Honeycomb…), with `{trace_id}` where its id goes;
    /// the UI's run page links the run's trace there. nil: no link.
    public var uiURL: String?
    public var headers: [String: String] = [:]
    public var sampler: Sampler = .parentBased
    public var ratio: Double = 1.0
    public var batchMaxSize: Int = 512
    public var batchInterval: Duration = .seconds(5)
    public var queueSize: Int = 2048
    public var exportTimeout: Duration = .seconds(30)

    public init() {}

    /// Reads `tracing.yaml`; `${VAR}` is replaced from `environment`.
    public static func parse(yaml: String, file: String, environment: [String: String]) throws(FileErrors) -> TracingConfigFile {
        let reader = YAMLReader(file: file, environment: environment)
        var config = TracingConfigFile()
        if let root = reader.read(yaml), !root.isNull, let top = root.mapping(allowedKeys: ["tracing"]), let section = section(of: top) {
            config = section
        }
        try reader.throwIfErrors()
        return config
    }

    /// The `tracing:` section of a file's top-level mapping (`tracing.yaml`, or `deerflow.yaml`);
    /// nil when there is none. Problems are recorded on the mapping's reader.
    static func section(of top: YAMLMapping) -> TracingConfigFile? {
        guard let tracing = top.mapping("tracing", allowedKeys: ["enabled", "endpoint", "protocol", "service_name", "headers", "sampler", "ratio", "batch", "ui_url"]) else {
            return nil
        }
        var config = TracingConfigFile()
        config.enabled = tracing.bool("enabled") ?? true
        if let node = tracing.optional("endpoint"), let endpoint = node.string() {
            if let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil {
                config.endpoint = endpoint
            } else {
                node.fail("'\(endpoint)' is not an http(s) URL (e.g. http://otel-collector:4318/v1/traces)")
            }
        }
        if let node = tracing.optional("protocol"), let value = node.string() {
            if let problem = protocolProblem(value) { node.fail(problem) } else { config.protocolName = value }
        }
        if let name = tracing.string("service_name") { config.serviceName = name }
        if let node = tracing.optional("ui_url"), let template = node.string() {
            let example = template.replacingOccurrences(of: "{trace_id}", with: "0")
            if !template.contains("{trace_id}") {
                node.fail("put {trace_id} where the trace's id goes, e.g. https://jaeger.example.com/trace/{trace_id}")
            } else if URL.http(example) != nil {
                config.uiURL = template
            } else {
                node.fail("'\(template)' is not an http(s) URL (e.g. https://jaeger.example.com/trace/{trace_id})")
            }
        }
        if let headers = tracing.stringMap("headers") { config.headers = headers }
        if let sampler = tracing.optional("sampler")?.oneOf(Sampler.self, what: "sampler") { config.sampler = sampler }
        if let node = tracing.optional("ratio"), let ratio = node.double() {
            if (0...1).contains(ratio) { config.ratio = ratio } else { node.fail("must be between 0 and 1, got \(ratio)") }
        }
        if let batch = tracing.mapping("batch", allowedKeys: ["max_size", "interval", "queue_size", "export_timeout"]) {
            if let node = batch.optional("max_size"), let size = node.int() {
                if size >= 1 { config.batchMaxSize = size } else { node.fail("must be at least 1") }
            }
            if let node = batch.optional("queue_size"), let size = node.int() {
                if size >= 1 { config.queueSize = size } else { node.fail("must be at least 1") }
            }
            if let interval = batch.duration("interval") { config.batchInterval = interval }
            if let timeout = batch.duration("export_timeout") { config.exportTimeout = timeout }
        }
        if config.batchMaxSize > config.queueSize, let node = tracing.optional("batch") {
            node.fail("max_size (\(config.batchMaxSize)) must not exceed queue_size (\(config.queueSize))")
        }
        return config
    }

    /// Reads the file at `path`.
    public static func load(path: String, environment: [String: String]) throws(FileErrors) -> TracingConfigFile {
        try parse(yaml: try ConfigFileText.read(path), file: path, environment: environment)
    }

    /// Why an OTLP protocol cannot be used, or nil when it can.
    public static func protocolProblem(_ value: String) -> String? {
        switch value.lowercased() {
        case "http/protobuf": return nil
        case "http/json":
            return "OTLP http/json is not supported: swift-otel, which DeerFlow exports spans with, writes trace and span ids "
                + "base64-encoded where the OTLP/JSON specification wants hex, so a collector answers 400 and every span is lost; "
                + "use protocol http/protobuf (the default, on the same port 4318)"
        case "grpc": return "OTLP over gRPC is not supported by this build; use protocol http/protobuf (port 4318) — collectors accept both"
        default: return "unknown OTLP protocol '\(value)' (use http/protobuf)"
        }
    }

    /// Warnings about settings that load but are likely wrong (an endpoint on the gRPC port).
    public var warnings: [String] {
        endpoint.flatMap(Self.endpointWarning).map { [$0] } ?? []
    }

    /// A warning for an OTLP endpoint on port 4317, where collectors serve OTLP over gRPC: DeerFlow
    /// exports OTLP over HTTP (port 4318), so every export to it would fail. Nil for other endpoints.
    public static func endpointWarning(_ endpoint: String) -> String? {
        guard let url = URL(string: endpoint), url.port == 4317 else { return nil }
        var suggestion = URLComponents(string: endpoint)
        suggestion?.port = 4318
        if suggestion?.path.isEmpty ?? false || suggestion?.path == "/" { suggestion?.path = "/v1/traces" }
        return "endpoint \(endpoint) is on port 4317, where collectors serve OTLP over gRPC; DeerFlow exports OTLP over HTTP, "
            + "which collectors serve on port 4318 (\(suggestion?.string ?? "http://HOST:4318/v1/traces")), so every export to it would fail"
    }

    /// Problems with `OTEL_*` variables that the OpenTelemetry library would otherwise only find by
    /// crashing (gRPC, unsupported samplers and propagators).
    public static func environmentProblems(_ environment: [String: String]) -> [String] {
        var problems: [String] = []
        for key in ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] {
            if let value = environment[key], !value.isEmpty, let problem = protocolProblem(value) { problems.append("\(key)=\(value): \(problem)") }
        }
        let samplers = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"]
        if let value = environment["OTEL_TRACES_SAMPLER"], !value.isEmpty, !samplers.contains(value.lowercased()) {
            problems.append("OTEL_TRACES_SAMPLER=\(value) is not supported (use one of \(samplers.joined(separator: ", ")))")
        }
        if let value = environment["OTEL_PROPAGATORS"], !value.isEmpty {
            for propagator in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !["tracecontext", "none"].contains(propagator) {
                problems.append("OTEL_PROPAGATORS: '\(propagator)' is not supported (use tracecontext)")
            }
        }
        if let value = environment["OTEL_TRACES_EXPORTER"], !value.isEmpty, !["otlp", "none"].contains(value.lowercased()) {
            problems.append("OTEL_TRACES_EXPORTER=\(value) is not supported (use otlp or none)")
        }
        return problems
    }

    /// Whether the environment turns tracing on without a file.
    public static func environmentEnablesTracing(_ environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" { return false }
        return ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].contains { !(environment[$0] ?? "").isEmpty }
            || environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "otlp"
    }
}
