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

    /// Parses RFC 3339 / ISO 8601 timestamps (with or without fractional seconds, any offset).
    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}
