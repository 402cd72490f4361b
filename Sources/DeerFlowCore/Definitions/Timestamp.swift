public import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 timestamps in UTC with milliseconds (`2024-06-01T12:00:00.123Z`), the format of every
/// time in API responses and log lines.
public enum Timestamp {
    /// Formats a date (clamped to ``Limits/storableTime``, so the year has four digits).
    public static func rfc3339(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        appendRFC3339(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the date's 24 bytes, as ``rfc3339(_:)`` formats it, to `bytes` (a log line being
    /// built), without making a string.
    public static func appendRFC3339(_ date: Date, to bytes: inout [UInt8]) {
        let totalMilliseconds = Int64((date.storable.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(totalMilliseconds >= 0 ? totalMilliseconds / 1000 : (totalMilliseconds - 999) / 1000)
        let milliseconds = Int((totalMilliseconds % 1000 + 1000) % 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var value = value
            while divisor > 0 {
                bytes.append(UInt8(48 + value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 4)
        bytes.append(45) // -
        put(Int(parts.tm_mon) + 1, 2)
        bytes.append(45)
        put(Int(parts.tm_mday), 2)
        bytes.append(84) // T
        put(Int(parts.tm_hour), 2)
        bytes.append(58) // :
        put(Int(parts.tm_min), 2)
        bytes.append(58)
        put(Int(parts.tm_sec), 2)
        bytes.append(46) // .
        put(milliseconds, 3)
        bytes.append(90) // Z
    }

    /// Formats a date to whole seconds, `2024-06-01T02:00:00Z` (``DEERFLOW_LOGICAL_TIME``).
    public static func rfc3339Seconds(_ date: Date) -> String {
        String(rfc3339(date).prefix(19)) + "Z"
    }

    /// A day (`2024-06-01`, read as 00:00 UTC) or an RFC 3339 time; nil for anything else.
    public static func parseDayOrTime(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
           let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day) {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = .gmt
            let components = DateComponents(year: year, month: month, day: day)
            guard let date = calendar.date(from: components), calendar.component(.day, from: date) == day else { return nil }
            return date
        }
        return parse(text)
    }

    /// Parses RFC 3339 / ISO 8601 timestamps (with or without fractional seconds, any offset).
    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}
