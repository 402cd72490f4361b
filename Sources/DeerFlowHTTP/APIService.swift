import DeerFlow
import DeerFlowAPI
import DeerFlowCore
import Foundation
import Logging
import OpenAPIRuntime

/// The API's operations: DeerFlowAPI's generated `APIProtocol`, so every operation, parameter,
/// status and body of openapi.yaml is checked by the compiler. Errors are thrown as
/// ``DeerFlowError`` and answered by ``JSONErrorMiddleware`` as `{"error": {"code", "message"}}`.
struct APIService: APIProtocol {
    let engine: DeerFlowEngine
    /// The alert endpoints' backend; nil: those routes are not registered (see ``APIServer``).
    let alerts: (any AlertsEndpoint)?
    /// Deletes old history; nil: the purge route is not registered.
    let purger: HistoryPurger?
    /// The webhooks of the loaded workflows, with their secrets.
    let webhooks: Webhooks
    /// `deerflow_webhook_requests_total{hook, result}`; nil without metrics.
    let webhookRequests: MetricsRegistry.Counter?

    // MARK: Document

    func getOpenAPIDocument(_ input: Operations.GetOpenAPIDocument.Input) async throws -> Operations.GetOpenAPIDocument.Output {
        let text: String
        do {
            text = try OpenAPIDocument.text()
        } catch {
            throw DeerFlowError(.internal, "\(error)")
        }
        return .ok(.init(body: .applicationYamlCharsetUtf8(HTTPBody(text))))
    }

    // MARK: Workflows

    func listWorkflows(_ input: Operations.ListWorkflows.Input) async throws -> Operations.ListWorkflows.Output {
        let states = await scheduleStates()
        let workflows = try engine.workflows.all.map { try APIRepresentation.workflow($0, state: states[$0.definition.name]) }
        return .ok(.init(body: .json(.init(workflows: workflows))))
    }

    func getWorkflow(_ input: Operations.GetWorkflow.Input) async throws -> Operations.GetWorkflow.Output {
        .ok(.init(body: .json(try await workflow(input.path.name))))
    }

    func pauseWorkflow(_ input: Operations.PauseWorkflow.Input) async throws -> Operations.PauseWorkflow.Output {
        try await engine.setPaused(input.path.name, paused: true)
        return .ok(.init(body: .json(try await workflow(input.path.name))))
    }

    func unpauseWorkflow(_ input: Operations.UnpauseWorkflow.Input) async throws -> Operations.UnpauseWorkflow.Output {
        var catchUp = false
        if case .json(let request)? = input.body { catchUp = request.catchUp ?? false }
        try await engine.setPaused(input.path.name, paused: false, catchUp: catchUp)
        return .ok(.init(body: .json(try await workflow(input.path.name))))
    }

    /// A workflow as the API shows it, with its schedule's stored state.
    private func workflow(_ name: String) async throws -> Components.Schemas.Workflow {
        guard let entry = engine.workflows[name] else {
            throw DeerFlowError(.notFound, "workflow '\(name)' not found")
        }
        return try APIRepresentation.workflow(entry, state: await scheduleStates()[name])
    }

    // MARK: Backfills

    func createBackfill(_ input: Operations.CreateBackfill.Input) async throws -> Operations.CreateBackfill.Output {
        let name = input.path.name
        guard case .json(let request) = input.body else { throw DeerFlowError(.badRequest, "send a JSON object with 'from' and 'to'") }
        let backfill = try await engine.createBackfill(
            name, from: try BackfillLimits.bound(request.from, named: "from"), to: try BackfillLimits.bound(request.to, named: "to"),
            maxActive: request.maxActive ?? BackfillLimits.defaultMaxActive, params: request.params ?? [:])
        return .created(.init(
            headers: .init(location: "/api/v1/backfills/\(backfill.id)"),
            body: .json(try APIRepresentation.backfill(backfill, secrets: secrets(of: name)))))
    }

