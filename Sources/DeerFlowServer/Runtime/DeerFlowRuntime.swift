public import DeerFlow
import DeerFlowAlerting
package import DeerFlowCore
import DeerFlowHTTP
import DeerFlowNotifications
import DeerFlowLogging
import DeerFlowObservability
import DeerFlowPostgres
import DeerFlowSQLite
import DeerFlowUI
import Metrics
import Foundation
public import Logging
public import ServiceLifecycle
import UnixSignals
import Synchronization

/// One assembled DeerFlow process: the store, the engine with its workflows, metrics, alerting
/// and notifications, and the services (store, metrics endpoint, API, scheduler, workers) in
/// dependency order, all from an explicit configuration.
///
/// ```swift
/// let observability = try ProcessObservability.bootstrap(level: nil, configDirectory: "config")
/// let runtime = try await DeerFlowRuntime.make(options: options, workflows: [etl], observability: observability)
/// try await runtime.run()   // until SIGTERM / SIGINT
/// ```
public final class DeerFlowRuntime: Sendable {
    public let engine: DeerFlowEngine
    /// The store, with the capabilities a server needs (the engine sees its ``WorkflowStore`` part).
    public let store: any ServerStore
    public let options: RuntimeOptions
    let observability: ProcessObservability
    /// The Prometheus registry of `/metrics`; nil with metrics off.
    let backend: PrometheusBackend?
    /// Services in start order; shutdown runs in reverse (workers drain first, the API last).
    public let services: [any Service]
    let logger: Logger
    /// Ports the API and metrics endpoints listen on, once they do.
    public let ports = ListeningPorts()
    private let group = Mutex<ServiceGroup?>(nil)
    private let stopRequested = Mutex(false)

    /// Builds a process without process-wide logging or tracing: records go to `logger`.
    public static func make(options: RuntimeOptions, workflows: [Workflow] = [], logger: Logger) async throws -> DeerFlowRuntime {
        try await make(options: options, workflows: workflows, observability: .none(logger: logger))
    }

    /// Builds a process: opens and migrates the store, loads and validates workflows (YAML files
    /// plus `workflows`), registers metrics (built-in and `custom_metrics`), and creates services.
    ///
    /// - Parameter observability: the process's logging and tracing; the runtime runs their
    ///   services and counts what they drop.
    public static func make(options: RuntimeOptions, workflows swiftWorkflows: [Workflow] = [], observability: ProcessObservability) async throws -> DeerFlowRuntime {
        let logger = observability.logger
        var workflows = swiftWorkflows
        if let directory = options.workflowsDirectory {
            let checked = try WorkflowFileLoader.checkDirectory(directory)
            // Cycles and params of workflow tasks among the files, located; a child name none of
            // them defines may be a Swift workflow, which the engine's registry checks.
            let errors = checked.errors + WorkflowFileLoader.checkSubWorkflows(checked.workflows, complete: false)
            if !errors.isEmpty { throw FileErrors(errors: errors) }
            workflows += checked.workflows.map { Workflow(definition: $0.definition) }
        }
        // Checked before the store opens: a bad rules file stops the start at once.
        let rules = try loadRules(options)
        let store = try makeStore(url: options.databaseURL, logger: logger)
        try await store.prepare()
        do {
            let runtime = try assemble(options: options, workflows: workflows, store: store, rules: rules, observability: observability)
            try await saveLimits(of: runtime.engine, queues: options.queueConcurrency, in: store)
            return runtime
        } catch {
            try? await store.close()
            throw error
        }
    }

