public import Foundation

/// Identifier of a workflow run: 26 characters of Crockford base32 (a ULID), so ids sort by
/// creation time and make stable paging cursors.
public struct RunID: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// A new id for a run created at `date`.
    public static func generate(at date: Date = Date()) -> RunID {
        var generator = ProcessRandom()
        return generate(at: date, using: &generator)
    }

    /// A new id from a given random source (tests).
    public static func generate(at date: Date, using generator: inout some RandomNumberGenerator) -> RunID {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var characters: [Character] = []
        characters.reserveCapacity(26)
        // 48-bit timestamp → 10 characters.
        for shift in stride(from: 45, through: 0, by: -5) {
            characters.append(Self.alphabet[Int((milliseconds >> UInt64(shift)) & 0x1f)])
        }
        // 80 random bits → 16 characters, from two draws.
        let high: UInt64 = generator.next()
        let low: UInt64 = generator.next()
        for shift in stride(from: 55, through: 0, by: -5) {
            characters.append(Self.alphabet[Int((high >> UInt64(shift)) & 0x1f)])
        }
        for shift in stride(from: 15, through: 0, by: -5) {
            characters.append(Self.alphabet[Int((low >> UInt64(shift)) & 0x1f)])
        }
        return RunID(rawValue: String(characters))
    }

    /// The lowest id a run created at `date` or later can have: its 10-character time prefix. Run
    /// ids sort by creation time, so a time range of runs is a range of ids (an index range scan).
    public static func lowerBound(at date: Date) -> String {
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        var characters: [Character] = []
        characters.reserveCapacity(10)
        for shift in stride(from: 45, through: 0, by: -5) {
            characters.append(Self.alphabet[Int((milliseconds >> UInt64(shift)) & 0x1f)])
        }
        return String(characters)
    }

    /// The creation time the id's first 10 characters hold (milliseconds); nil for an id not
    /// made by ``generate(at:)``.
    public var creationTime: Date? {
        guard rawValue.count >= 10 else { return nil }
        var milliseconds: UInt64 = 0
        for character in rawValue.prefix(10) {
            guard let digit = Self.alphabet.firstIndex(of: character) else { return nil }
            milliseconds = milliseconds << 5 | UInt64(digit)
        }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// Whether a string has the shape of a run id (used to answer 404 without a store lookup).
    public static func isWellFormed(_ text: String) -> Bool {
        text.count == 26 && text.uppercased() == text && text.allSatisfy { alphabet.contains($0) }
    }

    public var description: String { rawValue }

    public static func < (lhs: RunID, rhs: RunID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
}

