import DeerFlow
import DeerFlowObservability
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// The custom-metrics API in front of the Prometheus backend: registration rules, label handling,
/// the series budget, timing and series removal, checked on the rendered exposition.
@Suite("Metrics registry")
struct MetricsRegistryTests {
    static func make(seriesBudget: Int = 1000) -> (MetricsRegistry, PrometheusBackend) {
        let backend = PrometheusBackend()
        return (MetricsRegistry(backend: backend, seriesBudget: seriesBudget), backend)
    }

    static func samples(_ backend: PrometheusBackend) throws -> [String: Double] {
        try MetricSamples.parse(backend.render())
    }

    /// Runs `body` and returns the message of the ``MetricsError`` it throws.
    static func metricsError(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as MetricsError {
            #expect(error.description == error.message)
            return error.message
        } catch {
            return "not a MetricsError: \(type(of: error)): \(error)"
        }
    }

    // MARK: Registration

    @Test("registering a name again with the same type and labels returns the same metric")
    func sameRegistrationIsShared() throws {
        let (registry, backend) = Self.make()
        let first = try registry.counter("jobs_done_total", help: "Jobs done.", labels: ["queue"])
        let second = try registry.counter("jobs_done_total", help: "Jobs done.", labels: ["queue"])
        try first.labels("default").inc()
        try second.labels("default").inc()
        try registry.counter(named: "jobs_done_total").labels(["queue": "default"]).inc(0.5)
        let samples = try Self.samples(backend)
        #expect(samples[MetricSamples.key("jobs_done_total", ["queue": "default"])] == 2.5)
        #expect(samples.keys.filter { $0.hasPrefix("jobs_done_total") }.count == 1, "\(samples.keys.sorted())")

        let gauge = try registry.gauge("temperature", help: "Degrees.")
        try gauge.set(3)
        try registry.gauge("temperature", help: "Degrees.").labels().inc(2)
        #expect(try Self.samples(backend)["temperature"] == 5)
        #expect(registry.descriptors.filter { $0.name == "temperature" }.count == 1)
    }

    @Test("registering a name with another type throws a clear MetricsError")
    func otherTypeThrows() throws {
        let (registry, _) = Self.make()
        _ = try registry.counter("records_total", help: "Records.", labels: ["task"])
        let message = Self.metricsError { _ = try registry.gauge("records_total", help: "Records.", labels: ["task"]) }
        #expect(message == "metric 'records_total' is already registered as a counter; it cannot also be a gauge")
        let histogram = Self.metricsError { _ = try registry.histogram("records_total", help: "Records.", labels: ["task"]) }
        #expect(histogram?.contains("already registered as a counter") == true, "\(histogram ?? "no error")")
        let lookup = Self.metricsError { _ = try registry.gauge(named: "records_total") }
        #expect(lookup == "metric 'records_total' is a counter, not a gauge")
        let unknown = Self.metricsError { _ = try registry.counter(named: "never_declared") }
        #expect(unknown?.contains("no metric named 'never_declared_total' is declared") == true, "\(unknown ?? "no error")")
    }

    @Test("registering a name with another label set (or other buckets) throws a clear MetricsError")
    func otherLabelsThrow() throws {
        let (registry, _) = Self.make()
        _ = try registry.counter("records_total", help: "Records.", labels: ["workflow", "task"])
        let message = Self.metricsError { _ = try registry.counter("records_total", help: "Records.", labels: ["workflow"]) }
        #expect(message == "metric 'records_total' is already registered with labels [workflow, task]; it cannot be registered with [workflow]")
        let reordered = Self.metricsError { _ = try registry.counter("records_total", help: "Records.", labels: ["task", "workflow"]) }
        #expect(reordered != nil, "another label order is another label set")

        _ = try registry.histogram("latency_seconds", help: "Latency.", buckets: [0.1, 1])
        let buckets = Self.metricsError { _ = try registry.histogram("latency_seconds", help: "Latency.", buckets: [0.5, 1]) }
        #expect(buckets == "histogram 'latency_seconds' is already registered with other buckets")
    }

