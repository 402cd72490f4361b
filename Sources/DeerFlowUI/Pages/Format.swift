import DeerFlowCore
import Foundation

/// Text and view-model pieces shared by the pages.
enum Format {
    /// Glyph and words of a state: every state is told by colour, glyph and label together.
    static let glyphs: [String: String] = [
        "success": "✓", "failed": "✗", "running": "▶", "queued": "◷", "pending": "○", "cancelled": "⊘", "timeout": "⌛",
        "upstream_failed": "↯", "delivered": "✓", "retrying": "↻", "firing": "▲", "active": "●", "stopped": "■", "lost": "✗", "none": "·",
    ]

    static func state(_ status: String) -> [String: Any] {
        ["status": status, "glyph": glyphs[status] ?? "•", "label": status.replacingOccurrences(of: "_", with: " ")]
    }

    static let utc: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
        return formatter
    }()

    /// A `<time>` partial's context: ISO 8601 for the script, UTC text for everyone.
    static func time(_ date: Date?) -> [String: Any] {
        guard let date else { return ["iso": false] }
        return ["iso": Timestamp.rfc3339(date), "utc": utc.string(from: date)]
    }

    /// `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`, `3 d 4 h` (``DurationText/elapsed(seconds:compact:)``).
    static func duration(_ seconds: Double?) -> String {
        DurationText.elapsed(seconds: seconds)
    }

    static func percent(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "—" : "\(Int((Double(part) / Double(whole) * 100).rounded())) %"
    }

    /// A figure for a chart label, with the panel's unit.
    static func figure(_ value: Double, unit: String) -> String {
        guard value.isFinite else { return "—" }
        switch unit {
        case "s": return duration(value)
        case "percentunit": return "\(Int((value * 100).rounded())) %"
        case "percent": return "\(Int(value.rounded())) %"
        default:
            if abs(value) >= 1000 { return String(format: "%.1fk", value / 1000) }
            if value == value.rounded() { return String(Int(value)) }
            return String(format: abs(value) < 1 ? "%.3f" : "%.2f", value)
        }
    }

    /// The exit code of a shell attempt: 0 for a success (whose output may be the task's own
    /// JSON), else the number in its error.
    static func exitCode(succeeded: Bool, error: String?) -> String {
        if succeeded { return "0" }
        guard let error else { return "" }
        for marker in ["exited with code ", "exit code "] {
            if let range = error.range(of: marker) {
                let digits = error[range.upperBound...].prefix { $0.isNumber || $0 == "-" }
                if !digits.isEmpty { return String(digits) }
            }
        }
        return ""
    }

    /// A template value, or `false` for none: a key that is absent would make Mustache look it up
    /// in the enclosing contexts and find an unrelated value of the same name.
    static func orFalse<Value>(_ value: Value?) -> Any {
        if let value { return value }
        return false
    }

    /// Text escaped for HTML and SVG, as Mustache's `{{…}}` escapes it: for markup the pages
    /// write directly (``Drawings``, big tables).
    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 16)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A JSON parameter value as text.
    static func value(_ value: JSONValue) -> String {
        if case .string(let text) = value { return text }
        return value.compactJSON
    }
}
