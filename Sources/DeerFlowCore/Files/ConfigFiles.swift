import Foundation

/// Settings of `deerflow.yaml`: API address and tokens, database URL, worker slots and queues.
/// Every value is optional; flags and environment variables override it.
///
/// ```yaml
/// api:
///   host: 0.0.0.0
///   port: 8080
///   tokens:                    # a string is an admin token; roles: viewer, operator, admin
///     - "${DEERFLOW_TOKEN}"
///     - {token: "${DASHBOARD_TOKEN}", role: viewer}
///     - {token_file: /run/secrets/ci_token, role: operator}
///   protect_health: false
///   public_url: https://deerflow.example.com   # links in notifications
///   ui: true                   # the web UI at / of the API listener (default true)
///   header_timeout: 10s        # connection limits, see ``ConnectionLimits``
///   body_timeout: 30s
///   idle_timeout: 75s
///   max_connections: 1024
/// database:
///   url: sqlite://./.deerflow/deerflow.sqlite
/// worker:
///   slots: 8
///   queues: [default, reports]
///   lease: 30s
///   poll_interval: 1s
///   drain_timeout: 30s
///   env_passthrough: [AWS_*]   # variables shell tasks inherit besides PATH, HOME, LANG, ...
///   run_as: deerflow-tasks     # shell tasks run as this user (DeerFlow must run as root)
///   max_map_instances: 10000   # instances a for_each task may expand into (default 10000)
/// scheduler:
///   worker_timeout: 60s
/// retention:
///   runs: 90d                  # finished runs kept (default 90d; `forever` keeps them)
///   task_logs: 30d             # task logs of finished runs kept (default 30d)
/// queues:
///   reports: {concurrency: 2}  # at most 2 attempts of queue `reports` running in the cluster
/// secrets:                     # read by tasks as {{ secrets.API_TOKEN }}; see ``SecretSource``
///   API_TOKEN: {env: REPORTS_API_TOKEN}
/// health_checks:               # see ``HealthCheckDefinition``
///   - {name: warehouse, http: {url: http://warehouse:8080/ping}, critical: true}
/// ```
public struct ServerConfigFile: Sendable, Hashable {
    public var apiHost: String?
    public var apiPort: Int?
    /// `api.tokens`, with their roles; nil: not given.
    public var apiTokens: [APIToken]?
    public var protectHealth: Bool?
    /// `api.public_url`: where users reach the API, for links in notifications.
    public var apiPublicURL: String?
    /// `api.ui`: whether the API listener serves the web UI at `/`.
    public var apiUI: Bool?
    /// `api.header_timeout`, `body_timeout`, `idle_timeout`, `max_connections` over the defaults;
    /// nil when the file gives none of them.
    public var apiConnections: ConnectionLimits?
    public var databaseURL: String?
    public var workerSlots: Int?
    public var workerQueues: [String]?
    public var lease: Duration?
    public var pollInterval: Duration?
    public var drainTimeout: Duration?
    public var workerTimeout: Duration?
    /// `worker.env_passthrough`: variables of DeerFlow's environment every shell task inherits.
    public var environmentPassthrough: [String]?
    /// `worker.run_as`: the user shell tasks run as.
    public var runAs: String?
    /// `worker.max_map_instances`: instances one mapped task (`for_each`) may expand into.
    public var maxMapInstances: Int?
    /// The `tracing:` section, with the keys of `tracing.yaml`; nil when there is none.
    public var tracing: TracingConfigFile?
    /// `retention.runs`: `.some(nil)` is `forever`; nil when the file does not say.
    public var retainRuns: Duration??
    /// `retention.task_logs`: `.some(nil)` is `forever`; nil when the file does not say.
    public var retainTaskLogs: Duration??
    /// `queues.<name>.concurrency`: at most this many attempts of the queue run at once in the
    /// whole cluster. nil when the file has no `queues:` section (the stored limits stay as they
    /// are); an empty map removes every queue limit.
    public var queueConcurrency: [String: Int]?
    /// `secrets:`: where each secret tasks may read comes from; nil: no section.
    public var secrets: [String: SecretSource]?
    /// `health_checks:`: checks of this process's dependencies shown in `/health`.
    public var healthChecks: [HealthCheckDefinition]?

