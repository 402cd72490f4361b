import DeerFlow
import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Queues the notifications a workflow's `notify:` asks for when its runs finish: on failure, on
/// success, and on recovery (a success after the workflow's previous finished run failed).
///
/// Every process that finishes runs (servers and workers) queues them in the store's outbox,
/// keyed by run and outcome, so a run is notified once however often its end is seen; processes
/// running a scheduler deliver them (``NotificationDispatcher``). A failure is an alert
/// `WorkflowRunFailed{workflow, severity}` firing and its recovery the same alert resolved, so
/// PagerDuty resolves the incident the failure opened.
///
/// A process killed between finishing a run and queueing its notification would lose it, so
/// the notifier also sweeps: at start and every ``sweepInterval`` it queues what the runs that
/// finished within ``sweepWindow`` ask for (each outbox key is taken once, so a run already
/// queued is not notified again). A process that restarts, or any other process of the
/// cluster, catches what a killed one missed.
final class RunNotifier: Service, EngineObserver, Sendable {
    /// How far back a sweep looks for finished runs.
    static let sweepWindow: TimeInterval = 15 * 60
    /// How often a sweep runs.
    static let sweepInterval = Duration.seconds(60)
    /// Runs that finished less than this ago are left to the live path (the engine's event).
    static let sweepGrace: TimeInterval = 5
    /// A finished run of a workflow that asks for notifications.
    struct Finished: Sendable {
        var runID: RunID
        var workflow: String
        var status: RunStatus
        var createdAt: Date
        var finishedAt: Date
        var notify: RunNotifications
    }

    private let store: any RunStore & OutboxStore
    private let workflows: [String: RunNotifications]
    private let runURL: @Sendable (RunID) async -> String
    private let logger: Logger
    private let finished: AsyncStream<Finished>
    private let continuation: AsyncStream<Finished>.Continuation
    /// Runs this process queued or swept (the latest 10,000), which a sweep skips.
    private let handled = Mutex<(ids: Set<RunID>, order: [RunID])>(([], []))

    /// - Parameters:
    ///   - runURL: where a reader of the notification sees the run (its API URL).
    init(engine: DeerFlowEngine, store: any RunStore & OutboxStore, runURL: @escaping @Sendable (RunID) async -> String, logger: Logger) {
        self.store = store
        var workflows: [String: RunNotifications] = [:]
        for entry in engine.workflows.all { if let notify = entry.definition.notify { workflows[entry.definition.name] = notify } }
        self.workflows = workflows
        self.runURL = runURL
        self.logger = logger
        (finished, continuation) = AsyncStream.makeStream(of: Finished.self)
    }

    /// Whether any workflow asks for notifications (else the notifier need not run).
    var isNeeded: Bool { !workflows.isEmpty }

    func engine(didEmit events: [EngineEvent]) {
        for event in events {
            guard case .runFinished(let runID, let workflow, let status, let createdAt, _, let finishedAt) = event,
                  let notify = workflows[workflow] else { continue }
            continuation.yield(Finished(runID: runID, workflow: workflow, status: status, createdAt: createdAt, finishedAt: finishedAt, notify: notify))
        }
    }

