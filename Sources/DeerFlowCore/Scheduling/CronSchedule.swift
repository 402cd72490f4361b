public import Foundation

/// A standard 5-field cron schedule (`minute hour day-of-month month day-of-week`) evaluated in a
/// time zone's wall-clock time.
///
/// ```swift
/// let schedule = try CronSchedule("30 2 * * MON-FRI", timeZone: TimeZone(identifier: "Europe/Berlin") ?? .gmt)
/// let next = schedule.nextFire(after: .now)                 // the next weekday 02:30 in Berlin
/// let missed = schedule.fires(after: lastRun, through: .now, limit: 10)
/// ```
///
/// Syntax:
/// - minute `0-59`, hour `0-23`, day-of-month `1-31`, month `1-12` or `JAN`-`DEC`, day-of-week
///   `0-7` or `SUN`-`SAT` (`0` and `7` are both Sunday); names are case-insensitive.
/// - `*`, single values, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the field's
///   maximum), and comma-separated lists of these. Ranges don't wrap around.
/// - Macros: `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
/// - The Quartz extensions `L`, `W`, `#` and `?`, a seconds field and `@reboot` are not supported.
///
/// Day matching follows Vixie cron: when both day fields are restricted (neither starts with `*`),
/// a day fires when *either* matches (`0 0 13 * 5` is "every 13th and every Friday"). When one of
/// them starts with `*`, a day must match both, so a bare `*` leaves only the other field in charge.
///
/// Time semantics, all in `timeZone`'s wall clock, always at second 0:
/// - **Spring forward** (a wall time skipped that day): a schedule with a fixed hour field fires once,
///   at the first instant after the gap, for all of its wall times inside the gap together
///   (`30 2 * * *` in New York on 2025-03-09 fires at 03:00 EDT). A schedule whose hour field starts
///   with `*` (`*`, `*/2`) simply has no fires in the gap; it continues in absolute time.
/// - **Fall back** (a wall time that occurs twice): a fixed hour fires only at the first occurrence
///   (`30 1 * * *` on 2025-11-02 in New York fires at 01:30 EDT only). An hour field starting with
///   `*` fires at both occurrences, so `*/15 * * * *` keeps firing every 15 real minutes.
/// - Days that don't exist are skipped: `0 0 31 * *` fires only in months with a 31st,
///   `0 0 29 2 *` only in leap years, and `0 0 30 2 *` never.
///
/// The search jumps over non-matching months, days and hours, so even a yearly schedule takes
/// microseconds. Two schedules are equal when their expression and time zone are.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression as given, without surrounding whitespace, e.g. `"*/15 * * * *"` or `"@daily"`.
    public let expression: String
    /// The time zone whose wall clock the fields refer to; UTC by default.
    public let timeZone: TimeZone

    private let fields: Fields

    /// Parses a 5-field cron expression (minute hour day-of-month month day-of-week) in a time zone.
    ///
    /// - Parameters:
    ///   - expression: Five whitespace-separated fields, or a macro such as `@daily`.
    ///   - timeZone: The zone whose wall-clock time the fields describe. Defaults to UTC.
    /// - Throws: ``ParseError`` naming the field and the problem, e.g.
    ///   `hour: value 24 is out of range 0-23`.
    public init(_ expression: String, timeZone: TimeZone = .gmt) throws(CronSchedule.ParseError) {
        let trimmed = expression.trimmingCharacters(in: .whitespacesAndNewlines)
        self.expression = trimmed
        self.timeZone = timeZone
        self.fields = try Fields(parsing: trimmed)
    }

    /// `expression` followed by the time zone identifier, e.g. `0 9 * * MON-FRI (Europe/Berlin)`.
    public var description: String {
        "\(expression) (\(timeZone.identifier))"
    }

    /// The first fire time strictly after `date`, or nil if none within the next ~8 years
    /// (e.g. `"0 0 30 2 *"`).
    ///
    /// The seconds of `date` are ignored and the result is always at second 0, so the next fire of
    /// `* * * * *` after 10:00:30 is 10:01:00. The search runs through the end of the eighth calendar
    /// year after `date`'s, so `0 0 29 2 *` is found even across 2100, which is not a leap year.
    /// Dates outside the years 1...9990 have no fire.
    public func nextFire(after date: Date) -> Date? {
        guard let seconds = Self.wholeSeconds(date) else { return nil }
        return nextFire(atOrAfter: Self.floorDivide(seconds, 60) * 60 + 60).map {
            Date(timeIntervalSince1970: TimeInterval($0))
        }
    }

    /// Every fire time in (start, end], at most `limit` of them (for catch-up of missed fires).
    ///
    /// Returns the earliest `limit` fires in chronological order; an empty array when `limit` is not
    /// positive or `end` is not after `start`.
    public func fires(after start: Date, through end: Date, limit: Int) -> [Date] {
        var result: [Date] = []
        var cursor = start
        while result.count < limit, let next = nextFire(after: cursor), next <= end {
            result.append(next)
            cursor = next
        }
        return result
    }

    /// Why this schedule can never fire, or nil when it can: its days of the month exist in none
    /// of its months (`0 0 30 2 *`, `0 0 31 4,6 *`). The type still represents such a schedule
    /// (``nextFire(after:)`` answers nil); workflow validation rejects it with this reason.
    ///
    /// Exact, without searching: when either day field is restricted alone (the other starts
    /// with `*`), a day must match both, and every day of a month that exists falls on every
    /// weekday in some year, so only the month lengths decide; when both are restricted, a day
    /// matching the day-of-week is enough, and every month has every weekday.
    public var neverFiresProblem: String? {
        guard fields.dayOfMonthIsWildcard || fields.dayOfWeekIsWildcard else { return nil }
        let months = (1...12).filter { fields.months.contains($0) }
        // The longest each month ever is: February 29 in leap years.
        let longest = { (month: Int) in month == 2 ? 29 : LocalDateTime.daysInMonth(year: 2001, month: month) }
        guard let firstDay = fields.daysOfMonth.next(atOrAfter: 1), months.allSatisfy({ firstDay > longest($0) }) else { return nil }
        let names = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        let days = (1...31).filter { fields.daysOfMonth.contains($0) }.map(String.init).joined(separator: ", ")
        let lengths = months.map { month in
            "\(names[month - 1]) has \(month == 2 ? "at most 29" : "\(longest(month))") days"
        }
        return "day-of-month \(days) never occurs in \(months.map { names[$0 - 1] }.joined(separator: ", ")) (\(lengths.joined(separator: "; ")))"
    }

    /// Why an expression was rejected, naming the field and the problem, e.g.
    /// `day-of-week: step must be a positive integer, got "0"`.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        /// The human-readable reason, suitable for showing to whoever wrote the expression.
        public let message: String

        /// The same as ``message``.
        public var description: String { message }

        init(_ message: String) {
            self.message = message
        }
    }
}

