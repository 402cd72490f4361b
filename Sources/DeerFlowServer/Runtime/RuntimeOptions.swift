public import DeerFlow
public import DeerFlowCore
public import DeerFlowNotifications
import Foundation

/// Everything that shapes one DeerFlow process: what it runs, where its store is, its ports.
/// Built from flags, environment and the files of `--config`; tests build it directly.
public struct RuntimeOptions: Sendable {
    /// Directory of YAML workflow files.
    public var workflowsDirectory: String?
    /// Directory of `deerflow.yaml`, `metrics.yaml`, ...
    public var configDirectory: String?
    /// `sqlite://PATH` (relative or absolute) or `postgres://...`; default `sqlite://./.deerflow/deerflow.sqlite`.
    public var databaseURL: String = RuntimeOptions.defaultDatabaseURL
    public var api = APISettings()
    /// `queues.<name>.concurrency` of `deerflow.yaml`: at most this many attempts of a queue run
    /// at once in the cluster. Written to the store at start; nil (no `queues:` section) leaves
    /// the stored limits as they are.
    public var queueConcurrency: [String: Int]?
    /// Run the HTTP API.
    public var runAPI = true
    /// Run the scheduler.
    public var runScheduler = true
    /// Run workers.
    public var runWorkers = true
    public var worker = WorkerService.Configuration()
    public var scheduler = SchedulerService.Configuration()
    public var engine = DeerFlowEngine.Configuration()
    /// Metrics endpoint settings; `metrics.yaml` fills these in.
    public var metrics = MetricsConfigFile()
    /// Override of the metrics port (`--metrics-port`).
    public var metricsPort: Int?
    /// In-process alert evaluation and notifications.
    public var alerting = AlertingSettings()
    /// `worker.run_as`: the user shell tasks run as (resolved, and checked, when the runtime is made).
    public var taskUserName: String?
    /// `secrets:` of `deerflow.yaml`: where each secret tasks may read comes from. The values are
    /// read at start by a process that runs workers.
    public var secrets: [String: SecretSource] = [:]
    /// `health_checks:` of `deerflow.yaml`, shown in `/health` with the built-in checks.
    public var healthChecks: [HealthCheckDefinition] = []
    /// How long history is kept (`retention:`), and how often the scheduler leader purges it.
    public var retention = RetentionSettings()

    public static let defaultDatabaseURL = "sqlite://./.deerflow/deerflow.sqlite"

    public init() {}

    /// In-process alerting: rule evaluation over the process's own metrics, and notifications.
    public struct AlertingSettings: Sendable {
        /// Evaluate alert rules in this process (needs metrics on); default true.
        public var enabled = true
        /// The rules file (`--rules`); default `alerts.yaml` in the config directory, else the
        /// built-in rules (what `deerflow export alerts` writes).
        public var rulesFile: String?
        /// Channels and routes from `notifications.yaml` in the config directory; nil: no notifications.
        public var notifications: NotificationsConfigFile?
        /// How often the history is sampled and the rules evaluated; default `metrics.yaml`'s
        /// `prometheus.scrape_interval`.
        public var interval: Duration?
        /// First retry delay of a failed notification (doubling up to 5 minutes); default 2 s.
        public var retryBase: Duration = .seconds(2)
        public init() {}
    }

    /// Retention of finished runs and task logs, purged by the scheduler leader.
    public struct RetentionSettings: Sendable {
        /// What is kept; default runs 90 days, task logs 30 days.
        public var policy = RetentionPolicy()
        /// Time between two purges; default 10 minutes (the first one a minute after start).
        public var interval: Duration = .seconds(600)
        /// Time from start to the first purge; default 1 minute.
        public var firstPurgeAfter: Duration = .seconds(60)
        public init() {}
    }

