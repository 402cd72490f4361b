import DeerFlow
import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Logging
import ServiceLifecycle

/// Queues the notifications a workflow's `notify:` asks for when its runs finish: on failure, on
/// success, and on recovery (a success after the workflow's previous finished run failed).
///
/// Every process that finishes runs (servers and workers) queues them in the store's outbox,
/// keyed by run and outcome, so a run is notified once however often its end is seen; processes
/// running a scheduler deliver them (``NotificationDispatcher``). A failure is an alert
/// `WorkflowRunFailed{workflow, severity}` firing and its recovery the same alert resolved, so
/// PagerDuty resolves the incident the failure opened.
final class RunNotifier: Service, EngineObserver, Sendable {
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
            for await run in finished { await queue(run) }
        } onGracefulShutdown: {
            self.continuation.finish()
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
        let added = await OutboxPayload.enqueue(messages, in: store, logger: logger)
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
