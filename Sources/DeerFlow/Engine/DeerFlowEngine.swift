public import DeerFlowCore
package import Foundation
public import Logging
import Synchronization
public import Tracing

/// The engine of one DeerFlow process: it creates, cancels and queries runs in the store, runs
/// workers and the scheduler as Services, and tells observers about every state transition.
///
/// ```swift
/// let engine = try DeerFlowEngine(store: store, workflows: [etl])
/// let run = try await engine.trigger("etl", params: ["day": "2024-06-01"])
/// ```
public final class DeerFlowEngine: Sendable {
    /// Engine-wide settings.
    public struct Configuration: Sendable {
        /// How long a claimed attempt stays owned without a heartbeat; default 30 s.
        public var leaseDuration: Duration = .seconds(30)
        /// Maximum bytes of task log kept per attempt; default 1 MiB.
        public var taskLogLimit: Int = 1 << 20
        /// Grace period between SIGTERM and SIGKILL for cancelled shell tasks; default 5 s.
        public var killGracePeriod: Duration = .seconds(5)
        /// Name of this process in worker ids and logs; default the host name.
        public var hostName: String = ProcessInfo.processInfo.hostName
        /// Version string recorded with workers.
        public var version: String = DeerFlowVersion.current
        /// Applied to task log text before it is stored for the API (the logging filters).
        public var redactTaskLog: (@Sendable (String) -> String)?
        /// Variables of this process's environment that shell tasks inherit besides
        /// ``TaskEnvironment/baseVariables``: names or prefixes (`AWS_*`).
        public var environmentPassthrough: [String] = []
        /// The user shell tasks run as; nil: this process's user.
        public var taskUser: TaskUser?
        /// Instances one mapped task (`for_each`) may expand into; more fail the task
        /// (`worker.max_map_instances`). Default ``Limits/defaultMapInstances``.
        public var maxMapInstances: Int = Limits.defaultMapInstances
        /// The values of `deerflow.yaml`'s `secrets:`, by name: what `{{ secrets.NAME }}` renders
        /// to. Redacted from every task log, output and error of this process.
        public var secrets: [String: String] = [:]
        /// Largest JSON a shell task may write to `$DEERFLOW_OUTPUT`; default 1 MiB. Outputs are
        /// stored with the attempt and read by downstream tasks: data belongs in storage, its
        /// location in the output.
        public var taskOutputLimit: Int = 1 << 20
        /// Sends each line a shell task writes to this engine's log handlers too, within a
        /// budget per attempt; nil: the output stays in the task log. `deerflow server` sets it
        /// from `logging.yaml` (`task_output`, default on).
        public var taskOutputLogging: TaskOutputLogging?
        /// The metrics shell tasks may update through `$DEERFLOW_METRICS` (``TaskMetricUpdate``):
        /// `metrics.yaml`'s `custom_metrics`, by exposed name (`data_processed_bytes_total`).
        public var taskWritableMetrics: Set<String> = []

        public init() {}
    }

    public let store: any WorkflowStore
    public let workflows: WorkflowRegistry
    public let configuration: Configuration
    /// Built-in and custom metrics.
    public let metrics: MetricsRegistry
    /// Health checks served by `/health`.
    public let health: HealthRegistry
    public let logger: Logger

    private let observers: Mutex<[any EngineObserver]>
    private let localWorkers: Mutex<[ObjectIdentifier: WorkerService]>
    private let draining = Atomic<Bool>(false)
    private let schedulerLeader = Atomic<Bool>(false)
    /// Attempts of `workflow` tasks of this process waiting for their child runs (each holds a slot).
    let waitingSubWorkflows = Atomic<Int>(0)
    private let waiters: RunWaiters
    /// Open `workflow.run` spans of runs created here.
    let runSpans = RunSpans()
    /// The values of `configuration.secrets`, prepared once for the redaction of every attempt.
    let configuredSecrets: SecretValues
    /// The tracer in effect when the engine was created (looking it up costs a few dynamic casts,
    /// per run and per attempt otherwise); nil when tracing is off.
    let tracer: (any Tracer)?
    /// Whether runs and attempts are traced (a tracer was in effect when the engine was created).
    package var isTracing: Bool { tracer != nil }

