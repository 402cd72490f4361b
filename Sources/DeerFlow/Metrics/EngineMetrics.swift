import DeerFlowCore
public import Foundation
public import Logging
import Synchronization

/// Turns engine events into the built-in metrics, and sets the gauges computed from the store and
/// from this process's workers. Registered as an ``EngineObserver`` by the executable.
public final class EngineMetrics: EngineObserver, Sendable {
    let workflowsTotal: MetricsRegistry.Counter
    let workflowDuration: MetricsRegistry.Histogram
    let workflowsActive: MetricsRegistry.Gauge
    let tasksTotal: MetricsRegistry.Counter
    let taskDuration: MetricsRegistry.Histogram
    let taskQueueTime: MetricsRegistry.Histogram
    let taskRetries: MetricsRegistry.Counter
    let tasksQueued: MetricsRegistry.Gauge
    let queueDepth: MetricsRegistry.Gauge
    let queueOldestAge: MetricsRegistry.Gauge
    let queueConsumers: MetricsRegistry.Gauge
    let workersTotal: MetricsRegistry.Gauge
    let workersActive: MetricsRegistry.Gauge
    let workerUtilization: MetricsRegistry.Gauge
    let workerTasksProcessed: MetricsRegistry.Counter
    let schedulerLag: MetricsRegistry.Gauge
    let scheduleFireDelay: MetricsRegistry.Histogram
    let schedulesMissed: MetricsRegistry.Counter
    let scheduleNextFire: MetricsRegistry.Gauge
    let schedulePaused: MetricsRegistry.Gauge
    /// `deerflow_api_requests_total`, used by the HTTP layer.
    public let apiRequests: MetricsRegistry.Counter
    /// `deerflow_api_request_duration_seconds{endpoint}`, used by the HTTP layer.
    public let apiRequestDuration: MetricsRegistry.Histogram
    /// `deerflow_webhook_requests_total`, used by the HTTP layer.
    public let webhookRequests: MetricsRegistry.Counter
    /// `deerflow_api_access_total{role, outcome}`.
    public let accessDecisions: MetricsRegistry.Counter
    let healthCheckStatus: MetricsRegistry.Gauge
    let seriesDropped: MetricsRegistry.Counter
    let schedulerLeader: MetricsRegistry.Gauge
    let logLinesDropped: MetricsRegistry.Counter
    let spansDropped: MetricsRegistry.Counter
    let alertsFiring: MetricsRegistry.Gauge
    let notifications: MetricsRegistry.Counter
    let runsPurged: MetricsRegistry.Counter
    let taskLogsPurged: MetricsRegistry.Counter
    let runRetries: MetricsRegistry.Counter
    let runTimeouts: MetricsRegistry.Counter
    let runsWaitingForLimit: MetricsRegistry.Gauge
    let queueConcurrencyLimit: MetricsRegistry.Gauge
    let queueRunning: MetricsRegistry.Gauge
    /// Workflows and queues with limits seen so far: a limit removed shows as 0, not its last value.
    private let knownLimits = Mutex<(workflows: Set<String>, queues: Set<String>)>(([], []))
    private let firingSeries = Mutex<Set<[String]>>([])

    private let localWorkers = Mutex<Set<String>>([])
    private let knownQueues = Mutex<Set<String>>([])

    private let registry: MetricsRegistry
    /// Local workers that stopped, with when they were first seen stopped.
    private let retiredWorkers = Mutex<[String: Date]>([:])

    /// How long the series of a stopped worker of this process stay before they are removed.
    public static let retiredWorkerSeriesLifetime: TimeInterval = 600

