import Foundation
import Testing

@testable import DeerFlowCore

// MARK: - Helpers

private func utc(_ text: String) throws -> Date {
    try Date(text, strategy: .iso8601)
}

private func zone(_ identifier: String) throws -> TimeZone {
    try #require(TimeZone(identifier: identifier))
}

/// The next `count` fires after `start`, as UTC ISO-8601 strings.
private func nextFires(
    _ expression: String,
    in timeZone: TimeZone = .gmt,
    after start: String,
    count: Int
) throws -> [String] {
    let schedule = try CronSchedule(expression, timeZone: timeZone)
    var cursor = try utc(start)
    var result: [String] = []
    for _ in 0..<count {
        guard let next = schedule.nextFire(after: cursor) else { break }
        result.append(next.formatted(.iso8601))
        cursor = next
    }
    return result
}

private func parseError(_ expression: String) -> String? {
    do {
        _ = try CronSchedule(expression)
        return nil
    } catch {
        return error.message
    }
}

// MARK: - Parsing errors

@Test func rejectsWrongNumberOfFields() {
    let expected = "expected 5 fields (minute hour day-of-month month day-of-week), got"
    #expect(parseError("* * * * * *") == "\(expected) 6")
    #expect(parseError("* * * *") == "\(expected) 4")
    #expect(parseError("") == "\(expected) 0")
    #expect(parseError("0 0 L") == "\(expected) 3")
}

@Test func rejectsValuesOutOfRange() {
    #expect(parseError("60 * * * *") == "minute: value 60 is out of range 0-59")
    #expect(parseError("0 24 * * *") == "hour: value 24 is out of range 0-23")
    #expect(parseError("0 0 0 * *") == "day-of-month: value 0 is out of range 1-31")
    #expect(parseError("0 0 32 * *") == "day-of-month: value 32 is out of range 1-31")
    #expect(parseError("0 0 * 13 *") == "month: value 13 is out of range 1-12")
    #expect(parseError("0 0 * * 8") == "day-of-week: value 8 is out of range 0-7")
    #expect(parseError("0 0 * * 1-8") == "day-of-week: value 8 is out of range 0-7")
    #expect(parseError("99999999999999999999 * * * *") == "minute: value 99999999999999999999 is out of range 0-59")
}

@Test func rejectsBadSteps() {
    #expect(parseError("0 0 * * */0") == "day-of-week: step must be a positive integer, got \"0\"")
    #expect(parseError("*/x * * * *") == "minute: step must be a positive integer, got \"x\"")
    #expect(parseError("*/ * * * *") == "minute: step must be a positive integer, got \"\"")
    #expect(parseError("*/-2 * * * *") == "minute: step must be a positive integer, got \"-2\"")
    #expect(parseError("*/+2 * * * *") == "minute: step must be a positive integer, got \"+2\"")
    #expect(parseError("*/2/3 * * * *") == "minute: more than one step in \"*/2/3\"")
}

@Test func rejectsUnknownNames() {
    #expect(parseError("0 0 1 FOO *") == "month: unknown name \"FOO\"")
    #expect(parseError("0 0 * * funday") == "day-of-week: unknown name \"funday\"")
    #expect(parseError("0 0 * 1x *") == "month: expected a number or a name (JAN-DEC), got \"1x\"")
    #expect(parseError("abc * * * *") == "minute: expected a number, got \"abc\"")
    #expect(parseError("0 MON * * *") == "hour: expected a number, got \"MON\"")
}

@Test func rejectsRangesThatStartAfterTheyEnd() {
    #expect(
        parseError("0 22-2 * * *")
            == "hour: range \"22-2\" starts after it ends; ranges don't wrap around, write \"22-23,0-2\" instead"
    )
    #expect(
        parseError("0 0 * * FRI-MON")
            == "day-of-week: range \"FRI-MON\" starts after it ends; "
            + "ranges don't wrap around, write \"5-6,0-1\" instead"
    )
    #expect(
        parseError("0 0 * * 7-1")
            == "day-of-week: range \"7-1\" starts after it ends; ranges don't wrap around"
    )
    #expect(parseError("1-2-3 * * * *") == "minute: invalid range \"1-2-3\"")
    #expect(parseError("-5 * * * *") == "minute: expected a number, got \"\"")
}

