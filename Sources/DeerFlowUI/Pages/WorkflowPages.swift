import DeerFlow
import DeerFlowCore
import Foundation
import Hummingbird

extension WebUI {
    /// A trigger form submitted with problems: its values and an error per field.
    struct SubmittedForm {
        var workflow: String
        var values: [String: String]
        var errors: [String: String]
        var formError: String?
    }

    struct TriggerForm: Decodable {
        var csrf: String?
        var param: [String: String]?
    }

    /// Runs shown per workflow in the strips and the grid.
    static let recentCount = 20

    /// `GET /workflows`: every workflow with schedule, last runs, success rate, average duration
    /// and a trigger form. Two store calls, whatever the number of workflows.
    func workflowsPage(_ request: Request, form: SubmittedForm?) async throws -> Response {
        let entries = engine.workflows.all.sorted { $0.definition.name < $1.definition.name }
        let names = entries.map(\.definition.name)
        async let recentCall = engine.store.recentRuns(workflows: names, limit: Self.recentCount)
        async let schedulesCall = engine.store.schedules()
        let (recent, schedules) = try await (recentCall, schedulesCall)
        let stored = Dictionary(schedules.map { ($0.workflow, $0) }, uniquingKeysWith: { first, _ in first })
        let csrf = csrfToken(for: request).token
        let rows = entries.map { entry -> [String: Any] in
            let definition = entry.definition
            let runs = recent[definition.name] ?? []
            var row = Self.workflowSummary(definition, runs: runs, schedule: stored[definition.name])
            let submitted = form?.workflow == definition.name ? form : nil
            row["form"] = Self.triggerForm(definition, csrf: csrf, submitted: submitted)
            row["open"] = submitted != nil
            return row
        }
        let content = Templates.render("workflows", ["workflows": rows, "notice": false])
        return page(request, title: "Workflows", section: "/workflows", content: content, live: "/live", status: form == nil ? .ok : .unprocessableContent)
    }

    /// - Parameter schedule: the schedule's stored state; nil before the scheduler stored it (then
    ///   the definition's initial `paused:` shows).
    static func workflowSummary(_ definition: WorkflowDefinition, runs: [RunRecord], schedule stored: ScheduleRecord?) -> [String: Any] {
        let finished = runs.filter(\.status.isFinished)
        let succeeded = finished.filter { $0.status == .success }
        let durations = finished.compactMap { run in run.finishedAt.map { $0.timeIntervalSince(run.startedAt ?? run.createdAt) } }
        var row: [String: Any] = [
            "name": definition.name, "strip": strip(runs),
            "successRate": finished.isEmpty ? "—" : "\(Format.percent(succeeded.count, of: finished.count)) of \(finished.count)",
            "averageDuration": durations.isEmpty ? "—" : Format.duration(durations.reduce(0, +) / Double(durations.count)),
        ]
        row["description"] = definition.description.isEmpty ? false : definition.description
        if let schedule = definition.schedule {
            row["cron"] = schedule.cron
            row["zone"] = schedule.timeZone
            row["next"] = Format.time(stored?.nextFireAt)
            row["paused"] = stored?.paused ?? schedule.paused
        } else {
            row["cron"] = false
            row["paused"] = false
        }
        return row
    }

    static func strip(_ runs: [RunRecord]) -> [String: Any] {
        let now = Date()
        return ["cells": runs.map { run -> [String: Any] in
            let end = run.finishedAt ?? now
            return [
                "id": run.id.rawValue, "status": run.status.rawValue, "glyph": Format.glyphs[run.status.rawValue] ?? "•",
                "title": "run \(run.id.rawValue) · \(run.status.rawValue) · \(Format.duration(end.timeIntervalSince(run.startedAt ?? run.createdAt))) · \(Format.utc.string(from: run.createdAt))",
            ]
        }]
    }