    /// Everything after the store is open: metrics, the engine and the services.
    private static func assemble(
        options: RuntimeOptions, workflows: [Workflow], store: any ServerStore, rules: (file: RuleFile, source: String)?,
        observability: ProcessObservability
    ) throws -> DeerFlowRuntime {
        let logger = observability.logger
        let backend = options.metrics.enabled ? PrometheusBackend(constantLabels: options.metrics.labels) : nil
        let registry = MetricsRegistry(backend: backend, seriesBudget: options.metrics.seriesBudget)
        let engineMetrics = try EngineMetrics(registry: registry, logger: logger)
        // The exposed names (a counter's with `_total`), which tasks may update.
        var customNames: Set<String> = []
        for custom in options.metrics.customMetrics {
            let exposed: (name: String, kind: MetricKind)
            do {
                switch custom.kind {
                case .counter:
                    let counter = try registry.counter(custom.name, help: custom.description, labels: custom.labels)
                    // On /metrics at 0 from the start, so rate() and increase() see the first update.
                    if custom.labels.isEmpty { try counter.inc(0) }
                    exposed = (counter.name, .counter)
                case .gauge:
                    exposed = (try registry.gauge(custom.name, help: custom.description, labels: custom.labels).name, .gauge)
                case .histogram:
                    let buckets = custom.buckets ?? MetricsRegistry.Histogram.defaultBuckets
                    exposed = (try registry.histogram(custom.name, help: custom.description, labels: custom.labels, buckets: buckets).name, .histogram)
                }
            } catch {
                throw DeerFlowError(.badRequest, "\(custom.location): custom_metrics '\(custom.name)': \(error.message)")
            }
            backend?.declareFamily(exposed.name, kind: exposed.kind, help: custom.description)
            customNames.insert(exposed.name)
        }
        observability.droppedLogLines.attach { handler, count in engineMetrics.recordDroppedLogLines(handler: handler, count: count) }
        observability.droppedSpans.attach { _, count in engineMetrics.recordDroppedSpans(count) }
        var engineConfiguration = options.engine
        if options.runWorkers, let name = options.taskUserName { engineConfiguration.taskUser = try ProcessHardening.taskUser(named: name) }
        if let problem = secretReferenceProblems(workflows.map(\.definition), configured: Set(options.secrets.keys)).first {
            throw DeerFlowError(.badRequest, problem)
        }
        if options.runWorkers {
            do {
                engineConfiguration.secrets = try SecretSource.readAll(options.secrets, environment: ProcessInfo.processInfo.environment)
            } catch {
                throw DeerFlowError(.badRequest, error.message)
            }
        }
        engineConfiguration.taskWritableMetrics.formUnion(customNames)
        if let lines = observability.taskOutputLines, engineConfiguration.taskOutputLogging == nil {
            engineConfiguration.taskOutputLogging = TaskOutputLogging(maxLinesPerAttempt: lines) { count in
                engineMetrics.recordDroppedLogLines(handler: "task_output", count: count)
            }
        }
        if let logging = observability.logging, engineConfiguration.redactTaskLog == nil {
            // Task logs stored for the API go through the same redaction as every log line.
            let redactor = logging.redactor
            engineConfiguration.redactTaskLog = { redactor.redact($0) }
        }
        let engine = try DeerFlowEngine(store: store, workflows: workflows, configuration: engineConfiguration, metrics: registry, logger: logger)
        try checkNotifyChannels(engine.workflows.all.map(\.definition), notifications: options.alerting.notifications)
        if options.runWorkers, let warning = subWorkflowSlotWarning(engine.workflows.all.map(\.definition), slots: options.worker.slots) {
            logger.warning("\(warning)")
        }
        engine.addObserver(engineMetrics)
        engine.addObserver(LoggingObserver(logger: logger, engine: engine))
        engine.registerBuiltinHealthChecks()
        engine.health.register(options.healthChecks)
        engineMetrics.declare(queues: Array(Set(engine.workflows.all.flatMap { $0.definition.tasks.map(\.queue) } + options.worker.queues)))
        engineMetrics.declare(
            workflows: engine.workflows.all.map(\.definition.name),
            taskTypes: engine.workflows.all.flatMap { $0.definition.tasks.map(\.type) })
        engineMetrics.declare(schedules: Dictionary(
            engine.workflows.all.compactMap { entry in entry.definition.schedule.map { (entry.definition.name, $0.paused) } },
            uniquingKeysWith: { first, _ in first }))
        return DeerFlowRuntime(
            engine: engine, store: store, options: options, backend: backend, metrics: engineMetrics, rules: rules, observability: observability)
    }

    /// Writes the concurrency limits this process was started with to the store, where every
    /// process sharing it applies them: each loaded workflow's `max_active_runs` (none removes a
    /// stored limit), and the queue limits of `deerflow.yaml` when it has a `queues:` section.
    static func saveLimits(of engine: DeerFlowEngine, queues: [String: Int]?, in store: any ServerStore) async throws {
        var runLimits: [String: Int?] = [:]
        for entry in engine.workflows.all { runLimits[entry.definition.name] = .some(entry.definition.maxActiveRuns) }
        try await store.saveRunLimits(runLimits, now: Date())
        if let queues { try await store.saveQueueLimits(queues) }
    }