    public init() {}

    /// Reads `deerflow.yaml`; `${VAR}` is replaced from `environment`.
    public static func parse(yaml: String, file: String, environment: [String: String]) throws(FileErrors) -> ServerConfigFile {
        let reader = YAMLReader(file: file, environment: environment)
        var config = ServerConfigFile()
        if let root = reader.read(yaml), !root.isNull, let top = root.mapping(allowedKeys: ["api", "database", "worker", "scheduler", "tracing", "retention", "queues", "secrets", "health_checks"]) {
            if let api = top.mapping("api", allowedKeys: [
                "host", "port", "tokens", "protect_health", "public_url", "ui",
                "header_timeout", "body_timeout", "idle_timeout", "max_connections",
            ]) {
                config.apiUI = api.bool("ui")
                config.apiConnections = connectionLimits(api)
                config.apiHost = api.string("host")
                config.apiPort = api.optional("port").flatMap { portNumber(of: $0) }
                config.apiTokens = api.optional("tokens").flatMap(apiTokens)
                config.protectHealth = api.bool("protect_health")
                if let node = api.optional("public_url"), let url = node.string() {
                    if URL.http(url) != nil {
                        config.apiPublicURL = url.hasSuffix("/") ? String(url.dropLast()) : url
                    } else {
                        node.fail("'\(url)' is not an http(s) URL (e.g. https://deerflow.example.com)")
                    }
                }
            }
            if let database = top.mapping("database", allowedKeys: ["url"]) {
                config.databaseURL = database.string("url")
            }
            if let worker = top.mapping("worker", allowedKeys: ["slots", "queues", "lease", "poll_interval", "drain_timeout", "env_passthrough", "run_as", "max_map_instances"]) {
                if let node = worker.optional("env_passthrough"), let patterns = node.stringList(allowSingle: true) {
                    if let bad = patterns.first(where: { !TaskEnvironment.isValidPattern($0) }) {
                        node.fail("'\(bad)' is not a variable name or prefix (e.g. AWS_REGION, AWS_*)")
                    } else {
                        config.environmentPassthrough = patterns
                    }
                }
                config.runAs = worker.string("run_as")
                config.workerSlots = worker.optional("slots")?.int(in: Limits.slots)
                config.workerQueues = worker.stringList("queues", allowSingle: true)
                config.lease = worker.optional("lease")?.duration(in: Limits.lease)
                config.pollInterval = worker.optional("poll_interval")?.duration(in: Limits.pollInterval)
                config.drainTimeout = worker.optional("drain_timeout")?.duration(in: Limits.drainTimeout)
                config.maxMapInstances = worker.optional("max_map_instances")?.int(in: Limits.mapInstances)
            }
            if let scheduler = top.mapping("scheduler", allowedKeys: ["worker_timeout"]) {
                config.workerTimeout = scheduler.optional("worker_timeout")?.duration(in: Limits.workerTimeout)
            }
            if let retention = top.mapping("retention", allowedKeys: ["runs", "task_logs"]) {
                config.retainRuns = retention.optional("runs").map(retentionPeriod)
                config.retainTaskLogs = retention.optional("task_logs").map(retentionPeriod)
            }
            config.tracing = TracingConfigFile.section(of: top)
            if let queues = top.mapping("queues") {
                var limits: [String: Int] = [:]
                for entry in queues.entries {
                    guard let queue = entry.value.mapping(allowedKeys: ["concurrency"]) else { continue }
                    if let limit = queue.require("concurrency")?.int(in: Limits.queueConcurrency) {
                        limits[entry.key] = limit
                    }
                }
                config.queueConcurrency = limits
            }
            config.secrets = SecretSource.section(of: top, file: file)
            config.healthChecks = HealthCheckDefinition.section(of: top)
        }
        try reader.throwIfErrors()
        return config
    }

