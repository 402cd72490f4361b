import DeerFlow
public import DeerFlowCore
import Foundation
public import Logging
import OTel
public import ServiceLifecycle
import Synchronization
import Tracing

/// Turns tracing on: an OpenTelemetry tracer exporting OTLP over HTTP (swift-otel), installed as
/// the process's tracer. Called by the executable only, once.
public enum TracingSetup {
    /// What `start` made.
    public struct Started: Sendable {
        /// Exports spans; run it in the service group (first, so it stops last and flushes).
        public let service: any Service
        /// Adds `trace_id` and `span_id` of the current span to log records.
        public let metadataProvider: Logger.MetadataProvider
    }

    /// Adds `trace_id` and `span_id` of the current span to log records (usable before `start`).
    public static var loggingMetadataProvider: Logger.MetadataProvider {
        HeadSampling.loggingMetadataProvider(otel: OTel.makeLoggingMetadataProvider())
    }

    /// Whether the file or the environment enables tracing.
    public static func isEnabled(_ file: TracingConfigFile?, environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        return file?.enabled == true || TracingConfigFile.environmentEnablesTracing(environment)
    }

    /// Builds the exporter and installs the tracer.
    ///
    /// - Parameters:
    ///   - diagnostics: receives swift-otel's own warnings (export failures, dropped spans).
    ///   - onDropped: called with the number of spans swift-otel dropped (queue full, failed export).
    /// - Throws: a message for `OTEL_*` settings that would make the library crash (gRPC, unsupported
    ///   samplers or propagators).
    public static func start(
        file: TracingConfigFile?, environment: [String: String], diagnostics: Logger, onDropped: @escaping @Sendable (Int) -> Void
    ) throws -> Started {
        let problems = TracingConfigFile.environmentProblems(environment)
        guard problems.isEmpty else { throw TracingSetupError(message: problems.joined(separator: "; ")) }
        let settings = file ?? TracingConfigFile()
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        if let endpoint = settings.endpoint { configuration.traces.otlpExporter.endpoint = endpoint }
        // http/json is refused when the file or the environment is read (TracingConfigFile.protocolProblem).
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.headers = settings.headers.sorted { $0.key < $1.key }
        // New traces are sampled by DeerFlow before swift-otel sees them (HeadSamplingTracer) for
        // `parent_based` below ratio 1 and for `never`; swift-otel then records every root it is
        // given. `OTEL_TRACES_SAMPLER(_ARG)` override the file inside swift-otel, so with them set
        // swift-otel decides alone, as it does for `ratio` (decided by trace id for every span).
        let environmentSamples = [environment["OTEL_TRACES_SAMPLER"], environment["OTEL_TRACES_SAMPLER_ARG"]].contains { !($0 ?? "").isEmpty }
        var headRatio: Double?
        switch settings.sampler {
        case .always: configuration.traces.sampler = .alwaysOn
        case .never:
            configuration.traces.sampler = .alwaysOff
            if !environmentSamples { headRatio = 0 }
        case .ratio: configuration.traces.sampler = .traceIDRatio(ratio: settings.ratio) ?? .alwaysOn
        case .parentBased:
            if environmentSamples || settings.ratio >= 1 {
                configuration.traces.sampler = .parentBasedTraceIDRatio(ratio: settings.ratio) ?? .parentBasedAlwaysOn
            } else {
                configuration.traces.sampler = .parentBasedAlwaysOn
                headRatio = settings.ratio
            }
        }
        configuration.traces.batchSpanProcessor.maxExportBatchSize = settings.batchMaxSize
        configuration.traces.batchSpanProcessor.maxQueueSize = settings.queueSize
        configuration.traces.batchSpanProcessor.scheduleDelay = settings.batchInterval
        configuration.traces.batchSpanProcessor.exportTimeout = settings.exportTimeout
        configuration.diagnosticLogger = .custom(Logger(label: "swift-otel") { label in
            OTelDiagnosticsHandler(forward: diagnostics, onDropped: onDropped)
        })
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        if let headRatio {
            InstrumentationSystem.bootstrap(HeadSamplingTracer(inner: tracer, ratio: headRatio))
        } else {
            InstrumentationSystem.bootstrap(tracer)
        }
        return Started(service: service, metadataProvider: loggingMetadataProvider)
    }
}

extension TracingSetup {
    /// Benchmarks: CPU µs per root span started, its context injected into a header dictionary
    /// and ended, with the installed tracer on one thread (what every run costs at least).
    public static func runSpanCost(iterations: Int = 20_000, cpuSeconds: () -> Double) -> Double {
        let tracer = InstrumentationSystem.tracer
        let before = cpuSeconds()
        for _ in 0..<iterations {
            let span = tracer.startSpan("workflow.run", context: ServiceContext.topLevel)
            var headers: [String: String] = [:]
            tracer.inject(span.context, into: &headers, using: DictionaryInjector())
            span.end()
        }
        return (cpuSeconds() - before) / Double(iterations) * 1e6
    }
}

/// A tracing setting that cannot work.
public struct TracingSetupError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Reads swift-otel's diagnostics: counts the spans it reports dropping (its queue was full, or a
/// batch could not be exported) and forwards warnings and errors to DeerFlow's log.
struct OTelDiagnosticsHandler: LogHandler {
    let forward: Logger
    let onDropped: @Sendable (Int) -> Void
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let message = event.message.description
        if message.hasPrefix("Spans were dropped"), let count = all["dropped_count"].flatMap({ Int("\($0)") }) {
            onDropped(count)
        } else if message.hasPrefix("Failed to export batch"), let count = all["batch_size"].flatMap({ Int("\($0)") }) {
            onDropped(count)
        }
        guard event.level >= .warning else { return }
        forward.log(level: event.level, "tracing: \(message)", metadata: all)
    }
}