    func getBackfill(_ input: Operations.GetBackfill.Input) async throws -> Operations.GetBackfill.Output {
        let backfill = try await engine.backfill(input.path.id)
        return .ok(.init(body: .json(try APIRepresentation.backfill(backfill, secrets: secrets(of: backfill.workflow)))))
    }

    func cancelBackfill(_ input: Operations.CancelBackfill.Input) async throws -> Operations.CancelBackfill.Output {
        let backfill = try await engine.cancelBackfill(input.path.id)
        return .ok(.init(body: .json(try APIRepresentation.backfill(backfill, secrets: secrets(of: backfill.workflow)))))
    }

    func triggerRun(_ input: Operations.TriggerRun.Input) async throws -> Operations.TriggerRun.Output {
        let name = input.path.name
        var params: [String: JSONValue] = [:]
        if case .json(let request)? = input.body { params = request.params ?? [:] }
        // The run's span continues the request's span (Hummingbird's TracingMiddleware), which continues
        // the caller's traceparent.
        guard let key = input.headers.idempotencyKey else {
            let run = try await engine.trigger(name, params: params, trigger: .api)
            return .created(.init(
                headers: .init(location: "/api/v1/runs/\(run.id.rawValue)"),
                body: .json(try APIRepresentation.run(run, secrets: secrets(of: name)))))
        }
        guard (1...200).contains(key.count), key.allSatisfy({ $0.isASCII && !$0.isNewline }) else {
            throw DeerFlowError(.badRequest, "Idempotency-Key must be 1–200 ASCII characters (a UUID is a good key)")
        }
        // Recorded with the run in one transaction, like a webhook's delivery id: the key's scope
        // is the workflow (`api:` cannot begin a hook's name).
        let delivery = WebhookDelivery(hook: "api:\(name)", id: key, receivedAt: Date())
        switch try await engine.trigger(name, params: params, delivery: delivery) {
        case .created(let run):
            return .created(.init(
                headers: .init(location: "/api/v1/runs/\(run.id.rawValue)"),
                body: .json(try APIRepresentation.run(run, secrets: secrets(of: name)))))
        case .duplicate(let id):
            guard let detail = try await engine.store.run(id) else {
                throw DeerFlowError(.conflict, "the run this Idempotency-Key created (\(id)) was deleted by retention; use a new key")
            }
            return .ok(.init(
                headers: .init(location: "/api/v1/runs/\(id.rawValue)"),
                body: .json(try APIRepresentation.run(detail.run, secrets: secrets(of: name)))))
        }
    }

    func triggerRunBatch(_ input: Operations.TriggerRunBatch.Input) async throws -> Operations.TriggerRunBatch.Output {
        let name = input.path.name
        guard case .json(let request) = input.body else { throw DeerFlowError(.badRequest, "the body must be {\"runs\": [{\"params\": {…}}, …]}") }
        guard (1...Self.maxBatchRuns).contains(request.runs.count) else {
            throw DeerFlowError(.badRequest, "a batch holds 1 to \(Self.maxBatchRuns) runs; this one has \(request.runs.count)")
        }
        let runs = try await engine.trigger(name, batch: request.runs.map { $0.params ?? [:] })
        let secrets = secrets(of: name)
        return .created(.init(body: .json(.init(runs: try runs.map { try APIRepresentation.run($0, secrets: secrets) }))))
    }

    /// Most runs `POST /api/v1/workflows/{name}/runs:batch` creates at once (openapi.yaml's `maxItems`).
    static let maxBatchRuns = 1_000

    // MARK: Runs