    @Test("invalid metric names, invalid or reserved label names and non-increasing buckets throw")
    func invalidDeclarationsThrow() {
        let (registry, _) = Self.make()
        for name in ["", "1starts_with_digit", "has-dash", "has space", "émoji"] {
            let message = Self.metricsError { _ = try registry.gauge(name, help: "x") }
            #expect(message?.contains("is not a valid Prometheus metric name") == true, "'\(name)': \(message ?? "no error")")
        }
        #expect(Self.metricsError { _ = try registry.gauge("ns:subsystem_value", help: "x") } == nil, "colons are allowed in metric names")
        for label in ["1x", "has-dash", "__reserved", "a:b", ""] {
            let message = Self.metricsError { _ = try registry.gauge("ok_gauge", help: "x", labels: [label]) }
            #expect(message?.contains("is not a valid label name") == true, "'\(label)': \(message ?? "no error")")
        }
        for label in ["le", "quantile"] {
            let message = Self.metricsError { _ = try registry.counter("ok_total", help: "x", labels: [label]) }
            #expect(message == "metric 'ok_total': label '\(label)' is reserved by Prometheus")
        }
        let twice = Self.metricsError { _ = try registry.counter("twice_total", help: "x", labels: ["a", "a"]) }
        #expect(twice == "metric 'twice_total': label 'a' is listed twice")
        let equal = Self.metricsError { _ = try registry.histogram("h_seconds", help: "x", buckets: [0.1, 0.5, 0.5, 1]) }
        #expect(equal == "histogram 'h_seconds': buckets must be strictly increasing, but 0.5 follows 0.5")
        let decreasing = Self.metricsError { _ = try registry.histogram("h2_seconds", help: "x", buckets: [1, 2, 0.5]) }
        #expect(decreasing == "histogram 'h2_seconds': buckets must be strictly increasing, but 0.5 follows 2")
        let empty = Self.metricsError { _ = try registry.histogram("h3_seconds", help: "x", buckets: []) }
        #expect(empty == "histogram 'h3_seconds' needs at least one bucket")
        #expect(registry.descriptors.isEmpty == false)
        #expect(!registry.descriptors.contains { $0.name.hasPrefix("h") }, "failed registrations leave nothing behind")
    }

    @Test("a counter declared without _total is exposed with _total and found by either name")
    func counterGetsTotalSuffix() throws {
        let (registry, backend) = Self.make()
        let counter = try registry.counter("records_processed", help: "Records processed.", labels: ["status"])
        #expect(counter.name == "records_processed_total")
        try counter.labels("ok").inc(3)
        try registry.counter("records_processed_total", help: "Records processed.", labels: ["status"]).labels("ok").inc()
        try registry.counter(named: "records_processed").labels("ok").inc()
        let text = backend.render()
        #expect(text.contains("# TYPE records_processed_total counter"), "\(text)")
        #expect(text.contains("# HELP records_processed_total Records processed."), "\(text)")
        let samples = try MetricSamples.parse(text)
        #expect(samples[MetricSamples.key("records_processed_total", ["status": "ok"])] == 5)
        #expect(!samples.keys.contains { $0.hasPrefix("records_processed{") })
    }

    // MARK: Labels

    @Test("labels(...) with the wrong number of values or unknown names throws")
    func wrongLabelsThrow() throws {
        let (registry, backend) = Self.make()
        let counter = try registry.counter("calls_total", help: "Calls.", labels: ["workflow", "task"])
        let tooFew = Self.metricsError { _ = try counter.labels("etl") }
        #expect(tooFew == "metric 'calls_total' has labels [workflow, task]; got 1 value(s)")
        let tooMany = Self.metricsError { _ = try counter.labels("etl", "load", "extra") }
        #expect(tooMany == "metric 'calls_total' has labels [workflow, task]; got 3 value(s)")
        let unknown = Self.metricsError { _ = try counter.labels(["workflow": "etl", "tsak": "load"]) }
        #expect(unknown == "metric 'calls_total' has no label(s) tsak; its labels are [workflow, task]")
        let missing = Self.metricsError { _ = try counter.labels(["workflow": "etl"]) }
        #expect(missing == "metric 'calls_total': missing value for label 'task'")
        let unlabelled = Self.metricsError { try counter.inc() }
        #expect(unlabelled == "metric 'calls_total' has labels [workflow, task]; got 0 value(s)")

        let gauge = try registry.gauge("plain", help: "No labels.")
        #expect(Self.metricsError { _ = try gauge.labels("x") } == "metric 'plain' has labels []; got 1 value(s)")

        // Named values in any order reach the same series as positional ones.
        try counter.labels("etl", "load").inc()
        try counter.labels(["task": "load", "workflow": "etl"]).inc()
        #expect(try Self.samples(backend)[MetricSamples.key("calls_total", ["workflow": "etl", "task": "load"])] == 2)
    }