    /// Creates an engine.
    ///
    /// Runs and attempts are traced with the tracer in effect here: bootstrap tracing
    /// (`InstrumentationSystem.bootstrap`, or the CLI's `tracing.yaml`) before creating the engine,
    /// or create it inside `withTracer`.
    ///
    /// - Parameters:
    ///   - store: where state lives; call `prepare()` on it first (the CLI does).
    ///   - workflows: the workflows this process can trigger and execute; validated here.
    ///   - configuration: engine settings.
    ///   - metrics: the metrics registry; default: one without backend.
    ///   - logger: the engine's logger.
    public init(
        store: any WorkflowStore,
        workflows: [Workflow],
        configuration: Configuration = .init(),
        metrics: MetricsRegistry = MetricsRegistry(),
        logger: Logger = Logger(label: "deerflow")
    ) throws {
        self.store = store
        self.workflows = try WorkflowRegistry(workflows)
        self.configuration = configuration
        configuredSecrets = SecretValues(configuration.secrets.values)
        self.metrics = metrics
        self.logger = logger
        health = HealthRegistry()
        observers = Mutex([])
        localWorkers = Mutex([:])
        waiters = RunWaiters()
        let tracer = InstrumentationSystem.tracer
        self.tracer = tracer.isRecording ? tracer : nil
        observers.withLock { $0.append(waiters) }
    }

    // MARK: Observers

    /// Adds an observer of state transitions (metrics, logs, traces).
    public func addObserver(_ observer: any EngineObserver) {
        observers.withLock { $0.append(observer) }
    }

    /// Delivers events to every observer; the run spans last, so that observers (the logging one)
    /// still find the trace context of a run that just finished.
    package func emit(_ events: [EngineEvent]) {
        guard !events.isEmpty else { return }
        let current = observers.withLock { $0 }
        for observer in current { observer.engine(didEmit: events) }
        runSpans.engine(didEmit: events)
    }

    // MARK: Runs

    /// Creates a run of a workflow.
    ///
    /// - Parameters:
    ///   - workflow: the workflow's name.
    ///   - params: run parameters; validated against the declared ones, defaults filled in.
    ///   - trigger: how the run was started.
    ///   - parent: the trace context the run's `workflow.run` span continues; default the current
    ///     one (the API request's span, which continues the caller's `traceparent`).
    ///   - rerunOf: the run this one reruns (``rerun(_:params:)``).
    ///   - childOf: the attempt of a `workflow` task starting this run as its child.
    /// - Throws: ``DeerFlowError`` `.notFound` for an unknown workflow, `.invalidParams` for bad
    ///   parameters, `.conflict` for a scheduled run that exists already or a parent attempt that
    ///   has a child already.
    @discardableResult
    public func trigger(
        _ workflow: String,
        params: [String: JSONValue] = [:],
        trigger: RunTrigger = .library,
        parent: ServiceContext? = nil,
        rerunOf: RunID? = nil,
        childOf: RunParent? = nil
    ) async throws -> RunRecord {
        let outcome = try await create(workflow, params: params, trigger: trigger, parent: parent, rerunOf: rerunOf, childOf: childOf, delivery: nil)
        guard case .created(let record) = outcome else {
            if let childOf {
                throw DeerFlowError(.conflict, "attempt \(childOf.attempt) of task '\(childOf.taskID)' of run \(childOf.runID) has a child run already")
            }
            throw DeerFlowError(.conflict, "a run of '\(workflow)' for this schedule time already exists")
        }
        return record
    }

