public import Foundation

/// RFC 3339 timestamps in UTC with milliseconds (`2024-06-01T12:00:00.123Z`), the format of every
/// time in API responses and log lines.
public enum Timestamp {
    /// Formats a date (clamped to ``Limits/storableTime``, so the year has four digits).
    public static func rfc3339(_ date: Date) -> String {
        String(unsafeUninitializedCapacity: 24) { buffer in
            write(date, into: buffer)
            return 24
        }
    }

    /// Calls `body` with the date's 24 bytes, as ``rfc3339(_:)`` formats them (for a log line being
    /// built as bytes, without making a string).
    /// Not generic: a generic function called from another module is not specialized, and its
    /// result type's metadata cost more than formatting the date.
    public static func withRFC3339(_ date: Date, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { buffer in
            write(date, into: buffer)
            body(UnsafeBufferPointer(buffer))
        }
    }

    /// Writes the 24 bytes of the date into `buffer`, which holds at least 24. Computed from the
    /// day number rather than with `gmtime_r` (a lock and a time-zone check): a log line's time
    /// stamp is on every line, and `gmtime_r` with a byte-by-byte append was ~15 % of a line.
    private static func write(_ date: Date, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        let totalMilliseconds = Int64((date.storable.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = totalMilliseconds >= 0 ? totalMilliseconds / 1000 : (totalMilliseconds - 999) / 1000
        let milliseconds = Int((totalMilliseconds % 1000 + 1000) % 1000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civil(daysSinceEpoch: Int(days))
        @inline(__always) func put2(_ value: Int, at offset: Int) {
            buffer[offset] = UInt8(truncatingIfNeeded: 48 + value / 10)
            buffer[offset + 1] = UInt8(truncatingIfNeeded: 48 + value % 10)
        }
        put2(year / 100, at: 0)
        put2(year % 100, at: 2)
        buffer[4] = 45 // -
        put2(month, at: 5)
        buffer[7] = 45
        put2(day, at: 8)
        buffer[10] = 84 // T
        put2(secondOfDay / 3600, at: 11)
        buffer[13] = 58 // :
        put2(secondOfDay / 60 % 60, at: 14)
        buffer[16] = 58
        put2(secondOfDay % 60, at: 17)
        buffer[19] = 46 // .
        buffer[20] = UInt8(truncatingIfNeeded: 48 + milliseconds / 100)
        put2(milliseconds % 100, at: 21)
        buffer[23] = 90 // Z
    }

    /// The proleptic Gregorian date of a day counted from 1970-01-01 (negative before it), as
    /// `gmtime_r` gives it; H. Hinnant's `civil_from_days` (public domain), exact for every day
    /// of ``Limits/storableTime``.
    static func civil(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = daysSinceEpoch + 719_468 // from 0000-03-01
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097 // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365 // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100) // 0...365, from March
        let monthFromMarch = (5 * dayOfYear + 2) / 153 // 0...11
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
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
