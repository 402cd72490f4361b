import Synchronization

/// Registry of DeerFlow's metrics — the built-in ones and those task code declares — in front of a
/// ``MetricsBackend``.
///
/// ```swift
/// let processed = try context.metrics.counter(
///     "deerflow_records_processed_total", help: "Total records processed",
///     labels: ["workflow", "task", "status"])
/// try processed.labels(context.workflow.name, context.task.id, "success").inc()
///
/// let latency = try context.metrics.histogram(
///     "deerflow_processing_time_seconds", help: "Time to process records",
///     labels: ["workflow", "task"], buckets: [0.1, 0.5, 1, 5, 10, 30])
/// let rows = try await latency.labels(context.workflow.name, context.task.id).time { try await fetchRecords() }
/// ```
///
/// Registering a name again with the same type, labels (and buckets) returns the same metric;
/// another type or label set throws ``MetricsError`` instead of crashing or silently making a
/// second series. A counter whose name lacks `_total` is exposed with `_total` appended.
public final class MetricsRegistry: Sendable {
    private let backend: (any MetricsBackend)?
    private let families: Mutex<[String: Family]>
    /// Default series budget per metric; label values beyond it are folded into `other`.
    public let seriesBudget: Int
    private let overflow: Mutex<(handler: (@Sendable (String, Bool) -> Void)?, reported: Set<String>)>

    /// Creates a registry.
    ///
    /// - Parameters:
    ///   - backend: where values go; nil keeps them in memory only.
    ///   - seriesBudget: maximum series per metric before label values are folded into `other`.
    public init(backend: (any MetricsBackend)? = nil, seriesBudget: Int = 1000) {
        self.backend = backend
        self.seriesBudget = seriesBudget
        families = Mutex([:])
        overflow = Mutex((nil, []))
    }

    /// Called for every label combination folded into `other` because its metric exceeded the
    /// series budget, with `firstTime` true the first time for that metric (the engine counts each
    /// in `deerflow_metric_series_dropped_total` and logs the first).
    public func onSeriesBudgetExceeded(_ handler: @escaping @Sendable (_ metric: String, _ firstTime: Bool) -> Void) {
        overflow.withLock { $0.handler = handler }
    }

    /// A counter. Names follow Prometheus rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`); `_total` is appended
    /// when missing.
    public func counter(_ name: String, help: String, labels: [String] = []) throws(MetricsError) -> Counter {
        let exposed = name.hasSuffix("_total") ? name : name + "_total"
        return Counter(family: try family(exposed, declared: name, kind: .counter, help: help, labels: labels, buckets: []))
    }

    /// A gauge.
    public func gauge(_ name: String, help: String, labels: [String] = []) throws(MetricsError) -> Gauge {
        Gauge(family: try family(name, declared: name, kind: .gauge, help: help, labels: labels, buckets: []))
    }

    /// A histogram with the given upper bounds (strictly increasing; `+Inf` is implicit).
    public func histogram(_ name: String, help: String, labels: [String] = [], buckets: [Double] = Histogram.defaultBuckets) throws(MetricsError) -> Histogram {
        Histogram(family: try family(name, declared: name, kind: .histogram, help: help, labels: labels, buckets: buckets))
    }

    /// A metric declared earlier (in code or in `metrics.yaml`), by the name it was declared with.
    public func counter(named name: String) throws(MetricsError) -> Counter {
        Counter(family: try existing(name.hasSuffix("_total") ? name : name + "_total", kind: .counter))
    }

    /// A gauge declared earlier, by name.
    public func gauge(named name: String) throws(MetricsError) -> Gauge {
        Gauge(family: try existing(name, kind: .gauge))
    }

    /// A histogram declared earlier, by name.
    public func histogram(named name: String) throws(MetricsError) -> Histogram {
        Histogram(family: try existing(name, kind: .histogram))
    }

    /// Every registered metric: name, kind, help, label names, buckets.
    public var descriptors: [MetricDescriptor] {
        families.withLock { families in
            families.values.map(\.descriptor).sorted { $0.name < $1.name }
        }
    }