    func listRuns(_ input: Operations.ListRuns.Input) async throws -> Operations.ListRuns.Output {
        var query = RunQuery()
        query.workflow = input.query.workflow
        if let status = input.query.status {
            guard let parsed = RunStatus(rawValue: status.rawValue) else { throw Messages.unknownStatus(status.rawValue) }
            query.status = parsed
        }
        if let limit = input.query.limit {
            guard (1...1000).contains(limit) else { throw Messages.limit(String(limit)) }
            query.limit = limit
        }
        if let cursor = input.query.cursor {
            guard RunID.isWellFormed(cursor) else {
                throw DeerFlowError(.badRequest, "cursor '\(cursor)' is not a run id; pass the next_cursor of the previous page")
            }
            query.cursor = RunID(rawValue: cursor)
        }
        let page = try await engine.runs(query)
        return .ok(.init(body: .json(.init(
            runs: try page.runs.map { try APIRepresentation.run($0, secrets: secrets(of: $0.workflow)) },
            nextCursor: .init(page.nextCursor?.rawValue)))))
    }

    func getRun(_ input: Operations.GetRun.Input) async throws -> Operations.GetRun.Output {
        let id = input.path.id
        guard let detail = try await engine.run(try runID(id)) else {
            throw DeerFlowError(.notFound, "run \(id) not found")
        }
        return .ok(.init(body: .json(try APIRepresentation.runDetail(detail, secrets: secrets(of: detail.run.workflow)))))
    }

    func cancelRun(_ input: Operations.CancelRun.Input) async throws -> Operations.CancelRun.Output {
        let run = try await engine.cancel(try runID(input.path.id))
        return .ok(.init(body: .json(try APIRepresentation.run(run, secrets: secrets(of: run.workflow)))))
    }

    func retryRun(_ input: Operations.RetryRun.Input) async throws -> Operations.RetryRun.Output {
        var tasks: [String]?
        if case .json(let request)? = input.body { tasks = request.tasks }
        let run = try await engine.retry(try runID(input.path.id), tasks: tasks)
        return .ok(.init(body: .json(try APIRepresentation.run(run, secrets: secrets(of: run.workflow)))))
    }

    func rerunRun(_ input: Operations.RerunRun.Input) async throws -> Operations.RerunRun.Output {
        var params: [String: JSONValue] = [:]
        if case .json(let request)? = input.body { params = request.params ?? [:] }
        let run = try await engine.rerun(try runID(input.path.id), params: params, trigger: .api)
        return .created(.init(
            headers: .init(location: "/api/v1/runs/\(run.id.rawValue)"),
            body: .json(try APIRepresentation.run(run, secrets: secrets(of: run.workflow)))))
    }

    func getTaskLog(_ input: Operations.GetTaskLog.Input) async throws -> Operations.GetTaskLog.Output {
        let id = input.path.id
        let task = input.path.taskId
        let run = try runID(id)
        let attempt = input.query.attempt
        if let attempt, attempt < 1 { throw Messages.attempt(String(attempt)) }
        guard let logs = try await engine.store.taskLogs(run: run, task: task, attempt: attempt) else {
            if try await engine.run(run) == nil { throw DeerFlowError(.notFound, "run \(id) not found") }
            throw DeerFlowError(.notFound, "run \(id) has no task '\(task)'")
        }
        if let attempt, logs.isEmpty {
            throw DeerFlowError(.notFound, "task '\(task)' of run \(id) has no attempt \(attempt)")
        }
        if let follow = input.query.follow, follow == "true" || follow == "1" {
            let follower = LogFollower(store: engine.store, run: run, task: task, attempt: attempt)
            return .ok(.init(body: .textPlainCharsetUtf8(HTTPBody(follower, length: .unknown, iterationBehavior: .single))))
        }
        if input.query.format == "json" {
            return .ok(.init(body: .json(try APIRepresentation.taskLogs(logs))))
        }
        let text = logs.map { log in
            "=== attempt \(log.attempt) (\(log.status.rawValue)) ===\n" + log.text + (log.text.isEmpty || log.text.hasSuffix("\n") ? "" : "\n")
        }.joined()
        return .ok(.init(body: .textPlainCharsetUtf8(HTTPBody(text))))
    }

    // MARK: Workers and alerts