    func run() async throws {
        // On shutdown the stream ends and what was already reported is still queued: services
        // stop in reverse order, so the workers, which report, have stopped before this.
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // Ends with the stream (graceful shutdown) or cancellation.
                    // At start no run is on its way here through the engine's events: the
                    // first sweep takes even those that finished a moment ago.
                    var grace: TimeInterval = 0
                    while !Task.isCancelled {
                        await self.sweep(now: Date(), grace: grace)
                        grace = Self.sweepGrace
                        try? await Sleep.for(Self.sweepInterval)
                    }
                }
                for await run in finished { await queue(run) }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.continuation.finish()
        }
    }

    /// Queues the notifications of runs that finished within ``sweepWindow`` (but not in the
    /// last `grace`) and that this process has not handled.
    func sweep(now: Date, grace: TimeInterval) async {
        for (workflow, notify) in workflows.sorted(by: { $0.key < $1.key }) {
            var query = RunQuery(workflow: workflow, limit: 200)
            // A run finishes after it was created: those created before the window cannot have
            // finished in it unless they ran longer, which the window's size allows for.
            query.createdAfter = now.addingTimeInterval(-Self.sweepWindow * 4)
            guard let page = try? await store.runs(query) else { continue }
            for run in page.runs {
                guard run.status.isFinished, let finishedAt = run.finishedAt,
                      now.timeIntervalSince(finishedAt) < Self.sweepWindow, now.timeIntervalSince(finishedAt) >= grace,
                      !isHandled(run.id) else { continue }
                await queue(Finished(runID: run.id, workflow: workflow, status: run.status, createdAt: run.createdAt, finishedAt: finishedAt, notify: notify))
            }
        }
    }

    private func isHandled(_ id: RunID) -> Bool {
        handled.withLock { $0.ids.contains(id) }
    }

    private func unmarkHandled(_ id: RunID) {
        _ = handled.withLock { $0.ids.remove(id) }
    }

    private func markHandled(_ id: RunID) {
        handled.withLock { handled in
            guard handled.ids.insert(id).inserted else { return }
            handled.order.append(id)
            if handled.order.count > 10_000 {
                let dropped = handled.order.prefix(1_000)
                handled.order.removeFirst(1_000)
                for old in dropped { handled.ids.remove(old) }
            }
        }
    }

    /// The outcomes a finished run is notified as, with their channels.
    private func outcomes(of run: Finished) async -> [(kind: String, channels: [String])] {
        switch run.status {
        case .failed:
            return run.notify.onFailure.isEmpty ? [] : [("failure", run.notify.onFailure)]
        case .success:
            var outcomes: [(String, [String])] = []
            if !run.notify.onSuccess.isEmpty { outcomes.append(("success", run.notify.onSuccess)) }
            if !run.notify.onRecovery.isEmpty, await previousRunFailed(run) { outcomes.append(("recovery", run.notify.onRecovery)) }
            return outcomes
        default:
            return []
        }
    }

    /// Whether the workflow's last run that finished before this one failed.
    private func previousRunFailed(_ run: Finished) async -> Bool {
        var query = RunQuery()
        query.workflow = run.workflow
        query.cursor = run.runID
        query.limit = 50
        guard let page = try? await store.runs(query) else { return false }
        return page.runs.first { $0.status.isFinished }?.status == .failed
    }

    private func queue(_ run: Finished) async {
        markHandled(run.runID)
        let outcomes = await outcomes(of: run)
        guard !outcomes.isEmpty else { return }
        let detail = try? await store.run(run.runID)
        let url = await runURL(run.runID)
        var messages: [NewOutboxMessage] = []
        for (kind, channels) in outcomes {
            let alert = Self.alert(kind: kind, run: run, detail: detail, url: url)
            for channel in channels {
                let notification = AlertNotification(channel: channel, alerts: [alert])
                if let message = OutboxPayload.message(notification, key: "\(channel)|run|\(run.runID.rawValue)|\(kind)", at: run.finishedAt) {
                    messages.append(message)
                }
            }
        }
        guard let added = await OutboxPayload.enqueue(messages, in: store, logger: logger) else {
            // The next sweep tries again (within sweepWindow).
            unmarkHandled(run.runID)
            return
        }
        if added > 0 {
            logger.info("run notification queued", metadata: [
                "workflow": "\(run.workflow)", "run_id": "\(run.runID)", "outcomes": "\(outcomes.map(\.kind).joined(separator: ","))",
            ])
        }
    }

    /// The notification of one outcome: failures and recoveries are the alert `WorkflowRunFailed`
    /// firing and resolving (one identity per workflow), successes `WorkflowRunSucceeded`.
    static func alert(kind: String, run: Finished, detail: RunDetail?, url: String) -> NotificationAlert {
        let failedTasks = (detail?.tasks ?? []).filter { $0.status == .failed || $0.status == .timeout }
        let errors = failedTasks.map { task in
            let error = task.attempts.last?.error.map { ": \($0.prefix(300))" } ?? ""
            return "\(task.id) (\(task.status.rawValue))\(error)"
        }
        var annotations = ["run_id": run.runID.rawValue, "run_url": url]
        let seconds = String(format: "%.1f", max(0, run.finishedAt.timeIntervalSince(run.createdAt)))
        switch kind {
        case "failure":
            annotations["summary"] = "Run \(run.runID.rawValue) of \(run.workflow) failed"
            annotations["description"] = "Run \(run.runID.rawValue) of \(run.workflow) failed after \(seconds) s. Failed tasks: "
                + (errors.isEmpty ? "none recorded" : errors.joined(separator: "; ")) + ". Details: \(url)"
            annotations["failed_tasks"] = failedTasks.map(\.id).joined(separator: ",")
        case "recovery":
            annotations["summary"] = "\(run.workflow) recovered: run \(run.runID.rawValue) succeeded"
            annotations["description"] = "Run \(run.runID.rawValue) of \(run.workflow) succeeded after the previous run failed. Details: \(url)"
        default:
            annotations["summary"] = "Run \(run.runID.rawValue) of \(run.workflow) succeeded"
            annotations["description"] = "Run \(run.runID.rawValue) of \(run.workflow) succeeded in \(seconds) s. Details: \(url)"
        }
        let name = kind == "success" ? "WorkflowRunSucceeded" : "WorkflowRunFailed"
        let severity = kind == "success" ? "info" : run.notify.severity
        return NotificationAlert(
            name: name, labels: ["alertname": name, "workflow": run.workflow, "severity": severity], annotations: annotations,
            status: kind == "recovery" ? .resolved : .firing, startsAt: run.createdAt, endsAt: kind == "recovery" ? run.finishedAt : nil)
    }
}
