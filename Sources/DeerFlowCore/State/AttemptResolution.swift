public import Foundation

/// How an attempt ended, as reported by whoever ran it.
public enum AttemptOutcome: Sendable, Hashable {
    /// Finished successfully with an output (JSON; `.null` when the task returns nothing).
    case success(output: JSONValue)
    /// Threw an error, exited non-zero, or got an unexpected HTTP status.
    case failure(message: String)
    /// Exceeded the task's timeout.
    case timeout(message: String)
    /// Stopped because its run was cancelled.
    case cancelled(message: String)
    /// The worker holding it disappeared (lease expired, process killed) or released it while
    /// shutting down. Retried without consuming the task's retry budget, up to a limit.
    case interrupted(message: String)

    public var message: String? {
        switch self {
        case .success: return nil
        case .failure(let message), .timeout(let message), .cancelled(let message), .interrupted(let message): return message
        }
    }
}

/// What happens to the task after one of its attempts ends: the single place where the retry and
/// failure rules of DeerFlow live. Stores apply the resolution in one transaction.
public struct AttemptResolution: Sendable, Hashable {
    /// Final status of the attempt.
    public var attemptStatus: AttemptStatus
    /// New status of the task.
    public var taskStatus: TaskStatus
    /// When set, a new attempt is queued, claimable from this instant.
    public var retryAt: Date?
    /// Whether the retry consumes the task's retry budget (false for interrupted attempts).
    public var countsAsRetry: Bool
    /// How the attempt counts in `deerflow_tasks_total`.
    public var metricStatus: AttemptMetricStatus

    /// Attempts whose worker vanished are re-queued at most this many times per task without
    /// consuming retries, so a task that kills its worker cannot loop forever.
    public static let interruptionLimit = 3

    /// Resolves an attempt.
    ///
    /// - Parameters:
    ///   - outcome: how the attempt ended.
    ///   - attempt: its number (1-based).
    ///   - retriesUsed: retries already consumed by earlier attempts of the task.
    ///   - interruptions: earlier interrupted attempts of the task.
    ///   - policy: the task's retry policy.
    ///   - runIsActive: false when the run already finished (cancelled): nothing is re-queued.
    ///   - now: current time.
    ///   - random: uniform random number in [0, 1) for jitter.
    public static func resolve(
        _ outcome: AttemptOutcome,
        attempt: Int,
        retriesUsed: Int,
        interruptions: Int,
        policy: RetryPolicy,
        runIsActive: Bool,
        now: Date,
        random: Double
    ) -> AttemptResolution {
        switch outcome {
        case .success:
            return .init(attemptStatus: .success, taskStatus: .success, retryAt: nil, countsAsRetry: false, metricStatus: .success)
        case .cancelled:
            return .init(attemptStatus: .cancelled, taskStatus: .cancelled, retryAt: nil, countsAsRetry: false, metricStatus: .cancelled)
        case .failure, .timeout:
            let isTimeout: Bool
            if case .timeout = outcome { isTimeout = true } else { isTimeout = false }
            let attemptStatus: AttemptStatus = isTimeout ? .timeout : .failed
            guard runIsActive else {
                return .init(attemptStatus: attemptStatus, taskStatus: .cancelled, retryAt: nil, countsAsRetry: false, metricStatus: isTimeout ? .timeout : .failed)
            }
            if retriesUsed < policy.retries {
                let delay = policy.backoff(after: retriesUsed + 1, random: random)
                return .init(
                    attemptStatus: attemptStatus, taskStatus: .queued,
                    retryAt: now.adding(delay), countsAsRetry: true, metricStatus: .retried
                )
            }
            return .init(
                attemptStatus: attemptStatus, taskStatus: isTimeout ? .timeout : .failed,
                retryAt: nil, countsAsRetry: false, metricStatus: isTimeout ? .timeout : .failed
            )
        case .interrupted:
            guard runIsActive else {
                return .init(attemptStatus: .cancelled, taskStatus: .cancelled, retryAt: nil, countsAsRetry: false, metricStatus: .cancelled)
            }
            if interruptions < interruptionLimit {
                return .init(attemptStatus: .failed, taskStatus: .queued, retryAt: now, countsAsRetry: false, metricStatus: .retried)
            }
            if retriesUsed < policy.retries {
                let delay = policy.backoff(after: retriesUsed + 1, random: random)
                return .init(
                    attemptStatus: .failed, taskStatus: .queued,
                    retryAt: now.adding(delay), countsAsRetry: true, metricStatus: .retried
                )
            }
            return .init(attemptStatus: .failed, taskStatus: .failed, retryAt: nil, countsAsRetry: false, metricStatus: .failed)
        }
    }
}

/// Progress of a run, kept as counters so finishing one task never has to read the whole run.
public struct RunProgress: Sendable, Hashable, Codable {
    public var total: Int
    /// Tasks in a final status.
    public var finished: Int
    /// Tasks whose final status fails the run (failed, timeout, upstream_failed).
    public var failed: Int

    public init(total: Int, finished: Int = 0, failed: Int = 0) {
        self.total = total
        self.finished = finished
        self.failed = failed
    }

    /// Records tasks reaching a final status.
    public mutating func record(_ status: TaskStatus, count: Int = 1) {
        guard status.isFinished else { return }
        finished += count
        if status.failsRun { failed += count }
    }

    /// The run's final status once every task is final; nil while something can still run.
    /// A run fails once nothing else can run: independent branches are allowed to finish first.
    public var outcome: RunStatus? {
        guard finished >= total else { return nil }
        return failed > 0 ? .failed : .success
    }
}