    /// Registers every built-in metric of ``BuiltinMetric`` in `registry`.
    ///
    /// - Parameter logger: reports, once per metric, that its series budget was exceeded.
    public init(registry: MetricsRegistry, logger: Logger = Logger(label: "deerflow.metrics")) throws {
        self.registry = registry
        func counter(_ metric: BuiltinMetric) throws -> MetricsRegistry.Counter {
            let descriptor = metric.descriptor
            return try registry.counter(descriptor.name, help: descriptor.help, labels: descriptor.labels)
        }
        func gauge(_ metric: BuiltinMetric) throws -> MetricsRegistry.Gauge {
            let descriptor = metric.descriptor
            return try registry.gauge(descriptor.name, help: descriptor.help, labels: descriptor.labels)
        }
        func histogram(_ metric: BuiltinMetric) throws -> MetricsRegistry.Histogram {
            let descriptor = metric.descriptor
            return try registry.histogram(descriptor.name, help: descriptor.help, labels: descriptor.labels, buckets: descriptor.buckets)
        }
        workflowsTotal = try counter(.workflowsTotal)
        workflowDuration = try histogram(.workflowDuration)
        workflowsActive = try gauge(.workflowsActive)
        tasksTotal = try counter(.tasksTotal)
        taskDuration = try histogram(.taskDuration)
        taskQueueTime = try histogram(.taskQueueTime)
        taskRetries = try counter(.taskRetries)
        tasksQueued = try gauge(.tasksQueued)
        queueDepth = try gauge(.queueDepth)
        queueOldestAge = try gauge(.queueOldestAge)
        queueConsumers = try gauge(.queueConsumers)
        workersTotal = try gauge(.workersTotal)
        workersActive = try gauge(.workersActive)
        workerUtilization = try gauge(.workerUtilization)
        workerTasksProcessed = try counter(.workerTasksProcessed)
        schedulerLag = try gauge(.schedulerLag)
        scheduleFireDelay = try histogram(.scheduleFireDelay)
        schedulesMissed = try counter(.schedulesMissed)
        scheduleNextFire = try gauge(.scheduleNextFire)
        schedulePaused = try gauge(.schedulePaused)
        apiRequests = try counter(.apiRequests)
        apiRequestDuration = try histogram(.apiRequestDuration)
        webhookRequests = try counter(.webhookRequests)
        accessDecisions = try counter(.apiAccess)
        healthCheckStatus = try gauge(.healthCheckStatus)
        seriesDropped = try counter(.seriesDropped)
        schedulerLeader = try gauge(.schedulerLeader)
        logLinesDropped = try counter(.logLinesDropped)
        spansDropped = try counter(.spansDropped)
        alertsFiring = try gauge(.alertsFiring)
        notifications = try counter(.notificationsTotal)
        runsPurged = try counter(.runsPurged)
        taskLogsPurged = try counter(.taskLogsPurged)
        // At 0 from the start, so `increase()` over them works before the first purge.
        try? runsPurged.inc(0)
        try? taskLogsPurged.inc(0)
        // Used by task executors by name (`TaskMetricUpdates`).
        _ = try counter(.taskMetricUpdatesRejected)
        runRetries = try counter(.runRetries)
        runTimeouts = try counter(.runTimeouts)
        runsWaitingForLimit = try gauge(.runsWaitingForLimit)
        queueConcurrencyLimit = try gauge(.queueConcurrencyLimit)
        queueRunning = try gauge(.queueRunning)
        let dropped = seriesDropped
        let budget = registry.seriesBudget
        registry.onSeriesBudgetExceeded { metric, firstTime in
            try? dropped.labels(metric).inc()
            if firstTime {
                logger.warning("metric exceeded its series budget; further label values are folded into 'other'", metadata: [
                    "metric": "\(metric)", "budget": "\(budget)",
                ])
            }
        }
    }

    public func engine(didEmit events: [EngineEvent]) {
        // A batch holds up to hundreds of events that mostly share their labels: each metric keeps
        // the series it used last, so most events skip the registry's lookup.
        var workflows = LastSeries { try self.workflowsTotal.labels(values: $0) }
        var workflowTimes = LastSeries { try self.workflowDuration.labels(values: $0) }
        var queueTimes = LastSeries { try self.taskQueueTime.labels(values: $0) }
        var tasks = LastSeries { try self.tasksTotal.labels(values: $0) }
        var taskTimes = LastSeries { try self.taskDuration.labels(values: $0) }
        var processed = LastSeries { try self.workerTasksProcessed.labels(values: $0) }
        var retries = LastSeries { try self.taskRetries.labels(values: $0) }
        var localWorker: (id: String, isLocal: Bool)?
        for event in events {
            switch event {
            case .runFinished(_, let workflow, let status, let createdAt, let startedAt, let finishedAt):
                workflows[workflow, status.rawValue]?.inc()
                // Run start (first attempt claimed) to finish; a run cancelled before it started counts from creation.
                workflowTimes[workflow]?.observe(max(0, finishedAt.timeIntervalSince(startedAt ?? createdAt)))
            case .attemptStarted(let info, let queuedAt, let startedAt):
                queueTimes[info.type, info.queue]?.observe(max(0, startedAt.timeIntervalSince(queuedAt)))
            case .attemptFinished(let info, _, let metricStatus, let startedAt, let finishedAt, _):
                tasks[info.type, metricStatus.rawValue]?.inc()
                if let startedAt {
                    taskTimes[info.type]?.observe(max(0, finishedAt.timeIntervalSince(startedAt)))
                }
                if let worker = info.worker {
                    if localWorker?.id != worker {
                        localWorker = (worker, localWorkers.withLock { $0.contains(worker) })
                    }
                    if localWorker?.isLocal == true { processed[worker]?.inc() }
                }
            case .retryScheduled(let info, _):
                retries[info.type]?.inc()
            case .runRetried(_, let workflow, _, _):
                try? runRetries.labels(workflow).inc()
            case .runTimedOut(_, let workflow, _, _):
                try? runTimeouts.labels(workflow).inc()
            case .runCreated, .runStarted, .tasksSkipped:
                break
            }
        }
    }

