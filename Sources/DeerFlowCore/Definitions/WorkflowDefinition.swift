import Foundation

/// A workflow: a named DAG of tasks with declared parameters and an optional cron schedule.
///
/// Definitions come from YAML files (``WorkflowFileLoader``) or from the Swift DSL; both produce
/// this value, which ``WorkflowDefinition/validate()`` checks the same way.
public struct WorkflowDefinition: Sendable, Hashable, Codable {
    /// Unique workflow name: a letter or digit, then `[A-Za-z0-9_.-]`, at most 128 (``isSafeName(_:)``).
    public var name: String
    /// Free-form description shown by the API and CLI.
    public var description: String
    /// Optional cron schedule.
    public var schedule: ScheduleDefinition?
    /// Declared run parameters, in declaration order.
    public var params: [ParamDefinition]
    /// Tasks, in declaration order.
    public var tasks: [TaskDefinition]
    /// Channels of `notifications.yaml` told when a run fails, succeeds or recovers; nil: none.
    public var notify: RunNotifications?
    /// Longest a run may take, from its creation (or its latest retry) to its end; past it the run
    /// fails with reason `timeout` and its running attempts are stopped. nil: no limit.
    public var timeout: Duration?
    /// `max_active_runs`: at most this many runs of the workflow are active (started, not
    /// finished) at once; further runs wait as `pending` and start in creation order. nil: no limit.
    public var maxActiveRuns: Int?
    /// `triggers:`: what else starts runs (webhooks). nil: nothing but the API, the CLI and the
    /// schedule (nil rather than empty, so the version id of a workflow without triggers stays
    /// what it was before the key existed).
    public var triggers: [WorkflowTrigger]?

    public init(
        name: String,
        description: String = "",
        schedule: ScheduleDefinition? = nil,
        params: [ParamDefinition] = [],
        tasks: [TaskDefinition] = [],
        notify: RunNotifications? = nil,
        timeout: Duration? = nil,
        maxActiveRuns: Int? = nil,
        triggers: [WorkflowTrigger]? = nil
    ) {
        self.triggers = triggers
        self.timeout = timeout
        self.name = name
        self.description = description
        self.schedule = schedule
        self.params = params
        self.tasks = tasks
        self.notify = notify
        self.maxActiveRuns = maxActiveRuns
    }

    /// The task with this id.
    public func task(_ id: String) -> TaskDefinition? {
        tasks.first { $0.id == id }
    }

    /// A short stable identifier of this exact definition: `name@<8 hex digits>` of a hash of its
    /// content. Exposed to task code as the workflow id, so logs tell which version of a workflow ran.
    public var versionID: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(self)) ?? Data(name.utf8)
        // Stable across processes and platforms; the upper 32 bits.
        var hash = FNV1a()
        hash.combine(data)
        return "\(name)@\(hash.hex.prefix(8))"
    }
}

/// Which channels of `notifications.yaml` hear about a workflow's finished runs. Unlike alert
/// rules, which watch rates over time windows, these fire on each run: the first failure of a
/// nightly job is notified the moment it fails.
///
/// ```yaml
/// notify:
///   on_failure: [slack, pagerduty]   # a run failed
///   on_recovery: [slack]             # a run succeeded after the workflow's previous run failed
///   on_success: []                   # every successful run
///   severity: critical               # the alert's severity label (templates); default warning
/// ```
public struct RunNotifications: Sendable, Hashable, Codable {
    public var onFailure: [String]
    public var onSuccess: [String]
    public var onRecovery: [String]
    /// The `severity` label of the notification (notifications.yaml templates are per severity).
    public var severity: String

    public init(onFailure: [String] = [], onSuccess: [String] = [], onRecovery: [String] = [], severity: String = "warning") {
        self.onFailure = onFailure
        self.onSuccess = onSuccess
        self.onRecovery = onRecovery
        self.severity = severity
    }

    /// Every channel named.
    public var channels: Set<String> { Set(onFailure + onSuccess + onRecovery) }
}

/// When a workflow runs by itself.
public struct ScheduleDefinition: Sendable, Hashable, Codable {
    /// 5-field cron expression (`minute hour day-of-month month day-of-week`) or a macro (`@daily`).
    public var cron: String
    /// IANA time zone the expression is read in; default `UTC`.
    public var timeZone: String
    /// What to do with fires missed while no scheduler was running.
    public var catchup: CatchupPolicy
    /// Whether the schedule starts paused (`paused: true`). Only the initial state: once the store
    /// holds the schedule, a pause or unpause through the API wins over the file, also after a
    /// restart.
    public var paused: Bool

    public init(cron: String, timeZone: String = "UTC", catchup: CatchupPolicy = .latest, paused: Bool = false) {
        self.cron = cron
        self.timeZone = timeZone
        self.catchup = catchup
        self.paused = paused
    }