    /// A warning when a chain of waiting sub-workflows needs more worker slots than this
    /// process's workers have: each waiting parent holds a slot, so with too few slots (and no
    /// other worker process) the chain waits forever; nil when the slots suffice.
    package static func subWorkflowSlotWarning(_ definitions: [WorkflowDefinition], slots: Int) -> String? {
        let longest = SubWorkflowGraph.longestWaitingChain(definitions)
        guard longest.depth > 0, longest.depth + 1 > slots else { return nil }
        return "the sub-workflow chain \(longest.chain.joined(separator: " → ")) holds \(longest.depth) worker slot\(longest.depth == 1 ? "" : "s") while its last run needs another, but this worker has \(slots): unless other worker processes serve the queues, a run of \(longest.chain[0]) waits forever; give --slots \(longest.depth + 1) or more (more for concurrent runs)"
    }

    /// Every channel a workflow's `notify:` names exists in notifications.yaml.
    static func checkNotifyChannels(_ definitions: [WorkflowDefinition], notifications: NotificationsConfigFile?) throws {
        if let problem = notifyChannelProblems(definitions, configured: notifications.map { Set($0.channels.map(\.name)) }).first {
            throw DeerFlowError(.badRequest, problem)
        }
    }

    /// The secrets workflows' templates read (`{{ secrets.NAME }}`) that deerflow.yaml's
    /// `secrets:` does not declare, one message each.
    package static func secretReferenceProblems(_ definitions: [WorkflowDefinition], configured: Set<String>) -> [String] {
        definitions.flatMap { definition in
            definition.secretReferences.subtracting(configured).sorted().map { name in
                let known = configured.isEmpty ? "deerflow.yaml declares no secrets" : "deerflow.yaml declares \(configured.sorted().joined(separator: ", "))"
                return "workflow '\(definition.name)' reads {{ secrets.\(name) }}, but \(known): add it under secrets: (e.g. \(name): {env: \(name)})"
            }
        }
    }

    /// The channels workflows' `notify:` name that notifications.yaml does not configure
    /// (`configured` nil: there is no notifications.yaml), one message each.
    package static func notifyChannelProblems(_ definitions: [WorkflowDefinition], configured: Set<String>?) -> [String] {
        var problems: [String] = []
        for definition in definitions {
            guard let notify = definition.notify else { continue }
            for channel in notify.channels.sorted() where configured?.contains(channel) != true {
                let known = configured.map { "its channels are \($0.sorted().joined(separator: ", "))" } ?? "there is no notifications.yaml in --config"
                problems.append("workflow '\(definition.name)': notify names channel '\(channel)', but \(known)")
            }
        }
        return problems
    }

    /// The alert rules this process evaluates, or nil when in-process alerting is off. A rule
    /// outside the supported PromQL subset stops the start with a message naming it.
    static func loadRules(_ options: RuntimeOptions) throws -> (file: RuleFile, source: String)? {
        guard options.alerting.enabled, options.metrics.enabled else { return nil }
        do throws(RuleFileError) {
            if let path = options.alerting.rulesFile {
                return (try RuleFile.load(path: path), path)
            }
            let contract = MonitoringContract(
                constantLabels: options.metrics.labels, metricsPath: options.metrics.path, scrapeInterval: options.metrics.scrapeInterval)
            return (try RuleFile.parse(yaml: contract.alertsYAML(), file: "built-in alerts.yaml"), "built-in (deerflow export alerts)")
        } catch {
            throw DeerFlowError(.badRequest, "alert rules: \(error.description)")
        }
    }