    /// Creates a run of a workflow for a webhook delivery, unless the delivery was recorded
    /// before (the sender repeated it): then nothing is created and the earlier run is answered.
    /// The delivery and the run are stored in one transaction, so repeats arriving at the same
    /// time, at any process sharing the store, create one run.
    ///
    /// - Throws: what ``trigger(_:params:trigger:parent:rerunOf:)`` throws; `.unavailable` when
    ///   the store does not record deliveries.
    public func trigger(_ workflow: String, params: [String: JSONValue], delivery: WebhookDelivery) async throws -> DeliveryOutcome {
        try await create(workflow, params: params, trigger: .webhook, parent: nil, rerunOf: nil, childOf: nil, delivery: delivery)
    }

    private func create(
        _ workflow: String, params: [String: JSONValue], trigger: RunTrigger, parent: ServiceContext?, rerunOf: RunID?, childOf: RunParent?,
        delivery: WebhookDelivery?
    ) async throws -> DeliveryOutcome {
        let entry = try registered(workflow)
        let resolved = try resolve(params, of: entry)
        var deliveries: (any WebhookDeliveryStore)?
        if delivery != nil {
            guard let store = store as? any WebhookDeliveryStore else {
                throw DeerFlowError(.unavailable, "this store does not record webhook deliveries; use the SQLite or PostgreSQL store")
            }
            deliveries = store
        }
        let now = delivery?.receivedAt ?? Date()
        let newRun = makeRun(
            entry, params: resolved, trigger: trigger, parent: parent ?? ServiceContext.current ?? .topLevel, at: now,
            rerunOf: rerunOf, childOf: childOf).run
        let runID = newRun.id
        // A worker of this process with a free slot and empty queues starts the run's first
        // attempts in the run's own transaction: no claim transaction, no wake-up to claim.
        let direct = delivery == nil ? reserveDirectStart(of: newRun) : nil
        let outcome: DeliveryOutcome?
        var started = CreatedRun?.none
        // On every way out, after `runCreated` when there is one: the worker tells observers the
        // attempts started, then runs them; reserved slots they do not use are freed.
        defer {
            if let direct { direct.worker.adopt(started?.started ?? [], events: started?.events ?? [], reserved: direct.claim.limit) }
        }
        do {
            if let deliveries, let delivery {
                outcome = try await deliveries.createRun(newRun, delivery: delivery)
            } else if let direct {
                started = try await store.createRun(newRun, startingOn: direct.claim)
                outcome = started.map { .created($0.record) }
            } else {
                outcome = try await store.createRun(newRun).map(DeliveryOutcome.created)
            }
        } catch {
            endRunSpan(runID, notStored: error)
            throw error
        }
        guard case .created(let record)? = outcome else {
            runSpans.remove(runID)?.end()
            return outcome ?? .duplicate(runID)
        }
        emit([.runCreated(runID: record.id, workflow: workflow, trigger: trigger.kind, at: now)])
        if (started?.started.count ?? 0) < newRun.tasks.count(where: { $0.dependencyCount == 0 }) { wakeLocalWorkers() }
        return .created(record)
    }

    /// Reserves slots on a local worker that can start `run`'s first tasks at once
    /// (``WorkerService/reserveIdleSlots(upTo:)``), with the claim that starts them.
    private func reserveDirectStart(of run: NewRun) -> (worker: WorkerService, claim: ClaimRequest)? {
        let workers = localWorkers.withLock { Array($0.values) }
        for worker in workers {
            let queues = worker.configuration.queues
            let wanted = run.tasks.count { $0.dependencyCount == 0 && queues.contains($0.queue) }
            let reserved = worker.reserveIdleSlots(upTo: wanted)
            guard reserved > 0 else { continue }
            return (worker, ClaimRequest(
                worker: worker.id, queues: queues, limit: reserved, leaseDuration: configuration.leaseDuration, onlyNewlyReady: true))
        }
        return nil
    }

