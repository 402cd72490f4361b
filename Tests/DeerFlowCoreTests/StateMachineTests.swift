import Foundation
import Testing
@testable import DeerFlowCore

@Suite("Run, task and attempt state machines")
struct StateMachineTests {
    @Test("run transitions: pending → running → success | failed | cancelled, nothing out of a final state")
    func runTransitions() {
        #expect(RunStatus.pending.canTransition(to: .running))
        #expect(RunStatus.pending.canTransition(to: .cancelled))
        #expect(RunStatus.running.canTransition(to: .success))
        #expect(RunStatus.running.canTransition(to: .failed))
        #expect(RunStatus.running.canTransition(to: .cancelled))
        #expect(!RunStatus.running.canTransition(to: .pending))
        for final in [RunStatus.success, .failed, .cancelled] {
            #expect(final.isFinished)
            for next in RunStatus.allCases { #expect(!final.canTransition(to: next), "\(final) → \(next)") }
        }
        #expect(!RunStatus.pending.isFinished && !RunStatus.running.isFinished)
    }

    @Test("attempt transitions: queued → running → success | failed | timeout | cancelled")
    func attemptTransitions() {
        #expect(AttemptStatus.queued.canTransition(to: .running))
        #expect(AttemptStatus.queued.canTransition(to: .cancelled))
        #expect(!AttemptStatus.queued.canTransition(to: .success))
        for final in [AttemptStatus.success, .failed, .timeout, .cancelled] {
            #expect(AttemptStatus.running.canTransition(to: final))
            #expect(final.isFinished)
            for next in AttemptStatus.allCases { #expect(!final.canTransition(to: next)) }
        }
    }

    @Test("task transitions, including retry back to queued and upstream_failed from pending")
    func taskTransitions() {
        #expect(TaskStatus.pending.canTransition(to: .queued))
        #expect(TaskStatus.pending.canTransition(to: .upstreamFailed))
        #expect(TaskStatus.pending.canTransition(to: .cancelled))
        #expect(!TaskStatus.pending.canTransition(to: .running))
        #expect(TaskStatus.queued.canTransition(to: .running))
        #expect(TaskStatus.running.canTransition(to: .queued), "a retry")
        #expect(TaskStatus.running.canTransition(to: .timeout))
        #expect(!TaskStatus.queued.canTransition(to: .upstreamFailed))
        #expect(TaskStatus.upstreamFailed.rawValue == "upstream_failed")
        #expect(TaskStatus.failed.failsRun && TaskStatus.timeout.failsRun && TaskStatus.upstreamFailed.failsRun)
        #expect(!TaskStatus.success.failsRun && !TaskStatus.cancelled.failsRun)
    }

    static let now = Date(timeIntervalSince1970: 1_700_000_000)
    static let policy = RetryPolicy(retries: 2, delay: .seconds(10), maxDelay: .seconds(60), jitter: 0)

    static func resolve(_ outcome: AttemptOutcome, attempt: Int = 1, used: Int = 0, interruptions: Int = 0, policy: RetryPolicy = policy, active: Bool = true) -> AttemptResolution {
        AttemptResolution.resolve(outcome, attempt: attempt, retriesUsed: used, interruptions: interruptions, policy: policy, runIsActive: active, now: now, random: 0)
    }

    @Test("success finishes the task")
    func success() {
        let resolution = Self.resolve(.success(output: 1))
        #expect(resolution.attemptStatus == .success)
        #expect(resolution.taskStatus == .success)
        #expect(resolution.retryAt == nil)
        #expect(resolution.metricStatus == .success)
    }

    @Test("a failure with retries left is retried after the backoff and counts as retried")
    func failureRetried() {
        let first = Self.resolve(.failure(message: "x"))
        #expect(first.attemptStatus == .failed)
        #expect(first.taskStatus == .queued)
        #expect(first.retryAt == Self.now.addingTimeInterval(10))
        #expect(first.countsAsRetry)
        #expect(first.metricStatus == .retried)
        let second = Self.resolve(.failure(message: "x"), attempt: 2, used: 1)
        #expect(second.retryAt == Self.now.addingTimeInterval(20), "doubles")
    }

    @Test("the last failure fails the task; a timeout is a timeout")
    func finalFailure() {
        let failed = Self.resolve(.failure(message: "x"), attempt: 3, used: 2)
        #expect(failed.taskStatus == .failed)
        #expect(failed.metricStatus == .failed)
        #expect(failed.retryAt == nil)
        let timedOut = Self.resolve(.timeout(message: "t"), attempt: 3, used: 2)
        #expect(timedOut.attemptStatus == .timeout)
        #expect(timedOut.taskStatus == .timeout)
        #expect(timedOut.metricStatus == .timeout)
        let retriedTimeout = Self.resolve(.timeout(message: "t"))
        #expect(retriedTimeout.attemptStatus == .timeout)
        #expect(retriedTimeout.metricStatus == .retried)
    }

    @Test("an interrupted attempt runs again at once without using a retry, up to the limit")
    func interrupted() {
        let noRetries = RetryPolicy.none
        let first = Self.resolve(.interrupted(message: "lost"), policy: noRetries)
        #expect(first.taskStatus == .queued)
        #expect(first.retryAt == Self.now)
        #expect(!first.countsAsRetry)
        let exhausted = Self.resolve(.interrupted(message: "lost"), interruptions: AttemptResolution.interruptionLimit, policy: noRetries)
        #expect(exhausted.taskStatus == .failed)
        let usesRetry = Self.resolve(.interrupted(message: "lost"), interruptions: AttemptResolution.interruptionLimit)
        #expect(usesRetry.countsAsRetry)
        #expect(usesRetry.taskStatus == .queued)
    }

    @Test("after the run was cancelled nothing is retried")
    func cancelledRun() {
        #expect(Self.resolve(.failure(message: "x"), active: false).taskStatus == .cancelled)
        #expect(Self.resolve(.interrupted(message: "x"), active: false).taskStatus == .cancelled)
        #expect(Self.resolve(.cancelled(message: "run cancelled")).metricStatus == .cancelled)
        #expect(Self.resolve(.success(output: .null), active: false).taskStatus == .success)
    }

    @Test("backoff doubles, is capped, and jitter shortens it by up to the jitter fraction")
    func backoff() {
        let policy = RetryPolicy(retries: 10, delay: .seconds(1), maxDelay: .seconds(8), jitter: 0.5)
        #expect(policy.backoff(after: 1, random: 0) == .seconds(1))
        #expect(policy.backoff(after: 3, random: 0) == .seconds(4))
        #expect(policy.backoff(after: 6, random: 0) == .seconds(8))
        #expect(policy.backoff(after: 6, random: 1) == .seconds(4))
        #expect(policy.backoff(after: 100, random: 0) == .seconds(8))
        #expect(RetryPolicy(retries: 1, delay: .zero).backoff(after: 1, random: 0.3) == .zero)
    }

    @Test("a run finishes when every task is final: success without failures, failed otherwise")
    func runProgress() {
        var progress = RunProgress(total: 3)
        progress.record(.success)
        #expect(progress.outcome == nil)
        progress.record(.failed)
        #expect(progress.outcome == nil, "the third task can still run")
        progress.record(.running)
        #expect(progress.finished == 2)
        progress.record(.success)
        #expect(progress.outcome == .failed)
        var clean = RunProgress(total: 2)
        clean.record(.success, count: 2)
        #expect(clean.outcome == .success)
        var skipped = RunProgress(total: 3)
        skipped.record(.failed)
        skipped.record(.upstreamFailed, count: 2)
        #expect(skipped.failed == 3)
        #expect(skipped.outcome == .failed)
    }
}

@Suite("Run parameters")
struct ParamsTests {
    let definition = WorkflowDefinition(
        name: "flow",
        params: [
            ParamDefinition("day", type: .string),
            ParamDefinition("limit", type: .int, default: 10),
            ParamDefinition("ratio", type: .float, default: 0.5),
            ParamDefinition("dry", type: .bool, default: false),
        ],
        tasks: [TaskDefinition(id: "a", action: .noop)])

    @Test("defaults are filled in and types are checked")
    func resolve() throws {
        let resolved = try definition.resolveParams(["day": "2024-06-01", "ratio": 2])
        #expect(resolved == ["day": "2024-06-01", "limit": 10, "ratio": 2, "dry": false])
    }

    @Test("a NUL character anywhere in a value is refused, naming the parameter")
    func nul() throws {
        let withJSON = WorkflowDefinition(
            name: "flow", params: [ParamDefinition("day", type: .string), ParamDefinition("extra", type: .json, default: [:])],
            tasks: [TaskDefinition(id: "a", action: .noop)])
        for extra: JSONValue in [["k": "a\u{0}b"], ["k\u{0}": 1], [["x", "\u{0}"]]] {
            do {
                _ = try withJSON.resolveParams(["day": "2024-06-01", "extra": extra])
                Issue.record("accepted \(extra)")
            } catch {
                #expect(error.problems == ["parameter 'extra' contains a NUL character (\\u0000), which no task can receive; remove it"])
            }
        }
        #expect(throws: ParamsError.self) { try withJSON.resolveParams(["day": "a\u{0}"]) }
        #expect(try withJSON.resolveParams(["day": "a\\u0000"])["day"] == "a\\u0000", "an escaped NUL is text")
    }

    @Test("unknown, missing and mistyped parameters are all reported")
    func errors() {
        #expect(throws: ParamsError.self) { try definition.resolveParams(["limit": "ten"]) }
        do {
            _ = try definition.resolveParams(["limit": "ten", "nope": 1])
        } catch {
            #expect(error.problems == [
                "unknown parameter 'nope' (declared: day, limit, ratio, dry)",
                "missing required parameter 'day' (string)",
                "parameter 'limit' must be of type int, got string",
            ])
        }
    }