    /// Removes every series of `name` whose label `label` has `value` (e.g. a worker gone for good).
    public func removeSeries(of name: String, where label: String, is value: String) {
        guard let family = families.withLock({ $0[name] }) else { return }
        family.remove(where: label, is: value)
    }

    // MARK: Internals

    private func existing(_ name: String, kind: MetricKind) throws(MetricsError) -> Family {
        guard let family = families.withLock({ $0[name] }) else {
            throw MetricsError(message: "no metric named '\(name)' is declared; declare it in code or in metrics.yaml's custom_metrics")
        }
        guard family.descriptor.kind == kind else {
            throw MetricsError(message: "metric '\(name)' is a \(family.descriptor.kind.rawValue), not a \(kind.rawValue)")
        }
        return family
    }

    private func family(_ name: String, declared: String, kind: MetricKind, help: String, labels: [String], buckets: [Double]) throws(MetricsError) -> Family {
        guard Self.isValidMetricName(declared) else {
            throw MetricsError(message: "'\(declared)' is not a valid Prometheus metric name (letters, digits, '_' and ':', not starting with a digit)")
        }
        var seen: Set<String> = []
        for label in labels {
            guard Self.isValidLabelName(label) else {
                throw MetricsError(message: "metric '\(name)': '\(label)' is not a valid label name (letters, digits and '_', not starting with a digit or '__')")
            }
            guard label != "le", label != "quantile" else {
                throw MetricsError(message: "metric '\(name)': label '\(label)' is reserved by Prometheus")
            }
            guard seen.insert(label).inserted else {
                throw MetricsError(message: "metric '\(name)': label '\(label)' is listed twice")
            }
        }
        if kind == .histogram {
            guard !buckets.isEmpty else { throw MetricsError(message: "histogram '\(name)' needs at least one bucket") }
            for (previous, next) in zip(buckets, buckets.dropFirst()) where !(next > previous) {
                throw MetricsError(message: "histogram '\(name)': buckets must be strictly increasing, but \(Self.format(next)) follows \(Self.format(previous))")
            }
        }
        let descriptor = MetricDescriptor(name: name, kind: kind, help: help, labels: labels, buckets: buckets)
        let budget = seriesBudget
        let backend = self.backend
        return try families.withLock { families throws(MetricsError) -> Family in
            if let existing = families[name] {
                let other = existing.descriptor
                guard other.kind == kind else {
                    throw MetricsError(message: "metric '\(name)' is already registered as a \(other.kind.rawValue); it cannot also be a \(kind.rawValue)")
                }
                guard other.labels == labels else {
                    throw MetricsError(message: "metric '\(name)' is already registered with labels [\(other.labels.joined(separator: ", "))]; it cannot be registered with [\(labels.joined(separator: ", "))]")
                }
                guard other.buckets == buckets else {
                    throw MetricsError(message: "histogram '\(name)' is already registered with other buckets")
                }
                return existing
            }
            let family = Family(descriptor: descriptor, backend: backend, budget: budget) { [weak self] metric in
                self?.reportOverflow(metric)
            }
            families[name] = family
            return family
        }
    }

    private func reportOverflow(_ metric: String) {
        let (handler, first) = overflow.withLock { state in
            (state.handler, state.reported.insert(metric).inserted)
        }
        handler?(metric, first)
    }

    static func isValidMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !name.isEmpty else { return false }
        func isLetter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" || s == ":" }
        guard isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { isLetter($0) || ($0 >= "0" && $0 <= "9") }
    }

    static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !name.hasPrefix("__") else { return false }
        func isLetter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" }
        guard isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { isLetter($0) || ($0 >= "0" && $0 <= "9") }
    }

    static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}

/// Name, kind, help, labels and buckets of a registered metric.
public struct MetricDescriptor: Sendable, Hashable {
    public var name: String
    public var kind: MetricKind
    public var help: String
    public var labels: [String]
    public var buckets: [Double]

    public init(name: String, kind: MetricKind, help: String, labels: [String], buckets: [Double]) {
        self.name = name
        self.kind = kind
        self.help = help
        self.labels = labels
        self.buckets = buckets
    }
}

