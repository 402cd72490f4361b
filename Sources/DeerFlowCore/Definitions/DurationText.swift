import Foundation

/// Parsing and formatting of the duration strings used in workflow and config files:
/// an integer followed by a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `30s`, `5m`, `2h`, `1d`).
/// Several parts may be combined, each unit at most once and the largest first (`1h30m`,
/// `1d12h`); `1h1h` and `30m1h` are not durations.
public enum DurationText {
    /// The units, largest first: the order they must be written in.
    static let units: [(name: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1),
    ]

    /// Why a text is not a duration.
    enum Problem: Error, Equatable {
        /// Not written as a duration at all (`5x`, `m5`, `1.5s`).
        case malformed
        /// A unit given twice (`1h1h`).
        case repeatedUnit(String)
        /// A unit after a smaller one (`30m1h`).
        case unitOutOfOrder(later: String, earlier: String)
        /// Written as a duration, but more milliseconds than an `Int64` holds.
        case tooLong
    }

    /// Parses a duration string; returns nil when it is not one, or when it is longer than
    /// about 290 million years (integer milliseconds); ranges of use are checked by callers
    /// (``Limits``).
    public static func parse(_ text: String) -> Duration? {
        try? read(text).get()
    }

    /// Whether `text` is written as a duration, however long (`99999999999999999999d` is;
    /// `5x` and `1h1h` are not).
    public static func isWellFormed(_ text: String) -> Bool {
        switch read(text) {
        case .success, .failure(.tooLong): true
        case .failure: false
        }
    }

    /// What is wrong with `text` as a duration, as a sentence for an error message, or nil when it
    /// is a duration (however long).
    public static func formProblem(_ text: String) -> String? {
        switch read(text) {
        case .success, .failure(.tooLong):
            return nil
        case .failure(.malformed):
            return "'\(text)' is not a duration (use e.g. 30s, 5m, 2h, 1d)"
        case .failure(.repeatedUnit(let unit)):
            return "'\(text)' gives the unit '\(unit)' twice; write each unit once, largest first (e.g. 1h30m)"
        case .failure(.unitOutOfOrder(let later, let earlier)):
            return "'\(text)' gives '\(later)' after the smaller unit '\(earlier)'; write the units largest first (d, h, m, s, ms), e.g. 1h30m"
        }
    }

    /// One pass over `text`: parts of digits and a unit, units strictly decreasing, every step
    /// overflow-checked.
    static func read(_ text: String) -> Result<Duration, Problem> {
        let scalars = Array(text.trimmingWhitespace().unicodeScalars)
        guard !scalars.isEmpty else { return .failure(.malformed) }
        var total: Int64 = 0 // milliseconds
        var overflow = false
        var lastUnit: Int? // index into `units` of the previous part's unit
        var index = 0
        while index < scalars.count {
            var value: Int64 = 0
            let digitsStart = index
            while index < scalars.count, let digit = scalars[index].asciiDigit {
                let (shifted, shiftOverflow) = value.multipliedReportingOverflow(by: 10)
                let (sum, sumOverflow) = shifted.addingReportingOverflow(digit)
                overflow = overflow || shiftOverflow || sumOverflow
                value = sum
                index += 1
            }
            guard index > digitsStart, index < scalars.count else { return .failure(.malformed) }
            var unitName = String(scalars[index])
            if scalars[index] == "m", index + 1 < scalars.count, scalars[index + 1] == "s" {
                unitName = "ms"
                index += 1
            }
            index += 1
            guard let unit = units.firstIndex(where: { $0.name == unitName }) else { return .failure(.malformed) }
            if let lastUnit, unit <= lastUnit {
                return .failure(unit == lastUnit ? .repeatedUnit(unitName) : .unitOutOfOrder(later: unitName, earlier: units[lastUnit].name))
            }
            lastUnit = unit
            let (part, partOverflow) = value.multipliedReportingOverflow(by: units[unit].milliseconds)
            let (sum, sumOverflow) = total.addingReportingOverflow(part)
            overflow = overflow || partOverflow || sumOverflow
            total = sum
        }
        return overflow ? .failure(.tooLong) : .success(.milliseconds(total))
    }

    /// Formats a duration in the same notation, choosing the largest exact unit (`90s` → `90s`, `120s` → `2m`).
    public static func format(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        if milliseconds == 0 { return "0s" }
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// An elapsed time for people to read, rounded to what matters at its size: `850 ms`,
    /// `12.3 s`, `4 m 05 s`, `2 h 03 m`, `3 d 4 h`; `—` for nil, negative or infinite values.
    /// What the UI and the command line show for run, task and queue times.
    ///
    /// - Parameters:
    ///   - seconds: The elapsed time.
    ///   - compact: Without spaces (`4m05s`), for a column of a text table or a chart's axis.
    public static func elapsed(seconds: Double?, compact: Bool = false) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "—" }
        let space = compact ? "" : " "
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))\(space)ms" }
        if seconds < 60 { return String(format: "%.1f", seconds) + "\(space)s" }
        let total = Int(seconds.rounded())
        if total < 3600 { return "\(total / 60)\(space)m\(space)\(two(total % 60))\(space)s" }
        if total < 86400 { return "\(total / 3600)\(space)h\(space)\(two((total % 3600) / 60))\(space)m" }
        return "\(total / 86400)\(space)d\(space)\((total % 86400) / 3600)\(space)h"
    }
}

extension Duration {
    /// Whole milliseconds in this duration (truncated).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds in this duration (truncated).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// This duration in seconds as a floating-point number.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}

extension Unicode.Scalar {
    /// The value of an ASCII digit, nil for anything else.
    fileprivate var asciiDigit: Int64? {
        ("0"..."9").contains(self) ? Int64(value - 48) : nil
    }
}
