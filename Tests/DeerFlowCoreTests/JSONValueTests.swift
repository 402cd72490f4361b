import DeerFlowCore
import Foundation
import Testing

/// `JSONValue.compactJSON` writes JSON itself; these check it writes what `JSONEncoder` with
/// sorted keys and unescaped slashes writes, byte for byte (stored parameters, shell task
/// environment values and CLI output kept their form when it stopped using `JSONEncoder`).
@Suite("JSON values")
struct JSONValueTests {
    static func encoded(_ value: JSONValue) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test("compact JSON is JSONEncoder's: keys sorted, escapes, numbers, nesting")
    func sameAsJSONEncoder() throws {
        let values: [JSONValue] = [
            .null, true, false, 0, -42, .int(Int.max), .int(Int.min),
            1.0, 0.1, -0.0, 1e20, 1.5e-7, 123456789012.5, .double(Double(bitPattern: 1)), 1e16, 1.7976931348623157e308,
            "", "plain", "q\"\\/\u{1}\u{1f}\n\t\r\u{8}\u{c}é\u{7f}\u{2028}😀",
            [], [1, "a", nil, [true]],
            [:], ["B": 1, "Z": 2, "a": 3, "a10": 4, "a2": 5, "é": 6, "": 7, "nested": ["y": [1.25, "x/y"], "x": [:]]],
        ]
        for value in values {
            #expect(value.compactJSON == (try Self.encoded(value)), "\(value)")
        }
        #expect(JSONValue.double(.nan).compactJSON == "null" && JSONValue.array([.double(.infinity)]).compactJSON == "[null]")
    }

    @Test("compact JSON of generated nested values equals JSONEncoder's and parses")
    func generatedValues() throws {
        var generator = SplitMix(seed: 20261206)
        for _ in 0..<2_000 {
            let value = Self.random(depth: 3, using: &generator)
            let text = value.compactJSON
            #expect(text == (try Self.encoded(value)), "\(value)")
            // Valid JSON (parsing may read an integral double such as 1e+16 back as an integer).
            _ = try JSONValue(parsing: text)
        }
    }

    static func random(depth: Int, using generator: inout SplitMix) -> JSONValue {
        let scalars: [Unicode.Scalar] = ["a", "Z", "0", "\"", "\\", "/", "\n", "\u{1}", "é", "😀", " ", "_"]
        func text() -> String {
            String(String.UnicodeScalarView((0..<Int.random(in: 0...6, using: &generator)).map { _ in scalars.randomElement(using: &generator) ?? "a" }))
        }
        switch Int.random(in: 0...(depth > 0 ? 7 : 5), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .int(Int.random(in: -1_000_000...1_000_000, using: &generator))
        case 3: return .double(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)) / 997)
        case 4: return .double(Double(bitPattern: generator.next() & 0x7FEF_FFFF_FFFF_FFFF))
        case 5: return .string(text())
        case 6: return .array((0..<Int.random(in: 0...4, using: &generator)).map { _ in random(depth: depth - 1, using: &generator) })
        default:
            var object: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...4, using: &generator) { object[text()] = random(depth: depth - 1, using: &generator) }
            return .object(object)
        }
    }
}

/// A seeded generator: the same values in every run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