    private enum CodingKeys: String, CodingKey {
        case cron, timeZone, catchup, paused
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cron = try container.decode(String.self, forKey: .cron)
        timeZone = try container.decode(String.self, forKey: .timeZone)
        catchup = try container.decode(CatchupPolicy.self, forKey: .catchup)
        paused = try container.decodeIfPresent(Bool.self, forKey: .paused) ?? false
    }

    /// `paused` is written only when true, so the version id of a workflow that does not use it
    /// stays what it was before the key existed (it is the initial state, not the definition).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cron, forKey: .cron)
        try container.encode(timeZone, forKey: .timeZone)
        try container.encode(catchup, forKey: .catchup)
        if paused { try container.encode(paused, forKey: .paused) }
    }
}

/// Missed-fire policy of a schedule.
public enum CatchupPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Fire the most recent missed time once (the default).
    case latest
    /// Fire every missed time, oldest first (bounded by the scheduler's catch-up limit).
    case all
}

/// A declared run parameter.
public struct ParamDefinition: Sendable, Hashable, Codable {
    public var name: String
    public var type: ParamType
    /// Value used when a run does not give one. A parameter without default is required.
    public var defaultValue: JSONValue?
    public var description: String
    /// Secret parameters are shown as `[REDACTED]` by the API and in logs.
    public var secret: Bool

    public init(_ name: String, type: ParamType, default defaultValue: JSONValue? = nil, description: String = "", secret: Bool = false) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.description = description
        self.secret = secret
    }

    /// Whether a run must supply this parameter.
    public var isRequired: Bool { defaultValue == nil }
}

/// Type of a declared parameter.
public enum ParamType: String, Sendable, Hashable, Codable, CaseIterable {
    case string, int, float, bool, json

    /// Whether a JSON value is acceptable for this type (an integer is an acceptable float).
    public func accepts(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.json, _): return true
        case (.string, .string): return true
        case (.int, .int): return true
        case (.int, .double(let number)): return number.rounded() == number
        case (.float, .int), (.float, .double): return true
        case (.bool, .bool): return true
        default: return false
        }
    }

    /// Converts a command-line string (`--param k=v`) to a value of this type, or nil if it does not parse.
    public func parse(commandLine text: String) -> JSONValue? {
        switch self {
        case .string: return .string(text)
        case .int: return Int(text).map(JSONValue.int)
        case .float: return Double(text).map(JSONValue.double)
        case .bool:
            switch text.lowercased() {
            case "true", "yes", "1": return .bool(true)
            case "false", "no", "0": return .bool(false)
            default: return nil
            }
        case .json: return (try? JSONValue(parsing: text)) ?? .string(text)
        }
    }
}

/// One task of a workflow.
public struct TaskDefinition: Sendable, Hashable, Codable {
    /// Unique id within the workflow.
    public var id: String
    /// The task's type: `shell`, `http`, `noop`, `sleep`, or the name a Swift task declares (default: its id).
    /// Used as the `type` label of task metrics.
    public var type: String
    /// What the task does.
    public var action: TaskAction
    /// Ids of tasks that must succeed before this one is queued.
    public var dependsOn: [String]
    /// Named queue; workers serve a list of queues. Default `default`.
    public var queue: String
    /// Higher runs first among ready tasks of a queue. Default 0.
    public var priority: Int
    /// How failed attempts are retried.
    public var retry: RetryPolicy
    /// Maximum duration of one attempt; nil means no limit.
    public var timeout: Duration?
    public var description: String
    /// Dynamic fan-out (`for_each:`): the task runs once per item of a list known only at run
    /// time; nil for an ordinary task.
    public var map: MapDefinition?

    public init(
        id: String,
        type: String? = nil,
        action: TaskAction,
        dependsOn: [String] = [],
        queue: String = "default",
        priority: Int = 0,
        retry: RetryPolicy = .none,
        timeout: Duration? = nil,
        description: String = "",
        map: MapDefinition? = nil
    ) {
        self.map = map
        self.id = id
        self.type = type ?? action.builtinType ?? id
        self.action = action
        self.dependsOn = dependsOn
        self.queue = queue
        self.priority = priority
        self.retry = retry
        self.timeout = timeout
        self.description = description
    }
}

/// How a mapped task fans out: one instance per item of a list computed when the task becomes
/// ready, at most `maxParallel` of them queued or running at once.
///
/// ```yaml
/// - id: process
///   type: shell
///   depends_on: [list]
///   for_each: "{{ tasks.list.output.files }}"   # one instance per item; {{ item }}, {{ index }} inside
///   max_parallel: 50                            # optional; default: all at once
///   command: [./process.sh, "{{ item }}"]
/// ```
public struct MapDefinition: Sendable, Hashable, Codable {
    /// The `for_each` template, a single `{{ expression }}` giving a JSON array; nil for a Swift
    /// task mapped over the list its `over` closure returns (``Workflow/map(id:over:maxParallel:)``).
    public var forEach: String?
    /// At most this many instances queued or running at once; nil: all of them.
    public var maxParallel: Int?

    public init(forEach: String?, maxParallel: Int? = nil) {
        self.forEach = forEach
        self.maxParallel = maxParallel
    }
}

