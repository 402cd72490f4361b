import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Selectors and label matchers")
struct SelectorTests {
    let store: SeriesStore

    init() throws {
        store = try makeStore([(0, """
        http_requests_total{code="200",path="/a"} 1
        http_requests_total{code="500",path="/b"} 2
        http_requests_total{code="503"} 3
        http_errors_total{code="500"} 4
        other{path="line1\\nline2"} 5
        """)])
    }

    private func codes(_ query: String) throws -> [String] {
        try vector(query, at: 10, store).map { $0.labels["code"] ?? "-" }.sorted()
    }

    @Test func metricNameSelectsAllItsSeriesWithName() throws {
        let samples = try vector("http_requests_total", at: 10, store)
        #expect(samples.count == 3)
        #expect(samples.allSatisfy { $0.metricName == "http_requests_total" })
    }

    @Test func equalMatcher() throws {
        #expect(try codes(#"http_requests_total{code="200"}"#) == ["200"])
    }

    @Test func notEqualMatcher() throws {
        #expect(try codes(#"http_requests_total{code!="200"}"#) == ["500", "503"])
    }

    @Test func regexMatcherIsFullyAnchored() throws {
        #expect(try codes(#"http_requests_total{code=~"5.."}"#) == ["500", "503"])
        #expect(try codes(#"http_requests_total{code=~"5"}"#).isEmpty)
        #expect(try codes(#"http_requests_total{code=~"00"}"#).isEmpty)
        #expect(try codes(#"http_requests_total{code=~"2.*|503"}"#) == ["200", "503"])
    }

    @Test func negativeRegexMatcher() throws {
        #expect(try codes(#"http_requests_total{code!~"5.."}"#) == ["200"])
        #expect(try codes(#"http_requests_total{code!~"5"}"#) == ["200", "500", "503"])
    }

    @Test func regexDotMatchesNewline() throws {
        #expect(try vector(#"other{path=~"line1.line2"}"#, at: 10, store).count == 1)
    }

    @Test func absentLabelMatchesEmptyString() throws {
        #expect(try codes(#"http_requests_total{path=""}"#) == ["503"])
        #expect(try codes(#"http_requests_total{path!=""}"#) == ["200", "500"])
        #expect(try codes(#"http_requests_total{path=~"|/a"}"#) == ["200", "503"])
    }

    @Test func nameMatcherInsideBraces() throws {
        #expect(try codes(#"{__name__=~"http_.*",code="500"}"#) == ["500", "500"])
        #expect(try codes(#"{__name__="http_errors_total"}"#) == ["500"])
    }

    @Test func multipleMatchersAndTrailingComma() throws {
        #expect(try codes(#"http_requests_total{code=~"5..", path!="/b",}"#) == ["503"])
    }

    @Test func selectorNeedsANonEmptyMatcher() {
        #expect(parseError(#"{path=""}"#)?.message == "vector selector must contain at least one non-empty matcher")
        #expect(parseError(#"{code=~".*"}"#)?.message == "vector selector must contain at least one non-empty matcher")
    }

    @Test func invalidRegexIsAParseError() {
        let error = parseError(#"m{a=~"("}"#)
        #expect(error?.code == .syntax)
        #expect(error?.message == #"invalid regular expression "(""#)
    }

    @Test func stringEscapesInMatchers() throws {
        let store = try makeStore([(0, #"m{a="x\"y",b="c\\d"} 1"#)])
        #expect(try vector(#"m{a="x\"y", b='c\\d'}"#, at: 0, store).count == 1)
        #expect(try vector(#"m{b=`c\d`}"#, at: 0, store).count == 1)
    }

    @Test func rangeSelectorDurations() throws {
        let cases: [(String, Duration)] = [
            ("rate(m[100ms])", .milliseconds(100)), ("rate(m[30s])", .seconds(30)), ("rate(m[5m])", .seconds(300)),
            ("rate(m[2h])", .seconds(7_200)), ("rate(m[1d])", .seconds(86_400)), ("rate(m[1w])", .seconds(604_800)),
            ("rate(m[1y])", .seconds(31_536_000)), ("rate(m[1h30m])", .seconds(5_400)), ("rate(m[1m30s500ms])", .milliseconds(90_500)),
        ]
        for (query, expected) in cases {
            #expect(try PromQLExpression(parsing: query).longestRange == expected, "\(query)")
        }
        #expect(parseError("rate(m[30m1h])")?.message == #"bad number or duration syntax: "30m1h""#)
        #expect(parseError("rate(m[5x])")?.message == #"bad number or duration syntax: "5x""#)
        #expect(parseError("rate(m[0s])")?.message == "range duration must be greater than 0")
    }

    @Test func rangeSelectorIsLeftOpen() throws {
        let store = try makeStore(series: ["c": [(0, 1000), (60, 10), (120, 20)]])
        // The sample at exactly t - 2m is outside (t - 2m, t]: no counter reset is seen.
        #expect(try vector("increase(c[2m])", at: 120, store).map(\.value) == [20])
    }
}
