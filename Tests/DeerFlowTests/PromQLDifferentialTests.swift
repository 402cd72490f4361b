import DeerFlow
import DeerFlowAlerting
import DeerFlowObservability
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// DeerFlow's own PromQL evaluation against Prometheus: the same samples (every built-in metric,
/// with a counter reset halfway) go into a real Prometheus (as TSDB blocks) and into DeerFlow's
/// series store, and every expression of the shipped alert rules and dashboards must give the
/// same series with the same values at several evaluation times.
@Suite("PromQL: DeerFlow's evaluator agrees with Prometheus")
struct PromQLDifferentialTests {
    /// One series of the synthetic history.
    struct Series {
        var name: String
        var labels: [String: String]
        var values: [Double]
    }

    static let step = 15
    static let points = 241  // one hour at 15 s

    /// Label values per label name: two of each, the statuses the expressions filter on.
    static func values(of label: String) -> [String] {
        switch label {
        case "status": return ["success", "failed"]
        case "type": return ["shell", "http"]
        case "queue": return ["default", "reports"]
        case "endpoint": return ["/api/v1/runs", "/api/v1/workflows/{name}/runs"]
        default: return ["a", "b"]
        }
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    struct Noise {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53)
        }
    }

    /// Every built-in metric with two values per label; counters grow (one combination resets
    /// to a low value halfway), gauges wander, histograms fill their buckets.
    static func history() -> [Series] {
        var noise = Noise(state: 42)
        var series: [Series] = []
        for metric in BuiltinMetric.allCases {
            let descriptor = metric.descriptor
            var combinations: [[String: String]] = [[:]]
            for label in descriptor.labels {
                combinations = combinations.flatMap { partial in values(of: label).map { partial.merging([label: $0]) { $1 } } }
            }
            for (index, labels) in combinations.enumerated() {
                switch descriptor.kind {
                case .counter:
                    var total = 0.0
                    var values: [Double] = []
                    for point in 0..<points {
                        total += (labels["status"] == "failed" ? 0.4 : 2) * noise.next().rounded(.up) * Double(1 + index)
                        if index == 0 && point == points / 2 { total = 1 }
                        values.append(total)
                    }
                    series.append(Series(name: metric.rawValue, labels: labels, values: values))
                case .gauge:
                    let scale: Double = metric == .tasksQueued ? 2000 : metric == .workerUtilization ? 1 : 100
                    series.append(Series(name: metric.rawValue, labels: labels, values: (0..<points).map { _ in (noise.next() * scale).rounded() }))
                case .histogram:
                    var buckets = Array(repeating: 0.0, count: descriptor.buckets.count + 1)
                    var sum = 0.0
                    var bucketValues = Array(repeating: [Double](), count: buckets.count)
                    var sums: [Double] = []
                    var counts: [Double] = []
                    for _ in 0..<points {
                        for _ in 0..<3 {
                            let observation = pow(noise.next(), 3) * (descriptor.buckets.last ?? 10) * 1.2
                            sum += observation
                            for (position, bound) in (descriptor.buckets + [.infinity]).enumerated() where observation <= bound {
                                buckets[position] += 1
                            }
                        }
                        for position in buckets.indices { bucketValues[position].append(buckets[position]) }
                        sums.append(sum)
                        counts.append(buckets.last ?? 0)
                    }
                    for (position, bound) in (descriptor.buckets + [.infinity]).enumerated() {
                        let le = bound.isInfinite ? "+Inf" : Self.number(bound)
                        series.append(Series(name: metric.rawValue + "_bucket", labels: labels.merging(["le": le]) { $1 }, values: bucketValues[position]))
                    }
                    series.append(Series(name: metric.rawValue + "_sum", labels: labels, values: sums))
                    series.append(Series(name: metric.rawValue + "_count", labels: labels, values: counts))
                }
            }
        }
        return series
    }

    /// OpenMetrics text with timestamps: one `unknown` family per series name, series after series.
    static func openMetrics(_ series: [Series], start: Int) -> String {
        var text = ""
        for name in Set(series.map(\.name)).sorted() {
            text += "# TYPE \(name) unknown\n"
            for item in series where item.name == name {
                let labels = item.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
                for (point, value) in item.values.enumerated() {
                    text += "\(name){\(labels)} \(Self.number(value)) \(start + point * step)\n"
                }
            }
        }
        return text + "# EOF\n"
    }

    @Test("every rule and dashboard expression gives Prometheus' series and values at several times, across a counter reset")
    func agreesWithPrometheus() async throws {
        let series = Self.history()
        // Whole hours back, so the evaluation times are exact seconds.
        let start = (Int(Date().timeIntervalSince1970) / 3600 - 2) * 3600
        let prometheus = try PrometheusServer(config: "global:\n  scrape_interval: 15s\n", openMetrics: Self.openMetrics(series, start: start))
        defer { prometheus.stop() }
        try await prometheus.waitUntilReady()

        let store = SeriesStore(configuration: .init(retention: .seconds(3 * 3600), maxSeries: 100_000))
        for point in 0..<Self.points {
            let samples = series.map { ExposedSample(name: $0.name, labels: $0.labels, value: $0.values[point]) }
            _ = store.ingest(samples: samples, at: Date(timeIntervalSince1970: Double(start + point * Self.step)))
        }

        let contract = MonitoringContract()
        let times = [10, 20, 29, 30, 31, 32, 45, 60].map { Date(timeIntervalSince1970: Double(start + $0 * 60)) }
        var compared = 0
        for (source, text) in contract.expressions {
            let expression = try PromQLExpression(parsing: text)
            for time in times {
                let theirs = try await prometheus.query(text, at: time)
                let ours: [Sample]
                do {
                    // The Prometheus here is Debian's 2.x.
                    ours = try expression.evaluate(at: time, in: store, compatibility: .prometheus2).samples
                } catch {
                    Issue.record("\(source) at \(time): DeerFlow failed: \(error)")
                    continue
                }
                let expected = Self.keyed(theirs)
                let actual = Dictionary(ours.map { (Self.key($0.labels), $0.value) }, uniquingKeysWith: { first, _ in first })
                #expect(Set(actual.keys) == Set(expected.keys), "\(source) at \(time): series differ\nPrometheus: \(expected)\nDeerFlow: \(actual)")
                for (key, value) in expected {
                    guard let mine = actual[key] else { continue }
                    #expect(Self.close(mine, value), "\(source) at +\((Int(time.timeIntervalSince1970) - start) / 60)m \(key): DeerFlow \(mine), Prometheus \(value)")
                }
                compared += 1
            }
        }
        #expect(compared == contract.expressions.count * times.count)
        // Most expressions have data at most times: a comparison of empty results proves little.
        var withData = 0
        for (_, text) in contract.expressions where !(try await prometheus.query(text, at: times[3])).isEmpty { withData += 1 }
        #expect(withData >= contract.expressions.count * 3 / 4, "\(withData) of \(contract.expressions.count) expressions have data")
    }

    static func number(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static func key(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Prometheus' `data.result`: `[{metric: {...}, value: [time, "text"]}]`, or a scalar.
    static func keyed(_ result: [[String: Any]]) -> [String: Double] {
        var values: [String: Double] = [:]
        for item in result {
            let labels = item["metric"] as? [String: String] ?? [:]
            guard let pair = item["value"] as? [Any], pair.count == 2, let text = pair[1] as? String else { continue }
            values[key(labels)] = parse(text)
        }
        return values
    }

    static func parse(_ text: String) -> Double {
        switch text {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default: return Double(text) ?? .nan
        }
    }

    static func close(_ a: Double, _ b: Double) -> Bool {
        if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
        if a.isInfinite || b.isInfinite { return a == b }
        return abs(a - b) <= 1e-9 * max(1, abs(a), abs(b))
    }
}
