/// Where metric values go. `DeerFlowObservability` provides the Prometheus backend; without one,
/// values are discarded (`MetricsRegistry` still validates names, labels and budgets).
public protocol MetricsBackend: Sendable {
    func makeCounter(name: String, help: String, labels: [(String, String)]) -> any CounterHandler
    func makeGauge(name: String, help: String, labels: [(String, String)]) -> any GaugeHandler
    func makeHistogram(name: String, help: String, labels: [(String, String)], buckets: [Double]) -> any HistogramHandler
    /// Drops a series (e.g. a worker gone for good).
    func remove(kind: MetricKind, name: String, labels: [(String, String)])
}

/// One counter series in a backend.
public protocol CounterHandler: Sendable {
    func increment(by amount: Double)
}

/// One gauge series in a backend.
public protocol GaugeHandler: Sendable {
    func set(_ value: Double)
    func increment(by amount: Double)
}

/// One histogram series in a backend.
public protocol HistogramHandler: Sendable {
    func observe(_ value: Double)
}

/// The three kinds of metric.
public enum MetricKind: String, Sendable, Hashable, Codable, CaseIterable {
    case counter, gauge, histogram
}