// MARK: - Next fire time

extension CronSchedule {
    /// How many calendar years past the starting year are searched before giving up.
    private static let searchYears = 8

    /// Dates outside years 1...9990 are rejected rather than risking overflow in time-zone lookups.
    private static let supportedSeconds: ClosedRange<Int> = -62_135_596_800...253_118_304_000

    /// The first fire instant (Unix seconds) at or after `earliest`, which is minute-aligned.
    ///
    /// The timeline is walked in segments of constant UTC offset, split at the zone's transitions.
    /// Inside a segment wall time and instant differ by a constant, so the pure wall-clock search
    /// of ``Fields/firstMatch(from:before:)`` applies; the transitions decide gaps and repeats.
    private func nextFire(atOrAfter earliest: Int) -> Int? {
        let startWall = earliest + offset(at: earliest)
        let horizon = LocalDateTime(seconds: startWall).year + Self.searchYears + 1
        let horizonWall = LocalDateTime.seconds(year: horizon, month: 1, day: 1, hour: 0, minute: 0)

        // Start two days early so the segment containing `earliest` knows whether it began with a
        // fall-back repeat (which fixed-hour schedules must skip).
        var segmentStart = earliest - 2 * 86_400
        var offset = offset(at: segmentStart)
        var segmentWallStart = segmentStart + offset
        while true {
            let transition = nextTransition(after: segmentStart)
            let segmentWallEnd = transition.map { $0 + offset } ?? Int.max
            let from = max(segmentWallStart, earliest + offset)
            if let wall = fields.firstMatch(from: from, before: min(segmentWallEnd, horizonWall)) {
                return wall - offset
            }
            guard let transition, segmentWallEnd < horizonWall else { return nil }

            let newOffset = self.offset(at: transition)
            if newOffset > offset, !fields.hourIsWildcard, transition >= earliest,
                fields.firstMatch(from: transition + offset, before: transition + newOffset) != nil
            {
                // Spring forward: fixed wall times in the gap fire once, right after it.
                return transition
            }
            if newOffset < offset, !fields.hourIsWildcard {
                // Fall back: fixed wall times already fired before the transition; skip the repeat.
                segmentWallStart = transition + offset
            } else {
                segmentWallStart = transition + newOffset
            }
            offset = newOffset
            segmentStart = transition
        }
    }