    /// Sets the cluster-wide gauges from store statistics. Queues seen before and now empty are set
    /// to 0 rather than left at their last value.
    public func update(from statistics: StoreStatistics, now: Date) {
        try? workflowsActive.set(Double(statistics.activeRuns))
        try? tasksQueued.set(Double(statistics.queuedTotal))
        let queues = knownQueues.withLock { known in
            known.formUnion(statistics.queues.keys)
            return known
        }
        for queue in queues {
            let figures = statistics.queues[queue]
            try? queueDepth.labels(queue).set(Double(figures?.depth ?? 0))
            let age = figures?.oldestReadyAt.map { max(0, now.timeIntervalSince($0)) } ?? 0
            try? queueOldestAge.labels(queue).set(age)
        }
        try? workersTotal.set(Double(statistics.workerSlots))
        try? workersActive.set(Double(statistics.runningAttempts))
        try? schedulerLag.set(statistics.schedulerLag(now: now))
    }

    /// Sets the concurrency-limit gauges from the store's limits and their use: runs waiting per
    /// limited workflow, limit and running attempts per limited queue.
    public func update(limits usage: LimitUsage) {
        let (workflows, queues) = knownLimits.withLock { known in
            known.workflows.formUnion(usage.runLimits.keys)
            known.workflows.formUnion(usage.waitingRuns.keys)
            known.queues.formUnion(usage.queues.keys)
            return known
        }
        for workflow in workflows { try? runsWaitingForLimit.labels(workflow).set(Double(usage.waitingRuns[workflow] ?? 0)) }
        for queue in queues {
            try? queueConcurrencyLimit.labels(queue).set(Double(usage.queues[queue]?.limit ?? 0))
            try? queueRunning.labels(queue).set(Double(usage.queues[queue]?.running ?? 0))
        }
    }

    /// Creates the outcome counters of every loaded workflow and task type at 0 — runs by
    /// terminal status, attempts by status, retries — so the first failure after a start is an
    /// increase that `increase()`/`rate()` see (a series born at 1 has no increase), in
    /// Prometheus and in the in-process evaluator alike. Within the series budget: workflows or
    /// types beyond what half of the budget holds are created at their first event, as before.
    public func declare(workflows: [String], taskTypes: [String]) {
        let statuses = RunStatus.allCases.filter(\.isFinished)
        for workflow in workflows.sorted().prefix(registry.seriesBudget / 2 / statuses.count) {
            for status in statuses { try? workflowsTotal.labels(workflow, status.rawValue).inc(0) }
            try? runRetries.labels(workflow).inc(0)
            try? runTimeouts.labels(workflow).inc(0)
        }
        let outcomes = AttemptMetricStatus.allCases
        for type in Set(taskTypes).sorted().prefix(registry.seriesBudget / 2 / outcomes.count) {
            for status in outcomes { try? tasksTotal.labels(type, status.rawValue).inc(0) }
            try? taskRetries.labels(type).inc(0)
        }
    }

    /// Creates `deerflow_schedule_paused` of every scheduled workflow, with its initial state (the
    /// definition's `paused:`); the scheduler sets the stored state when it loads the schedules.
    public func declare(schedules: [String: Bool]) {
        for (workflow, paused) in schedules.sorted(by: { $0.key < $1.key }).prefix(registry.seriesBudget / 2) {
            try? schedulePaused.labels(workflow).set(paused ? 1 : 0)
        }
    }

    /// Sets `deerflow_queue_consumers` from the workers of the store: for every queue known (declared,
    /// seen with ready tasks, or served), the active workers serving it; 0 for a queue none serves.
    public func update(consumers workers: [WorkerRecord]) {
        var counts: [String: Int] = [:]
        for worker in workers where worker.state == .active {
            for queue in Set(worker.queues) { counts[queue, default: 0] += 1 }
        }
        let queues = knownQueues.withLock { known in
            known.formUnion(counts.keys)
            return known
        }
        for queue in queues { try? queueConsumers.labels(queue).set(Double(counts[queue] ?? 0)) }
    }

    /// Declares a queue so its gauges exist (at 0) before any task was queued on it.
    public func declare(queues: [String]) {
        knownQueues.withLock { $0.formUnion(queues) }
    }

