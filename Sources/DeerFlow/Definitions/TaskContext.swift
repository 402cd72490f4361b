public import DeerFlowCore
public import Foundation
public import Logging
public import Tracing

/// What a task's code gets: who it is (workflow, run, task, execution), the run's parameters,
/// upstream outputs, a logger whose metadata carries those ids, and custom metrics.
public struct TaskContext: Sendable {
    /// The workflow: its name and the id of the exact definition that runs (`name@hash`).
    public struct WorkflowInfo: Sendable, Hashable {
        public let name: String
        public let id: String
    }

    /// The run.
    public struct RunInfo: Sendable, Hashable {
        public let id: RunID
        /// The time the run stands for: the fire time of a scheduled or backfill run, the
        /// creation time of any other (shell tasks get it as `DEERFLOW_LOGICAL_TIME`).
        public let logicalTime: Date

        public init(id: RunID, logicalTime: Date) {
            self.id = id
            self.logicalTime = logicalTime
        }
    }

    /// The task.
    public struct TaskInfo: Sendable, Hashable {
        public let id: String
        public let type: String
        public let queue: String
    }

    /// This execution (attempt) of the task: a unique id and the 1-based attempt number.
    public struct ExecutionInfo: Sendable, Hashable {
        public let id: String
        public let number: Int
    }

    public let workflow: WorkflowInfo
    public let run: RunInfo
    public let task: TaskInfo
    public let execution: ExecutionInfo
    /// The run's parameters, defaults filled in.
    public let params: [String: JSONValue]
    /// Logs to the process's log handlers and to this attempt's task log, with `workflow`,
    /// `workflow_id`, `run_id`, `task_id`, `execution_id` and `attempt` in its metadata.
    public var logger: Logger
    /// Custom metrics (the same registry `/metrics` exposes).
    public let metrics: MetricsRegistry
    /// For an instance of a mapped task (``Workflow/map(id:type:dependsOn:over:maxParallel:queue:priority:retries:retryDelay:maxRetryDelay:timeout:description:_:)``):
    /// its position and item; nil otherwise.
    public let map: MapInstance?

    /// The position and item of an instance of a mapped task.
    public struct MapInstance: Sendable, Hashable {
        /// Position in the list, from 0 (`{{ index }}`).
        public let index: Int
        /// The item (`{{ item }}`).
        public let item: JSONValue

        /// The item decoded as `T`.
        public func item<T: Decodable>(as type: T.Type = T.self) throws -> T { try item.decode(as: T.self) }
    }

    let started: ContinuousClock.Instant
    let outputs: @Sendable (String) async throws -> JSONValue?

    package init(
        workflow: WorkflowInfo, run: RunInfo, task: TaskInfo, execution: ExecutionInfo,
        params: [String: JSONValue], logger: Logger, metrics: MetricsRegistry,
        started: ContinuousClock.Instant, outputs: @escaping @Sendable (String) async throws -> JSONValue?, map: MapInstance? = nil
    ) {
        self.map = map
        self.workflow = workflow
        self.run = run
        self.task = task
        self.execution = execution
        self.params = params
        self.logger = logger
        self.metrics = metrics
        self.started = started
        self.outputs = outputs
    }

    /// The trace context of this attempt's `task.execute` span. Task code makes child spans with
    /// `withSpan("step") { span in ... }` (the current context is already this one).
    public var serviceContext: ServiceContext { .current ?? .topLevel }

    /// Time since this attempt started.
    public var elapsed: Duration { ContinuousClock.now - started }

    /// Time since this attempt started, in whole milliseconds.
    public var elapsedMilliseconds: Int64 { elapsed.milliseconds }

    /// A parameter decoded as `T`.
    ///
    /// ```swift
    /// let limit: Int = try context.param("limit")
    /// ```
    public func param<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard let value = params[name] else {
            throw TaskContextError(message: "parameter '\(name)' is not declared by workflow '\(workflow.name)'")
        }
        return try value.decode(as: T.self)
    }

    /// The output of another task of this run (normally an upstream dependency), decoded as `T`.
    public func output<T: Decodable>(of taskID: String, as type: T.Type = T.self) async throws -> T {
        try await upstreamOutput(of: taskID).decode(as: T.self)
    }

    /// The raw JSON output of another task of this run.
    public func upstreamOutput(of taskID: String) async throws -> JSONValue {
        guard let value = try await outputs(taskID) else {
            throw TaskContextError(message: "task '\(taskID)' of run \(run.id) has no output (it has not succeeded, or does not exist)")
        }
        return value
    }
}

/// Misuse of the task context (an unknown parameter, a missing output).
public struct TaskContextError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
