public import DeerFlowCore
public import Foundation

/// Identifies one attempt in events.
public struct AttemptInfo: Sendable, Hashable {
    public var attemptID: AttemptID
    public var runID: RunID
    public var workflow: String
    public var taskID: String
    public var type: String
    public var queue: String
    public var number: Int
    public var worker: String?

    public init(attemptID: AttemptID, runID: RunID, workflow: String, taskID: String, type: String, queue: String, number: Int, worker: String?) {
        self.attemptID = attemptID
        self.runID = runID
        self.workflow = workflow
        self.taskID = taskID
        self.type = type
        self.queue = queue
        self.number = number
        self.worker = worker
    }
}

/// A state transition, emitted after the store committed it. Metrics, logs and traces hang off
/// these events (``EngineObserver``); nothing else in the engine knows about them.
public enum EngineEvent: Sendable {
    /// A run was created (its first tasks are queued).
    case runCreated(runID: RunID, workflow: String, trigger: RunTrigger.Kind, at: Date)
    /// The first attempt of a run started.
    case runStarted(runID: RunID, workflow: String, at: Date)
    /// A run reached a final status; `duration` runs from creation to finish.
    case runFinished(runID: RunID, workflow: String, status: RunStatus, createdAt: Date, startedAt: Date?, finishedAt: Date)
    /// A worker claimed an attempt; `queuedAt` is when it became ready.
    case attemptStarted(AttemptInfo, queuedAt: Date, startedAt: Date)
    /// An attempt finished.
    case attemptFinished(AttemptInfo, status: AttemptStatus, metricStatus: AttemptMetricStatus, startedAt: Date?, finishedAt: Date, error: String?)
    /// A new attempt was scheduled after a failure, claimable at `at`.
    case retryScheduled(AttemptInfo, at: Date)
    /// Tasks whose dependencies failed for good were marked `upstream_failed`.
    case tasksSkipped(runID: RunID, workflow: String, taskIDs: [String])
    /// A finished run was retried: `taskIDs` run again (the run is `running` again).
    case runRetried(runID: RunID, workflow: String, taskIDs: [String], at: Date)
    /// A run passed its deadline and was failed with reason `timeout` (a `runFinished` follows).
    case runTimedOut(runID: RunID, workflow: String, deadline: Date, at: Date)
}

/// Receives engine events. Implementations must be fast and must not throw: they run on the
/// worker's hot path after each store transaction.
public protocol EngineObserver: Sendable {
    func engine(didEmit events: [EngineEvent])
}
