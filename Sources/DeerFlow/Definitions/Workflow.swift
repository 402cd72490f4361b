public import DeerFlowCore
import Foundation
import Synchronization

/// A workflow defined in Swift: a DAG of tasks whose bodies are Swift closures (or built-in
/// actions such as `shell`), registered with a server or worker through `DeerFlowCommand`.
///
/// ```swift
/// let etl = Workflow(name: "etl", schedule: "0 2 * * *", params: [.init("day", type: .string, default: "today")])
/// etl.task(id: "extract", retries: 3, timeout: .seconds(30)) { context in
///     context.logger.info("extracting", metadata: ["day": "\(context.params["day"]?.plainText ?? "")"])
///     return ["rows": 120]
/// }
/// etl.task(id: "load", dependsOn: ["extract"]) { context in
///     let extracted: [String: Int] = try await context.output(of: "extract")
///     context.logger.info("loading \(extracted["rows"] ?? 0) rows")
/// }
/// ```
public final class Workflow: Sendable {
    /// The workflow's unique name.
    public let name: String
    private let state: Mutex<State>

    private struct State {
        var definition: WorkflowDefinition
        var bodies: [String: TaskBody]
        var mapSources: [String: MapSource] = [:]
    }

    /// Creates an empty workflow.
    ///
    /// - Parameters:
    ///   - name: unique name: a letter or digit, then letters, digits, `_`, `-`, `.` (at most 128).
    ///   - description: shown by the API and CLI.
    ///   - schedule: optional 5-field cron expression or macro (`@hourly`); one that never fires
    ///     (`0 0 30 2 *`) is refused when the workflow is registered.
    ///   - timeZone: IANA time zone of the schedule; default `UTC`.
    ///   - catchup: what to do with fires missed while no scheduler ran; default `.latest`.
    ///   - paused: whether the schedule starts paused; only the initial state (a pause or unpause
    ///     through the API, stored in the store, wins afterwards, also after a restart).
    ///   - params: declared run parameters.
    ///   - notify: channels of notifications.yaml told when a run fails, succeeds or recovers.
    ///   - timeout: the whole run's limit (YAML `timeout:`); past it the run fails with reason
    ///     `timeout` and its running attempts are stopped. Default: none.
    ///   - maxActiveRuns: at most this many runs active at once (`max_active_runs`); further runs
    ///     wait as `pending` and start in creation order. nil (the default): no limit.
    public init(
        name: String,
        description: String = "",
        schedule: String? = nil,
        timeZone: String = "UTC",
        catchup: CatchupPolicy = .latest,
        paused: Bool = false,
        params: [ParamDefinition] = [],
        notify: RunNotifications? = nil,
        timeout: Duration? = nil,
        maxActiveRuns: Int? = nil
    ) {
        self.name = name
        let definition = WorkflowDefinition(
            name: name,
            description: description,
            schedule: schedule.map { ScheduleDefinition(cron: $0, timeZone: timeZone, catchup: catchup, paused: paused) },
            params: params,
            tasks: [],
            notify: notify,
            timeout: timeout,
            maxActiveRuns: maxActiveRuns
        )
        state = Mutex(State(definition: definition, bodies: [:]))
    }

    /// A workflow from a definition, e.g. one read from a YAML file. Its tasks use built-in actions.
    public init(definition: WorkflowDefinition) {
        name = definition.name
        state = Mutex(State(definition: definition, bodies: [:]))
    }

    /// The definition as declared so far.
    public var definition: WorkflowDefinition {
        state.withLock { $0.definition }
    }

    /// Adds a task whose body returns an output stored with the attempt (any `Encodable` value).
    ///
    /// - Parameters:
    ///   - id: unique within the workflow.
    ///   - type: the `type` label of task metrics; default: the id.
    ///   - dependsOn: ids of tasks that must succeed first.
    ///   - queue: named queue; default `default`.
    ///   - priority: higher first among ready tasks; default 0.
    ///   - retries: retries after a failed first attempt; default 0.
    ///   - retryDelay: first backoff; doubles per retry; default 1 s.
    ///   - maxRetryDelay: backoff cap; default 5 min.
    ///   - timeout: limit of one attempt; default none.
    ///   - body: the task's code. It should honour Swift task cancellation (run cancelled, timeout).
    @discardableResult
    public func task<Output: Encodable & Sendable>(
        id: String,
        type: String? = nil,
        dependsOn: [String] = [],
        queue: String = "default",
        priority: Int = 0,
        retries: Int = 0,
        retryDelay: Duration = .seconds(1),
        maxRetryDelay: Duration = .seconds(300),
        timeout: Duration? = nil,
        description: String = "",
        _ body: @escaping @Sendable (TaskContext) async throws -> Output
    ) -> Workflow {
        let definition = TaskDefinition(
            id: id, type: type, action: .swift, dependsOn: dependsOn, queue: queue, priority: priority,
            retry: RetryPolicy(retries: retries, delay: retryDelay, maxDelay: maxRetryDelay), timeout: timeout,
            description: description
        )
        add(definition) { context in
            let output = try await body(context)
            // A JSONValue is stored as it is, without a round trip through JSON text.
            if let value = output as? JSONValue { return value }
            return try JSONValue(encoding: output)
        }
        return self
    }