    /// `api.tokens`: strings (admin tokens), or `{token: ..., role: ...}` / `{token_file: PATH, role: ...}`
    /// entries (a file keeps the token out of the environment; one trailing newline is dropped).
    /// Empty strings are left out, so an unset `${VAR}` with a default of "" adds no token.
    private static func apiTokens(_ node: YAMLNode) -> [APIToken]? {
        let items = node.isSequence ? (node.sequence() ?? []) : [node]
        var tokens: [APIToken] = []
        for item in items {
            if item.isScalar {
                if let value = item.string(), !value.isEmpty { tokens.append(APIToken(value)) }
                continue
            }
            guard let entry = item.mapping(allowedKeys: ["token", "token_file", "role"]) else { continue }
            let role = entry.optional("role")?.oneOf(APIRole.self, what: "role") ?? .admin
            switch (entry.string("token"), entry.optional("token_file")) {
            case (let value?, nil):
                if value.isEmpty { item.fail("the token is empty") } else { tokens.append(APIToken(value, role: role)) }
            case (nil, let fileNode?):
                guard let path = fileNode.string() else { continue }
                guard let value = ConfigFileText.secretValue(atPath: path) else {
                    fileNode.fail("cannot read token file \(path) (check that it exists and that DeerFlow's user may read it)")
                    continue
                }
                if value.isEmpty { fileNode.fail("token file \(path) is empty") } else { tokens.append(APIToken(value, role: role)) }
            default:
                item.fail("give the token as token: or token_file:, one of them")
            }
        }
        return tokens
    }

    /// The connection limits of `api:`; nil when it gives none.
    private static func connectionLimits(_ api: YAMLMapping) -> ConnectionLimits? {
        let keys = ["header_timeout", "body_timeout", "idle_timeout", "max_connections"]
        guard keys.contains(where: { api.optional($0) != nil }) else { return nil }
        var limits = ConnectionLimits()
        if let value = api.optional("header_timeout")?.duration(in: Limits.connectionTimeout) { limits.headerTimeout = value }
        if let value = api.optional("body_timeout")?.duration(in: Limits.connectionTimeout) { limits.bodyTimeout = value }
        if let value = api.optional("idle_timeout")?.duration(in: Limits.connectionTimeout) { limits.idleTimeout = value }
        if let value = api.optional("max_connections")?.int(in: Limits.connections) { limits.maxConnections = value }
        return limits
    }

    /// A retention period: a duration in ``Limits/retention``, or `forever` (nil).
    private static func retentionPeriod(_ node: YAMLNode) -> Duration? {
        if node.isScalar, node.scalarText()?.trimmingWhitespace().lowercased() == RetentionPolicy.foreverWord { return nil }
        return node.duration(in: Limits.retention)
    }

    /// Reads the file at `path`.
    public static func load(path: String, environment: [String: String]) throws(FileErrors) -> ServerConfigFile {
        try parse(yaml: try ConfigFileText.read(path), file: path, environment: environment)
    }
}