    private init(
        engine: DeerFlowEngine, store: any ServerStore, options: RuntimeOptions, backend: PrometheusBackend?, metrics: EngineMetrics,
        rules: (file: RuleFile, source: String)?, observability: ProcessObservability
    ) {
        self.engine = engine
        self.store = store
        self.options = options
        self.observability = observability
        self.backend = backend
        let logger = observability.logger
        self.logger = logger
        var services: [any Service] = []
        // Logging starts first and stops last, so shutdown messages are written.
        if let logging = observability.logging { services.append(LoggingService(backend: logging)) }
        if let shipping = observability.elasticsearch { services.append(shipping) }
        // The store (its connection pool and listener) next: every service after it uses it, and
        // it stops after all of them.
        services.append(store)
        // The span exporter stops after the workers and the API, so their last spans are sent.
        if let tracing = observability.tracing { services.append(tracing) }
        let ports = self.ports
        // Cluster-wide gauges come from the scheduler leader only, so processes sharing the
        // store do not export them again and sum() stays right.
        let purger = HistoryPurger(store: store, metrics: metrics, logger: logger)
        let collector = MetricsCollector(engine: engine, metrics: metrics, exportsClusterGauges: { engine.isSchedulerLeader })
        if let backend {
            services.append(MetricsServer.makeApplication(
                host: options.api.host, port: options.metricsPort ?? options.metrics.port, path: options.metrics.path,
                collector: collector, render: { backend.render() }, connections: options.api.connections, logger: logger,
                onListening: { ports.set(metrics: $0) }))
        }
        // Notifications are delivered by processes that run the scheduler; alerts are evaluated
        // by the scheduler leader among them.
        var dispatcher: NotificationDispatcher?
        if options.runScheduler, let notifications = options.alerting.notifications {
            var settings = NotificationDispatcher.Settings()
            settings.retryBase = options.alerting.retryBase
            dispatcher = NotificationDispatcher(configuration: notifications, store: store, metrics: metrics, logger: logger, settings: settings)
        }
        var alerting: AlertingService?
        if options.runScheduler, let backend, let rules {
            alerting = AlertingService(
                rules: rules.file, rulesSource: rules.source, interval: options.alerting.interval ?? options.metrics.scrapeInterval,
                sample: {
                    await collector.collect()
                    return backend.render()
                },
                evaluates: { engine.isSchedulerLeader }, store: store, metrics: metrics, dispatcher: dispatcher, logger: logger)
        }
        if options.runAPI {
            var api = APIConfiguration()
            api.host = options.api.host
            api.port = options.api.port
            api.tokens = options.api.tokens
            api.protectHealth = options.api.protectHealth
            api.connections = options.api.connections
            if let warning = FileDescriptorLimit.warning(for: options.api.connections) { logger.warning("\(warning)") }
            api.environment = options.api.environment
            api.alerts = ProcessAlerts(alerting: alerting, dispatcher: dispatcher)
            api.purger = purger
            var live: LiveUpdates?
            if options.api.ui {
                // Pages follow this process's events; on PostgreSQL also a poll of the store, for
                // what other processes of the cluster change.
                let updates = LiveUpdates(store: store, pollsStore: store is PostgresWorkflowStore)
                engine.addObserver(updates)
                live = updates
                var ui = WebUI.Configuration(tokens: options.api.tokens)
                ui.secureCookies = options.api.publicURL?.lowercased().hasPrefix("https://") == true
                if let directory = options.configDirectory {
                    // Read (and checked) at start by the process's tracing setup already.
                    ui.traceURL = (try? ProcessObservability.tracingFileConfiguration(configDirectory: directory, environment: ProcessInfo.processInfo.environment))??.uiURL
                }
                let contract = MonitoringContract(
                    constantLabels: options.metrics.labels, metricsPath: options.metrics.path, scrapeInterval: options.metrics.scrapeInterval)
                ui.panels = contract.panels.filter { $0.type != "heatmap" }.map {
                    UIPanel(title: $0.title, expressions: $0.targets.map(\.expr), unit: $0.unit ?? "short")
                }
                ui.grafanaOnlyPanels = contract.panels.filter { $0.type == "heatmap" }.map(\.title)
                api.browser = WebUI(engine: engine, configuration: ui, monitoring: alerting, outbox: store, live: updates)
            }
            services.append(APIServer.makeApplication(engine: engine, configuration: api, metrics: metrics, onListening: { ports.set(api: $0) }))
            // After the API in the list, so it stops first and ends the pages' event streams.
            if let live { services.append(live) }
        }
        if options.runScheduler {
            let scheduler = engine.makeScheduler(options.scheduler)
            scheduler.onScheduleEvent { metrics.record($0) }
            services.append(scheduler)
            let retention = RetentionService(
                purger: purger, settings: options.retention, leads: { engine.isSchedulerLeader }, logger: logger)
            if retention.isNeeded { services.append(retention) }
        }
        if let dispatcher { services.append(dispatcher) }
        if let alerting { services.append(alerting) }
        // Queues the notifications of workflows' `notify:`; after the workers in the list, so it
        // stops after them and queues what they reported last.
        let notifier = RunNotifier(engine: engine, store: store, runURL: { id in
            if let base = options.api.publicURL { return "\(base)/api/v1/runs/\(id.rawValue)" }
            guard options.runAPI else { return "run \(id.rawValue) (set api.public_url in deerflow.yaml for a link)" }
            return "http://\(options.api.host):\(await ports.api())/api/v1/runs/\(id.rawValue)"
        }, logger: logger)
        if notifier.isNeeded {
            engine.addObserver(notifier)
            services.append(notifier)
        }
        if options.runWorkers {
            let worker = engine.makeWorker(options.worker)
            metrics.declare(worker: worker.id)
            services.append(worker)
        }
        self.services = services
    }

