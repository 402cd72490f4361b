public import Foundation
import DeerFlowCore
import Synchronization

/// A short in-memory history of metric samples, the input of ``PromQLExpression`` and
/// ``AlertEvaluator``.
///
/// Each `ingest` call is one scrape of one target (the process's own `/metrics`), with Prometheus'
/// scrape semantics (`scrape/scrape.go`):
/// - a series present in the previous scrape but absent from this one gets a staleness marker at
///   this scrape's time, so instant selectors stop returning it at once (not 5 minutes later);
/// - a sample whose timestamp is not after the series' last one is rejected (out of order or
///   duplicate), as is a second sample for the same series within one scrape;
/// - a scrape that fails to parse marks every series of the previous scrape stale.
///
/// Memory is bounded: samples older than `retention` are dropped on every ingest, a series with
/// no samples left is forgotten, and at most `maxSeries` series are kept (samples of new series
/// beyond that are rejected and counted, like Prometheus' `sample_limit`).
///
/// ```swift
/// let store = SeriesStore(retention: .seconds(3900))
/// try store.ingest(exposition: metricsText, at: .now)
/// print(store.seriesCount, store.sampleCount)
/// ```
public final class SeriesStore: Sendable {
    /// Store limits.
    public struct Configuration: Sendable {
        /// How long samples are kept. It must cover the longest range selector (`[1h]`) and the
        /// 5-minute lookback of instant selectors; ``RuleFile/minimumRetention`` computes it for
        /// a rule file. Default: 1 hour 5 minutes.
        public var retention: Duration
        /// The most series kept at once. Default: 100 000.
        public var maxSeries: Int

        public init(retention: Duration = .seconds(3_900), maxSeries: Int = 100_000) {
            self.retention = retention
            self.maxSeries = maxSeries
        }
    }

    /// What one ingest did.
    public struct IngestReport: Sendable, Equatable {
        /// Samples appended (excluding staleness markers).
        public var appended = 0
        /// Series seen for the first time.
        public var seriesCreated = 0
        /// Series of the previous scrape absent from this one, now stale.
        public var seriesMarkedStale = 0
        /// Samples rejected: out of order, duplicated within the scrape, or over `maxSeries`.
        public var rejected = 0
        /// Series forgotten because all their samples fell out of the retention window.
        public var seriesDropped = 0
    }

    /// Prometheus' staleness marker, `value.StaleNaN` (a NaN with a distinct bit pattern).
    static let staleMarker = Double(bitPattern: 0x7FF0_0000_0000_0002)

    static func isStaleMarker(_ value: Double) -> Bool {
        value.bitPattern == staleMarker.bitPattern
    }

    struct Series {
        let labels: LabelSet
        var timestamps: [Int64] = []
        var values: [Double] = []
    }

    struct State {
        var series: [Int: Series] = [:]
        var ids: [LabelSet: Int] = [:]
        var idsByName: [String: Set<Int>] = [:]
        var nextID = 0
        var previousScrape: Set<Int> = []
        var sampleCount = 0
    }

    public let configuration: Configuration
    let state = Mutex(State())

    /// A store keeping `retention` of history.
    public convenience init(retention: Duration) {
        self.init(configuration: Configuration(retention: retention))
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The retention window.
    public var retention: Duration { configuration.retention }

    /// Series currently held (including stale series whose samples are still retained).
    public var seriesCount: Int { state.withLock { $0.series.count } }

    /// Samples currently held, staleness markers included.
    public var sampleCount: Int { state.withLock { $0.sampleCount } }

    /// Parses a text exposition and ingests it as one scrape at `time`.
    ///
    /// On a parse error nothing is appended, every series of the previous scrape is marked stale
    /// (a failed scrape, as in Prometheus) and the error is rethrown.
    @discardableResult
    public func ingest(exposition: String, at time: Date) throws(ExpositionError) -> IngestReport {
        let samples: [ExposedSample]
        do {
            samples = try ExpositionParser.parse(exposition)
        } catch {
            ingest(samples: [], at: time)
            throw error
        }
        return ingest(samples: samples, at: time)
    }

    /// Ingests samples as one scrape at `time` (for callers that read their metrics registry
    /// directly rather than through the text format).
    @discardableResult
    public func ingest(samples: [ExposedSample], at time: Date) -> IngestReport {
        let timestamp = Self.milliseconds(time)
        let retentionMilliseconds = configuration.retention.milliseconds
        let maxSeries = configuration.maxSeries
        return state.withLock { state in
            var report = IngestReport()
            var current: Set<Int> = []
            for sample in samples {
                let labels = LabelSet(sample.labels).setting(LabelSet.metricName, to: sample.name)
                let id: Int
                if let existing = state.ids[labels] {
                    id = existing
                } else {
                    guard state.series.count < maxSeries else { report.rejected += 1; continue }
                    id = state.nextID
                    state.nextID += 1
                    state.ids[labels] = id
                    state.series[id] = Series(labels: labels)
                    state.idsByName[sample.name, default: []].insert(id)
                    report.seriesCreated += 1
                }
                guard current.insert(id).inserted else { report.rejected += 1; continue }
                let value = sample.value.isNaN ? Double.nan : sample.value  // never a stale marker
                if state.append(id: id, timestamp: timestamp, value: value) {
                    report.appended += 1
                } else {
                    report.rejected += 1
                }
            }
            for id in state.previousScrape.subtracting(current)
            where state.append(id: id, timestamp: timestamp, value: Self.staleMarker) {
                report.seriesMarkedStale += 1
            }
            state.previousScrape = current
            report.seriesDropped = state.prune(olderThanOrAt: timestamp - retentionMilliseconds)
            return report
        }
    }

    /// A copy-on-write snapshot for evaluation outside the lock.
    func snapshot() -> State {
        state.withLock { $0 }
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1_000).rounded())
    }
}

extension SeriesStore.State {
    /// Appends a sample if it is newer than the series' last one.
    mutating func append(id: Int, timestamp: Int64, value: Double) -> Bool {
        guard var entry = series[id] else { return false }
        if let last = entry.timestamps.last, last >= timestamp { return false }
        series[id] = nil  // keep the arrays uniquely referenced while appending
        entry.timestamps.append(timestamp)
        entry.values.append(value)
        series[id] = entry
        sampleCount += 1
        return true
    }

    /// Drops samples at or before `cutoff` and forgets series left empty; returns how many.
    mutating func prune(olderThanOrAt cutoff: Int64) -> Int {
        var dropped = 0
        for id in Array(series.keys) {
            guard var entry = series[id], let first = entry.timestamps.first, first <= cutoff else { continue }
            series[id] = nil
            let keepFrom = entry.timestamps.firstIndex { $0 > cutoff } ?? entry.timestamps.count
            entry.timestamps.removeFirst(keepFrom)
            entry.values.removeFirst(keepFrom)
            sampleCount -= keepFrom
            if entry.timestamps.isEmpty {
                ids[entry.labels] = nil
                if let name = entry.labels.metricName {
                    idsByName[name]?.remove(id)
                    if idsByName[name]?.isEmpty == true { idsByName[name] = nil }
                }
                previousScrape.remove(id)
                dropped += 1
            } else {
                series[id] = entry
            }
        }
        return dropped
    }
}
