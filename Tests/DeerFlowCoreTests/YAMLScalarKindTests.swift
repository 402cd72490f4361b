import PropertyBased
import Testing
import Yams

@testable import DeerFlowCore

/// `ScalarKind(plain:)` replaces Yams' default resolver (which matches with ICU's regular
/// expressions); these tests hold it to that resolver's answers.
@Suite("Types of plain YAML scalars")
struct YAMLScalarKindTests {
    /// The type Yams' default resolver gives a plain scalar's text, as a `ScalarKind`.
    static func yamsKind(_ text: String) -> ScalarKind {
        switch Tag.Name(rawValue: Node(text, Tag(.implicit, .default)).tag.rawValue) {
        case .null: .null
        case .bool: .bool
        case .int: .int
        case .float: .float
        default: .string
        }
    }

    @Test("every alternative of Yams' null, bool, int and float rules, and near misses, get Yams' type")
    func knownCases() {
        let cases = [
            "", "~", "null", "Null", "NULL", "nULL", "nil", "~~",
            "yes", "Yes", "YES", "yES", "no", "NO", "true", "True", "TRUE", "tRUE", "false", "off", "Off", "OFF", "on", "y", "n",
            "0", "-0", "+0", "7", "-19", "+12_000", "1_000", "0b1010", "-0b1_0", "0b2", "0o17", "017", "08", "0o8", "0x1F", "-0xab_CD",
            "0xG", "190:20:30", "1:60", "1:5", "01:30",
            "1.5", "-1.5e3", "1e3", "1e+3", "1.", ".5", ".5e-3", ".5e3", "6.8523015e+5", "685_230.15", "190:20:30.15",
            "+.inf", "-.Inf", ".INF", ".nan", ".NaN", "-.nan", "inf", "NaN", "1.2.3", "1e", "e3", "+", "-", ".", "_", "1_",
            "2024-06-01", "12:30", "v1", "1 2", "5\n", "yes\n", "null\n", " 5", "5 ",
            "-.5", "+.5", ".5e+3", "0b", "0x", "0o", "00", "0_", "1:", "1:2:", "1:66", "1:6", "-1:30:00.5", "1:30.", "1.e5", "1e-",
            "+.inf", "+.nan", "١٢", "½", "0x1g", "1__0", "_1", "1:60.5",
        ]
        for text in cases {
            #expect(ScalarKind(plain: text) == Self.yamsKind(text), "\(text.debugDescription)")
        }
    }

    @Test("random short texts of digits, signs and letters get Yams' type")
    func randomTexts() async {
        let alphabet = Array("0123456789_+-.:eEbBoOxXaAfFinINulLtTrsyY~ \n")
        await propertyCheck(count: 3_000, input: Gen.int(in: 0...6), Gen.uint64(in: 0...UInt64.max)) { length, seed in
            var state = seed
            var text = ""
            for _ in 0..<length {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                text.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            #expect(ScalarKind(plain: text) == Self.yamsKind(text), "\(text.debugDescription)")
        }
    }

    @Test("random numbers in every notation, whole and broken, get Yams' type")
    func randomNumbers() async {
        let signs = ["", "", "+", "-"]
        let prefixes = ["", "0", "1", "9", "0b", "0o", "0x", ".", "_"]
        let digits = Array("0123456789_abfAFe")
        let parts = ["", "", ":5", ":59", ":60", ":07", ":", ":5:30"]
        let fractions = ["", "", ".", ".5", "._", ".inf", ".Inf", ".nan", ".NAN"]
        let exponents = ["", "", "e5", "E-3", "e+10", "e", "e-"]
        await propertyCheck(count: 5_000, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var state = seed
            func pick<T>(_ choices: [T]) -> T {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return choices[Int(state >> 33) % choices.count]
            }
            var text = pick(signs) + pick(prefixes)
            for _ in 0..<pick([0, 1, 2, 3]) { text.append(pick(digits)) }
            text += pick(parts) + pick(fractions) + pick(exponents)
            #expect(ScalarKind(plain: text) == Self.yamsKind(text), "\(text.debugDescription)")
        }
    }

    @Test("a workflow file's scalars keep their types: quoted and tagged ones are strings, plain ones typed")
    func readerKinds() throws {
        let reader = YAMLReader(file: "kinds.yaml")
        let root = try #require(reader.read("""
            a: 5
            b: "5"
            c: !!str 5
            d: 0x1F
            e: yes
            f: ~
            g: 1.5e3
            h: '~'
            i: 12:30
            """)?.mapping())
        #expect(root["a"]?.json() == .int(5))
        #expect(root["b"]?.json() == .string("5"))
        #expect(root["c"]?.json() == .string("5"))
        #expect(root["d"]?.json() == .int(31))
        #expect(root["e"]?.json() == .bool(true))
        #expect(root["f"]?.isNull == true)
        #expect(root["g"]?.json() == .double(1500))
        #expect(root["h"]?.isNull == false)
        #expect(root["i"]?.json() == .int(750))
    }
}