@Test func rejectsEmptyListElements() {
    #expect(parseError("1,,2 * * * *") == "minute: empty element in list \"1,,2\"")
    #expect(parseError("0 0 1, * *") == "day-of-month: empty element in list \"1,\"")
    #expect(parseError("0 0 * ,JAN *") == "month: empty element in list \",JAN\"")
}

@Test func rejectsQuartzExtensions() {
    let suffix = "is not supported; L, W, # and ? are Quartz extensions, not standard cron"
    #expect(parseError("0 0 L * *") == "day-of-month: \"L\" \(suffix)")
    #expect(parseError("0 0 15W * *") == "day-of-month: \"15W\" \(suffix)")
    #expect(parseError("0 0 ? * MON") == "day-of-month: \"?\" \(suffix)")
    #expect(parseError("0 0 * * 5#3") == "day-of-week: \"5#3\" \(suffix)")
    #expect(parseError("0 0 * * 5L") == "day-of-week: \"5L\" \(suffix)")
}

@Test func rejectsUnsupportedMacros() {
    #expect(
        parseError("@reboot")
            == "unsupported macro \"@reboot\"; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
    )
    #expect(parseError("@daily 5") == "@daily must be the whole expression, got 2 fields")
}

@Test func parseErrorDescriptionIsTheMessage() {
    let error = CronSchedule.ParseError("hour: value 24 is out of range 0-23")
    #expect(error.description == error.message)
    #expect("\(error)" == "hour: value 24 is out of range 0-23")
}

// MARK: - Parsing accepts

@Test func keepsTrimmedExpressionAndTimeZone() throws {
    let berlin = try zone("Europe/Berlin")
    let schedule = try CronSchedule("  0  9\t* *  MON-FRI \n", timeZone: berlin)
    #expect(schedule.expression == "0  9\t* *  MON-FRI")
    #expect(schedule.timeZone == berlin)
    #expect(schedule.description == "0  9\t* *  MON-FRI (Europe/Berlin)")
    #expect(try CronSchedule("@daily").timeZone.secondsFromGMT() == 0)
}

@Test func equalityFollowsExpressionAndTimeZone() throws {
    let tokyo = try zone("Asia/Tokyo")
    #expect(try CronSchedule("0 9 * * *") == CronSchedule("0 9 * * *"))
    #expect(try CronSchedule("0 9 * * *") != CronSchedule("0 9 * * *", timeZone: tokyo))
    #expect(try CronSchedule("0 9 * * *") != CronSchedule("0 10 * * *"))
    let set: Set<CronSchedule> = [try CronSchedule("@hourly"), try CronSchedule("@hourly")]
    #expect(set.count == 1)
}

// MARK: - Field syntax

@Test func everyMinute() throws {
    #expect(
        try nextFires("* * * * *", after: "2025-01-01T10:00:30Z", count: 3)
            == ["2025-01-01T10:01:00Z", "2025-01-01T10:02:00Z", "2025-01-01T10:03:00Z"]
    )
}

@Test func nextFireIsStrictlyAfterAndIgnoresSeconds() throws {
    let schedule = try CronSchedule("* * * * *")
    #expect(schedule.nextFire(after: try utc("2025-01-01T10:00:00Z")) == (try utc("2025-01-01T10:01:00Z")))
    let almostNextMinute = try utc("2025-01-01T10:00:59Z").addingTimeInterval(0.9)
    #expect(schedule.nextFire(after: almostNextMinute) == (try utc("2025-01-01T10:01:00Z")))
    let hourly = try CronSchedule("0 * * * *")
    #expect(hourly.nextFire(after: try utc("2025-01-01T10:00:00Z")) == (try utc("2025-01-01T11:00:00Z")))
}

