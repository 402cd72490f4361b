import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Binary operators")
struct BinaryOperatorTests {
    let store: SeriesStore

    init() throws {
        store = try makeStore([(0, """
        a{x="1"} 10
        a{x="2"} 20
        b{x="1"} 2
        b{x="2"} 4
        b{x="3"} 8
        c{x="1",y="p"} 3
        one 5
        e{x="1"} 100
        e{x="2"} 1
        dup_a{x="1"} 1
        dup_b{x="1"} 2
        """)])
    }

    private func result(_ query: String) throws -> [[String: String]: Double] {
        Dictionary(uniqueKeysWithValues: try vector(query, at: 0, store).map { ($0.labels, $0.value) })
    }

    @Test func scalarArithmetic() throws {
        #expect(try scalar("1 + 2") == 3)
        #expect(try scalar("5 - 7") == -2)
        #expect(try scalar("6 * 7") == 42)
        #expect(try scalar("1 / 4") == 0.25)
        #expect(try scalar("1 / 0") == .infinity)
        #expect(try scalar("0 / 0").isNaN)
        #expect(try scalar("10 % 3") == 1)
        #expect(try scalar("-7 % 3") == -1)
        #expect(try scalar("2 ^ 10") == 1024)
        #expect(try scalar("0x10 + 1e1 + .5") == 26.5)
        #expect(try scalar("Inf - inf").isNaN)
    }

    @Test func precedenceAndAssociativity() throws {
        #expect(try scalar("1 + 2 * 3") == 7)
        #expect(try scalar("(1 + 2) * 3") == 9)
        #expect(try scalar("10 - 2 - 3") == 5)
        #expect(try scalar("100 / 10 / 2") == 5)
        #expect(try scalar("2 ^ 3 ^ 2") == 512)
        #expect(try scalar("2 * 3 ^ 2") == 18)
        #expect(try scalar("12 / 2 % 5") == 1)
        #expect(try scalar("1 + 2 > bool 2") == 1)
        #expect(try scalar("1 + 2 > bool 2 + 2") == 0)
    }

    @Test func unaryMinus() throws {
        #expect(try scalar("-2 ^ 2") == -4)
        #expect(try scalar("-2 * 3") == -6)
        #expect(try scalar("2 * -3") == -6)
        #expect(try scalar("2 ^ -1") == 0.5)
        #expect(try scalar("- - 4") == 4)
        #expect(try scalar("+4") == 4)
        #expect(try result("-a") == [["x": "1"]: -10, ["x": "2"]: -20])
    }

    @Test func scalarComparisonsNeedBool() throws {
        #expect(try scalar("1 == bool 1") == 1)
        #expect(try scalar("1 != bool 1") == 0)
        #expect(try scalar("2 >= bool 3") == 0)
        #expect(try scalar("2 <= bool 3") == 1)
        #expect(try scalar("2 < bool 3") == 1)
        let error = parseError("1 > 2")
        #expect(error?.code == .type)
        #expect(error?.message == "comparisons between scalars must use BOOL modifier")
        #expect(parseError("1 + bool 2")?.message == "bool modifier can only be used on comparison operators")
    }

    @Test func vectorScalarArithmeticDropsTheName() throws {
        #expect(try result("a * 2") == [["x": "1"]: 20, ["x": "2"]: 40])
        #expect(try result("100 / a") == [["x": "1"]: 10, ["x": "2"]: 5])
        #expect(try result("a - 1") == [["x": "1"]: 9, ["x": "2"]: 19])
        #expect(try result("2 ^ one") == [[:]: 32])
        #expect(try result("a % 3") == [["x": "1"]: 1, ["x": "2"]: 2])
    }

    @Test func vectorScalarComparisonFiltersAndKeepsTheName() throws {
        #expect(try result("a > 15") == [["__name__": "a", "x": "2"]: 20])
        #expect(try result("15 > a") == [["__name__": "a", "x": "1"]: 10])
        #expect(try result("a == 10") == [["__name__": "a", "x": "1"]: 10])
        #expect(try result("a != 10") == [["__name__": "a", "x": "2"]: 20])
        #expect(try result("a <= 10") == [["__name__": "a", "x": "1"]: 10])
        #expect(try result("a >= 20") == [["__name__": "a", "x": "2"]: 20])
    }

    @Test func vectorScalarComparisonWithBool() throws {
        #expect(try result("a > bool 15") == [["x": "1"]: 0, ["x": "2"]: 1])
        #expect(try result("15 < bool a") == [["x": "1"]: 0, ["x": "2"]: 1])
    }

    @Test func vectorVectorArithmeticMatchesOnAllLabelsButName() throws {
        #expect(try result("a / b") == [["x": "1"]: 5, ["x": "2"]: 5])
        #expect(try result("a + c").isEmpty)
        #expect(try result("a + nothing").isEmpty)
    }

    @Test func vectorVectorComparisonFiltersWithLeftValues() throws {
        #expect(try result("e > a") == [["__name__": "e", "x": "1"]: 100])
        #expect(try result("a >= e") == [["__name__": "a", "x": "2"]: 20])
        #expect(try result("b * 6 > a") == [["x": "1"]: 12, ["x": "2"]: 24])
        #expect(try result("a < b * 5").isEmpty)
        #expect(try result("a <= b * 5") == [["__name__": "a", "x": "1"]: 10, ["__name__": "a", "x": "2"]: 20])
        #expect(try result("a == e").isEmpty)
        #expect(try result("a != e").count == 2)
        #expect(try result("e > bool a") == [["x": "1"]: 1, ["x": "2"]: 0])
    }

    @Test func onMatchingKeepsOnlyTheOnLabels() throws {
        #expect(try result("a + on(x) c") == [["x": "1"]: 13])
        #expect(try result("c > on(x) b") == [["x": "1"]: 3])
        #expect(try result("one * on() c") == [[:]: 15])
    }

    @Test func ignoringMatchingDropsTheIgnoredLabels() throws {
        #expect(try result("c + ignoring(y) a") == [["x": "1"]: 13])
        #expect(try result("c - ignoring (y) a") == [["x": "1"]: -7])
    }

    @Test func manyToManyIsAnError() throws {
        do {
            _ = try vector("one + on() b", at: 0, store)
            Issue.record("expected an error")
        } catch let error as PromQLError {
            #expect(error.code == .evaluation)
            #expect(error.message.hasPrefix("found duplicate series for the match group {} on the right hand-side of the operation"))
        }
        do {
            _ = try vector("b + on() one", at: 0, store)
            Issue.record("expected an error")
        } catch let error as PromQLError {
            #expect(error.message == "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)")
        }
    }

    @Test func sameLabelSetAfterDroppingNameIsAnError() throws {
        #expect(throws: PromQLError(code: .evaluation, message: "vector cannot contain metrics with the same labelset")) {
            _ = try vector(#"{__name__=~"dup_.*"} * 2"#, at: 0, store)
        }
        // A filter keeps the names, so no clash.
        #expect(try vector(#"{__name__=~"dup_.*"} > 0"#, at: 0, store).count == 2)
    }

    @Test func vectorMatchingNeedsTwoVectors() {
        #expect(parseError("a + on(x) 1")?.message == "vector matching only allowed between instant vectors")
        #expect(parseError("rate(a[5m]) + a") == nil)
        #expect(parseError("a[5m] + a")?.message == "binary expression must contain only scalar and instant vector types")
    }
}
