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
/// charts' PromQL many times a second. Two requests missing at once both compute; the later
/// result is kept.
final class PageCaches: Sendable {
    private let overviewEntry = Mutex<(at: ContinuousClock.Instant, figures: OverviewFigures)?>(nil)
    private let charts = Mutex<[String: (at: ContinuousClock.Instant, values: [Double?])]>([:])

    /// The overview's figures, read again when older than `maxAge`.
    func overview(maxAge: Duration, _ read: () async throws -> OverviewFigures) async throws -> OverviewFigures {
        let now = ContinuousClock.now
        if let entry = overviewEntry.withLock({ $0 }), now - entry.at < maxAge { return entry.figures }
        let figures = try await read()
        overviewEntry.withLock { $0 = (now, figures) }
        return figures
    }

    /// A chart's values (keyed by its expressions), evaluated again when older than `maxAge`.
    func chart(_ key: String, maxAge: Duration, _ evaluate: () -> [Double?]) -> [Double?] {
        let now = ContinuousClock.now
        if let entry = charts.withLock({ $0[key] }), now - entry.at < maxAge { return entry.values }
        let values = evaluate()
        charts.withLock { $0[key] = (now, values) }
        return values
    }
}
