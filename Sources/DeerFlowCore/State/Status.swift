/// Status of a workflow run: `pending → running → success | failed | cancelled`.
public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, running, success, failed, cancelled

    /// Whether the run has finished.
    public var isFinished: Bool {
        switch self {
        case .pending, .running: return false
        case .success, .failed, .cancelled: return true
        }
    }

    /// The legal transitions of the run state machine.
    public func canTransition(to next: RunStatus) -> Bool {
        switch (self, next) {
        case (.pending, .running), (.pending, .cancelled), (.pending, .failed), (.pending, .success):
            return true
        case (.running, .success), (.running, .failed), (.running, .cancelled):
            return true
        default:
            return false
        }
    }
}

/// Status of one attempt (execution) of a task: `queued → running → success | failed | timeout | cancelled`.
public enum AttemptStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case queued, running, success, failed, timeout, cancelled

    public var isFinished: Bool {
        switch self {
        case .queued, .running: return false
        case .success, .failed, .timeout, .cancelled: return true
        }
    }

    /// The legal transitions of the attempt state machine.
    public func canTransition(to next: AttemptStatus) -> Bool {
        switch (self, next) {
        case (.queued, .running), (.queued, .cancelled):
            return true
        case (.running, .success), (.running, .failed), (.running, .timeout), (.running, .cancelled):
            return true
        default:
            return false
        }
    }
}

/// Status of a task within a run.
///
/// `pending` (waiting for dependencies) → `queued` (ready, or waiting for a retry's backoff) →
/// `running` → `success`, or back to `queued` for a retry, or `failed` / `timeout` when no retry
/// is left. Dependents of a task that failed for good become `upstream_failed`; cancelling the run
/// makes unfinished tasks `cancelled`.
public enum TaskStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, queued, running, success, failed, timeout, cancelled
    case upstreamFailed = "upstream_failed"

    public var isFinished: Bool {
        switch self {
        case .pending, .queued, .running: return false
        case .success, .failed, .timeout, .cancelled, .upstreamFailed: return true
        }
    }

    /// Whether this final status makes the run fail.
    public var failsRun: Bool {
        switch self {
        case .failed, .timeout, .upstreamFailed: return true
        default: return false
        }
    }

    /// The legal transitions of the task state machine.
    public func canTransition(to next: TaskStatus) -> Bool {
        switch (self, next) {
        case (.pending, .queued), (.pending, .upstreamFailed), (.pending, .cancelled):
            return true
        case (.queued, .running), (.queued, .cancelled):
            return true
        case (.running, .success), (.running, .queued), (.running, .failed), (.running, .timeout), (.running, .cancelled):
            return true
        default:
            return false
        }
    }
}

/// The `status` label of `deerflow_tasks_total`: how one finished attempt counts.
public enum AttemptMetricStatus: String, Sendable, Hashable, CaseIterable {
    /// The attempt succeeded.
    case success
    /// The attempt failed (error or lost worker) and no retry is left.
    case failed
    /// The attempt failed, timed out, or was interrupted (its worker vanished or released it while
    /// draining), and another attempt was scheduled.
    case retried
    /// The attempt exceeded its timeout and no retry is left.
    case timeout
    /// The attempt was stopped because its run was cancelled.
    case cancelled
}