    private func offset(at seconds: Int) -> Int {
        timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    private func nextTransition(after seconds: Int) -> Int? {
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard let next = timeZone.nextDaylightSavingTimeTransition(after: date),
            let nextSeconds = Self.wholeSeconds(next)
        else { return nil }
        // Guard against a platform returning the transition we are standing on.
        return nextSeconds > seconds ? nextSeconds : nil
    }

    private static func wholeSeconds(_ date: Date) -> Int? {
        let interval = date.timeIntervalSince1970.rounded(.down)
        guard let seconds = Int(exactly: interval), supportedSeconds.contains(seconds) else { return nil }
        return seconds
    }

    fileprivate static func floorDivide(_ value: Int, _ divisor: Int) -> Int {
        let quotient = value / divisor
        return (value % divisor < 0) ? quotient - 1 : quotient
    }
}

// MARK: - Parsed fields and the wall-clock search

extension CronSchedule {
    /// The parsed expression: one bit set per field plus the `*` flags that drive day and DST rules.
    fileprivate struct Fields: Sendable, Hashable {
        var minutes: BitSet
        var hours: BitSet
        var daysOfMonth: BitSet
        var months: BitSet
        var daysOfWeek: BitSet
        var dayOfMonthIsWildcard: Bool
        var dayOfWeekIsWildcard: Bool
        var hourIsWildcard: Bool

        /// The first matching wall-clock minute in [lower, upper), as wall-clock seconds since 1970.
        func firstMatch(from lower: Int, before upper: Int) -> Int? {
            let start = -CronSchedule.floorDivide(-lower, 60) * 60  // round up to a whole minute
            guard start < upper else { return nil }
            var time = LocalDateTime(seconds: start)
            while true {
                guard time.seconds < upper else { return nil }
                if !months.contains(time.month) {
                    if let month = months.next(atOrAfter: time.month) {
                        time.set(month: month)
                    } else {
                        time.advanceYear()
                    }
                } else if !dayMatches(time) {
                    time.advanceDay()
                } else if let hour = hours.next(atOrAfter: time.hour) {
                    if hour != time.hour {
                        time.set(hour: hour)
                    } else if let minute = minutes.next(atOrAfter: time.minute) {
                        time.minute = minute
                        return time.seconds < upper ? time.seconds : nil
                    } else if let laterHour = hours.next(atOrAfter: time.hour + 1) {
                        time.set(hour: laterHour)
                    } else {
                        time.advanceDay()
                    }
                } else {
                    time.advanceDay()
                }
            }
        }

        private func dayMatches(_ time: LocalDateTime) -> Bool {
            guard time.day <= LocalDateTime.daysInMonth(year: time.year, month: time.month) else { return false }
            let dayOfMonth = daysOfMonth.contains(time.day)
            let dayOfWeek = daysOfWeek.contains(time.weekday)
            if dayOfMonthIsWildcard || dayOfWeekIsWildcard {
                return dayOfMonth && dayOfWeek
            }
            return dayOfMonth || dayOfWeek
        }
    }