    /// The trigger form of a workflow, from its declared parameters.
    static func triggerForm(_ definition: WorkflowDefinition, csrf: String, submitted: SubmittedForm?) -> [String: Any] {
        let fields = definition.params.map { param -> [String: Any] in
            let given = submitted?.values[param.name]
            let defaultText = param.defaultValue.map(Format.value)
            var field: [String: Any] = [
                "name": param.name, "formName": definition.name, "type": param.type.rawValue, "required": param.isRequired, "secret": param.secret,
                "isBool": param.type == .bool, "inputType": param.secret ? "password" : (param.type == .int || param.type == .float ? "text" : "text"),
                "value": param.secret ? "" : (given ?? ""), "placeholder": param.secret ? (defaultText == nil ? "" : "default hidden") : (defaultText ?? ""),
                "isTrue": given == "true", "isFalse": given == "false",
            ]
            field["defaultText"] = param.secret ? false : Format.orFalse(defaultText)
            field["description"] = param.description.isEmpty ? false : param.description
            field["fieldError"] = Format.orFalse(submitted?.errors[param.name])
            return field
        }
        var form: [String: Any] = ["action": "/workflows/\(encode(definition.name))/runs", "csrf": csrf, "fields": fields]
        form["formError"] = Format.orFalse(submitted?.formError)
        return form
    }

    /// `POST /workflows/{name}/runs`: checks each field against its declared type (errors next to
    /// the fields, 422), then triggers and goes to the new run.
    func trigger(_ request: Request, context: BasicRequestContext, name: String) async throws -> Response {
        let form = try await self.form(request, as: TriggerForm.self, csrf: \.csrf)
        guard let entry = engine.workflows[name] else { throw DeerFlowError(.notFound, "workflow '\(name)' not found") }
        let values = form.param ?? [:]
        var params: [String: JSONValue] = [:]
        var errors: [String: String] = [:]
        for param in entry.definition.params {
            let text = values[param.name] ?? ""
            if text.isEmpty {
                if param.isRequired { errors[param.name] = "required: enter a \(param.type.rawValue)" }
                continue
            }
            guard let value = param.type.parse(commandLine: text) else {
                errors[param.name] = "'\(text)' is not \(param.type == .int ? "an" : "a") \(param.type.rawValue)" + Self.typeHint(param.type)
                continue
            }
            params[param.name] = value
        }
        let back = Self.query(request)["from"] == "workflow"
        if errors.isEmpty {
            do {
                let run = try await engine.trigger(name, params: params, trigger: .api)
                return Self.redirect("/runs/\(run.id.rawValue)?notice=triggered")
            } catch let error as DeerFlowError where error.code == .invalidParams {
                let submitted = SubmittedForm(workflow: name, values: values, errors: [:], formError: error.message)
                return back ? try await workflowPage(request, context: context, name: name, form: submitted) : try await workflowsPage(request, form: submitted)
            }
        }
        let submitted = SubmittedForm(workflow: name, values: values, errors: errors, formError: nil)
        return back ? try await workflowPage(request, context: context, name: name, form: submitted) : try await workflowsPage(request, form: submitted)
    }

    static func typeHint(_ type: ParamType) -> String {
        switch type {
        case .int: return " (a whole number, e.g. 42)"
        case .float: return " (a number, e.g. 1.5)"
        case .bool: return " (true or false)"
        default: return ""
        }
    }

    static let workflowNotices = [
        "paused": "The schedule is paused: it does not fire until unpaused (runs triggered by hand still run).",
        "unpaused": "The schedule is unpaused: it fires at its next fire time.",
        "unpaused-catch-up": "The schedule is unpaused: the fire times missed while paused fire now, as the schedule's catchup policy says.",
        "backfill": "The backfill was created: the scheduler creates its runs, oldest first, a few at a time.",
        "backfill-cancelled": "The backfill was cancelled: it creates no more runs, and its running runs were asked to stop.",
    ]

    /// Pause and unpause forms carry the CSRF token and, for unpause, the catch-up choice.
    struct PauseForm: Decodable {
        var csrf: String?
        var catch_up: String?
    }