    /// Creates runs of one workflow in one transaction, one per parameters object (trigger
    /// `api`): all of them, or none when one does not match the declaration or the store fails.
    ///
    /// - Throws: ``DeerFlowError`` `.notFound` for an unknown workflow, `.invalidParams` naming
    ///   the first bad entry (`runs[3]: …`), the store's errors.
    public func trigger(_ workflow: String, batch: [[String: JSONValue]]) async throws -> [RunRecord] {
        let entry = try registered(workflow)
        var resolved: [[String: JSONValue]] = []
        resolved.reserveCapacity(batch.count)
        for (index, params) in batch.enumerated() {
            resolved.append(try resolve(params, of: entry, label: "runs[\(index)]: "))
        }
        let now = Date()
        let parent = ServiceContext.current ?? .topLevel
        let newRuns = resolved.map { makeRun(entry, params: $0, trigger: .api, parent: parent, at: now).run }
        let records: [RunRecord]
        do {
            records = try await store.createRuns(newRuns)
        } catch {
            for run in newRuns { endRunSpan(run.id, notStored: error) }
            throw error
        }
        emit(records.map { .runCreated(runID: $0.id, workflow: workflow, trigger: .api, at: now) })
        wakeLocalWorkers()
        return records
    }

    private func registered(_ workflow: String) throws -> WorkflowRegistry.Entry {
        guard let entry = workflows[workflow] else {
            throw DeerFlowError(.notFound, "workflow '\(workflow)' is not registered (known: \(workflows.all.map(\.definition.name).joined(separator: ", ")))")
        }
        return entry
    }

    private func resolve(_ params: [String: JSONValue], of entry: WorkflowRegistry.Entry, label: String = "") throws -> [String: JSONValue] {
        do {
            return try entry.definition.resolveParams(params)
        } catch {
            throw DeerFlowError(.invalidParams, "workflow '\(entry.definition.name)': \(label)\(error.description)")
        }
    }

    /// Ends the span of a run the store refused.
    private func endRunSpan(_ runID: RunID, notStored error: any Error) {
        guard let span = runSpans.remove(runID) else { return }
        span.recordError(error)
        span.setStatus(SpanStatus(code: .error, message: "the run could not be stored"))
        span.end()
    }

    /// A new run row for a workflow (used by the scheduler for cron fires); its `workflow.run` span
    /// is a root with a `deerflow.schedule` attribute.
    package func makeRun(_ entry: WorkflowRegistry.Entry, trigger: RunTrigger, params given: [String: JSONValue] = [:], at now: Date) throws -> NewRun {
        let params = try entry.definition.resolveParams(given)
        let (run, span) = makeRun(entry, params: params, trigger: trigger, parent: .topLevel, at: now)
        if let span, let schedule = entry.definition.schedule {
            span.attributes[DeerFlowTracing.Attribute.schedule] = "\(schedule.cron) (\(schedule.timeZone))"
        }
        return run
    }

    /// A new run row of `entry` with resolved `params`, and its `workflow.run` span (registered,
    /// continuing `parent`; nil when tracing is off). Every way of creating a run builds it here.
    private func makeRun(
        _ entry: WorkflowRegistry.Entry, params: [String: JSONValue], trigger: RunTrigger, parent: ServiceContext, at now: Date,
        rerunOf: RunID? = nil, childOf: RunParent? = nil
    ) -> (run: NewRun, span: (any Span)?) {
        let runID = RunID.generate(at: now)
        let span = startRunSpan(runID, workflow: entry.definition.name, trigger: trigger, parent: parent, at: now)
        let run = NewRun(
            id: runID, workflow: entry.definition.name, workflowVersion: entry.versionID, params: params,
            tasks: entry.taskTemplate, trigger: trigger, traceContext: span?.stored, createdAt: now,
            timeout: entry.definition.timeout, rerunOf: rerunOf, parent: childOf)
        return (run, span?.span)
    }

    /// A scheduled run as the scheduler makes it (tests).
    package func makeRunForTesting(_ entry: WorkflowRegistry.Entry, due: Date = Date()) throws -> NewRun {
        try makeRun(entry, trigger: .schedule(dueAt: due), at: Date())
    }

    /// Wakes this process's workers (tests that insert runs directly).
    package func wakeLocalWorkersForTesting() { wakeLocalWorkers() }