    /// A set of small non-negative integers (0...63).
    fileprivate struct BitSet: Sendable, Hashable {
        var raw: UInt64 = 0

        func contains(_ value: Int) -> Bool {
            value >= 0 && value < 64 && raw & (1 << UInt64(value)) != 0
        }

        func next(atOrAfter value: Int) -> Int? {
            guard value < 64 else { return nil }
            let remaining = raw & (UInt64.max << UInt64(max(value, 0)))
            return remaining == 0 ? nil : remaining.trailingZeroBitCount
        }

        mutating func insert(_ value: Int) {
            raw |= 1 << UInt64(value)
        }

        mutating func remove(_ value: Int) {
            raw &= ~(1 << UInt64(value))
        }
    }

    /// A proleptic Gregorian wall-clock minute with no time zone attached.
    fileprivate struct LocalDateTime {
        var year: Int
        var month: Int
        var day: Int
        var hour: Int
        var minute: Int

        init(seconds: Int) {
            let days = CronSchedule.floorDivide(seconds, 86_400)
            let secondOfDay = seconds - days * 86_400
            (year, month, day) = Self.civil(fromDays: days)
            hour = secondOfDay / 3_600
            minute = secondOfDay % 3_600 / 60
        }

        var seconds: Int {
            Self.seconds(year: year, month: month, day: day, hour: hour, minute: minute)
        }

        /// 0 is Sunday.
        var weekday: Int {
            let days = Self.days(year: year, month: month, day: day)
            return ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
        }

        mutating func set(month newMonth: Int) {
            (month, day, hour, minute) = (newMonth, 1, 0, 0)
        }

        mutating func set(hour newHour: Int) {
            (hour, minute) = (newHour, 0)
        }

        mutating func advanceYear() {
            (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0)
        }

        mutating func advanceDay() {
            (hour, minute) = (0, 0)
            day += 1
            if day > Self.daysInMonth(year: year, month: month) {
                day = 1
                month += 1
                if month > 12 {
                    month = 1
                    year += 1
                }
            }
        }

        static func seconds(year: Int, month: Int, day: Int, hour: Int, minute: Int) -> Int {
            days(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60
        }

        static func daysInMonth(year: Int, month: Int) -> Int {
            switch month {
            case 2:
                let isLeap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
                return isLeap ? 29 : 28
            case 4, 6, 9, 11:
                return 30
            default:
                return 31
            }
        }

        /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
        static func days(year: Int, month: Int, day: Int) -> Int {
            let shiftedYear = month <= 2 ? year - 1 : year
            let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
            let yearOfEra = shiftedYear - era * 400
            let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
            let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
            return era * 146_097 + dayOfEra - 719_468
        }

        /// The inverse of ``days(year:month:day:)`` (Howard Hinnant's `civil_from_days`).
        static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
            let shifted = days + 719_468
            let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
            let dayOfEra = shifted - era * 146_097
            let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
            let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
            let shiftedMonth = (5 * dayOfYear + 2) / 153
            let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
            let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
            return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
        }
    }
}

// MARK: - Parsing

extension CronSchedule.Fields {
    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]

    init(parsing expression: String) throws(CronSchedule.ParseError) {
        var parts = expression.split(whereSeparator: \.isWhitespace).map(String.init)
        if let first = parts.first, first.hasPrefix("@") {
            guard let expansion = Self.macros[first.lowercased()] else {
                throw CronSchedule.ParseError(
                    "unsupported macro \"\(first)\"; "
                        + "use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
                )
            }
            guard parts.count == 1 else {
                throw CronSchedule.ParseError("\(first) must be the whole expression, got \(parts.count) fields")
            }
            parts = expansion.split(separator: " ").map(String.init)
        }
        guard parts.count == 5 else {
            throw CronSchedule.ParseError(
                "expected 5 fields (minute hour day-of-month month day-of-week), got \(parts.count)"
            )
        }
        minutes = try FieldKind.minute.parse(parts[0])
        hours = try FieldKind.hour.parse(parts[1])
        daysOfMonth = try FieldKind.dayOfMonth.parse(parts[2])
        months = try FieldKind.month.parse(parts[3])
        daysOfWeek = try FieldKind.dayOfWeek.parse(parts[4])
        if daysOfWeek.contains(7) {
            daysOfWeek.remove(7)
            daysOfWeek.insert(0)
        }
        hourIsWildcard = parts[1].hasPrefix("*")
        dayOfMonthIsWildcard = parts[2].hasPrefix("*")
        dayOfWeekIsWildcard = parts[4].hasPrefix("*")
    }