    /// `POST /workflows/{name}/pause` and `/unpause` (CSRF-checked), then back to the workflow.
    func setPaused(_ request: Request, name: String, paused: Bool) async throws -> Response {
        let form = try await form(request, as: PauseForm.self, csrf: \.csrf)
        let catchUp = !paused && (form.catch_up == "true" || form.catch_up == "on")
        try await engine.setPaused(name, paused: paused, catchUp: catchUp)
        let notice = paused ? "paused" : (catchUp ? "unpaused-catch-up" : "unpaused")
        return Self.redirect("/workflows/\(Self.encode(name))?notice=\(notice)")
    }

    /// The backfill form's fields.
    struct BackfillForm: Decodable {
        var csrf: String?
        var from: String?
        var to: String?
        var max_active: String?
    }

    /// `POST /workflows/{name}/backfills` (CSRF-checked), then back to the workflow, where the
    /// backfill shows with its progress. Refusals show as an error page with the reason.
    func createBackfill(_ request: Request, name: String) async throws -> Response {
        let form = try await form(request, as: BackfillForm.self, csrf: \.csrf)
        let maxActive = try form.max_active.flatMap { $0.isEmpty ? nil : $0 }.map { text in
            guard let value = Int(text) else { throw DeerFlowError(.invalidRequest, "max_active '\(text)' is not a whole number") }
            return value
        } ?? BackfillLimits.defaultMaxActive
        _ = try await engine.createBackfill(
            name, from: try BackfillLimits.bound(form.from ?? "", named: "from"), to: try BackfillLimits.bound(form.to ?? "", named: "to"), maxActive: maxActive)
        return Self.redirect("/workflows/\(Self.encode(name))?notice=backfill")
    }

    /// `POST /backfills/{id}/cancel` (CSRF-checked), then back to its workflow.
    func cancelBackfill(_ request: Request, id: String) async throws -> Response {
        _ = try await form(request, as: CSRFForm.self, csrf: \.csrf)
        let backfill = try await engine.cancelBackfill(id)
        return Self.redirect("/workflows/\(Self.encode(backfill.workflow))?notice=backfill-cancelled")
    }

    /// The backfills of a workflow under way, for its page.
    static func backfillRows(_ backfills: [BackfillRecord]) -> [[String: Any]] {
        backfills.map { backfill in
            [
                "id": backfill.id, "from": Format.time(backfill.from), "to": Format.time(backfill.to), "maxActive": String(backfill.maxActive),
                "handled": "\(backfill.runsCreated + backfill.alreadyPresent) of \(backfill.fireTimes)",
                "present": String(backfill.alreadyPresent), "active": String(backfill.active),
                "succeeded": String(backfill.succeeded), "failed": String(backfill.failed),
            ]
        }
    }