    /// HTTP API settings.
    public struct APISettings: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        /// Bearer tokens with their roles; a string literal is an admin token.
        public var tokens: [APIToken] = []
        public var protectHealth = false
        /// The address users reach the API at (`https://deerflow.example.com`), for links in
        /// notifications; default `http://host:port` of this process's API.
        public var publicURL: String?
        /// Serve the web UI at `/` of the API listener (`api.ui`); default true.
        public var ui = true
        /// Header, body and idle timeouts and the connection limit of the API and metrics
        /// listeners (`api.header_timeout`, ...); defaults in ``ConnectionLimits``.
        public var connections = ConnectionLimits()
        /// Where the webhooks' secrets are read (`secret_env` of `triggers:`) when the server
        /// starts; default this process's environment.
        public var environment: [String: String] = ProcessInfo.processInfo.environment
        public init() {}
    }

    /// Reads `deerflow.yaml`, `metrics.yaml` and `notifications.yaml` from the config directory
    /// (when present; `alerts.yaml` is read at start) and the `DEERFLOW_DATABASE_URL` /
    /// `DEERFLOW_API_TOKENS` variables. Flags applied afterwards win.
    public mutating func applyConfigFiles(environment: [String: String]) throws {
        if let path = configDirectory {
            let directory = try ConfigDirectory(path)
            if let serverFile = directory.file("deerflow.yaml") {
                let file = try ServerConfigFile.load(path: serverFile, environment: environment)
                if let host = file.apiHost { api.host = host }
                if let port = file.apiPort { api.port = port }
                if let tokens = file.apiTokens { api.tokens = tokens }
                if let protect = file.protectHealth { api.protectHealth = protect }
                if let url = file.apiPublicURL { api.publicURL = url }
                if let ui = file.apiUI { api.ui = ui }
                if let limits = file.apiConnections { api.connections = limits }
                if let url = file.databaseURL { databaseURL = url }
                if let slots = file.workerSlots { worker.slots = slots }
                if let queues = file.workerQueues { worker.queues = queues }
                if let lease = file.lease { engine.leaseDuration = lease }
                if let poll = file.pollInterval { worker.pollInterval = poll }
                if let drain = file.drainTimeout { worker.drainTimeout = drain }
                if let timeout = file.workerTimeout { scheduler.workerTimeout = timeout }
                if let patterns = file.environmentPassthrough { engine.environmentPassthrough = patterns }
                if let user = file.runAs { taskUserName = user }
                if let limit = file.maxMapInstances { engine.maxMapInstances = limit }
                if let runs = file.retainRuns { retention.policy.runs = runs }
                if let logs = file.retainTaskLogs { retention.policy.taskLogs = logs }
                if let queues = file.queueConcurrency { queueConcurrency = queues }
                if let secrets = file.secrets { self.secrets = secrets }
                if let checks = file.healthChecks { healthChecks = checks }
            }
            if let file = try directory.metrics(environment: environment) { metrics = file }
            if alerting.rulesFile == nil, let rulesFile = directory.file("alerts.yaml") { alerting.rulesFile = rulesFile }
            if let file = try directory.notifications(environment: environment) { alerting.notifications = file }
        }
        if let url = environment["DEERFLOW_DATABASE_URL"], !url.isEmpty { databaseURL = url }
        if let tokens = environment["DEERFLOW_API_TOKENS"], !tokens.isEmpty {
            // Admin tokens; roles are given in deerflow.yaml.
            api.tokens = tokens.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { APIToken($0) }
        }
    }
}

/// A `--config` directory: its files are found by name and each is read only when asked for, so a
/// command needing one file is not stopped by a problem in another (an unset `${VAR}`).
package struct ConfigDirectory {
    /// The files DeerFlow reads from a config directory.
    package static let fileNames = ["deerflow.yaml", "metrics.yaml", "logging.yaml", "tracing.yaml", "alerts.yaml", "notifications.yaml"]

    let path: String

    /// - Throws: when `path` is not a directory.
    package init(_ path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DeerFlowError(.badRequest, "--config \(path): no such directory")
        }
        self.path = path
    }

    /// The path of a file of the directory, when it exists.
    package func file(_ name: String) -> String? {
        let file = (path as NSString).appendingPathComponent(name)
        return FileManager.default.fileExists(atPath: file) ? file : nil
    }

    /// `metrics.yaml`, when there is one.
    package func metrics(environment: [String: String]) throws -> MetricsConfigFile? {
        try file("metrics.yaml").map { try MetricsConfigFile.load(path: $0, environment: environment) }
    }

    /// `notifications.yaml`, when there is one.
    package func notifications(environment: [String: String]) throws -> NotificationsConfigFile? {
        try file("notifications.yaml").map { try NotificationsConfigFile.load(path: $0, environment: environment) }
    }
}