/// What a task does.
public enum TaskAction: Sendable, Hashable, Codable {
    /// Runs a process. Parameters reach it as `DEERFLOW_PARAM_<NAME>` environment variables.
    case shell(ShellAction)
    /// Sends an HTTP request; the response body is the output.
    case http(HTTPAction)
    /// Does nothing and succeeds.
    case noop
    /// Sleeps for a duration and succeeds.
    case sleep(Duration)
    /// Swift code registered with the workflow in the executing process.
    case swift
    /// Starts a run of another workflow (a child run) and, unless `wait` is false, waits for it.
    case workflow(SubWorkflowAction)

    /// The type name of built-in actions; nil for Swift code.
    public var builtinType: String? {
        switch self {
        case .shell: return "shell"
        case .http: return "http"
        case .noop: return "noop"
        case .sleep: return "sleep"
        case .swift: return nil
        case .workflow: return "workflow"
        }
    }
}

/// A `shell` task: either an argv list (`command`) or a script run by `/bin/sh -c` (`script`).
public struct ShellAction: Sendable, Hashable, Codable {
    public var command: [String]?
    public var script: String?
    /// Extra environment variables.
    public var environment: [String: String]
    /// Working directory; default: the server's.
    public var workingDirectory: String?
    /// Variables of DeerFlow's environment this task inherits besides the base ones, as names or
    /// prefixes (`AWS_*`); added to `worker.env_passthrough`. See ``TaskEnvironment``.
    public var environmentPassthrough: [String]

    public init(
        command: [String]? = nil, script: String? = nil, environment: [String: String] = [:], workingDirectory: String? = nil,
        environmentPassthrough: [String] = []
    ) {
        self.command = command
        self.script = script
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.environmentPassthrough = environmentPassthrough
    }

    private enum CodingKeys: String, CodingKey { case command, script, environment, workingDirectory, environmentPassthrough }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        command = try container.decodeIfPresent([String].self, forKey: .command)
        script = try container.decodeIfPresent(String.self, forKey: .script)
        environment = try container.decode([String: String].self, forKey: .environment)
        workingDirectory = try container.decodeIfPresent(String.self, forKey: .workingDirectory)
        environmentPassthrough = try container.decodeIfPresent([String].self, forKey: .environmentPassthrough) ?? []
    }

    /// Encoded without `environmentPassthrough` when it is empty, so the version id of a workflow
    /// that does not use it is what it was before the key existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(command, forKey: .command)
        try container.encodeIfPresent(script, forKey: .script)
        try container.encode(environment, forKey: .environment)
        try container.encodeIfPresent(workingDirectory, forKey: .workingDirectory)
        if !environmentPassthrough.isEmpty { try container.encode(environmentPassthrough, forKey: .environmentPassthrough) }
    }

    /// The argv to execute.
    public var argv: [String] {
        if let command { return command }
        return ["/bin/sh", "-c", script ?? ""]
    }
}

/// An `http` task.
public struct HTTPAction: Sendable, Hashable, Codable {
    public var method: String
    public var url: String
    public var headers: [String: String]
    public var body: String?
    /// Accepted status codes; default: any 2xx.
    public var expectStatus: [Int]

    /// - Parameter method: default `POST` when there is a body, else `GET` (a GET's body is
    ///   dropped or refused by many servers and proxies).
    public init(method: String? = nil, url: String, headers: [String: String] = [:], body: String? = nil, expectStatus: [Int] = []) {
        self.method = method ?? (body == nil ? "GET" : "POST")
        self.url = url
        self.headers = headers
        self.body = body
        self.expectStatus = expectStatus
    }

    /// Whether a response status counts as success.
    public func accepts(status: Int) -> Bool {
        expectStatus.isEmpty ? (200..<300).contains(status) : expectStatus.contains(status)
    }
}

/// A `workflow` task: starts a run of another workflow (a child run) with `params`.
///
/// With `wait` (the default) the task waits for the child and succeeds with the outputs of the
/// child's tasks, an object keyed by task id (`{"load": {...}, "report": null}`), or fails when the
/// child fails or is cancelled. With `wait: false` it succeeds at once with `{"run_id": "..."}`.
/// The child records its parent (run, task and attempt): a retried or reclaimed attempt waits for
/// the child already started instead of starting another.
///
/// ```yaml
/// - id: nightly-report
///   type: workflow
///   workflow: report
///   params: {day: "{{ params.day }}", limit: 10}
///   wait: true
/// ```
public struct SubWorkflowAction: Sendable, Hashable, Codable {
    /// The child workflow's name.
    public var workflow: String
    /// The child run's parameters. String values may hold `{{ }}` templates, rendered when the
    /// attempt runs; other values are passed as they are.
    public var params: [String: JSONValue]
    /// Whether the task waits for the child run (default true).
    public var wait: Bool

    public init(workflow: String, params: [String: JSONValue] = [:], wait: Bool = true) {
        self.workflow = workflow
        self.params = params
        self.wait = wait
    }
}