    /// Adds a task whose body returns nothing.
    @discardableResult
    public func task(
        id: String,
        type: String? = nil,
        dependsOn: [String] = [],
        queue: String = "default",
        priority: Int = 0,
        retries: Int = 0,
        retryDelay: Duration = .seconds(1),
        maxRetryDelay: Duration = .seconds(300),
        timeout: Duration? = nil,
        description: String = "",
        _ body: @escaping @Sendable (TaskContext) async throws -> Void
    ) -> Workflow {
        task(
            id: id, type: type, dependsOn: dependsOn, queue: queue, priority: priority, retries: retries, retryDelay: retryDelay,
            maxRetryDelay: maxRetryDelay, timeout: timeout, description: description
        ) { context -> JSONValue in
            try await body(context)
            return .null
        }
    }

    /// Adds a task with a built-in action (`shell`, `http`, `noop`, `sleep`).
    @discardableResult
    public func task(_ definition: TaskDefinition) -> Workflow {
        state.withLock { state in
            state.definition.tasks.append(definition)
        }
        return self
    }

    /// Adds a task that starts a run of another workflow (a child run), as YAML's `type: workflow`
    /// does: with `wait` it waits for the child and outputs the outputs of the child's tasks keyed
    /// by task id, failing when the child fails or is cancelled; without, it succeeds at once with
    /// `{"run_id": ...}`. Cancelling this run cancels the child.
    ///
    /// ```swift
    /// nightly.subWorkflow(id: "report", workflow: "report", params: ["day": "{{ params.day }}"], dependsOn: ["load"])
    /// ```
    ///
    /// - Parameters:
    ///   - workflow: the child workflow's name; it must be registered in the same process.
    ///   - params: the child run's parameters; string values may hold `{{ }}` templates.
    ///   - wait: whether the task waits for the child run; default true. A waiting task holds a
    ///     worker slot for as long as the child runs.
    ///   - dependsOn, queue, priority, retries, retryDelay, maxRetryDelay, timeout, description: as for Swift tasks.
    @discardableResult
    public func subWorkflow(
        id: String,
        workflow: String,
        params: [String: JSONValue] = [:],
        wait: Bool = true,
        dependsOn: [String] = [],
        queue: String = "default",
        priority: Int = 0,
        retries: Int = 0,
        retryDelay: Duration = .seconds(1),
        maxRetryDelay: Duration = .seconds(300),
        timeout: Duration? = nil,
        description: String = ""
    ) -> Workflow {
        task(TaskDefinition(
            id: id, action: .workflow(SubWorkflowAction(workflow: workflow, params: params, wait: wait)), dependsOn: dependsOn,
            queue: queue, priority: priority, retry: RetryPolicy(retries: retries, delay: retryDelay, maxDelay: maxRetryDelay),
            timeout: timeout, description: description))
    }

    /// Adds a mapped task: `over` gives a list when the task becomes ready (it may read upstream
    /// outputs), and `body` runs once per item as an instance with its own attempts, retries and
    /// logs, `context.map` holding its index and item. Tasks depending on it get the list of the
    /// instances' outputs, in index order (`context.output(of:)`). YAML's `for_each`.
    ///
    /// ```swift
    /// etl.map(id: "process", dependsOn: ["list"], over: { context in
    ///     try await context.output(of: "list", as: [String].self)
    /// }, maxParallel: 10) { context in
    ///     let file: String = try context.map?.item() ?? ""
    ///     return ["file": file, "bytes": 42]
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - over: the items, one instance each; at most `worker.max_map_instances` (default 10,000).
    ///   - maxParallel: at most this many instances queued or running at once; nil (the default): all.
    ///   - body: one instance's code; its output is the instance's output.
    ///   The other parameters are those of ``task(id:type:dependsOn:queue:priority:retries:retryDelay:maxRetryDelay:timeout:description:_:)-(_,_,_,_,_,_,_,_,_,_,(TaskContext)->Output)``, applied to every instance.
    @discardableResult
    public func map<Item: Encodable & Sendable, Output: Encodable & Sendable>(
        id: String,
        type: String? = nil,
        dependsOn: [String] = [],
        over items: @escaping @Sendable (TaskContext) async throws -> [Item],
        maxParallel: Int? = nil,
        queue: String = "default",
        priority: Int = 0,
        retries: Int = 0,
        retryDelay: Duration = .seconds(1),
        maxRetryDelay: Duration = .seconds(300),
        timeout: Duration? = nil,
        description: String = "",
        _ body: @escaping @Sendable (TaskContext) async throws -> Output
    ) -> Workflow {
        task(
            id: id, type: type, dependsOn: dependsOn, queue: queue, priority: priority, retries: retries, retryDelay: retryDelay,
            maxRetryDelay: maxRetryDelay, timeout: timeout, description: description, body)
        state.withLock { state in
            if let index = state.definition.tasks.lastIndex(where: { $0.id == id }) {
                state.definition.tasks[index].map = MapDefinition(forEach: nil, maxParallel: maxParallel)
            }
            state.mapSources[id] = { context in
                let list = try await items(context)
                return .array(try list.map { try JSONValue(encoding: $0) })
            }
        }
        return self
    }

    /// The `over` closure of a mapped Swift task, if it has one.
    package func mapSource(of taskID: String) -> MapSource? {
        state.withLock { $0.mapSources[taskID] }
    }

    /// The Swift body of a task, if it has one.
    package func body(of taskID: String) -> TaskBody? {
        state.withLock { $0.bodies[taskID] }
    }

    private func add(_ definition: TaskDefinition, body: @escaping TaskBody) {
        state.withLock { state in
            state.definition.tasks.append(definition)
            state.bodies[definition.id] = body
        }
    }
}

/// The items of a mapped Swift task, as a JSON array.
package typealias MapSource = @Sendable (TaskContext) async throws -> JSONValue

/// The code of a Swift task, returning its output as JSON.
package typealias TaskBody = @Sendable (TaskContext) async throws -> JSONValue
