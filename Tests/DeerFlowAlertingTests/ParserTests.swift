import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Parser: unsupported constructs and errors")
struct ParserTests {
    @Test(arguments: [
        ("topk(3, m)", 1, 1, "aggregation 'topk' is not supported (supported: sum, avg, max, min, count)"),
        ("quantile(0.9, m)", 1, 1, "aggregation 'quantile' is not supported (supported: sum, avg, max, min, count)"),
        ("count_values(\"v\", m)", 1, 1, "aggregation 'count_values' is not supported (supported: sum, avg, max, min, count)"),
        ("irate(m[5m])", 1, 1, "function 'irate' is not supported (supported: rate, increase, histogram_quantile)"),
        ("sum(delta(m[5m]))", 1, 5, "function 'delta' is not supported (supported: rate, increase, histogram_quantile)"),
        ("label_replace(m, \"a\", \"b\", \"c\", \".*\")", 1, 1, "function 'label_replace' is not supported (supported: rate, increase, histogram_quantile)"),
        ("m offset 5m", 1, 3, "offset modifier is not supported"),
        ("rate(m[5m] offset 1h)", 1, 12, "offset modifier is not supported"),
        ("m @ 1700000000", 1, 3, "@ modifier is not supported"),
        ("rate(m[5m])[30m:1m]", 1, 12, "subqueries are not supported"),
        ("max(m)[30m:]", 1, 7, "subqueries are not supported"),
        ("a + on(x) group_left b", 1, 11, "group_left modifier is not supported (only one-to-one vector matching with on/ignoring)"),
        ("a * ignoring(x) group_right(y) b", 1, 17, "group_right modifier is not supported (only one-to-one vector matching with on/ignoring)"),
        ("a and b", 1, 3, "operator 'and' is not supported (supported: + - * / % ^ == != > < >= <=)"),
        ("a or b", 1, 3, "operator 'or' is not supported (supported: + - * / % ^ == != > < >= <=)"),
        ("a unless b", 1, 3, "operator 'unless' is not supported (supported: + - * / % ^ == != > < >= <=)"),
        ("a atan2 b", 1, 3, "operator 'atan2' is not supported (supported: + - * / % ^ == != > < >= <=)"),
        ("\"text\"", 1, 1, "string literals are not supported"),
        ("m[5m]", 1, 1, "expression evaluates to a range vector; only instant vectors and scalars are supported (wrap the range selector in rate() or increase())"),
        ("sum(m)\n  + topk(1, m)", 2, 5, "aggregation 'topk' is not supported (supported: sum, avg, max, min, count)"),
    ])
    func unsupportedConstructsAreNamedWithTheirPosition(query: String, line: Int, column: Int, message: String) {
        let error = parseError(query)
        #expect(error?.code == .unsupported)
        #expect(error?.message == message)
        #expect(error?.position?.line == line)
        #expect(error?.position?.column == column)
        #expect(error?.description == "\(line):\(column): \(message)")
    }

    @Test(arguments: [
        ("foo(bar)", PromQLError.Code.syntax, "unknown function 'foo'"),
        ("rate(m)", .type, "expected type range vector in call to function \"rate\", got instant vector"),
        ("increase(m[5m], 1)", .type, "expected 1 argument(s) in call to \"increase\", got 2"),
        ("histogram_quantile(m, m)", .type, "expected type scalar in call to function \"histogram_quantile\", got instant vector"),
        ("histogram_quantile(0.9, m[5m])", .type, "expected type instant vector in call to function \"histogram_quantile\", got range vector"),
        ("-m[5m]", .type, "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""),
        ("(m)[5m]", .type, "ranges only allowed for vector selectors"),
        ("sum(m", .syntax, "expected \",\" or \")\" in argument list, got end of input"),
        ("m{a=\"b\"", .syntax, "expected \",\" or \"}\" in label matchers, got end of input"),
        ("m{a~\"b\"}", .syntax, "unexpected character '~'"),
        ("m{a:b=\"c\"}", .syntax, "expected a label name, got identifier \"a:b\""),
        ("m{a=b}", .syntax, "expected a quoted label value, got identifier \"b\""),
        ("m{__name__=\"x\"}", .syntax, "metric name must not be set twice: \"m\" or \"x\""),
        ("m m", .syntax, "unexpected identifier \"m\""),
        ("by", .syntax, "unexpected identifier \"by\""),
        ("1 +", .syntax, "unexpected end of input"),
        ("m > 5m", .syntax, "unexpected duration \"5m\""),
        ("'unterminated", .syntax, "unterminated quoted string"),
        ("m = 1", .syntax, "unexpected \"=\""),
    ])
    func syntaxAndTypeErrors(query: String, code: PromQLError.Code, message: String) {
        let error = parseError(query)
        #expect(error?.code == code)
        #expect(error?.message == message)
    }

    @Test func commentsAndWhitespaceAreIgnored() throws {
        #expect(try scalar("1 + # one\n  2 # two") == 3)
    }

    @Test func keywordsAreCaseInsensitiveButFunctionsAreNot() throws {
        #expect(parseError("SUM BY (a) (m)") == nil)
        #expect(parseError("Rate(m[5m])")?.message == "unknown function 'Rate'")
    }

    @Test func trailingCommasAreAllowed() throws {
        #expect(parseError("sum by (a,) (m)") == nil)
        #expect(parseError("histogram_quantile(0.5, m,)") == nil)
        #expect(parseError("m{a=\"1\",}") == nil)
    }

    @Test func keywordsCanBeLabelNames() throws {
        let store = try makeStore([(0, "m{on=\"x\",by=\"y\"} 1")])
        #expect(try vector("sum by (on, by) (m)", at: 0, store).map(\.labels) == [["on": "x", "by": "y"]])
        #expect(try vector("m{on=\"x\"}", at: 0, store).count == 1)
    }

    @Test func metricNamesMayContainColons() throws {
        let store = try makeStore([(0, "job:requests:rate5m 3")])
        #expect(try vector("job:requests:rate5m", at: 0, store).map(\.value) == [3])
    }
}
