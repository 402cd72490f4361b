import Foundation
import Testing
@testable import DeerFlowAlerting
import DeerFlowCore

/// Seconds since an arbitrary epoch, as a `Date`.
func at(_ seconds: Double) -> Date {
    Date(timeIntervalSince1970: 1_700_000_000 + seconds)
}

/// A store fed with one exposition per scrape time.
func makeStore(retention: Duration = .seconds(7_200), _ scrapes: [(Double, String)]) throws -> SeriesStore {
    let store = SeriesStore(retention: retention)
    for (time, text) in scrapes {
        try store.ingest(exposition: text, at: at(time))
    }
    return store
}

/// A store where each series gets the given samples, one scrape per distinct timestamp.
/// Series absent from a scrape go stale at that scrape, as in Prometheus.
func makeStore(series: [String: [(Double, Double)]], retention: Duration = .seconds(7_200)) throws -> SeriesStore {
    var byTime: [Double: [String]] = [:]
    for (selector, samples) in series {
        for (time, value) in samples {
            byTime[time, default: []].append("\(selector) \(GoFormat.shortest(value))")
        }
    }
    return try makeStore(retention: retention, byTime.keys.sorted().map { ($0, byTime[$0]!.joined(separator: "\n")) })
}

/// Evaluates `query` as an instant query at `time` seconds.
func evaluate(_ query: String, at time: Double, _ store: SeriesStore) throws -> PromQLValue {
    try PromQLExpression(parsing: query).evaluate(at: at(time), in: store)
}

func vector(_ query: String, at time: Double, _ store: SeriesStore) throws -> [Sample] {
    guard case let .vector(samples) = try evaluate(query, at: time, store) else {
        Issue.record("expected a vector for \(query)")
        return []
    }
    return samples
}

func scalar(_ query: String) throws -> Double {
    guard case let .scalar(value) = try evaluate(query, at: 0, SeriesStore()) else {
        Issue.record("expected a scalar for \(query)")
        return .nan
    }
    return value
}

/// Value of the single sample whose labels equal `labels`.
func value(_ samples: [Sample], _ labels: [String: String]) -> Double? {
    samples.first { $0.labels == labels }?.value
}

func parseError(_ query: String) -> PromQLError? {
    do {
        _ = try PromQLExpression(parsing: query)
        return nil
    } catch {
        return error
    }
}

func isClose(_ a: Double?, _ b: Double, tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return abs(a - b) <= tolerance * max(1, abs(b))
}