/// Settings of `metrics.yaml`, as the monitoring chapter writes it.
///
/// ```yaml
/// metrics:
///   enabled: true
///   port: 9090
///   path: /metrics
///   series_budget: 1000
///   prometheus:
///     scrape_interval: 15s
///     labels: {environment: production, service: deerflow}
///   custom_metrics:
///     - name: data_processed_bytes
///       type: counter
///       description: "Total bytes processed"
///       labels: [workflow, task]
///     - name: processing_latency
///       type: histogram
///       description: "Processing latency distribution"
///       buckets: [0.1, 0.5, 1, 5, 10, 30, 60]
/// ```
public struct MetricsConfigFile: Sendable, Hashable {
    /// A `custom_metrics` entry.
    public struct CustomMetric: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable, CaseIterable { case counter, gauge, histogram }
        public var name: String
        public var kind: Kind
        public var description: String
        public var labels: [String]
        public var buckets: [Double]?
        /// Line of the entry, for errors found when registering it.
        public var location: String
    }

    /// false: no metrics listener at all.
    public var enabled: Bool = true
    public var port: Int = 9090
    public var path: String = "/metrics"
    public var scrapeInterval: Duration = .seconds(15)
    public var labels: [(String, String)] = []
    public var seriesBudget: Int = 1000
    public var customMetrics: [CustomMetric] = []

    public init() {}

    public static func == (lhs: MetricsConfigFile, rhs: MetricsConfigFile) -> Bool {
        lhs.enabled == rhs.enabled && lhs.port == rhs.port && lhs.path == rhs.path && lhs.scrapeInterval == rhs.scrapeInterval
            && lhs.labels.map { "\($0.0)=\($0.1)" } == rhs.labels.map { "\($0.0)=\($0.1)" } && lhs.seriesBudget == rhs.seriesBudget
            && lhs.customMetrics == rhs.customMetrics
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(port)
        hasher.combine(path)
    }

    /// Reads `metrics.yaml`; `${VAR}` is replaced from `environment`.
    public static func parse(yaml: String, file: String, environment: [String: String]) throws(FileErrors) -> MetricsConfigFile {
        let reader = YAMLReader(file: file, environment: environment)
        var config = MetricsConfigFile()
        if let root = reader.read(yaml), !root.isNull, let top = root.mapping(allowedKeys: ["metrics"]),
           let metrics = top.mapping("metrics", allowedKeys: ["enabled", "port", "path", "series_budget", "prometheus", "custom_metrics"])
        {
            if let enabled = metrics.bool("enabled") { config.enabled = enabled }
            if let node = metrics.optional("port"), let port = portNumber(of: node) { config.port = port }
            if let node = metrics.optional("path"), let path = node.string() {
                if path.hasPrefix("/"), !path.contains(" "), path != "/" { config.path = path } else { node.fail("must be an absolute path such as /metrics, got '\(path)'") }
            }
            if let node = metrics.optional("series_budget"), let budget = node.int() {
                if budget < 1 { node.fail("must be at least 1, got \(budget)") } else { config.seriesBudget = budget }
            }
            if let prometheus = metrics.mapping("prometheus", allowedKeys: ["scrape_interval", "labels"]) {
                if let interval = positive(prometheus.optional("scrape_interval")) { config.scrapeInterval = interval }
                if let labelsNode = prometheus.optional("labels"), let labels = labelsNode.mapping() {
                    for entry in labels.entries {
                        guard let value = entry.value.string() else { continue }
                        if !isLabelName(entry.key) || ["le", "quantile"].contains(entry.key) {
                            entry.value.fail("'\(entry.key)' is not a valid Prometheus label name (letters, digits and '_', not starting with a digit or '__')")
                        } else if builtinLabelNames.contains(entry.key) {
                            entry.value.fail("'\(entry.key)' is a label of DeerFlow's built-in metrics; a constant label must have another name (e.g. deerflow_\(entry.key))")
                        } else {
                            config.labels.append((entry.key, value))
                        }
                    }
                }
            }
            var seen: [String: String] = [:]
            for item in metrics.sequence("custom_metrics") ?? [] {
                guard let entry = item.mapping(allowedKeys: ["name", "type", "description", "help", "labels", "buckets"]) else { continue }
                guard let nameNode = entry.require("name"), let name = nameNode.string(),
                      let typeNode = entry.require("type"), let kind = typeNode.oneOf(CustomMetric.Kind.self, what: "metric type")
                else { continue }
                guard isMetricName(name) else {
                    nameNode.fail("'\(name)' is not a valid Prometheus metric name (letters, digits, '_' and ':', not starting with a digit)")
                    continue
                }
                let exposed = kind == .counter && !name.hasSuffix("_total") ? name + "_total" : name
                if let first = seen[exposed] {
                    nameNode.fail("duplicate metric '\(name)' (first declared at line \(first))")
                    continue
                }
                seen[exposed] = String(nameNode.location.line)
                let labels = entry.stringList("labels") ?? []
                if let labelsNode = entry.optional("labels") {
                    for label in labels where !isLabelName(label) || ["le", "quantile"].contains(label) {
                        labelsNode.fail("'\(label)' is not a valid label name")
                    }
                    if Set(labels).count != labels.count { labelsNode.fail("a label is listed twice") }
                    for label in labels where config.labels.contains(where: { $0.0 == label }) {
                        labelsNode.fail("'\(label)' is also a constant label (prometheus.labels); every series carries it already")
                    }
                }
                var buckets: [Double]?
                if let bucketsNode = entry.optional("buckets") {
                    if kind != .histogram {
                        bucketsNode.fail("'buckets' is only allowed on histograms, not on a \(kind.rawValue)")
                    } else if let items = bucketsNode.sequence() {
                        let values = items.compactMap { $0.double() }
                        if values.count == items.count {
                            if values.isEmpty { bucketsNode.fail("a histogram needs at least one bucket") }
                            for (previous, next) in zip(values, values.dropFirst()) where !(next > previous) {
                                bucketsNode.fail("buckets must be strictly increasing, but \(next) follows \(previous)")
                                break
                            }
                            buckets = values
                        }
                    }
                }
                let description = entry.string("description") ?? entry.string("help") ?? ""
                config.customMetrics.append(CustomMetric(
                    name: name, kind: kind, description: description, labels: labels, buckets: buckets,
                    location: "\(reader.file):\(nameNode.location.line)"))
            }
        }
        try reader.throwIfErrors()
        return config
    }

    /// Reads the file at `path`.
    public static func load(path: String, environment: [String: String]) throws(FileErrors) -> MetricsConfigFile {
        try parse(yaml: try ConfigFileText.read(path), file: path, environment: environment)
    }

    /// Labels of the built-in metrics (DeerFlow's `BuiltinMetric` catalogue; a test keeps the two
    /// in step). Constant labels may not reuse them.
    public static let builtinLabelNames: Set<String> = ["alertname", "severity", "channel", "workflow", "status", "type", "queue", "worker", "endpoint", "check", "metric", "reason", "handler", "hook", "result", "role", "outcome"]

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first else { return false }
        func letter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" || s == ":" }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !name.hasPrefix("__") else { return false }
        func letter(_ s: Unicode.Scalar) -> Bool { (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || s == "_" }
        return letter(first) && name.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
    }
}

