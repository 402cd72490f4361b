public import DeerFlow
public import Prometheus
import Synchronization
import Foundation

/// The Prometheus backend of `MetricsRegistry`: series live in a swift-prometheus registry and
/// are rendered in the text exposition format 0.0.4.
public final class PrometheusBackend: MetricsBackend, Sendable {
    let registry = PrometheusCollectorRegistry()
    /// How to unregister each series created, by name and labels.
    private let unregister = Mutex<[String: @Sendable () -> Void]>([:])
    /// Labels added to every series (`metrics.yaml` `prometheus.labels`).
    public let constantLabels: [(String, String)]

    /// - Parameter constantLabels: labels added to every series, e.g. `environment`.
    public init(constantLabels: [(String, String)] = []) {
        self.constantLabels = constantLabels.sorted { $0.0 < $1.0 }
    }

    private func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    public func makeCounter(name: String, help: String, labels: [(String, String)]) -> any CounterHandler {
        let counter = registry.makeCounter(descriptor: descriptor(name, help), labels: constantLabels + labels)
        remember(name, labels) { [registry] in registry.unregisterCounter(counter) }
        return PrometheusCounter(counter: counter)
    }

    public func makeGauge(name: String, help: String, labels: [(String, String)]) -> any GaugeHandler {
        let gauge = registry.makeGauge(descriptor: descriptor(name, help), labels: constantLabels + labels)
        remember(name, labels) { [registry] in registry.unregisterGauge(gauge) }
        return PrometheusGauge(gauge: gauge)
    }

    public func makeHistogram(name: String, help: String, labels: [(String, String)], buckets: [Double]) -> any HistogramHandler {
        let histogram = registry.makeValueHistogram(descriptor: descriptor(name, help), labels: constantLabels + labels, buckets: buckets)
        remember(name, labels) { [registry] in registry.unregisterValueHistogram(histogram) }
        return PrometheusHistogram(histogram: histogram)
    }

    public func remove(kind: MetricKind, name: String, labels: [(String, String)]) {
        let action = unregister.withLock { $0.removeValue(forKey: Self.key(name, labels)) }
        action?()
    }

    private func remember(_ name: String, _ labels: [(String, String)], unregister action: @escaping @Sendable () -> Void) {
        unregister.withLock { $0[Self.key(name, labels)] = action }
    }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        ([name] + labels.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1}")
    }

    /// Families whose HELP and TYPE are shown before they have a series, by exposed name.
    private let declared = Mutex<[(name: String, kind: MetricKind, help: String)]>([])

    /// Shows `name`'s HELP and TYPE on `/metrics` while it has no series yet (a metric of
    /// `metrics.yaml` whose labels are only known when a task first updates it), so dashboards
    /// and `promtool` see it declared from the start.
    public func declareFamily(_ name: String, kind: MetricKind, help: String) {
        declared.withLock { $0.append((name, kind, help)) }
    }

    /// Every series in the Prometheus text format.
    public func render() -> String {
        var text = registry.emitToString()
        // swift-prometheus writes nothing for a family without series: add the declaration.
        for family in declared.withLock({ $0 }) where !text.contains("# TYPE \(family.name) ") {
            let help = family.help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            text += "# HELP \(family.name) \(help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
        }
        return text
    }
}

struct PrometheusCounter: CounterHandler {
    let counter: Prometheus.Counter
    func increment(by amount: Double) {
        // Whole amounts take swift-prometheus' integer path: one atomic add instead of a CAS loop.
        if amount == amount.rounded(.towardZero), amount < 9.0e18 {
            counter.increment(by: Int64(amount))
        } else {
            counter.increment(by: amount)
        }
    }
}

struct PrometheusGauge: GaugeHandler {
    let gauge: Prometheus.Gauge
    func set(_ value: Double) { gauge.set(value) }
    func increment(by amount: Double) { gauge.increment(by: amount) }
}

struct PrometheusHistogram: HistogramHandler {
    let histogram: ValueHistogram
    func observe(_ value: Double) { histogram.record(value) }
}

extension PrometheusBackend {
    /// A swift-metrics factory writing into this backend's registry, so that metrics of
    /// libraries (and of task code) made through swift-metrics' `Counter`, `Gauge`, `Timer`, ...
    /// appear on the same `/metrics` as DeerFlow's own series. Names and label names are made
    /// valid for the text format (`http.server.request.duration` → `http_server_request_duration`).
    public var metricsFactory: PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        let constant = constantLabels
        factory.nameAndLabelSanitizer = { name, labels in
            (Self.sanitize(name), constant + labels.map { (Self.sanitize($0.0), $0.1) })
        }
        return factory
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`: other characters become `_`, a leading digit gets a `_` before it.
    static func sanitize(_ name: String) -> String {
        var out = ""
        for scalar in name.unicodeScalars {
            let valid = scalar == "_" || scalar == ":" || (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
            out.unicodeScalars.append(valid ? scalar : "_")
        }
        if let first = out.unicodeScalars.first, ("0"..."9").contains(first) { out = "_" + out }
        return out.isEmpty ? "_" : out
    }
}