@Test func steps() throws {
    #expect(
        try nextFires("*/15 * * * *", after: "2025-01-01T10:07:00Z", count: 4)
            == ["2025-01-01T10:15:00Z", "2025-01-01T10:30:00Z", "2025-01-01T10:45:00Z", "2025-01-01T11:00:00Z"]
    )
    #expect(
        try nextFires("10-30/10 * * * *", after: "2025-01-01T10:00:00Z", count: 4)
            == ["2025-01-01T10:10:00Z", "2025-01-01T10:20:00Z", "2025-01-01T10:30:00Z", "2025-01-01T11:10:00Z"]
    )
    #expect(
        try nextFires("5/20 * * * *", after: "2025-01-01T10:00:00Z", count: 4)
            == ["2025-01-01T10:05:00Z", "2025-01-01T10:25:00Z", "2025-01-01T10:45:00Z", "2025-01-01T11:05:00Z"]
    )
    #expect(
        try nextFires("0 */7 * * *", after: "2025-01-01T00:00:00Z", count: 4)
            == ["2025-01-01T07:00:00Z", "2025-01-01T14:00:00Z", "2025-01-01T21:00:00Z", "2025-01-02T00:00:00Z"]
    )
    // A step larger than the field only keeps its start.
    #expect(
        try nextFires("*/100 * * * *", after: "2025-01-01T10:00:00Z", count: 2)
            == ["2025-01-01T11:00:00Z", "2025-01-01T12:00:00Z"]
    )
}

@Test func lists() throws {
    #expect(
        try nextFires("0,30 9,17 * * *", after: "2025-01-01T00:00:00Z", count: 5)
            == [
                "2025-01-01T09:00:00Z", "2025-01-01T09:30:00Z", "2025-01-01T17:00:00Z", "2025-01-01T17:30:00Z",
                "2025-01-02T09:00:00Z",
            ]
    )
    #expect(
        try nextFires("0 1,5-6,*/12 * * *", after: "2025-01-01T00:00:00Z", count: 5)
            == [
                "2025-01-01T01:00:00Z", "2025-01-01T05:00:00Z", "2025-01-01T06:00:00Z", "2025-01-01T12:00:00Z",
                "2025-01-02T00:00:00Z",
            ]
    )
}

@Test func ranges() throws {
    #expect(
        try nextFires("0 9-11 * * *", after: "2025-01-01T10:30:00Z", count: 3)
            == ["2025-01-01T11:00:00Z", "2025-01-02T09:00:00Z", "2025-01-02T10:00:00Z"]
    )
    #expect(
        try nextFires("0 0 10-12 * *", after: "2025-01-01T00:00:00Z", count: 4)
            == ["2025-01-10T00:00:00Z", "2025-01-11T00:00:00Z", "2025-01-12T00:00:00Z", "2025-02-10T00:00:00Z"]
    )
}

@Test func monthAndWeekdayNamesAreCaseInsensitive() throws {
    // 2025-01-03 is a Friday.
    #expect(
        try nextFires("0 9 * * mon-FRI", after: "2025-01-03T10:00:00Z", count: 2)
            == ["2025-01-06T09:00:00Z", "2025-01-07T09:00:00Z"]
    )
    #expect(
        try nextFires("0 0 1 jan,Jul *", after: "2025-01-01T00:00:00Z", count: 2)
            == ["2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z"]
    )
    #expect(
        try nextFires("0 0 1 JAN-DEC/3 *", after: "2025-01-01T00:00:00Z", count: 3)
            == ["2025-04-01T00:00:00Z", "2025-07-01T00:00:00Z", "2025-10-01T00:00:00Z"]
    )
    #expect(try nextFires("0 0 * * WED", after: "2025-01-01T00:00:00Z", count: 1) == ["2025-01-08T00:00:00Z"])
}

@Test func macros() throws {
    let after = "2025-03-15T10:20:00Z"  // a Saturday
    #expect(try nextFires("@yearly", after: after, count: 1) == ["2026-01-01T00:00:00Z"])
    #expect(try nextFires("@annually", after: after, count: 1) == ["2026-01-01T00:00:00Z"])
    #expect(try nextFires("@monthly", after: after, count: 1) == ["2025-04-01T00:00:00Z"])
    #expect(try nextFires("@weekly", after: after, count: 2) == ["2025-03-16T00:00:00Z", "2025-03-23T00:00:00Z"])
    #expect(try nextFires("@daily", after: after, count: 1) == ["2025-03-16T00:00:00Z"])
    #expect(try nextFires("@midnight", after: after, count: 1) == ["2025-03-16T00:00:00Z"])
    #expect(try nextFires("@HOURLY", after: after, count: 2) == ["2025-03-15T11:00:00Z", "2025-03-15T12:00:00Z"])
    #expect(try CronSchedule("@daily").expression == "@daily")
}

// MARK: - Day-of-month and day-of-week

