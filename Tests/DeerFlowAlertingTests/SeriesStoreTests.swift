import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("SeriesStore")
struct SeriesStoreTests {
    @Test func countsSeriesAndSamples() throws {
        let store = try makeStore([(0, "a 1\nb{x=\"1\"} 2"), (15, "a 2\nb{x=\"1\"} 3")])
        #expect(store.seriesCount == 2)
        #expect(store.sampleCount == 4)
    }

    @Test func seriesAbsentFromAScrapeIsStaleAtOnce() throws {
        let store = try makeStore([(0, "a 1\nb 1"), (15, "a 2")])
        #expect(try vector("b", at: 14, store).count == 1)
        #expect(try vector("b", at: 15, store).isEmpty)
        #expect(try vector("b", at: 100, store).isEmpty)
        #expect(try vector("a", at: 100, store).map(\.value) == [2])
        // The staleness marker is a sample too, but never part of a range.
        #expect(store.sampleCount == 4)
        #expect(try vector("increase(b[1m])", at: 15, store).isEmpty)
    }

    @Test func staleSeriesComesBackWhenScrapedAgain() throws {
        let store = try makeStore([(0, "b 1"), (15, "a 1"), (30, "b 5")])
        #expect(try vector("b", at: 20, store).isEmpty)
        #expect(try vector("b", at: 30, store).map(\.value) == [5])
    }

    @Test func lookbackIsFiveMinutesLeftOpen() throws {
        // A single scrape: the series is never marked stale, it just ages out of the lookback.
        let store = try makeStore([(0, "a 1")])
        #expect(try vector("a", at: 299.999, store).count == 1)
        #expect(try vector("a", at: 300, store).isEmpty)
        #expect(try vector("a", at: -1, store).isEmpty)
    }

    @Test func failedScrapeMarksEverythingStale() throws {
        let store = try makeStore([(0, "a 1")])
        #expect(throws: ExpositionError.self) { try store.ingest(exposition: "a {", at: at(15)) }
        #expect(try vector("a", at: 15, store).isEmpty)
    }

    @Test func retentionBoundsSamplesAndForgetsSeries() throws {
        let store = SeriesStore(retention: .seconds(60))
        for step in 0..<40 {
            let text = step < 20 ? "a \(step)\ngone \(step)" : "a \(step)"
            let report = try store.ingest(exposition: text, at: at(Double(step) * 15))
            if step == 20 { #expect(report.seriesMarkedStale == 1) }
        }
        // Samples at or before now - 60s are dropped: 4 per series (t-45 ... t).
        #expect(store.seriesCount == 1)
        #expect(store.sampleCount == 4)
    }

    @Test func rejectsOutOfOrderDuplicateAndOverLimitSamples() throws {
        let store = SeriesStore(configuration: .init(retention: .seconds(600), maxSeries: 2))
        #expect(store.ingest(samples: [ExposedSample(name: "a", value: 1)], at: at(10)).appended == 1)
        #expect(store.ingest(samples: [ExposedSample(name: "a", value: 2)], at: at(5)).rejected == 1)
        let report = store.ingest(samples: [
            ExposedSample(name: "a", value: 3), ExposedSample(name: "a", value: 4),
            ExposedSample(name: "b", value: 1), ExposedSample(name: "c", value: 1),
        ], at: at(20))
        #expect(report.appended == 2)
        #expect(report.rejected == 2)
        #expect(store.seriesCount == 2)
        #expect(try vector("a", at: 20, store).map(\.value) == [3])
    }

    @Test func minimumRetentionCoversLongestRangeAndLookback() throws {
        let rules = try RuleFile.parse(yaml: """
        groups:
          - name: g
            rules:
              - alert: A
                expr: increase(x[2h]) > 0
              - alert: B
                expr: y > 0
        """, file: "r.yaml")
        #expect(rules.minimumRetention == .seconds(7_260))
        let short = try RuleFile.parse(yaml: "groups: [{name: g, rules: [{alert: B, expr: 'rate(y[1m]) > 0'}]}]", file: "r.yaml")
        #expect(short.minimumRetention == .seconds(360))
    }
}