    private enum FieldKind {
        case minute, hour, dayOfMonth, month, dayOfWeek

        var name: String {
            switch self {
            case .minute: "minute"
            case .hour: "hour"
            case .dayOfMonth: "day-of-month"
            case .month: "month"
            case .dayOfWeek: "day-of-week"
            }
        }

        var bounds: ClosedRange<Int> {
            switch self {
            case .minute: 0...59
            case .hour: 0...23
            case .dayOfMonth: 1...31
            case .month: 1...12
            case .dayOfWeek: 0...7
            }
        }

        /// Names in order, starting at `bounds.lowerBound`.
        var names: [String] {
            switch self {
            case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            default: []
            }
        }

        /// The last value of a wrapped range's first half in a suggestion (Sunday is written 0).
        private var wrapMaximum: Int {
            self == .dayOfWeek ? 6 : bounds.upperBound
        }

        private func error(_ problem: String) -> CronSchedule.ParseError {
            CronSchedule.ParseError("\(name): \(problem)")
        }

        func parse(_ text: String) throws(CronSchedule.ParseError) -> CronSchedule.BitSet {
            var result = CronSchedule.BitSet()
            for element in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !element.isEmpty else { throw error("empty element in list \"\(text)\"") }
                let stepParts = element.split(separator: "/", omittingEmptySubsequences: false)
                guard stepParts.count <= 2 else { throw error("more than one step in \"\(element)\"") }

                var step = 1
                if stepParts.count == 2 {
                    let stepText = stepParts[1]
                    guard Self.isNumber(stepText), let value = Int(stepText), value > 0 else {
                        throw error("step must be a positive integer, got \"\(stepText)\"")
                    }
                    step = value
                }

                let rangeText = stepParts[0]
                let lower: Int
                let upper: Int
                if rangeText == "*" {
                    (lower, upper) = (bounds.lowerBound, bounds.upperBound)
                } else {
                    let ends = rangeText.split(separator: "-", omittingEmptySubsequences: false)
                    switch ends.count {
                    case 1:
                        lower = try value(ends[0])
                        upper = stepParts.count == 2 ? bounds.upperBound : lower
                    case 2:
                        lower = try value(ends[0])
                        upper = try value(ends[1])
                        guard lower <= upper else { throw wrappedRangeError(rangeText, lower, upper) }
                    default:
                        throw error("invalid range \"\(rangeText)\"")
                    }
                }
                for value in stride(from: lower, through: upper, by: step) {
                    result.insert(value)
                }
            }
            return result
        }

        private func value(_ token: Substring) throws(CronSchedule.ParseError) -> Int {
            if Self.isNumber(token) {
                guard let number = Int(token), bounds.contains(number) else {
                    throw error("value \(token) is out of range \(bounds.lowerBound)-\(bounds.upperBound)")
                }
                return number
            }
            if let index = names.firstIndex(of: token.uppercased()) {
                return bounds.lowerBound + index
            }
            if self == .dayOfMonth || self == .dayOfWeek, token.contains(where: { "LlWw#?".contains($0) }) {
                throw error("\"\(token)\" is not supported; L, W, # and ? are Quartz extensions, not standard cron")
            }
            guard let first = names.first, let last = names.last else {
                throw error("expected a number, got \"\(token)\"")
            }
            if !token.isEmpty, token.allSatisfy({ $0.isASCII && $0.isLetter }) {
                throw error("unknown name \"\(token)\"")
            }
            throw error("expected a number or a name (\(first)-\(last)), got \"\(token)\"")
        }

        private func wrappedRangeError(_ text: Substring, _ lower: Int, _ upper: Int) -> CronSchedule.ParseError {
            var problem = "range \"\(text)\" starts after it ends; ranges don't wrap around"
            if lower <= wrapMaximum {
                let head = lower == wrapMaximum ? "\(lower)" : "\(lower)-\(wrapMaximum)"
                let tail = upper == bounds.lowerBound ? "\(upper)" : "\(bounds.lowerBound)-\(upper)"
                problem += ", write \"\(head),\(tail)\" instead"
            }
            return error(problem)
        }

        private static func isNumber(_ text: Substring) -> Bool {
            !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
        }
    }
}