@Test func dayOfMonthOrDayOfWeekWhenBothRestricted() throws {
    // May 2025: Fridays are the 2nd, 9th, 16th, 23rd and 30th; the 13th is a Tuesday.
    #expect(
        try nextFires("0 0 13 * 5", after: "2025-05-01T00:00:00Z", count: 6)
            == [
                "2025-05-02T00:00:00Z", "2025-05-09T00:00:00Z", "2025-05-13T00:00:00Z", "2025-05-16T00:00:00Z",
                "2025-05-23T00:00:00Z", "2025-05-30T00:00:00Z",
            ]
    )
}

@Test func onlyTheRestrictedDayFieldCountsWhenTheOtherIsWildcard() throws {
    #expect(
        try nextFires("0 0 13 * *", after: "2025-05-01T00:00:00Z", count: 2)
            == ["2025-05-13T00:00:00Z", "2025-06-13T00:00:00Z"]
    )
    #expect(
        try nextFires("0 0 * * 5", after: "2025-05-01T00:00:00Z", count: 2)
            == ["2025-05-02T00:00:00Z", "2025-05-09T00:00:00Z"]
    )
    // Vixie: a day field starting with `*` (here `*/2`, the odd days) is ANDed with the other.
    #expect(
        try nextFires("0 0 */2 * 5", after: "2025-05-01T00:00:00Z", count: 4)
            == ["2025-05-09T00:00:00Z", "2025-05-23T00:00:00Z", "2025-06-13T00:00:00Z", "2025-06-27T00:00:00Z"]
    )
}

@Test func sundayIsBothZeroAndSeven() throws {
    // 2025-01-01 is a Wednesday; the next Sundays are the 5th and 12th.
    let sundays = ["2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"]
    #expect(try nextFires("0 0 * * 0", after: "2025-01-01T00:00:00Z", count: 2) == sundays)
    #expect(try nextFires("0 0 * * 7", after: "2025-01-01T00:00:00Z", count: 2) == sundays)
    #expect(try nextFires("0 0 * * SUN", after: "2025-01-01T00:00:00Z", count: 2) == sundays)
    #expect(
        try nextFires("0 0 * * 5-7", after: "2025-01-01T00:00:00Z", count: 4)
            == ["2025-01-03T00:00:00Z", "2025-01-04T00:00:00Z", "2025-01-05T00:00:00Z", "2025-01-10T00:00:00Z"]
    )
    #expect(try nextFires("0 0 * * 0,7", after: "2025-01-05T00:00:00Z", count: 1) == ["2025-01-12T00:00:00Z"])
}

// MARK: - Month ends and years

@Test func thirtyFirstSkipsShortMonths() throws {
    #expect(
        try nextFires("0 0 31 * *", after: "2025-01-31T00:00:00Z", count: 6)
            == [
                "2025-03-31T00:00:00Z", "2025-05-31T00:00:00Z", "2025-07-31T00:00:00Z", "2025-08-31T00:00:00Z",
                "2025-10-31T00:00:00Z", "2025-12-31T00:00:00Z",
            ]
    )
}

@Test func februaryTwentyNinthOnlyInLeapYears() throws {
    #expect(
        try nextFires("0 0 29 2 *", after: "2025-01-01T00:00:00Z", count: 3)
            == ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z"]
    )
    // 2100 is not a leap year: eight years between fires, still found.
    #expect(try nextFires("0 0 29 2 *", after: "2096-03-01T00:00:00Z", count: 1) == ["2104-02-29T00:00:00Z"])
    #expect(try nextFires("0 0 29 2 *", after: "2000-01-01T00:00:00Z", count: 1) == ["2000-02-29T00:00:00Z"])
}

@Test func impossibleDatesNeverFire() throws {
    let after = try utc("2025-01-01T00:00:00Z")
    #expect(try CronSchedule("0 0 30 2 *").nextFire(after: after) == nil)
    #expect(try CronSchedule("0 0 31 4,6,9,11 *").nextFire(after: after) == nil)
    #expect(try CronSchedule("0 0 30 2 *", timeZone: zone("America/New_York")).nextFire(after: after) == nil)
    #expect(try CronSchedule("0 0 30 2 *").fires(after: after, through: .distantFuture, limit: 5).isEmpty)
}

@Test func yearRollover() throws {
    #expect(
        try nextFires("59 23 31 12 *", after: "2025-12-31T23:59:00Z", count: 1) == ["2026-12-31T23:59:00Z"]
    )
    #expect(
        try nextFires("* * * * *", after: "2025-12-31T23:59:30Z", count: 2)
            == ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"]
    )
    #expect(
        try nextFires("0 0 * 1 *", after: "2025-02-01T00:00:00Z", count: 1) == ["2026-01-01T00:00:00Z"]
    )
}