    /// `GET /workflows/{name}`: definition, trigger form, the grid of recent runs × tasks, the DAG.
    /// Two store calls (recent runs, their task states) and the schedules.
    func workflowPage(_ request: Request, context: BasicRequestContext, name: String, form: SubmittedForm?) async throws -> Response {
        guard let entry = engine.workflows[name] else { throw DeerFlowError(.notFound, "workflow '\(name)' not found") }
        let definition = entry.definition
        let runs = try await engine.store.recentRuns(workflows: [name], limit: Self.recentCount)[name] ?? []
        let states = try await engine.store.taskStates(runs: runs.map(\.id))
        let schedule = try await engine.store.schedules().first { $0.workflow == name }
        let csrf = csrfToken(for: request).token
        var page = Self.workflowSummary(definition, runs: runs, schedule: schedule)
        page["version"] = entry.versionID
        page["taskCount"] = String(definition.tasks.count)
        page["hooks"] = definition.webhooks.map { _, webhook -> [String: Any] in
            ["url": "/api/v1/hooks/\(Self.encode(webhook.name))", "secretEnv": webhook.secretEnvironmentVariable, "deliveryHeader": webhook.deliveryHeader]
        }
        page["notice"] = Format.orFalse(Self.query(request)["notice"].flatMap { Self.workflowNotices[$0] })
        page["csrf"] = csrf
        page["encodedName"] = Self.encode(name)
        let backfills = definition.schedule == nil ? [] : try await engine.store.activeBackfills().filter { $0.workflow == name }
        page["backfills"] = Self.backfillRows(backfills)
        page["hasBackfills"] = !backfills.isEmpty
        var triggerForm = Self.triggerForm(definition, csrf: csrf, submitted: form)
        triggerForm["action"] = "/workflows/\(Self.encode(name))/runs?from=workflow"
        page["form"] = triggerForm
        page["open"] = form != nil
        // Grid: tasks as rows, runs as columns (oldest left, as time reads).
        let columns = Array(runs.reversed())
        page["hasRuns"] = !columns.isEmpty
        page["gridRuns"] = columns.map { run -> [String: Any] in
            [
                "id": run.id.rawValue, "label": String(Format.utc.string(from: run.createdAt).dropFirst(5).prefix(11)),
                "title": "run \(run.id.rawValue) · \(run.status.rawValue)",
            ]
        }
        page["gridRows"] = Self.gridRows(definition.tasks.map(\.id), columns: columns, states: states)
        let dependencies = Dictionary(definition.tasks.map { ($0.id, $0.dependsOn) }, uniquingKeysWith: { first, _ in first })
        page["dag"] = Drawings.dag(
            names: definition.tasks.map(\.id), statuses: nil, dependencies: dependencies,
            href: { "#task-\(Self.encode($0))" }, label: "Graph of the workflow's tasks", layouts: caches.layouts)
        page["tasks"] = Self.taskRows(definition.tasks)
        return self.page(request, title: name, section: "/workflows", content: Templates.render("workflow", page), live: "/live", status: form == nil ? .ok : .unprocessableContent)
    }

    /// The grid's rows, tasks × runs (oldest left), written directly: a 1,000-task workflow has
    /// 20,000 cells, too many for a template's per-cell dictionaries.
    static func gridRows(_ tasks: [String], columns: [RunRecord], states: [RunID: [TaskState]]) -> String {
        let byRun = columns.map { run in
            Dictionary((states[run.id] ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        }
        var html = ""
        html.reserveCapacity(tasks.count * (40 + columns.count * 200))
        for task in tasks {
            let name = Format.escape(task)
            html += "<tr><td class=\"task mono\" title=\"\(name)\">\(name)</td>"
            for (column, run) in columns.enumerated() {
                html += "<td>"
                if let state = byRun[column][task] {
                    let status = state.status.rawValue
                    let title = Format.escape(
                        "\(task) in run \(run.id.rawValue): \(status.replacingOccurrences(of: "_", with: " ")), \(state.attempts) attempt\(state.attempts == 1 ? "" : "s")")
                    html += "<a class=\"cell s-\(status)\" href=\"/runs/\(run.id.rawValue)?task=\(name)&amp;attempt=\(max(1, state.attempts))#log\" "
                    html += "title=\"\(title)\" aria-label=\"\(title)\"><span aria-hidden=\"true\">\(Format.glyphs[status] ?? "•")</span></a>"
                }
                html += "</td>"
            }
            html += "</tr>"
        }
        return html
    }

    /// The Tasks table's rows (each with the anchor the DAG's nodes link to), written directly;
    /// the columns' fonts and alignment come from the stylesheet (`table.tasks`).
    static func taskRows(_ tasks: [TaskDefinition]) -> String {
        var html = ""
        html.reserveCapacity(tasks.count * 100)
        for task in tasks {
            html += "<tr id=\"task-\(Format.escape(encode(task.id)))\"><td>\(Format.escape(task.id))</td><td>\(Format.escape(task.type))</td>"
            html += "<td>\(Format.escape(task.dependsOn.joined(separator: ", ")))</td><td>\(Format.escape(task.queue))</td>"
            html += "<td>\(task.retry.retries)</td><td>\(Format.escape(task.description))</td></tr>"
        }
        return html
    }
}