    /// Declares a worker of this process: attempts it finishes count in `deerflow_worker_tasks_processed_total`.
    public func declare(worker id: String) {
        localWorkers.withLock { _ = $0.insert(id) }
        try? workerUtilization.labels(id).set(0)
    }

    /// Sets `deerflow_worker_utilization` for this process's workers. Series of a worker that
    /// stopped are removed ten minutes after it stopped.
    public func update(workers: [(id: String, slots: Int, busy: Int)], now: Date = Date()) {
        let running = Set(workers.map(\.id))
        let stopped = localWorkers.withLock { known -> Set<String> in
            known.formUnion(running)
            return known.subtracting(running)
        }
        for worker in workers {
            try? workerUtilization.labels(worker.id).set(worker.slots > 0 ? Double(worker.busy) / Double(worker.slots) : 0)
        }
        let expired = retiredWorkers.withLock { retired -> [String] in
            for id in running { retired[id] = nil }
            for id in stopped where retired[id] == nil { retired[id] = now }
            let expired = retired.filter { now.timeIntervalSince($0.value) >= Self.retiredWorkerSeriesLifetime }.map(\.key)
            for id in expired { retired[id] = nil }
            return expired
        }
        for id in expired {
            localWorkers.withLock { _ = $0.remove(id) }
            registry.removeSeries(of: BuiltinMetric.workerUtilization.rawValue, where: "worker", is: id)
            registry.removeSeries(of: BuiltinMetric.workerTasksProcessed.rawValue, where: "worker", is: id)
        }
    }

    /// Counts log lines a handler dropped.
    public func recordDroppedLogLines(handler: String, count: Int) {
        try? logLinesDropped.labels(handler).inc(Double(count))
    }

    /// Counts spans the exporter dropped.
    public func recordDroppedSpans(_ count: Int) {
        try? spansDropped.inc(Double(count))
    }

    /// Counts what a purge deleted.
    public func recordPurged(_ purged: PurgedHistory) {
        if purged.runs > 0 { try? runsPurged.inc(Double(purged.runs)) }
        if purged.taskLogs > 0 { try? taskLogsPurged.inc(Double(purged.taskLogs)) }
    }

    /// Sets `deerflow_alerts_firing` to the number of firing alerts per (alertname, severity);
    /// pairs no longer firing go to 0.
    public func update(firingAlerts: [(name: String, severity: String)]) {
        var counts: [[String]: Int] = [:]
        for alert in firingAlerts { counts[[alert.name, alert.severity], default: 0] += 1 }
        let previous = firingSeries.withLock { seen -> Set<[String]> in
            defer { seen.formUnion(counts.keys) }
            return seen
        }
        for key in previous.union(counts.keys) {
            try? alertsFiring.labels(key[0], key[1]).set(Double(counts[key] ?? 0))
        }
    }

    /// Counts one notification delivery attempt: `status` is sent, retried or failed.
    public func recordNotification(channel: String, status: String) {
        try? notifications.labels(channel, status).inc()
    }

    /// Sets `deerflow_scheduler_leader`.
    public func update(isLeader: Bool) {
        try? schedulerLeader.set(isLeader ? 1 : 0)
    }

    /// Records a schedule decision.
    public func record(_ event: ScheduleEvent) {
        switch event {
        case .fired(let workflow, _, let delay):
            try? scheduleFireDelay.labels(workflow).observe(delay)
        case .missed(let workflow, _, let reason):
            try? schedulesMissed.labels(workflow, reason).inc()
        case .next(let workflow, let at):
            try? scheduleNextFire.labels(workflow).set(at?.timeIntervalSince1970 ?? 0)
        case .paused(let workflow, let paused):
            try? schedulePaused.labels(workflow).set(paused ? 1 : 0)
        }
    }

    /// Records the outcome of health checks.
    public func record(_ report: HealthReport) {
        for (check, result) in report.checks {
            try? healthCheckStatus.labels(check).set(result.status.gaugeValue)
        }
    }
}

/// The series of one metric for the label values used last, while a batch of events is recorded.
private struct LastSeries<Child> {
    private let lookup: ([String]) throws -> Child
    private var labels: [String] = []
    private var child: Child?

    init(_ lookup: @escaping ([String]) throws -> Child) {
        self.lookup = lookup
    }

    /// The series for these label values (nil when they do not fit the metric, which the
    /// built-in metrics' label lists rule out).
    subscript(_ values: String...) -> Child? {
        mutating get {
            if let child, values == labels { return child }
            child = try? lookup(values)
            labels = values
            return child
        }
    }
}