    /// Ends the span of a run that was not created after all (a schedule fired twice).
    package func discardRunSpan(_ runID: RunID) {
        runSpans.remove(runID)?.end()
    }

    /// Starts and registers the `workflow.run` span of a new run, with the context to store with
    /// the run; nil when tracing is off.
    private func startRunSpan(_ runID: RunID, workflow: String, trigger: RunTrigger, parent: ServiceContext, at now: Date) -> (span: any Span, stored: String?)? {
        guard let tracer else { return nil }
        let span = tracer.startSpan("workflow.run", context: parent, ofKind: .internal, at: DateInstant(now))
        // Kept even when not sampled: its tasks continue its context (and skip their spans).
        runSpans.add(span, for: runID)
        let stored = StoredTraceContext.encode(span.context, tracer: tracer)
        guard span.isRecording else { return (span, stored) }
        span.updateAttributes { attributes in
            attributes[DeerFlowTracing.Attribute.workflow] = workflow
            attributes[DeerFlowTracing.Attribute.runID] = runID.rawValue
            attributes[DeerFlowTracing.Attribute.trigger] = trigger.kind.rawValue
            if case .schedule(let due) = trigger { attributes["deerflow.schedule.due"] = Timestamp.rfc3339(due) }
            if case .backfill(let logicalTime) = trigger { attributes["deerflow.logical_time"] = Timestamp.rfc3339(logicalTime) }
        }
        return (span, stored)
    }

    /// Ends the `workflow.run` spans of runs created here that finished in another process.
    package func sweepRunSpans() async {
        guard runSpans.count > 0 else { return }
        await runSpans.sweep(store: store)
    }

    /// A run with its tasks and attempts; nil when unknown.
    ///
    /// A queued, due task whose queue is at its concurrency limit carries the reason it waits
    /// (``TaskRecord/waitingReason``); a run with `workflow` tasks lists the child runs they
    /// started (``RunDetail/children``).
    public func run(_ id: RunID) async throws -> RunDetail? {
        guard var detail = try await store.run(id) else { return nil }
        let now = Date()
        let due = detail.tasks.indices.filter { index in
            let task = detail.tasks[index]
            return task.status == .queued && (task.attempts.last.map { $0.status == .queued && $0.queuedAt <= now } ?? false)
        }
        if !due.isEmpty, let usage = try? await store.limitUsage(), !usage.queues.isEmpty {
            for index in due { detail.tasks[index].waitingReason = usage.queueWaitingReason(detail.tasks[index].queue) }
        }
        if detail.tasks.contains(where: { $0.type == "workflow" }) {
            detail.children = try await store.childRuns(of: id)
        }
        return detail
    }

    /// Runs, newest first.
    public func runs(_ query: RunQuery) async throws -> RunPage {
        try await store.runs(query)
    }

    /// Cancels a run: queued tasks are dropped, running attempts are asked to stop.
    /// - Throws: ``DeerFlowError`` `.notFound`, or `.conflict` when the run already finished.
    @discardableResult
    public func cancel(_ id: RunID) async throws -> RunRecord {
        switch try await store.cancelRun(id, at: Date()) {
        case .notFound:
            throw DeerFlowError(.notFound, "run \(id) not found")
        case .alreadyFinished(let status):
            throw DeerFlowError(.conflict, "run \(id) already finished with status \(status.rawValue); only pending or running runs can be cancelled")
        case .cancelled(let record, let running, let events):
            emit(events)
            let workers = localWorkers.withLock { Array($0.values) }
            for worker in workers { worker.stop(Set(running), reason: .cancelled) }
            await cancelChildren(of: [id])
            return record
        }
    }

