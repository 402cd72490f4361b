import DeerFlow
import DeerFlowCore
import Synchronization

/// What the overview shows from the store, read once for every page open at the time.
struct OverviewFigures: Sendable {
    var statistics: StoreStatistics
    var hour: [RunStatus: Int]
    var day: [RunStatus: Int]
    var workers: [WorkerRecord]
    var recent: RunPage
}

/// Short-lived results shared by every page a browser asks for: open pages refresh on changes,
/// and on a busy cluster a hundred open overviews must not each read the store and evaluate the
/// charts' PromQL many times a second.
final class PageCaches: Sendable {
    /// What the overview shows from the store: read at most once a second.
    let overview = Expiring<OverviewFigures>(maxAge: .seconds(1))
    /// A chart's values, keyed by its expressions: the history gains a sample per scrape interval
    /// (15 s by default), so they are evaluated at most every 5 s.
    let charts = Expiring<[Double?]>(maxAge: .seconds(5))
    /// DAG layouts by graph: a workflow's page and its runs' pages lay out the same graph.
    let layouts = LayoutCache()
}

/// Values kept by key for `maxAge`. Two requests missing at once both compute; the later result
/// is kept.
final class Expiring<Value: Sendable>: Sendable {
    let maxAge: Duration
    private let entries = Mutex<[String: (at: ContinuousClock.Instant, value: Value)]>([:])

    init(maxAge: Duration) {
        self.maxAge = maxAge
    }

    /// The value of `key`, computed again when older than `maxAge`.
    func value(_ key: String = "", _ compute: () throws -> Value) rethrows -> Value {
        let now = ContinuousClock.now
        if let kept = fresh(key, at: now) { return kept }
        return keep(try compute(), for: key, at: now)
    }

    /// The value of `key`, computed again when older than `maxAge`.
    func value(_ key: String = "", _ compute: () async throws -> Value) async rethrows -> Value {
        let now = ContinuousClock.now
        if let kept = fresh(key, at: now) { return kept }
        return keep(try await compute(), for: key, at: now)
    }

    private func fresh(_ key: String, at now: ContinuousClock.Instant) -> Value? {
        guard let entry = entries.withLock({ $0[key] }), now - entry.at < maxAge else { return nil }
        return entry.value
    }

    private func keep(_ value: Value, for key: String, at now: ContinuousClock.Instant) -> Value {
        entries.withLock { $0[key] = (now, value) }
        return value
    }
}