    func listWorkers(_ input: Operations.ListWorkers.Input) async throws -> Operations.ListWorkers.Output {
        let workers = try await engine.store.workers()
        return .ok(.init(body: .json(.init(workers: try workers.map(APIRepresentation.worker)))))
    }

    func listAlerts(_ input: Operations.ListAlerts.Input) async throws -> Operations.ListAlerts.Output {
        .ok(.init(body: .json(try await alertsEndpoint().alertsDocument())))
    }

    func receiveAlertmanagerWebhook(_ input: Operations.ReceiveAlertmanagerWebhook.Input) async throws -> Operations.ReceiveAlertmanagerWebhook.Output {
        guard case .json(let payload) = input.body else {
            throw DeerFlowError(.badRequest, "the request body is not valid JSON; send Alertmanager's webhook payload (version 4)")
        }
        let queued = try await alertsEndpoint().receiveAlertmanagerWebhook(payload)
        return .accepted(.init(body: .json(.init(queued: queued))))
    }

    // MARK: Hooks

    /// Authenticated by the body's signature, not by a bearer token (``AccessControlMiddleware``'s
    /// `signedRoutes`); every answer is counted by hook and result.
    func receiveWebhook(_ input: Operations.ReceiveWebhook.Input) async throws -> Operations.ReceiveWebhook.Output {
        let name = input.path.name
        let hook = webhooks.endpoints[name] == nil ? "unknown" : name
        guard case .binary(let raw) = input.body else { throw DeerFlowError(.badRequest, "send the JSON payload as the body") }
        let body: [UInt8]
        do {
            body = try await [UInt8](collecting: raw, upTo: .max)
        } catch {
            throw DeerFlowError(.badRequest, "the request body could not be read")
        }
        do {
            let outcome = try await webhooks.receive(name: name, body: body, headers: WebhookRequest.headers, engine: engine)
            let duplicate: Bool
            if case .duplicate = outcome { duplicate = true } else { duplicate = false }
            try? webhookRequests?.labels(hook, duplicate ? Webhooks.Result.duplicate.rawValue : Webhooks.Result.accepted.rawValue).inc()
            engine.logger.info(
                duplicate ? "webhook delivery repeated; no new run" : "webhook started a run",
                metadata: ["hook": "\(name)", "run_id": "\(outcome.runID)"])
            return .accepted(.init(body: .json(.init(runId: outcome.runID.rawValue, duplicate: duplicate))))
        } catch let refusal as Webhooks.Refusal {
            try? webhookRequests?.labels(hook, refusal.result.rawValue).inc()
            engine.logger.notice("webhook request refused", metadata: ["hook": "\(name)", "result": "\(refusal.result.rawValue)", "reason": "\(refusal.message)"])
            let error = Components.Schemas._Error(error: .init(code: refusal.code.rawValue, message: refusal.message))
            switch refusal.code {
            case .notFound: return .notFound(.init(body: .json(error)))
            case .unauthorized: return .unauthorized(.init(body: .json(error)))
            case .badRequest: return .badRequest(.init(body: .json(error)))
            case .invalidParams: return .unprocessableContent(.init(body: .json(error)))
            default: return .serviceUnavailable(.init(body: .json(error)))
            }
        } catch {
            try? webhookRequests?.labels(hook, Webhooks.Result.error.rawValue).inc()
            throw error
        }
    }

    // MARK: Maintenance