    @Test("beyond the series budget label values fold into 'other' and deerflow_metric_series_dropped_total counts them")
    func seriesBudget() throws {
        let (registry, backend) = Self.make(seriesBudget: 2)
        _ = try EngineMetrics(registry: registry)
        let counter = try registry.counter("requests_total", help: "Requests.", labels: ["customer"])
        for customer in ["a", "b", "c", "d"] {
            try counter.labels(customer).inc()
        }
        try counter.labels("a").inc()
        try counter.labels("c").inc()  // folded again: the same combination, not a new one
        let samples = try Self.samples(backend)
        func value(_ customer: String) -> Double? {
            samples[MetricSamples.key("requests_total", ["customer": customer])]
        }
        #expect(value("a") == 2)
        #expect(value("b") == 1)
        #expect(value("c") == nil)
        #expect(value("d") == nil)
        #expect(value("other") == 3, "c (twice) and d are folded into other")
        #expect(samples.keys.filter { $0.hasPrefix("requests_total{") }.count == 3)
        #expect(
            samples[MetricSamples.key("deerflow_metric_series_dropped_total", ["metric": "requests_total"])] == 2,
            "two distinct label combinations (c, d) were folded: \(samples.filter { $0.key.hasPrefix("deerflow_metric_series_dropped") })")
    }

    // MARK: Use

    @Test("time { } observes the duration of its body, also when the body throws")
    func timeObserves() async throws {
        let (registry, backend) = Self.make()
        let histogram = try registry.histogram("step_seconds", help: "Step time.", labels: ["step"], buckets: [0.001, 0.01, 10])
        let value = try histogram.labels(["step": "sync"]).time { 21 * 2 }
        #expect(value == 42)
        let awaited = try await histogram.labels("async").time {
            try await Task.sleep(for: .milliseconds(20))
            return "done"
        }
        #expect(awaited == "done")
        #expect(throws: TestFailure.self) {
            try histogram.labels("sync").time { () throws -> Int in throw TestFailure("step failed") }
        }
        let unlabelled = try registry.histogram("whole_seconds", help: "Whole.", buckets: [1])
        _ = try unlabelled.time { 1 }

        let samples = try Self.samples(backend)
        #expect(samples[MetricSamples.key("step_seconds_count", ["step": "sync"])] == 2)
        #expect(samples[MetricSamples.key("step_seconds_count", ["step": "async"])] == 1)
        let asyncSum = try #require(samples[MetricSamples.key("step_seconds_sum", ["step": "async"])])
        #expect(asyncSum >= 0.02)
        #expect(samples[MetricSamples.key("step_seconds_bucket", ["step": "async", "le": "+Inf"])] == 1)
        #expect(samples[MetricSamples.key("step_seconds_bucket", ["step": "async", "le": "0.01"])] == 0)
        #expect(samples["whole_seconds_count"] == 1)
    }

    @Test("removeSeries removes exactly the series with that label value from the exposition")
    func removeSeries() throws {
        let (registry, backend) = Self.make()
        let gauge = try registry.gauge("worker_busy", help: "Busy slots.", labels: ["worker", "queue"])
        try gauge.labels("w1", "default").set(1)
        try gauge.labels("w1", "reports").set(2)
        try gauge.labels("w2", "default").set(3)
        let counter = try registry.counter("worker_done_total", help: "Done.", labels: ["worker"])
        try counter.labels("w1").inc()

        registry.removeSeries(of: "worker_busy", where: "worker", is: "w1")
        let samples = try Self.samples(backend)
        #expect(samples[MetricSamples.key("worker_busy", ["worker": "w1", "queue": "default"])] == nil)
        #expect(samples[MetricSamples.key("worker_busy", ["worker": "w1", "queue": "reports"])] == nil)
        #expect(samples[MetricSamples.key("worker_busy", ["worker": "w2", "queue": "default"])] == 3)
        #expect(samples[MetricSamples.key("worker_done_total", ["worker": "w1"])] == 1, "other metrics keep their series")
        #expect(!backend.render().contains("worker=\"w1\",queue") && !backend.render().contains("queue=\"default\",worker=\"w1\""))

        // Unknown metric or label: nothing happens.
        registry.removeSeries(of: "no_such_metric", where: "worker", is: "w2")
        registry.removeSeries(of: "worker_busy", where: "no_such_label", is: "w2")
        #expect(try Self.samples(backend)[MetricSamples.key("worker_busy", ["worker": "w2", "queue": "default"])] == 3)

        // A removed series starts again from zero when used again.
        try gauge.labels("w1", "default").inc()
        #expect(try Self.samples(backend)[MetricSamples.key("worker_busy", ["worker": "w1", "queue": "default"])] == 1)
    }
}