@Test func datesBeforeTheEpoch() throws {
    #expect(
        try nextFires("0 12 * * *", after: "1969-12-31T12:00:00Z", count: 2)
            == ["1970-01-01T12:00:00Z", "1970-01-02T12:00:00Z"]
    )
    // 1900-01-01 was a Monday.
    #expect(try nextFires("0 0 * * 1", after: "1899-12-30T00:00:00Z", count: 1) == ["1900-01-01T00:00:00Z"])
}

// MARK: - Time zones: New York

@Test func newYorkSpringForwardFixedHourFiresOnceAfterTheGap() throws {
    let newYork = try zone("America/New_York")
    // 2025-03-09: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 does not exist.
    #expect(
        try nextFires("30 2 * * *", in: newYork, after: "2025-03-07T12:00:00Z", count: 3)
            == ["2025-03-08T07:30:00Z", "2025-03-09T07:00:00Z", "2025-03-10T06:30:00Z"]
    )
    // Several wall times in the gap still fire once; a real 03:00 fire coincides with it.
    #expect(
        try nextFires("0,30 2,3 * * *", in: newYork, after: "2025-03-09T06:00:00Z", count: 3)
            == ["2025-03-09T07:00:00Z", "2025-03-09T07:30:00Z", "2025-03-10T06:00:00Z"]
    )
    // Strictly after: asking from the catch-up instant itself moves on.
    #expect(
        try nextFires("30 2 * * *", in: newYork, after: "2025-03-09T07:00:00Z", count: 1) == ["2025-03-10T06:30:00Z"]
    )
}

@Test func newYorkSpringForwardWildcardHourContinuesInAbsoluteTime() throws {
    let newYork = try zone("America/New_York")
    #expect(
        try nextFires("*/15 * * * *", in: newYork, after: "2025-03-09T06:40:00Z", count: 3)
            == ["2025-03-09T06:45:00Z", "2025-03-09T07:00:00Z", "2025-03-09T07:15:00Z"]
    )
    // 02:30 does not exist and is not caught up: 01:30 EST, then 03:30 EDT.
    #expect(
        try nextFires("30 * * * *", in: newYork, after: "2025-03-09T06:00:00Z", count: 2)
            == ["2025-03-09T06:30:00Z", "2025-03-09T07:30:00Z"]
    )
}

@Test func newYorkFallBackFixedHourFiresOnlyAtFirstOccurrence() throws {
    let newYork = try zone("America/New_York")
    // 2025-11-02: 02:00 EDT falls back to 01:00 EST (06:00 UTC); 01:30 happens twice.
    #expect(
        try nextFires("30 1 * * *", in: newYork, after: "2025-11-01T12:00:00Z", count: 2)
            == ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"]
    )
    // Asking from inside the repeated hour does not fire the second 01:30.
    #expect(
        try nextFires("30 1 * * *", in: newYork, after: "2025-11-02T06:10:00Z", count: 1) == ["2025-11-03T06:30:00Z"]
    )
    #expect(
        try nextFires("* 1 * * *", in: newYork, after: "2025-11-02T05:58:00Z", count: 2)
            == ["2025-11-02T05:59:00Z", "2025-11-03T06:00:00Z"]
    )
}

@Test func newYorkFallBackWildcardHourFiresThroughTheRepeatedHour() throws {
    let newYork = try zone("America/New_York")
    #expect(
        try nextFires("*/15 * * * *", in: newYork, after: "2025-11-02T04:50:00Z", count: 9)
            == [
                "2025-11-02T05:00:00Z", "2025-11-02T05:15:00Z", "2025-11-02T05:30:00Z", "2025-11-02T05:45:00Z",
                "2025-11-02T06:00:00Z", "2025-11-02T06:15:00Z", "2025-11-02T06:30:00Z", "2025-11-02T06:45:00Z",
                "2025-11-02T07:00:00Z",
            ]
    )
    // From inside each occurrence of 01:xx.
    #expect(
        try nextFires("*/15 * * * *", in: newYork, after: "2025-11-02T05:50:00Z", count: 1) == ["2025-11-02T06:00:00Z"]
    )
    #expect(
        try nextFires("*/15 * * * *", in: newYork, after: "2025-11-02T06:10:00Z", count: 1) == ["2025-11-02T06:15:00Z"]
    )
    #expect(
        try nextFires("0 * * * *", in: newYork, after: "2025-11-02T03:30:00Z", count: 4)
            == ["2025-11-02T04:00:00Z", "2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z"]
    )
}

