import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Aggregations")
struct AggregationTests {
    let store: SeriesStore

    init() throws {
        store = try makeStore([(0, """
        m{job="a",inst="1"} 1
        m{job="a",inst="2"} 2
        m{job="b",inst="3"} 4
        n{job="a"} NaN
        n{job="b"} 1
        """)])
    }

    private func result(_ query: String) throws -> [[String: String]: Double] {
        Dictionary(uniqueKeysWithValues: try vector(query, at: 0, store).map { ($0.labels, $0.value) })
    }

    @Test func sumWithoutGroupingGivesOneSeries() throws {
        #expect(try result("sum(m)") == [[:]: 7])
    }

    @Test func sumByBeforeAndAfterTheArgument() throws {
        let expected: [[String: String]: Double] = [["job": "a"]: 3, ["job": "b"]: 4]
        #expect(try result("sum by (job) (m)") == expected)
        #expect(try result("sum(m) by (job)") == expected)
        #expect(try result("SUM BY (job) (m)") == expected)
    }

    @Test func sumWithoutDropsTheListedLabelsAndTheName() throws {
        #expect(try result("sum without (inst) (m)") == [["job": "a"]: 3, ["job": "b"]: 4])
        #expect(try result("sum(m) without (inst, job)") == [[:]: 7])
        #expect(try result("sum without () (m)").count == 3)
        #expect(try result("sum without () (m)")[["job": "a", "inst": "1"]] == 1)
    }

    @Test func byCanKeepTheMetricName() throws {
        #expect(try result("sum by (__name__) (m)") == [["__name__": "m"]: 7])
    }

    @Test func avgByAndWithout() throws {
        #expect(try result("avg by (job) (m)") == [["job": "a"]: 1.5, ["job": "b"]: 4])
        #expect(try result("avg without (job, inst) (m)") == [[:]: 7.0 / 3])
    }

    @Test func maxByAndWithout() throws {
        #expect(try result("max by (job) (m)") == [["job": "a"]: 2, ["job": "b"]: 4])
        #expect(try result("max without (inst) (m)") == [["job": "a"]: 2, ["job": "b"]: 4])
    }

    @Test func minByAndWithout() throws {
        #expect(try result("min by (job) (m)") == [["job": "a"]: 1, ["job": "b"]: 4])
        #expect(try result("min without (inst) (m)") == [["job": "a"]: 1, ["job": "b"]: 4])
    }

    @Test func countByAndWithout() throws {
        #expect(try result("count by (job) (m)") == [["job": "a"]: 2, ["job": "b"]: 1])
        #expect(try result("count without (inst) (m)") == [["job": "a"]: 2, ["job": "b"]: 1])
        #expect(try result("count(m)") == [[:]: 3])
    }

    @Test func maxAndMinSkipNaNWhenAnotherValueExists() throws {
        #expect(try result("max(n)") == [[:]: 1])
        #expect(try result("min(n)") == [[:]: 1])
        #expect(try result("sum(n)")[[:]]?.isNaN == true)
    }

    @Test func groupingByAMissingLabelGroupsUnderEmpty() throws {
        #expect(try result("sum by (absent) (m)") == [[:]: 7])
    }

    @Test func aggregationOfNothingIsEmpty() throws {
        #expect(try result("sum(nothing)").isEmpty)
    }

    @Test func kahanSummationKeepsSmallTerms() throws {
        let store = try makeStore([(0, "k{i=\"1\"} 1e16\nk{i=\"2\"} 1\nk{i=\"3\"} -1e16\n")])
        #expect(try vector("sum(k)", at: 0, store).map(\.value) == [1])
        #expect(try vector("avg(k)", at: 0, store).map(\.value) == [1.0 / 3])
    }

    @Test func avgFallsBackToIncrementalMeanOnOverflow() throws {
        let store = try makeStore([(0, "k{i=\"1\"} 1.7e308\nk{i=\"2\"} 1.7e308\n")])
        #expect(try vector("avg(k)", at: 0, store).map(\.value) == [1.7e308])
    }

    @Test func aggregationNeedsAnInstantVector() {
        let error = parseError("sum(m[5m])")
        #expect(error?.code == .type)
        #expect(error?.message == "expected type instant vector in aggregation expression, got range vector")
        #expect(parseError("sum(m, m)")?.message == "wrong number of arguments for aggregate expression provided, expected 1, got 2")
        #expect(parseError("sum by (job) (m) by (inst)")?.message == #"unexpected identifier "by""#)
    }
}
