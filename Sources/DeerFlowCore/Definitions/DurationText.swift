/// Parsing and formatting of the duration strings used in workflow and config files:
/// an integer followed by a unit, `ms`, `s`, `m`, `h` or `d` (`500ms`, `30s`, `5m`, `2h`, `1d`).
/// Several parts may be combined (`1h30m`).
public enum DurationText {
    /// Parses a duration string; returns nil when it is not one, or when it is longer than
    /// about 290 million years (integer milliseconds); ranges of use are checked by callers
    /// (``Limits``).
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        var total: Int64 = 0 // milliseconds; every step is overflow-checked
        var digits = ""
        var index = trimmed.startIndex
        var sawPart = false
        while index < trimmed.endIndex {
            let character = trimmed[index]
            if character.isASCII, character.isNumber {
                digits.append(character)
                index = trimmed.index(after: index)
                continue
            }
            guard !digits.isEmpty, let value = Int64(digits) else { return nil }
            var unit = String(character)
            let next = trimmed.index(after: index)
            if character == "m", next < trimmed.endIndex, trimmed[next] == "s" {
                unit = "ms"
                index = trimmed.index(after: next)
            } else {
                index = next
            }
            let millisecondsPerUnit: Int64
            switch unit {
            case "ms": millisecondsPerUnit = 1
            case "s": millisecondsPerUnit = 1000
            case "m": millisecondsPerUnit = 60_000
            case "h": millisecondsPerUnit = 3_600_000
            case "d": millisecondsPerUnit = 86_400_000
            default: return nil
            }
            let (part, partOverflow) = value.multipliedReportingOverflow(by: millisecondsPerUnit)
            let (sum, sumOverflow) = total.addingReportingOverflow(part)
            guard !partOverflow, !sumOverflow else { return nil }
            total = sum
            digits = ""
            sawPart = true
        }
        guard digits.isEmpty, sawPart else { return nil }
        return .milliseconds(total)
    }

    /// Whether `text` is written as a duration, however long (`99999999999999999999d` is;
    /// `5x` is not).
    public static func isWellFormed(_ text: String) -> Bool {
        var small = ""
        var previousWasDigit = false
        for character in text {
            let isDigit = character.isASCII && character.isNumber
            if isDigit, !previousWasDigit { small.append("1") } else if !isDigit { small.append(character) }
            previousWasDigit = isDigit
        }
        return parse(small) != nil
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