    /// The TCP listeners this process opens.
    var listeners: [Listener] {
        var listeners: [Listener] = []
        if options.runAPI { listeners.append(Listener(kind: .api, host: options.api.host, port: options.api.port)) }
        if options.metrics.enabled {
            listeners.append(Listener(kind: .metrics, host: options.api.host, port: options.metricsPort ?? options.metrics.port))
        }
        return listeners
    }

    /// Runs every service until SIGTERM/SIGINT (graceful: workers drain) or cancellation; the
    /// store, a service too, closes last.
    ///
    /// - Throws: ``ListenerUnavailable`` before anything starts when a port cannot be listened on.
    public func run() async throws {
        do {
            try await ListenerCheck.ensureAvailable(listeners)
        } catch {
            // Nothing started, the logging service neither: write out what was logged so far.
            observability.flush()
            try? await store.close()
            throw error
        }
        let group = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger))
        let stopEarly = self.group.withLock { stored -> Bool in
            stored = group
            return stopRequested.withLock { $0 }
        }
        if stopEarly { await group.triggerGracefulShutdown() }
        try await group.run()
    }

    /// Routes swift-metrics (`MetricsSystem`) to this process's `/metrics`: metrics that libraries
    /// (and task code) make with swift-metrics' `Counter`, `Gauge`, `Timer` appear beside
    /// DeerFlow's own. swift-metrics is bootstrapped once per process, so only the first call
    /// in a process has an effect; returns whether this one did. `deerflow server`, `worker` and
    /// `demo` call it; a program embedding DeerFlow decides itself.
    @discardableResult
    public func bootstrapSwiftMetrics() -> Bool {
        guard let backend else { return false }
        return SwiftMetricsBootstrap.once.withLock { done in
            guard !done else { return false }
            done = true
            MetricsSystem.bootstrap(backend.metricsFactory)
            return true
        }
    }

    /// Starts a graceful shutdown, as SIGTERM would: workers drain, then services stop.
    public func shutdown() async {
        let running = group.withLock { stored -> ServiceGroup? in
            stopRequested.withLock { $0 = true }
            return stored
        }
        await running?.triggerGracefulShutdown()
    }

    /// The store for a database URL: `sqlite://PATH` (`sqlite:///abs/path` or `sqlite://./rel/path`)
    /// or `postgres://user:password@host:port/database?sslmode=...` (`postgresql://` too).
    /// Messages never show a URL's password.
    package static func makeStore(url: String, logger: Logger) throws -> any ServerStore {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else {
                throw DeerFlowError(.badRequest, "database URL '\(url)' has no path; use sqlite://./.deerflow/deerflow.sqlite or sqlite:///absolute/path.sqlite")
            }
            return SQLiteWorkflowStore(path: path, logger: logger)
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try PostgresWorkflowStore(url: url, logger: logger)
        }
        throw DeerFlowError(.badRequest, "unsupported database URL '\(PostgresWorkflowStore.Configuration.redact(url))'; use sqlite://PATH or postgres://user:password@host:5432/database")
    }
}

/// The ports a runtime listens on, known once its servers started (port 0 picks a free one).
public final class ListeningPorts: Sendable {
    private let state = Mutex<(api: Int?, metrics: Int?, waiters: [CheckedContinuation<Void, Never>])>((nil, nil, []))

    func set(api: Int) { update { $0.api = api } }
    func set(metrics: Int) { update { $0.metrics = metrics } }

    private func update(_ change: (inout (api: Int?, metrics: Int?, waiters: [CheckedContinuation<Void, Never>])) -> Void) {
        let waiters = state.withLock { state in
            change(&state)
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The API port, waiting until the API listens.
    public func api() async -> Int {
        await wait { $0.api }
    }

    /// The metrics port, waiting until the metrics endpoint listens.
    public func metrics() async -> Int {
        await wait { $0.metrics }
    }

    private func wait(for port: @Sendable @escaping ((api: Int?, metrics: Int?, waiters: [CheckedContinuation<Void, Never>])) -> Int?) async -> Int {
        while true {
            if let value = state.withLock({ port($0) }) { return value }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if port(state) != nil { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}

/// Flushes the logging backend periodically; at shutdown, flushes and closes its sinks.
struct LoggingService: Service {
    let backend: LoggingBackend

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await backend.run()
        }
    }
}

/// swift-metrics can be bootstrapped once per process.
private enum SwiftMetricsBootstrap {
    static let once = Mutex(false)
}
