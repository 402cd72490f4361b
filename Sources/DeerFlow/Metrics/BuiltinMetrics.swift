/// The catalogue of DeerFlow's built-in metrics: the single source of truth for what `/metrics`
/// registers, what the shipped dashboards and alert rules may reference, and what
/// `docs/monitoring.md` describes.
public enum BuiltinMetric: String, CaseIterable, Sendable {
    case workflowsTotal = "deerflow_workflows_total"
    case workflowDuration = "deerflow_workflow_duration_seconds"
    case workflowsActive = "deerflow_workflows_active"
    case tasksTotal = "deerflow_tasks_total"
    case taskDuration = "deerflow_task_duration_seconds"
    case taskQueueTime = "deerflow_task_queue_time_seconds"
    case taskRetries = "deerflow_task_retries_total"
    case tasksQueued = "deerflow_tasks_queued"
    case queueDepth = "deerflow_queue_depth"
    case queueOldestAge = "deerflow_queue_oldest_age_seconds"
    case queueConsumers = "deerflow_queue_consumers"
    case workersTotal = "deerflow_workers_total"
    case workersActive = "deerflow_workers_active"
    case workerUtilization = "deerflow_worker_utilization"
    case workerTasksProcessed = "deerflow_worker_tasks_processed_total"
    case schedulerLag = "deerflow_scheduler_lag_seconds"
    case scheduleFireDelay = "deerflow_schedule_fire_delay_seconds"
    case schedulesMissed = "deerflow_schedules_missed_total"
    case scheduleNextFire = "deerflow_schedule_next_fire_timestamp_seconds"
    case schedulePaused = "deerflow_schedule_paused"
    case apiRequests = "deerflow_api_requests_total"
    case apiRequestDuration = "deerflow_api_request_duration_seconds"
    case healthCheckStatus = "deerflow_health_check_status"
    case seriesDropped = "deerflow_metric_series_dropped_total"
    case schedulerLeader = "deerflow_scheduler_leader"
    case logLinesDropped = "deerflow_log_lines_dropped_total"
    case spansDropped = "deerflow_spans_dropped_total"
    case alertsFiring = "deerflow_alerts_firing"
    case notificationsTotal = "deerflow_notifications_total"
    case runsPurged = "deerflow_runs_purged_total"
    case taskLogsPurged = "deerflow_task_logs_purged_total"
    case taskMetricUpdatesRejected = "deerflow_task_metric_updates_rejected_total"
    case runRetries = "deerflow_run_retries_total"
    case runTimeouts = "deerflow_run_timeouts_total"
    case runsWaitingForLimit = "deerflow_runs_waiting_for_limit"
    case queueConcurrencyLimit = "deerflow_queue_concurrency_limit"
    case queueRunning = "deerflow_queue_running"
    case webhookRequests = "deerflow_webhook_requests_total"
    case apiAccess = "deerflow_api_access_total"

