public import Foundation

/// The ranges DeerFlow accepts for the counts and durations of workflows and settings.
///
/// Every value is checked where it enters (workflow files, Swift definitions, `deerflow.yaml`,
/// flags), so `deerflow validate` and a starting server reject a value outside its range with a
/// located error, and no accepted value can overflow the time arithmetic and storage behind it.
/// The README's "Limits" table lists the same ranges.
public enum Limits {
    /// `retries` of a task.
    public static let retries: ClosedRange<Int> = 0...10_000
    /// `priority` of a task.
    public static let priority: ClosedRange<Int> = -1_000_000...1_000_000
    /// `retry_delay`, `max_retry_delay`, `timeout` and a `sleep` task's `duration`: up to a year.
    public static let taskDuration: ClosedRange<Duration> = .zero ... .seconds(365 * 86_400)
    /// Worker slots per process.
    public static let slots: ClosedRange<Int> = 1...10_000
    /// `worker.lease`: how long a claimed attempt stays a worker's without a heartbeat.
    public static let lease: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    /// `worker.poll_interval`.
    public static let pollInterval: ClosedRange<Duration> = .milliseconds(10) ... .seconds(3_600)
    /// `worker.drain_timeout` / `--drain-timeout`.
    public static let drainTimeout: ClosedRange<Duration> = .zero ... .seconds(86_400)
    /// `scheduler.worker_timeout`.
    public static let workerTimeout: ClosedRange<Duration> = .seconds(1) ... .seconds(7 * 86_400)
    /// `retention.runs` and `retention.task_logs`: from a minute to ten years.
    public static let retention: ClosedRange<Duration> = .seconds(60) ... .seconds(3_650 * 86_400)
    /// `max_active_runs` of a workflow: runs of it running at once.
    public static let maxActiveRuns: ClosedRange<Int> = 1...10_000
    /// `concurrency` of a queue in `deerflow.yaml`: attempts of it running at once in the cluster.
    public static let queueConcurrency: ClosedRange<Int> = 1...100_000
    /// `max_parallel` of a mapped task.
    public static let maxParallel: ClosedRange<Int> = 1...100_000
    /// `max_map_instances` in `deerflow.yaml`: instances one mapped task may expand into (the
    /// default is ``defaultMapInstances``). Instance rows are numbered in blocks of this size.
    public static let mapInstances: ClosedRange<Int> = 1...1_000_000
    /// Instances a mapped task may expand into unless `max_map_instances` says otherwise.
    public static let defaultMapInstances = 10_000
    /// A configured health check's `timeout`.
    public static let healthCheckTimeout: ClosedRange<Duration> = .milliseconds(10) ... .seconds(60)
    /// A configured health check's `interval`.
    public static let healthCheckInterval: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    /// `logging.task_output_lines`: lines of one attempt's output sent to the log handlers.
    public static let taskOutputLines: ClosedRange<Int> = 0...10_000_000
    /// Any other duration in a DeerFlow file: up to ten years.
    public static let anyDuration: ClosedRange<Duration> = .zero ... .seconds(3_650 * 86_400)

    /// The times a store keeps: 0001-01-01 to 9999-12-31 (UTC), inside what SQLite's integer
    /// microseconds and PostgreSQL's `timestamptz` hold.
    public static let storableTime: ClosedRange<Date> =
        Date(timeIntervalSince1970: -62_135_596_800) ... Date(timeIntervalSince1970: 253_402_300_799)

    /// "must be between 0s and 365d, got 400d" for a duration outside `range`, else nil.
    public static func problem(_ value: Duration, outside range: ClosedRange<Duration>) -> String? {
        if range.contains(value) { return nil }
        let bounds = "\(DurationText.format(range.lowerBound)) and \(DurationText.format(range.upperBound))"
        return "must be between \(bounds), got \(DurationText.format(value))"
    }

    /// `text` as a duration in `range` (`0` is zero), or what is wrong with it: not a duration,
    /// too long to hold, or outside the range (``problem(_:outside:)-(Duration,_)``). The one check
    /// of a duration a user wrote, in a file or a request.
    public static func duration(_ text: String, in range: ClosedRange<Duration>) -> Result<Duration, DurationProblem> {
        if text.trimmingWhitespace() == "0" { return .success(.zero) }
        guard let duration = DurationText.parse(text) else {
            if let problem = DurationText.formProblem(text) { return .failure(DurationProblem(message: problem)) }
            return .failure(DurationProblem(message: "'\(text)' is too long (at most \(DurationText.format(range.upperBound)))"))
        }
        if let problem = problem(duration, outside: range) { return .failure(DurationProblem(message: problem)) }
        return .success(duration)
    }

    /// "must be between 0 and 10000, got -1" for a count outside `range`, else nil.
    public static func problem(_ value: Int, outside range: ClosedRange<Int>) -> String? {
        range.contains(value) ? nil : "must be between \(range.lowerBound) and \(range.upperBound), got \(value)"
    }
}

extension Date {
    /// This date moved by `duration`, saturating at the ends of ``Limits/storableTime``: time
    /// arithmetic on stored times never traps and never leaves what a store can hold.
    public func adding(_ duration: Duration) -> Date {
        Date(timeIntervalSince1970: timeIntervalSince1970 + duration.seconds).storable
    }

    /// This date clamped to ``Limits/storableTime`` (NaN becomes the earliest storable time).
    public var storable: Date {
        let range = Limits.storableTime
        let seconds = timeIntervalSince1970
        guard seconds.isFinite, seconds >= range.lowerBound.timeIntervalSince1970 else {
            return seconds == .infinity ? range.upperBound : range.lowerBound
        }
        return seconds > range.upperBound.timeIntervalSince1970 ? range.upperBound : self
    }
}

/// What is wrong with a duration a user wrote (``Limits/duration(_:in:)``).
public struct DurationProblem: Error, Sendable, Hashable {
    public var message: String
}