/// A metric registration or use that cannot work; the message says what to change.
public struct MetricsError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The series of one metric, created on first use of a label-value combination and cached, so
/// hot paths pay a dictionary lookup instead of a registry lookup.
final class Family: Sendable {
    let descriptor: MetricDescriptor
    private let backend: (any MetricsBackend)?
    private let budget: Int
    private let onOverflow: @Sendable (String) -> Void
    private let series: Mutex<[[String]: Series]>

    /// One series: its backend handler (nil without a backend).
    final class Series: Sendable {
        let labels: [String]
        let counter: (any CounterHandler)?
        let gauge: (any GaugeHandler)?
        let histogram: (any HistogramHandler)?

        init(labels: [String], counter: (any CounterHandler)?, gauge: (any GaugeHandler)?, histogram: (any HistogramHandler)?) {
            self.labels = labels
            self.counter = counter
            self.gauge = gauge
            self.histogram = histogram
        }
    }

    init(descriptor: MetricDescriptor, backend: (any MetricsBackend)?, budget: Int, onOverflow: @escaping @Sendable (String) -> Void) {
        self.descriptor = descriptor
        self.backend = backend
        self.budget = budget
        self.onOverflow = onOverflow
        series = Mutex([:])
    }

    /// Label combinations already folded into `other` (remembered up to ten times the budget),
    /// so each distinct combination is reported once.
    private let folded = Mutex<Set<[String]>>([])

    func series(_ values: [String]) throws(MetricsError) -> Series {
        guard values.count == descriptor.labels.count else {
            throw MetricsError(message: "metric '\(descriptor.name)' has labels [\(descriptor.labels.joined(separator: ", "))]; got \(values.count) value(s)")
        }
        if let found = series.withLock({ $0[values] }) { return found }
        return series.withLock { series in
            if let found = series[values] { return found }
            var key = values
            if series.count >= budget, !values.isEmpty {
                key = Array(repeating: "other", count: values.count)
                let limit = budget * 10
                let isNew = folded.withLock { folded -> Bool in
                    if folded.contains(values) { return false }
                    if folded.count < limit { folded.insert(values) }
                    return true
                }
                if isNew { onOverflow(descriptor.name) }
                if let found = series[key] { return found }
            }
            let pairs = Array(zip(descriptor.labels, key))
            let created: Series
            switch descriptor.kind {
            case .counter:
                created = Series(labels: key, counter: backend?.makeCounter(name: descriptor.name, help: descriptor.help, labels: pairs), gauge: nil, histogram: nil)
            case .gauge:
                created = Series(labels: key, counter: nil, gauge: backend?.makeGauge(name: descriptor.name, help: descriptor.help, labels: pairs), histogram: nil)
            case .histogram:
                created = Series(labels: key, counter: nil, gauge: nil, histogram: backend?.makeHistogram(name: descriptor.name, help: descriptor.help, labels: pairs, buckets: descriptor.buckets))
            }
            series[key] = created
            return created
        }
    }

    func series(_ pairs: [String: String]) throws(MetricsError) -> Series {
        let unknown = Set(pairs.keys).subtracting(descriptor.labels)
        guard unknown.isEmpty else {
            throw MetricsError(message: "metric '\(descriptor.name)' has no label(s) \(unknown.sorted().joined(separator: ", ")); its labels are [\(descriptor.labels.joined(separator: ", "))]")
        }
        var values: [String] = []
        for label in descriptor.labels {
            guard let value = pairs[label] else {
                throw MetricsError(message: "metric '\(descriptor.name)': missing value for label '\(label)'")
            }
            values.append(value)
        }
        return try series(values)
    }

    func remove(where label: String, is value: String) {
        guard let position = descriptor.labels.firstIndex(of: label) else { return }
        let removed = series.withLock { series -> [[String]] in
            let keys = series.keys.filter { $0[position] == value }
            for key in keys { series[key] = nil }
            return keys
        }
        for key in removed {
            backend?.remove(kind: descriptor.kind, name: descriptor.name, labels: Array(zip(descriptor.labels, key)))
        }
    }
}