private func portNumber(of node: YAMLNode) -> Int? {
    guard let port = node.int() else { return nil }
    guard (0...65535).contains(port) else {
        node.fail("must be a port number from 0 to 65535, got \(port)")
        return nil
    }
    return port
}

private func positive(_ node: YAMLNode?) -> Duration? {
    guard let node, let duration = node.duration() else { return nil }
    guard duration > .zero else {
        node.fail("must be longer than 0")
        return nil
    }
    return duration
}

/// Reading config files with errors in the same format as YAML errors.
package enum ConfigFileText {
    /// The text of a file holding one secret value (a token, a password), without the one
    /// newline editors and `echo` end it with (`\n` or `\r\n`); nil when it cannot be read.
    static func secretValue(atPath path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return nil }
        // "\r\n" is one Character: hasSuffix("\n") alone would not see it.
        if text.hasSuffix("\r\n") { return String(text.dropLast()) }
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    /// The text of the config file at `path`; a missing, unreadable or directory path is a ``FileError`` at line 0.
    package static func read(_ path: String) throws(FileErrors) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, key: "", message: "no such file")])
        }
        guard !isDirectory.boolValue else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, key: "", message: "is a directory, not a file")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, key: "", message: "cannot read file (check its permissions)")])
        }
        return String(decoding: data, as: UTF8.self)
    }
}