    func purgeHistory(_ input: Operations.PurgeHistory.Input) async throws -> Operations.PurgeHistory.Output {
        guard let purger else { throw DeerFlowError(.notFound, "purging is not part of this server") }
        guard case .json(let request) = input.body else {
            throw DeerFlowError(.badRequest, "send a JSON object with older_than and/or task_logs_older_than, e.g. {\"older_than\": \"30d\"}")
        }
        let keepRuns = try request.olderThan.map { try Self.retentionPeriod($0, field: "older_than") }
        let keepTaskLogs = try request.taskLogsOlderThan.map { try Self.retentionPeriod($0, field: "task_logs_older_than") }
        guard keepRuns != nil || keepTaskLogs != nil else {
            throw DeerFlowError(.invalidParams, "nothing to purge: give older_than (finished runs) and/or task_logs_older_than (task logs), e.g. 30d")
        }
        let dryRun = request.dryRun ?? false
        var cursor: RetentionCursor?
        let report = try await purger.purge(keepRuns: keepRuns, keepTaskLogs: keepTaskLogs, dryRun: dryRun, logCursor: &cursor)
        var bytesAfter = report.bytesAfter
        if request.vacuum == true, !dryRun { bytesAfter = try await purger.vacuum().bytesAfter }
        return .ok(.init(body: .json(.init(
            dryRun: dryRun, runsFinishedBefore: .init(report.runsCutoff), taskLogsFinishedBefore: .init(report.taskLogsCutoff),
            runs: Int64(report.purged.runs), taskLogs: Int64(report.purged.taskLogs), settledRecords: Int64(report.settledRecords),
            databaseBytesBefore: report.bytesBefore, databaseBytesAfter: bytesAfter))))
    }

    /// A retention period of a purge request, in ``Limits/retention``.
    private static func retentionPeriod(_ text: String, field: String) throws -> Duration {
        switch Limits.duration(text, in: Limits.retention) {
        case .success(let duration): return duration
        case .failure(let problem): throw DeerFlowError(.invalidParams, "\(field): \(problem.message)")
        }
    }

    // MARK: Health

    func getHealth(_ input: Operations.GetHealth.Input) async throws -> Operations.GetHealth.Output {
        let report = await engine.health.evaluate()
        let body = try APIRepresentation.health(report)
        return report.status == .unhealthy ? .serviceUnavailable(.init(body: .json(body))) : .ok(.init(body: .json(body)))
    }

    func getLiveness(_ input: Operations.GetLiveness.Input) async throws -> Operations.GetLiveness.Output {
        .ok(.init(body: .json(.init(status: .alive))))
    }

    func getReadiness(_ input: Operations.GetReadiness.Input) async throws -> Operations.GetReadiness.Output {
        if engine.isDraining {
            return .serviceUnavailable(.init(body: .json(["status": "draining", "reason": "the worker is shutting down"])))
        }
        // The store, and the checks of deerflow.yaml marked critical.
        let report = await engine.health.evaluate(only: Set(["database"] + engine.health.criticalNames))
        if let database = report.checks["database"], database.status == .unhealthy {
            var body = database.details
            body["status"] = "not_ready"
            body["reason"] = "the store does not answer"
            return .serviceUnavailable(.init(body: .json(.object(body))))
        }
        if let (name, failed) = report.checks.filter({ $0.value.status == .unhealthy }).min(by: { $0.key < $1.key }) {
            var body = failed.details
            body["status"] = "not_ready"
            body["reason"] = .string("the critical health check '\(name)' is unhealthy")
            body["check"] = .string(name)
            return .serviceUnavailable(.init(body: .json(.object(body))))
        }
        return .ok(.init(body: .json(.init(status: .ready))))
    }

    // MARK: Helpers

    private func alertsEndpoint() throws -> any AlertsEndpoint {
        guard let alerts else { throw DeerFlowError(.notFound, "in-process alerting is not part of this server") }
        return alerts
    }

    private func scheduleStates() async -> [String: ScheduleRecord] {
        (try? await engine.scheduleStates()) ?? [:]
    }

    private func secrets(of workflow: String) -> Set<String> {
        Set(engine.workflows[workflow]?.definition.params.filter(\.secret).map(\.name) ?? [])
    }

    private func runID(_ text: String) throws -> RunID {
        guard RunID.isWellFormed(text) else { throw DeerFlowError(.notFound, "run \(text) not found") }
        return RunID(rawValue: text)
    }
}