    /// Cancels the unfinished child runs of `parents` (sub-workflows), and theirs in turn. The
    /// worker running a parent's `workflow` task cancels its child too when it stops; this covers
    /// a parent whose worker is gone. Failures are logged: the parent's cancel stands.
    package func cancelChildren(of parents: [RunID]) async {
        for parent in parents {
            let children: [RunRecord]
            do {
                children = try await store.childRuns(of: parent)
            } catch {
                logger.warning("could not list the child runs to cancel with their parent", metadata: ["run_id": "\(parent)", "error": "\(error)"])
                continue
            }
            // Children of `wait: false` tasks were fired and forgotten: they go on (the parent's
            // own workflow says which task started each; unknown: cancelled with the parent).
            let parentWorkflow = try? await store.run(parent)?.run.workflow
            let definition = parentWorkflow.flatMap { workflows[$0]?.definition }
            for child in children where !child.status.isFinished {
                if let taskID = child.parent?.taskID, case .workflow(let call)? = definition?.task(taskID)?.action, !call.wait { continue }
                do {
                    try await cancel(child.id)
                } catch let error as DeerFlowError where error.code == .conflict {
                    // Finished meanwhile.
                } catch {
                    logger.warning("could not cancel a child run with its parent", metadata: ["run_id": "\(child.id)", "parent_run_id": "\(parent)", "error": "\(error)"])
                }
            }
        }
    }

    /// Retries a finished run in place: its failed, timed-out, cancelled and upstream-failed tasks
    /// (or `tasks` and everything downstream of them) run again, numbering attempts on; the
    /// successful tasks keep their outputs. The run is `running` again until it finishes anew.
    ///
    /// - Throws: ``DeerFlowError`` `.notFound`; `.conflict` for a run still pending or running,
    ///   attempts still stopping, or nothing to retry; `.invalidTasks` for unknown task ids or a
    ///   selected task whose failed dependency is not retried.
    @discardableResult
    public func retry(_ id: RunID, tasks: [String]? = nil) async throws -> RunRecord {
        switch try await store.retryRun(id, tasks: tasks, at: Date()) {
        case .notFound:
            throw DeerFlowError(.notFound, "run \(id) not found")
        case .notFinished(let status):
            throw DeerFlowError(.conflict, "run \(id) is still \(status.rawValue); only finished runs can be retried (wait for it, or cancel it first)")
        case .refused(let refusal):
            throw DeerFlowError(refusal.code == .invalidSelection ? .invalidTasks : .conflict, "run \(id) cannot be retried: \(refusal.message)")
        case .retried(let record, _, let events):
            emit(events)
            wakeLocalWorkers()
            return record
        }
    }

    /// Starts a new run of a finished run's workflow with its parameters, `params` overriding
    /// some of them; the new run records the original (`rerunOf`).
    ///
    /// - Throws: ``DeerFlowError`` `.notFound`; `.conflict` while the run is pending or running;
    ///   what ``trigger(_:params:trigger:parent:rerunOf:)`` throws (e.g. `.invalidParams`).
    @discardableResult
    public func rerun(_ id: RunID, params overrides: [String: JSONValue] = [:], trigger: RunTrigger = .library) async throws -> RunRecord {
        guard let original = try await store.run(id)?.run else {
            throw DeerFlowError(.notFound, "run \(id) not found")
        }
        guard original.status.isFinished else {
            throw DeerFlowError(.conflict, "run \(id) is still \(original.status.rawValue); only finished runs can be rerun (wait for it, or cancel it first)")
        }
        let params = original.params.merging(overrides) { _, new in new }
        return try await self.trigger(original.workflow, params: params, trigger: trigger, rerunOf: id)
    }

    /// Fails the runs whose deadline (the workflow's `timeout:`) passed, with reason `timeout`,
    /// and stops their running attempts as a cancel does. The scheduler leader calls this on
    /// every pass; returns the runs that timed out.
    @discardableResult
    package func timeOutExpiredRuns(now: Date = Date(), limit: Int = 100) async throws -> [RunRecord] {
        let sweep = try await store.timeOutRuns(now: now, limit: limit)
        guard !sweep.runs.isEmpty else { return [] }
        emit(sweep.events)
        let workers = localWorkers.withLock { Array($0.values) }
        for worker in workers { worker.stop(Set(sweep.runningAttempts), reason: .runTimedOut) }
        await cancelChildren(of: sweep.runs.map(\.id))
        return sweep.runs
    }

