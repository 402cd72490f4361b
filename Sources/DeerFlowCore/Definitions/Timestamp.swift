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
        let totalMilliseconds = Int64((date.storable.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(totalMilliseconds >= 0 ? totalMilliseconds / 1000 : (totalMilliseconds - 999) / 1000)
        let milliseconds = Int((totalMilliseconds % 1000 + 1000) % 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int, _ width: Int, at offset: Int) {
            var value = value
            for index in stride(from: offset + width - 1, through: offset, by: -1) {
                bytes[index] = UInt8(48 + value % 10)
                value /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 4, at: 0)
        bytes[4] = 45 // -
        put(Int(parts.tm_mon) + 1, 2, at: 5)
        bytes[7] = 45
        put(Int(parts.tm_mday), 2, at: 8)
        bytes[10] = 84 // T
        put(Int(parts.tm_hour), 2, at: 11)
        bytes[13] = 58 // :
        put(Int(parts.tm_min), 2, at: 14)
        bytes[16] = 58
        put(Int(parts.tm_sec), 2, at: 17)
        bytes[19] = 46 // .
        put(milliseconds, 3, at: 20)
        bytes[23] = 90 // Z
        return String(decoding: bytes, as: UTF8.self)
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