@Test func jumpsAcrossTransitionsUseTheOffsetAtTheLandingPoint() throws {
    let newYork = try zone("America/New_York")
    // Noon is 17:00 UTC in winter and 16:00 UTC in summer.
    #expect(
        try nextFires("0 12 * * *", in: newYork, after: "2025-03-08T18:00:00Z", count: 2)
            == ["2025-03-09T16:00:00Z", "2025-03-10T16:00:00Z"]
    )
    #expect(
        try nextFires("0 12 * * *", in: newYork, after: "2025-11-01T12:00:00Z", count: 2)
            == ["2025-11-01T16:00:00Z", "2025-11-02T17:00:00Z"]
    )
    #expect(
        try nextFires("0 9 1 7 *", in: newYork, after: "2025-01-01T00:00:00Z", count: 1) == ["2025-07-01T13:00:00Z"]
    )
    #expect(
        try nextFires("0 9 1 1 *", in: newYork, after: "2025-07-01T00:00:00Z", count: 1) == ["2026-01-01T14:00:00Z"]
    )
    // Local midnight of New Year is still in the old UTC year.
    #expect(try nextFires("@yearly", in: newYork, after: "2025-06-01T00:00:00Z", count: 1) == ["2026-01-01T05:00:00Z"])
}

// MARK: - Time zones: Berlin

@Test func berlinSpringForwardFixedHourFiresOnceAfterTheGap() throws {
    let berlin = try zone("Europe/Berlin")
    // 2025-03-30: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    #expect(
        try nextFires("30 2 * * *", in: berlin, after: "2025-03-29T12:00:00Z", count: 2)
            == ["2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"]
    )
    #expect(
        try nextFires("0,30 2 * * *", in: berlin, after: "2025-03-29T12:00:00Z", count: 2)
            == ["2025-03-30T01:00:00Z", "2025-03-31T00:00:00Z"]
    )
}

@Test func berlinSpringForwardWildcardHourSkipsTheGap() throws {
    let berlin = try zone("Europe/Berlin")
    #expect(
        try nextFires("*/30 * * * *", in: berlin, after: "2025-03-30T00:00:00Z", count: 3)
            == ["2025-03-30T00:30:00Z", "2025-03-30T01:00:00Z", "2025-03-30T01:30:00Z"]
    )
}

@Test func berlinFallBackFixedHourFiresOnlyAtFirstOccurrence() throws {
    let berlin = try zone("Europe/Berlin")
    // 2025-10-26: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 02:30 happens twice.
    #expect(
        try nextFires("30 2 * * *", in: berlin, after: "2025-10-25T12:00:00Z", count: 2)
            == ["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"]
    )
}

@Test func berlinFallBackWildcardHourFiresAtBothOccurrences() throws {
    let berlin = try zone("Europe/Berlin")
    // Wall clock 00:00 CEST, 02:00 CEST, 02:00 CET, 04:00 CET.
    #expect(
        try nextFires("0 */2 * * *", in: berlin, after: "2025-10-25T21:30:00Z", count: 4)
            == ["2025-10-25T22:00:00Z", "2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z", "2025-10-26T03:00:00Z"]
    )
    #expect(
        try nextFires("*/30 * * * *", in: berlin, after: "2025-10-26T00:10:00Z", count: 4)
            == ["2025-10-26T00:30:00Z", "2025-10-26T01:00:00Z", "2025-10-26T01:30:00Z", "2025-10-26T02:00:00Z"]
    )
}

// MARK: - Time zones without DST

@Test func tokyoHasAFixedOffset() throws {
    let tokyo = try zone("Asia/Tokyo")
    #expect(
        try nextFires("0 9 * * *", in: tokyo, after: "2024-12-31T23:59:00Z", count: 2)
            == ["2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"]
    )
    #expect(try nextFires("0 9 * * *", in: tokyo, after: "2025-01-01T00:00:00Z", count: 1) == ["2025-01-02T00:00:00Z"])
    #expect(try nextFires("0 0 1 1 *", in: tokyo, after: "2024-06-01T00:00:00Z", count: 1) == ["2024-12-31T15:00:00Z"])
    // Monday in Tokyo starts on Sunday 15:00 UTC.
    #expect(
        try nextFires("0 0 * * MON", in: tokyo, after: "2025-01-01T00:00:00Z", count: 1) == ["2025-01-05T15:00:00Z"]
    )
}