    /// Name, kind, help, labels and buckets.
    public var descriptor: MetricDescriptor {
        switch self {
        case .workflowsTotal:
            return .init(name: rawValue, kind: .counter, help: "Workflow runs finished, by workflow and final status (success, failed, cancelled).", labels: ["workflow", "status"], buckets: [])
        case .workflowDuration:
            return .init(name: rawValue, kind: .histogram, help: "Duration of finished workflow runs from start (first task picked up) to finish, in seconds.", labels: ["workflow"], buckets: Self.runBuckets)
        case .workflowsActive:
            return .init(name: rawValue, kind: .gauge, help: "Workflow runs pending or running (cluster-wide).", labels: [], buckets: [])
        case .tasksTotal:
            return .init(name: rawValue, kind: .counter, help: "Task attempts finished, by task type and status (success, failed, retried, timeout, cancelled).", labels: ["type", "status"], buckets: [])
        case .taskDuration:
            return .init(name: rawValue, kind: .histogram, help: "Execution time of one task attempt, in seconds.", labels: ["type"], buckets: Self.taskBuckets)
        case .taskQueueTime:
            return .init(name: rawValue, kind: .histogram, help: "Time from a task attempt becoming ready to a worker picking it up, in seconds.", labels: ["type", "queue"], buckets: Self.queueBuckets)
        case .taskRetries:
            return .init(name: rawValue, kind: .counter, help: "Retries scheduled after failed, timed-out or interrupted attempts, by task type.", labels: ["type"], buckets: [])
        case .tasksQueued:
            return .init(name: rawValue, kind: .gauge, help: "Task attempts ready and waiting for a worker (cluster-wide).", labels: [], buckets: [])
        case .queueDepth:
            return .init(name: rawValue, kind: .gauge, help: "Task attempts ready and waiting for a worker, per queue (cluster-wide).", labels: ["queue"], buckets: [])
        case .queueOldestAge:
            return .init(name: rawValue, kind: .gauge, help: "Age of the oldest ready task attempt per queue, in seconds (cluster-wide); 0 when the queue is empty.", labels: ["queue"], buckets: [])
        case .queueConsumers:
            return .init(name: rawValue, kind: .gauge, help: "Live workers serving each queue (cluster-wide); 0 for a queue that tasks use but no live worker serves: its tasks wait.", labels: ["queue"], buckets: [])
        case .workersTotal:
            return .init(name: rawValue, kind: .gauge, help: "Execution slots of live workers (cluster-wide).", labels: [], buckets: [])
        case .workersActive:
            return .init(name: rawValue, kind: .gauge, help: "Execution slots running a task attempt now (cluster-wide).", labels: [], buckets: [])
        case .workerUtilization:
            return .init(name: rawValue, kind: .gauge, help: "Busy slots divided by slots, per worker of this process (0 to 1).", labels: ["worker"], buckets: [])
        case .workerTasksProcessed:
            return .init(name: rawValue, kind: .counter, help: "Task attempts finished by each worker of this process.", labels: ["worker"], buckets: [])
        case .schedulerLag:
            return .init(name: rawValue, kind: .gauge, help: "Seconds since the due time of the oldest due but undispatched item (cron fire, expired lease); 0 when none.", labels: [], buckets: [])
        case .scheduleFireDelay:
            return .init(name: rawValue, kind: .histogram, help: "Delay from a schedule's due time to the creation of its run, in seconds.", labels: ["workflow"], buckets: Self.queueBuckets)
        case .schedulesMissed:
            return .init(name: rawValue, kind: .counter, help: "Schedule due times that did not get a run, by workflow and reason (catchup_latest, catchup_limit, already_fired, paused).", labels: ["workflow", "reason"], buckets: [])
        case .scheduleNextFire:
            return .init(name: rawValue, kind: .gauge, help: "Unix time of each schedule's next due time.", labels: ["workflow"], buckets: [])
        case .schedulePaused:
            return .init(name: rawValue, kind: .gauge, help: "1 when a workflow's schedule is paused (it does not fire), else 0; one series per scheduled workflow.", labels: ["workflow"], buckets: [])
        case .apiRequests:
            return .init(name: rawValue, kind: .counter, help: "HTTP API requests, by route template and status code.", labels: ["endpoint", "status"], buckets: [])
        case .apiRequestDuration:
            return .init(
                name: rawValue, kind: .histogram,
                help: "Time from a request's head to its response, in the server, by route template (the client's round trip adds the network and its own work).",
                labels: ["endpoint"], buckets: Self.requestBuckets)
        case .healthCheckStatus:
            return .init(name: rawValue, kind: .gauge, help: "Result of each health check: 1 healthy, 0.5 degraded, 0 unhealthy.", labels: ["check"], buckets: [])
        case .schedulerLeader:
            return .init(name: rawValue, kind: .gauge, help: "1 when this process holds the scheduler leadership (fires schedules, reclaims leases, exports cluster-wide gauges), else 0.", labels: [], buckets: [])
        case .logLinesDropped:
            return .init(name: rawValue, kind: .counter, help: "Log lines a handler could not write or ship (file write errors, Elasticsearch down with a full buffer), by handler.", labels: ["handler"], buckets: [])
        case .spansDropped:
            return .init(name: rawValue, kind: .counter, help: "Spans the trace exporter dropped (its queue was full or a batch could not be exported).", labels: [], buckets: [])
        case .alertsFiring:
            return .init(name: rawValue, kind: .gauge, help: "Alerts firing in DeerFlow's own rule evaluation, by alert name and severity (exported by the evaluating process, the scheduler leader).", labels: ["alertname", "severity"], buckets: [])
        case .notificationsTotal:
            return .init(name: rawValue, kind: .counter, help: "Notification delivery attempts, by channel and outcome (sent, retried, failed).", labels: ["channel", "status"], buckets: [])
        case .runsPurged:
            return .init(name: rawValue, kind: .counter, help: "Finished runs deleted by retention or `deerflow purge`, with their tasks, attempts and logs.", labels: [], buckets: [])
        case .taskMetricUpdatesRejected:
            return .init(name: rawValue, kind: .counter, help: "Lines of $DEERFLOW_METRICS files that were not applied (unknown metric or label, bad value, negative counter increment), by workflow.", labels: ["workflow"], buckets: [])
        case .taskLogsPurged:
            return .init(name: rawValue, kind: .counter, help: "Task logs (one per attempt) deleted by retention or `deerflow purge`.", labels: [], buckets: [])
        case .runRetries:
            return .init(name: rawValue, kind: .counter, help: "Finished runs retried in place (POST /runs/{id}/retry), by workflow.", labels: ["workflow"], buckets: [])
        case .runTimeouts:
            return .init(name: rawValue, kind: .counter, help: "Runs failed because they passed the workflow's run timeout, by workflow.", labels: ["workflow"], buckets: [])
        case .seriesDropped:
            return .init(name: rawValue, kind: .counter, help: "Label combinations folded into 'other' because a metric exceeded its series budget.", labels: ["metric"], buckets: [])
        case .runsWaitingForLimit:
            return .init(name: rawValue, kind: .gauge, help: "Runs pending because their workflow's max_active_runs is reached, per workflow with a limit (cluster-wide).", labels: ["workflow"], buckets: [])
        case .queueConcurrencyLimit:
            return .init(name: rawValue, kind: .gauge, help: "The concurrency limit of each limited queue (deerflow.yaml queues.<name>.concurrency; cluster-wide).", labels: ["queue"], buckets: [])
        case .queueRunning:
            return .init(name: rawValue, kind: .gauge, help: "Task attempts running now in each limited queue (cluster-wide); equal to deerflow_queue_concurrency_limit when the queue is at its limit.", labels: ["queue"], buckets: [])
        case .apiAccess:
            return .init(name: rawValue, kind: .counter, help: "Access decisions when API tokens are configured, by the token's role ('none' without a valid token) and outcome (allowed, forbidden, unauthenticated).", labels: ["role", "outcome"], buckets: [])
        case .webhookRequests:
            return .init(name: rawValue, kind: .counter, help: "Requests to webhooks (POST /api/v1/hooks/{name}), by hook ('unknown' for names no workflow declares) and result (accepted, duplicate, not_found, no_secret, bad_signature, bad_request, unmapped, error).", labels: ["hook", "result"], buckets: [])
        }
    }

    /// Whether the value is computed from the store for the whole cluster (exported only by the
    /// process that holds the scheduler leadership).
    public var isClusterWide: Bool {
        switch self {
        case .workflowsActive, .tasksQueued, .queueDepth, .queueOldestAge, .queueConsumers, .workersTotal, .workersActive, .schedulerLag,
             .runsWaitingForLimit, .queueConcurrencyLimit, .queueRunning:
            return true
        default:
            return false
        }
    }

    static let runBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600]
    static let taskBuckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
    /// From 50 µs: a trigger on SQLite takes well under a millisecond.
    static let requestBuckets: [Double] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let queueBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
}
