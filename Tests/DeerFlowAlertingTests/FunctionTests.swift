import Foundation
import Testing
@testable import DeerFlowAlerting

/// Expected values are computed by hand with Prometheus' `extrapolatedRate`.
@Suite("rate and increase")
struct RateTests {
    @Test func rateOfASteadyCounter() throws {
        // Samples 60..300 every 60s (the one at 0 is outside (0, 300]); increase 240 over 240s,
        // gap to the start 60s < 1.1 × 60s so extrapolated fully: 240 × 300/240 = 300.
        let samples: [(Double, Double)] = [(0, 0), (60, 60), (120, 120), (180, 180), (240, 240), (300, 300)]
        let store = try makeStore(series: ["c": samples])
        #expect(try vector("rate(c[5m])", at: 300, store).map(\.value) == [1])
        #expect(try vector("increase(c[5m])", at: 300, store).map(\.value) == [300])
    }

    @Test func rateDropsTheMetricNameAndKeepsLabels() throws {
        let store = try makeStore(series: [#"c{job="a"}"#: [(0, 0), (60, 60)]])
        #expect(try vector("rate(c[5m])", at: 60, store).map(\.labels) == [["job": "a"]])
    }

    @Test func counterResetsAreCorrected() throws {
        // In range: 10, 20, 5, 15, 25 → 25 - 10 + 20 (reset after 20) = 35; × 300/240 = 43.75.
        let store = try makeStore(series: ["c": [(0, 1000), (60, 10), (120, 20), (180, 5), (240, 15), (300, 25)]])
        #expect(try vector("increase(c[5m])", at: 300, store).map(\.value) == [43.75])
        #expect(isClose(try vector("rate(c[5m])", at: 300, store).first?.value, 43.75 / 300))
    }

    @Test func extrapolationStopsAtTheCounterZeroPoint() throws {
        // 1, 61, ..., 241 at 60..300: at this slope the counter was 0 one second before the first
        // sample, so the start is extrapolated by 1s, not 60s: 240 × 241/240 = 241.
        let samples: [(Double, Double)] = [(60, 1), (120, 61), (180, 121), (240, 181), (300, 241)]
        let store = try makeStore(series: ["c": samples])
        #expect(try vector("increase(c[5m])", at: 300, store).map(\.value) == [241])
    }

    @Test func farGapsExtrapolateHalfAnInterval() throws {
        // Samples at 200, 230, 260, 290 (avg interval 30s). Start gap 200s ≥ 33s → 15s; end gap
        // 10s < 33s → 10s. Increase 90 × (90 + 15 + 10)/90 = 115.
        let store = try makeStore(series: ["c": [(200, 100), (230, 130), (260, 160), (290, 190)]])
        #expect(isClose(try vector("increase(c[5m])", at: 300, store).first?.value, 115))
        #expect(isClose(try vector("rate(c[5m])", at: 300, store).first?.value, 115.0 / 300))
    }

    @Test func endGapBeyondThresholdExtrapolatesHalfAnInterval() throws {
        // Samples at 10, 20, 30; evaluated at 300: start gap 10s < 11s kept, zero point 10s not
        // shorter; end gap 270s → 5s. 20 × (20 + 10 + 5)/20 = 35.
        let store = try makeStore(series: ["c": [(10, 10), (20, 20), (30, 30)]])
        #expect(isClose(try vector("increase(c[5m])", at: 300, store).first?.value, 35))
    }

    @Test func fewerThanTwoSamplesGiveNoResult() throws {
        let store = try makeStore(series: ["c": [(100, 5)]])
        #expect(try vector("rate(c[5m])", at: 120, store).isEmpty)
        #expect(try vector("increase(c[5m])", at: 120, store).isEmpty)
    }

    @Test func parenthesizedRangeIsAccepted() throws {
        let store = try makeStore(series: ["c": [(0, 0), (60, 60)]])
        #expect(try vector("increase((c[2m]))", at: 60, store).count == 1)
    }
}

@Suite("histogram_quantile")
struct HistogramQuantileTests {
    /// Cumulative buckets 0.1:10, 0.5:30, 1:40, +Inf:50 for `type="a"`.
    let store: SeriesStore

    init() throws {
        store = try makeStore([(0, """
        d_bucket{type="a",le="0.1"} 10
        d_bucket{type="a",le="0.5"} 30
        d_bucket{type="a",le="1"} 40
        d_bucket{type="a",le="+Inf"} 50
        d_bucket{type="b",le="1"} 0
        d_bucket{type="b",le="+Inf"} 0
        only_inf_bucket{le="+Inf"} 7
        no_inf_bucket{le="1"} 3
        no_inf_bucket{le="2"} 5
        bad_bucket{le="1"} 1
        bad_bucket{le="+Inf"} 4
        bad_bucket{le="x"} 9
        dip_bucket{le="0.1"} 10
        dip_bucket{le="0.5"} 8
        dip_bucket{le="1"} 40
        dip_bucket{le="+Inf"} 50
        neg_bucket{le="-1"} 5
        neg_bucket{le="1"} 10
        neg_bucket{le="+Inf"} 10
        """)])
    }

    private func quantile(_ q: String, _ selector: String) throws -> [Sample] {
        try vector("histogram_quantile(\(q), \(selector))", at: 0, store)
    }

    @Test func interpolatesInsideTheBucket() throws {
        // rank 25 falls in (0.1, 0.5] holding 20: 0.1 + 0.4 × 15/20.
        #expect(try quantile("0.5", #"d_bucket{type="a"}"#) == [Sample(labels: ["type": "a"], value: 0.4)])
        // rank 5 in the lowest bucket: interpolated from 0.
        #expect(try quantile("0.1", #"d_bucket{type="a"}"#).map(\.value) == [0.05])
        #expect(try quantile("0", #"d_bucket{type="a"}"#).map(\.value) == [0])
    }

    @Test func rankInInfBucketReturnsSecondHighestBound() throws {
        #expect(try quantile("0.95", #"d_bucket{type="a"}"#).map(\.value) == [1])
    }

    @Test func quantileOutOfRangeGivesInfinities() throws {
        #expect(try quantile("-1", #"d_bucket{type="a"}"#).map(\.value) == [-.infinity])
        #expect(try quantile("2", #"d_bucket{type="a"}"#).map(\.value) == [.infinity])
        #expect(try quantile("NaN", #"d_bucket{type="a"}"#).first?.value.isNaN == true)
    }

    @Test func nanCases() throws {
        // Zero observations, only a +Inf bucket, no +Inf bucket.
        #expect(try quantile("0.5", #"d_bucket{type="b"}"#).first?.value.isNaN == true)
        #expect(try quantile("0.5", "only_inf_bucket").first?.value.isNaN == true)
        #expect(try quantile("0.5", "no_inf_bucket").first?.value.isNaN == true)
    }

    @Test func emptyInputGivesEmptyResult() throws {
        #expect(try quantile("0.5", "missing_bucket").isEmpty)
    }

    @Test func unparseableLeIsIgnored() throws {
        // Buckets 1:1, +Inf:4 → rank 2 in +Inf → 1.
        #expect(try quantile("0.5", "bad_bucket").map(\.value) == [1])
    }

    @Test func monotonicityIsForced() throws {
        // 0.5:8 is raised to 10 → rank 25 in (0.5, 1] holding 30: 0.5 + 0.5 × 15/30.
        #expect(try quantile("0.5", "dip_bucket").map(\.value) == [0.75])
    }

    @Test func lowestBucketWithNonPositiveBoundReturnsTheBound() throws {
        #expect(try quantile("0.2", "neg_bucket").map(\.value) == [-1])
    }

    @Test func groupsByAllLabelsButLe() throws {
        let samples = try quantile("0.5", "d_bucket")
        #expect(samples.map(\.labels) == [["type": "a"], ["type": "b"]])
    }

    @Test func sumByLeAggregatesBuckets() throws {
        // a + b: same as a alone.
        #expect(try quantile("0.5", "sum by (le) (d_bucket)").map(\.value) == [0.4])
        #expect(try quantile("0.5", "sum by (le) (d_bucket)").map(\.labels) == [[:]])
    }

    @Test func duplicateBoundsAreMerged() {
        let buckets = [(1.0, 3.0), (1.0, 2.0), (Double.infinity, 10.0)].map { HistogramQuantile.Bucket(upperBound: $0.0, count: $0.1) }
        // Merged to 1:5, +Inf:10; rank 2.5 in the lowest bucket → 0.5.
        #expect(HistogramQuantile.bucketQuantile(0.25, buckets) == 0.5)
    }
}