    /// Waits until a run finishes and returns it.
    /// - Throws: ``DeerFlowError`` `.notFound`, or `CancellationError`.
    public func waitForRun(_ id: RunID, pollInterval: Duration = .seconds(1)) async throws -> RunDetail {
        while true {
            guard let detail = try await store.run(id) else {
                throw DeerFlowError(.notFound, "run \(id) not found")
            }
            if detail.run.status.isFinished { return detail }
            await waiters.wait(for: id, timeout: pollInterval)
            try Task.checkCancellation()
        }
    }

    /// Returns when `run` finished in this process (its `.runFinished` event) or after `timeout`,
    /// whichever comes first; for waits that then look at the store.
    package func waitForFinishEvent(of run: RunID, timeout: Duration) async {
        await waiters.wait(for: run, timeout: timeout)
    }

    /// The output of a task of a run, if it succeeded.
    public func output(run: RunID, task: String) async throws -> JSONValue? {
        try await store.taskOutput(run: run, task: task)
    }

    // MARK: Workers

    /// A worker service executing attempts in this process.
    public func makeWorker(_ configuration: WorkerService.Configuration = .init()) -> WorkerService {
        WorkerService(engine: self, configuration: configuration)
    }

    /// The scheduler service (cron, lease reclaim, lost workers).
    public func makeScheduler(_ configuration: SchedulerService.Configuration = .init()) -> SchedulerService {
        SchedulerService(engine: self, configuration: configuration)
    }

    /// Whether a worker of this process is draining (readiness answers 503).
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    package func setDraining() { draining.store(true, ordering: .relaxed) }

    /// Whether this process's scheduler holds the leadership (it fires schedules, reclaims leases
    /// and exports the cluster-wide gauges).
    public var isSchedulerLeader: Bool { schedulerLeader.load(ordering: .relaxed) }

    package func setSchedulerLeader(_ leads: Bool) { schedulerLeader.store(leads, ordering: .relaxed) }

    package func attach(_ worker: WorkerService) {
        localWorkers.withLock { $0[ObjectIdentifier(worker)] = worker }
    }

    package func detach(_ worker: WorkerService) {
        _ = localWorkers.withLock { $0.removeValue(forKey: ObjectIdentifier(worker)) }
    }

    /// Slots and busy slots of this process's workers.
    public var localWorkerLoad: [(id: String, slots: Int, busy: Int)] {
        localWorkers.withLock { $0.values.map { ($0.id, $0.configuration.slots, $0.busy) } }
    }

    /// Wakes this process's idle workers: new work may be ready.
    package func wakeLocalWorkers() {
        let workers = localWorkers.withLock { Array($0.values) }
        for worker in workers { worker.wake() }
    }
}

/// The version of this DeerFlow build.
public enum DeerFlowVersion {
    public static let current = "0.1.0"
}

/// Lets `waitForRun` return as soon as a run finishes in this process instead of at the next poll.
final class RunWaiters: EngineObserver {
    private let state = Mutex<[RunID: [Mailbox<Bool>]]>([:])

    func engine(didEmit events: [EngineEvent]) {
        var finished: [RunID] = []
        for event in events {
            if case .runFinished(let runID, _, _, _, _, _) = event { finished.append(runID) }
        }
        guard !finished.isEmpty else { return }
        let boxes = state.withLock { state in finished.flatMap { state.removeValue(forKey: $0) ?? [] } }
        for box in boxes { box.post(true) }
    }

    func wait(for run: RunID, timeout: Duration) async {
        let box = Mailbox<Bool>()
        state.withLock { $0[run, default: []].append(box) }
        await box.wait(timeout: timeout)
        state.withLock { state in
            state[run]?.removeAll { $0 === box }
            if state[run]?.isEmpty == true { state[run] = nil }
        }
    }
}

/// A user shell tasks run as (`worker.run_as`), resolved when the process starts.
public struct TaskUser: Sendable, Hashable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String

    public init(name: String, uid: UInt32, gid: UInt32, home: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
    }
}