    @Test("command-line values convert to the declared type")
    func commandLine() {
        #expect(ParamType.int.parse(commandLine: "42") == 42)
        #expect(ParamType.int.parse(commandLine: "4.2") == nil)
        #expect(ParamType.float.parse(commandLine: "4.2") == 4.2)
        #expect(ParamType.bool.parse(commandLine: "yes") == true)
        #expect(ParamType.json.parse(commandLine: #"{"a":1}"#) == ["a": 1])
        #expect(ParamType.string.parse(commandLine: "42") == "42")
    }
}

@Suite("Formats")
struct FormatTests {
    @Test("durations parse and format")
    func durations() {
        #expect(DurationText.parse("30s") == .seconds(30))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("2h") == .seconds(7200))
        #expect(DurationText.parse("1d") == .seconds(86400))
        #expect(DurationText.parse("1h30m") == .seconds(5400))
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        for bad in ["", "5", "5x", "m5", "1.5s", "-3s"] { #expect(DurationText.parse(bad) == nil, "\(bad)") }
        #expect(DurationText.format(.seconds(120)) == "2m")
        #expect(DurationText.format(.seconds(90)) == "90s")
        #expect(DurationText.format(.milliseconds(1500)) == "1500ms")
    }

    @Test("elapsed times read as the UI and the command line show them")
    func elapsedTimes() {
        let cases: [(Double?, String, String)] = [
            (0.85, "850 ms", "850ms"), (12.34, "12.3 s", "12.3s"), (245, "4 m 05 s", "4m05s"),
            (7380, "2 h 03 m", "2h03m"), (273_600, "3 d 4 h", "3d4h"), (nil, "—", "—"), (-1, "—", "—"),
        ]
        for (seconds, spaced, compact) in cases {
            #expect(DurationText.elapsed(seconds: seconds) == spaced)
            #expect(DurationText.elapsed(seconds: seconds, compact: true) == compact)
        }
    }

    @Test("Go's %g formatting of floats, as Prometheus' humanize functions use it")
    func goG() {
        #expect(GoFormat.g(1234.5678, precision: 4) == "1235")
        #expect(GoFormat.g(0.000012345, precision: 4) == "1.234e-05")
        #expect(GoFormat.g(.infinity, precision: 4) == "+Inf")
        #expect(GoFormat.g(-.infinity, precision: 4) == "-Inf")
        #expect(GoFormat.g(.nan, precision: 4) == "NaN")
    }

    @Test("timestamps are RFC 3339 UTC with milliseconds")
    func timestamps() {
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_717_243_200.123_9)) == "2024-06-01T12:00:00.123Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(abs((Timestamp.parse("2024-06-01T12:00:00.123Z")?.timeIntervalSince1970 ?? 0) - 1_717_243_200.123) < 0.000_5)
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 4_107_542_399.999)) == "2100-02-28T23:59:59.999Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: -2_203_891_200)) == "1900-03-01T00:00:00.000Z")
        #expect(Timestamp.rfc3339(Limits.storableTime.lowerBound) == "0001-01-01T00:00:00.000Z")
        #expect(Timestamp.rfc3339(Limits.storableTime.upperBound) == "9999-12-31T23:59:59.000Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1e15)) == "9999-12-31T23:59:59.000Z")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: .nan)) == "0001-01-01T00:00:00.000Z")
    }

    @Test("the date of a time stamp is gmtime_r's, for every day a store can hold")
    func timestampDaysMatchTheCLibrary() {
        // Every 997th day from 0001-01-01 to 9999-12-31, and every day from 1969 to 2101 (leap
        // years, century rules), at a time of day that moves with the day.
        let first = Int(Limits.storableTime.lowerBound.timeIntervalSince1970) / 86_400
        let last = Int(Limits.storableTime.upperBound.timeIntervalSince1970) / 86_400
        let days = Array(stride(from: first, through: last, by: 997)) + Array(-366...47_847) + [first, last]
        let mismatch = days.lazy.compactMap { day -> String? in
            var seconds = time_t(day * 86_400 + ((day &* 7_919) % 86_400 + 86_400) % 86_400)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.250Z", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
            let formatted = Timestamp.rfc3339(Date(timeIntervalSince1970: Double(seconds) + 0.25))
            return formatted == expected ? nil : "\(formatted) instead of \(expected)"
        }.first
        #expect(mismatch == nil)
    }

    @Test("run ids are 26 sortable characters")
    func runIDs() {
        var generator = SystemRandomNumberGenerator()
        let early = RunID.generate(at: Date(timeIntervalSince1970: 1000), using: &generator)
        let late = RunID.generate(at: Date(timeIntervalSince1970: 2000), using: &generator)
        #expect(early < late)
        #expect(RunID.isWellFormed(early.rawValue))
        #expect(!RunID.isWellFormed("nope"))
    }

    @Test("ids made in the same millisecond from the process's generator differ, from any number of threads")
    func runIDsUnique() async {
        let now = Date()
        let ids = await withTaskGroup(of: [RunID].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<10_000).map { _ in RunID.generate(at: now) } }
            }
            var all: [RunID] = []
            for await batch in group { all += batch }
            return all
        }
        #expect(Set(ids).count == 40_000)
        #expect(ids.allSatisfy { RunID.isWellFormed($0.rawValue) })
        // The 80 random bits use the whole alphabet: no bias a broken generator would show.
        let randomCharacters = Set(ids.prefix(1_000).flatMap { $0.rawValue.dropFirst(10) })
        #expect(randomCharacters.count == 32)
    }
}