// MARK: - fires(after:through:limit:)

@Test func firesBetweenIsHalfOpenAtTheStart() throws {
    let schedule = try CronSchedule("0 * * * *")
    let fires = schedule.fires(
        after: try utc("2025-01-01T00:00:00Z"),
        through: try utc("2025-01-01T05:00:00Z"),
        limit: 10
    )
    #expect(
        fires.map { $0.formatted(.iso8601) }
            == [
                "2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z", "2025-01-01T03:00:00Z", "2025-01-01T04:00:00Z",
                "2025-01-01T05:00:00Z",
            ]
    )
}

@Test func firesBetweenStopsAtTheLimit() throws {
    let schedule = try CronSchedule("0 * * * *")
    let start = try utc("2025-01-01T00:00:00Z")
    let end = try utc("2025-01-02T00:00:00Z")
    #expect(
        schedule.fires(after: start, through: end, limit: 3).map { $0.formatted(.iso8601) }
            == ["2025-01-01T01:00:00Z", "2025-01-01T02:00:00Z", "2025-01-01T03:00:00Z"]
    )
    #expect(schedule.fires(after: start, through: end, limit: 100).count == 24)
    #expect(schedule.fires(after: start, through: end, limit: 0).isEmpty)
    #expect(schedule.fires(after: start, through: end, limit: -1).isEmpty)
    #expect(schedule.fires(after: end, through: start, limit: 10).isEmpty)
    #expect(schedule.fires(after: start, through: start, limit: 10).isEmpty)
}

@Test func firesBetweenAcrossFallBackInNewYork() throws {
    let newYork = try zone("America/New_York")
    let start = try utc("2025-11-02T04:30:00Z")
    let end = try utc("2025-11-02T08:00:00Z")
    let hourly = try CronSchedule("0 * * * *", timeZone: newYork)
    #expect(
        hourly.fires(after: start, through: end, limit: 10).map { $0.formatted(.iso8601) }
            == ["2025-11-02T05:00:00Z", "2025-11-02T06:00:00Z", "2025-11-02T07:00:00Z", "2025-11-02T08:00:00Z"]
    )
    let fixed = try CronSchedule("0 1,2 * * *", timeZone: newYork)
    #expect(
        fixed.fires(after: start, through: end, limit: 10).map { $0.formatted(.iso8601) }
            == ["2025-11-02T05:00:00Z", "2025-11-02T07:00:00Z"]
    )
}

// MARK: - Performance sanity

@Test func yearlyScheduleIsFoundByJumpingNotScanning() throws {
    #expect(try nextFires("0 0 1 1 *", after: "2025-01-01T00:00:00Z", count: 3)
        == ["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"])
    // Many yearly look-ups, including in a DST zone; each must find the right answer quickly.
    let berlin = try CronSchedule("59 23 31 12 *", timeZone: zone("Europe/Berlin"))
    var cursor = try utc("2025-01-01T00:00:00Z")
    for _ in 0..<1_000 {
        let next = try #require(berlin.nextFire(after: cursor))
        cursor = next
    }
    // 2025 + 1000 years of New Year's Eves at 23:59 CET (22:59 UTC).
    #expect(cursor.formatted(.iso8601) == "3024-12-31T22:59:00Z")
}

@Test func datesOutsideTheSupportedRangeHaveNoFire() throws {
    let schedule = try CronSchedule("* * * * *")
    #expect(schedule.nextFire(after: .distantFuture)?.formatted(.iso8601) == "4001-01-01T00:01:00Z")
    #expect(schedule.nextFire(after: Date(timeIntervalSince1970: 1e15)) == nil)
    #expect(schedule.nextFire(after: Date(timeIntervalSince1970: -1e15)) == nil)
    #expect(schedule.nextFire(after: Date(timeIntervalSince1970: .infinity)) == nil)
    #expect(schedule.nextFire(after: Date(timeIntervalSince1970: .nan)) == nil)
}
