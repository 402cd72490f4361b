import DeerFlow
import DeerFlowCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension WebUI {
    // MARK: Runs

    /// `GET /runs`: filters (workflow, status, trigger, time range), cursor pagination. One store call.
    func runsPage(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let parameters = Self.query(request)
        var query = RunQuery(limit: 50)
        var problems: [String] = []
        func value(_ key: String) -> String? { parameters[key].flatMap { $0.isEmpty ? nil : $0 } }
        query.workflow = value("workflow")
        if let status = value("status") {
            if let parsed = RunStatus(rawValue: status) { query.status = parsed } else { problems.append("unknown status '\(status)'") }
        }
        if let trigger = value("trigger") {
            if let parsed = RunTrigger.Kind(rawValue: trigger) { query.trigger = parsed } else { problems.append("unknown trigger '\(trigger)'") }
        }
        if let from = value("from") {
            if let date = Self.parseLocal(from) { query.createdAfter = date } else { problems.append("'\(from)' is not a time (YYYY-MM-DDTHH:MM)") }
        }
        if let to = value("to") {
            if let date = Self.parseLocal(to) { query.createdBefore = date } else { problems.append("'\(to)' is not a time (YYYY-MM-DDTHH:MM)") }
        }
        if let cursor = value("cursor") {
            if RunID.isWellFormed(cursor) { query.cursor = RunID(rawValue: cursor) } else { problems.append("the page cursor is not a run id") }
        }
        let result = problems.isEmpty ? try await engine.runs(query) : RunPage(runs: [], nextCursor: nil)
        let now = Date()
        var base = parameters.filter { $0.key != "cursor" && !$0.value.isEmpty }
        var context: [String: Any] = [
            "workflowOptions": engine.workflows.all.map(\.definition.name).sorted().map { ["value": $0, "selected": $0 == query.workflow] },
            "statusOptions": RunStatus.allCases.map { ["value": $0.rawValue, "selected": $0 == query.status] },
            "triggerOptions": RunTrigger.Kind.allCases.map { ["value": $0.rawValue, "selected": $0 == query.trigger] },
            "from": value("from") ?? "", "to": value("to") ?? "",
            "runs": result.runs.map { Self.runRow($0, now: now) },
        ]
        context["error"] = problems.isEmpty ? false : problems.joined(separator: "; ")
        context["newest"] = query.cursor == nil ? false : "/runs" + Self.queryString(base)
        if let next = result.nextCursor {
            base["cursor"] = next.rawValue
            context["older"] = "/runs" + Self.queryString(base)
        } else {
            context["older"] = false
        }
        return page(request, title: "Runs", section: "/runs", content: Templates.render("runs", context), live: "/live")
    }

    static func runRow(_ run: RunRecord, now: Date) -> [String: Any] {
        let end = run.finishedAt ?? (run.status.isFinished ? run.createdAt : now)
        return [
            "id": run.id.rawValue, "workflow": run.workflow, "state": Format.state(run.status.rawValue), "trigger": run.trigger.rawValue,
            "created": Format.time(run.createdAt), "duration": Format.duration(end.timeIntervalSince(run.startedAt ?? run.createdAt)),
            "progress": "\(run.progress.finished) / \(run.progress.total)",
        ]
    }

    /// `2024-06-01T12:30` or with seconds, as `<input type="datetime-local">` sends it, read as UTC.
    static func parseLocal(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }

    static func queryString(_ parameters: [String: String]) -> String {
        guard !parameters.isEmpty else { return "" }
        return "?" + parameters.sorted { $0.key < $1.key }.map { key, value in "\(key)=\(encode(value))" }.joined(separator: "&")
    }

    /// `GET /runs/jump?id=`: to a run by id.
    func jump(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let id = (Self.query(request)["id"] ?? "").trimmingCharacters(in: .whitespaces).uppercased()
        guard RunID.isWellFormed(id), try await engine.run(RunID(rawValue: id)) != nil else {
            throw DeerFlowError(.notFound, "no run has the id '\(id)'; run ids are 26 characters, as the Runs page shows them")
        }
        return Self.redirect("/runs/\(id)")
    }

    // MARK: Run

    func runID(_ text: String) throws -> RunID {
        guard RunID.isWellFormed(text) else { throw DeerFlowError(.notFound, "run \(text) not found") }
        return RunID(rawValue: text)
    }

    /// The dependencies of a run's tasks, from its workflow's definition (when still loaded).
    func dependencies(of workflow: String) -> [String: [String]] {
        guard let definition = engine.workflows[workflow]?.definition else { return [:] }
        return Dictionary(definition.tasks.map { ($0.id, $0.dependsOn) }, uniquingKeysWith: { first, _ in first })
    }

    func secrets(of workflow: String) -> Set<String> {
        Set(engine.workflows[workflow]?.definition.params.filter(\.secret).map(\.name) ?? [])
    }

    /// `GET /runs/{id}[?task=&attempt=&q=]`: summary, params, DAG, timeline, attempts, a task's
    /// log. Two store calls (the run, the log).
    func runPage(_ request: Request, context: BasicRequestContext, id: String) async throws -> Response {
        let runID = try runID(id)
        guard let detail = try await engine.run(runID) else { throw DeerFlowError(.notFound, "run \(id) not found") }
        let parameters = Self.query(request)
        let run = detail.run
        let now = Date()
        let dependencies = dependencies(of: run.workflow)
        let secret = secrets(of: run.workflow)
        let csrf = csrfToken(for: request).token
        var page: [String: Any] = [
            "id": run.id.rawValue, "state": Format.state(run.status.rawValue), "workflow": run.workflow, "version": run.workflowVersion,
            "trigger": run.trigger.rawValue, "created": Format.time(run.createdAt), "started": Format.time(run.startedAt),
            "finished": Format.time(run.finishedAt), "csrf": csrf, "cancellable": !run.status.isFinished,
            "duration": Format.duration((run.finishedAt ?? now).timeIntervalSince(run.startedAt ?? run.createdAt)),
            "progress": "\(run.progress.finished) of \(run.progress.total) finished, \(run.progress.failed) failed",
        ]
        page["retryable"] = run.status.isFinished && detail.tasks.contains { $0.status != .success }
        page["rerunnable"] = run.status.isFinished
        page["reason"] = Format.orFalse(run.reason.map { $0 == RunReason.timeout ? "timed out: the workflow's run timeout passed" : $0 })
        page["rerunOf"] = Format.orFalse(run.rerunOf?.rawValue)
        page["parent"] = Format.orFalse(run.parent.map { parent -> [String: Any] in
            [
                "runID": parent.runID.rawValue, "taskID": parent.taskID, "attempt": String(parent.attempt),
                "taskHref": "/runs/\(parent.runID.rawValue)?task=\(Self.encode(parent.taskID))#log",
            ]
        })
        page["children"] = detail.children.map { child -> [String: Any] in
            [
                "id": child.id.rawValue, "workflow": child.workflow, "state": Format.state(child.status.rawValue),
                "task": child.parent?.taskID ?? "", "attempt": String(child.parent?.attempt ?? 1),
                "taskHref": "/runs/\(run.id.rawValue)?task=\(Self.encode(child.parent?.taskID ?? ""))#log",
            ]
        }
        page["hasChildren"] = !detail.children.isEmpty
        page["retries"] = Format.orFalse(run.retries > 0 ? "retried \(run.retries) time\(run.retries == 1 ? "" : "s") in place" : nil)
        page["deadline"] = Format.orFalse(run.status.isFinished ? nil : run.deadline.map { Format.time($0) })
        page["scheduledFor"] = Format.orFalse(run.scheduledFor.map { Format.time($0) })
        page["logicalTime"] = Format.time(run.logicalTime)
        page["backfillID"] = Format.orFalse(run.backfillID)
        let traceID = run.traceContext.flatMap(Self.traceID)
        page["traceID"] = Format.orFalse(traceID)
        // The trace id is 32 hex digits (checked by `traceID`), so it goes into the URL as it is.
        page["traceURL"] = Format.orFalse(traceID.flatMap { id in configuration.traceURL.map { $0.replacingOccurrences(of: "{trace_id}", with: id) } })
        page["waiting"] = Format.orFalse(run.waitingReason)
        page["notice"] = Format.orFalse(parameters["notice"].flatMap { Self.notices[$0] })
        page["error"] = false
        let params = run.params.keys.sorted().map { name -> [String: Any] in
            ["name": name, "secret": secret.contains(name), "value": secret.contains(name) ? "" : Format.value(run.params[name] ?? .null)]
        }
        page["params"] = params
        page["hasParams"] = !params.isEmpty
        // A mapped task is one node, one timeline row and one row group; its instances are listed apart.
        let grouped = detail.groupedTasks
        let declared = grouped.map(\.task)
        page["dag"] = Drawings.dag(
            names: declared.map(\.id), statuses: declared.map(\.status.rawValue), dependencies: dependencies,
            href: { "?task=\(Self.encode($0))#log" }, label: "Graph of the run's tasks coloured by state",
            captions: Self.mapCaptions(grouped), layouts: caches.layouts)
        let timeline = Timeline.make(RunDetail(run: run, tasks: declared), dependencies: dependencies, now: now)
        // A big run's timeline and attempts show the tasks that answer "why failed or slow";
        // `?all=1` shows every task.
        let shown = parameters["all"] == "1" ? nil : Self.tasksWorthShowing(timeline)
        page["timeline"] = Drawings.timeline(timeline, rows: shown)
        page["folded"] = Format.orFalse(shown.map { shown in
            "Showing \(shown.count) of \(declared.count) tasks: the critical path, every task that did not succeed or was retried, "
                + "and the \(Self.lastFinished) that finished last."
        })
        page["total"] = String(declared.count)
        page["all"] = Self.queryString(parameters.filter { $0.key != "notice" }.merging(["all": "1"]) { $1 }) + "#run-timeline"
        page["maps"] = Self.mapContexts(grouped, runID: run.id.rawValue)
        var attempts: [[String: Any]] = []
        for task in shown.map({ $0.map { declared[$0] } }) ?? declared {
            if task.attempts.isEmpty {
                attempts.append([
                    "runID": run.id.rawValue, "task": task.id, "first": true, "number": "—", "state": Format.state(task.status.rawValue),
                    "worker": "", "queued": "", "ran": "", "exit": "", "error": run.waitingReason ?? "", "hasLog": false,
                ])
            }
            for (offset, attempt) in task.attempts.enumerated() {
                let queued = (attempt.startedAt ?? (attempt.status.isFinished ? attempt.finishedAt : now)).map { $0.timeIntervalSince(attempt.queuedAt) }
                let ran = attempt.startedAt.map { (attempt.finishedAt ?? now).timeIntervalSince($0) }
                let isLast = offset == task.attempts.count - 1
                attempts.append([
                    "runID": run.id.rawValue, "task": task.id, "first": offset == 0, "number": String(attempt.number),
                    // A mapped task's attempt only expanded it: the task's state is its instances'.
                    "state": Format.state(isLast && (task.status == .upstreamFailed || task.map != nil) ? task.status.rawValue : attempt.status.rawValue),
                    "worker": attempt.worker ?? "", "queued": Format.duration(queued.map { max(0, $0) }), "ran": ran.map { Format.duration($0) } ?? "",
                    "exit": task.type == "shell" && task.map == nil ? Format.exitCode(succeeded: attempt.status == .success, error: attempt.error) : "",
                    "error": attempt.error ?? (isLast ? task.waitingReason ?? "" : ""), "hasLog": attempt.startedAt != nil,
                ])
            }
        }
        page["attempts"] = attempts
        page["log"] = false
        if let taskID = parameters["task"], let task = detail.tasks.first(where: { $0.id == taskID }) {
            page["log"] = try await logContext(run: run, task: task, parameters: parameters)
        }
        let live = "/live?run=\(run.id.rawValue)"
        return self.page(request, title: "Run \(run.workflow) \(run.id.rawValue.suffix(6))", section: "/runs", content: Templates.render("run", page), live: live)
    }

    static let notices = [
        "cancelled": "The run was cancelled: queued tasks were dropped and running ones asked to stop.", "triggered": "The run was created.",
        "retried": "The run is running again: its unsuccessful tasks were queued; the successful ones keep their outputs.",
        "rerun": "This run was created as a rerun, with the original run's parameters.",
    ]

    /// The trace id of a stored W3C traceparent (`00-<trace id>-<span id>-<flags>`).
    static func traceID(_ traceparent: String) -> String? {
        let parts = traceparent.split(separator: "-")
        guard parts.count >= 3, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit) else { return nil }
        return String(parts[1])
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    /// The characters a URL component keeps as they are (RFC 3986's unreserved).
    static let unreserved: CharacterSet = {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return allowed
    }()

    /// The log viewer of one task: the last attempt by default, search by line, follow while running.
    func logContext(run: RunRecord, task: TaskRecord, parameters: [String: String]) async throws -> [String: Any] {
        let chosen = parameters["attempt"].flatMap(Int.init) ?? task.attempts.last?.number ?? 1
        let logs = try await engine.store.taskLogs(run: run.id, task: task.id, attempt: chosen) ?? []
        let log = logs.first
        let text = log?.text ?? ""
        let query = parameters["q"] ?? ""
        var context: [String: Any] = [
            "runID": run.id.rawValue, "task": task.id, "attempt": String(chosen), "query": query,
            "attempts": task.attempts.map { attempt -> [String: Any] in
                ["runID": run.id.rawValue, "task": task.id, "number": String(attempt.number), "current": attempt.number == chosen, "state": Format.state(attempt.status.rawValue)]
            },
            "truncated": log?.truncated ?? false,
            "output": Self.outputText(task.output),
        ]
        if query.isEmpty {
            context["text"] = text.isEmpty ? "(nothing written yet)\n" : text
            context["searching"] = false
            let attempt = task.attempts.first { $0.number == chosen }
            let running = attempt.map { !$0.status.isFinished } ?? false
            context["followable"] = running
            context["followURL"] = running ? "/runs/\(run.id.rawValue)/tasks/\(Self.encode(task.id))/log/live?attempt=\(chosen)" : false
            context["bytes"] = String(text.isEmpty ? 0 : text.utf8.count)
        } else {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            let matching = lines.filter { $0.localizedCaseInsensitiveContains(query) }
            context["text"] = matching.joined(separator: "\n")
            context["searching"] = true
            context["matches"] = String(matching.count)
            context["lines"] = String(lines.count)
            context["followable"] = false
            context["followURL"] = false
        }
        return context
    }

    /// A task's output as indented JSON for its panel, cut at 16 KiB (the API has all of it);
    /// false without output.
    static func outputText(_ output: JSONValue?) -> Any {
        guard let output, output != .null else { return false }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(output)).map { String(decoding: $0, as: UTF8.self) } ?? output.compactJSON
        let limit = 16 << 10
        guard text.utf8.count > limit else { return text }
        return String(text.utf8.prefix(limit)).map { "\($0)\n… (\(text.utf8.count) bytes; GET /api/v1/runs/{id} has all of it)" } ?? text
    }

    /// `POST /runs/{id}/cancel` (CSRF-checked), then back to the run.
    func cancel(_ request: Request, id: String) async throws -> Response {
        _ = try await form(request, as: CSRFForm.self, csrf: \.csrf)
        try await engine.cancel(try runID(id))
        return Self.redirect("/runs/\(id)?notice=cancelled")
    }

    /// `POST /runs/{id}/retry` (CSRF-checked): the run's unsuccessful tasks run again in it.
    func retry(_ request: Request, id: String) async throws -> Response {
        _ = try await form(request, as: CSRFForm.self, csrf: \.csrf)
        try await engine.retry(try runID(id))
        return Self.redirect("/runs/\(id)?notice=retried")
    }

    /// `POST /runs/{id}/rerun` (CSRF-checked): a new run with the same parameters, then to it.
    func rerun(_ request: Request, id: String) async throws -> Response {
        _ = try await form(request, as: CSRFForm.self, csrf: \.csrf)
        let run = try await engine.rerun(try runID(id), trigger: .api)
        return Self.redirect("/runs/\(run.id.rawValue)?notice=rerun")
    }

    /// `GET /runs/{id}/tasks/{task}/log.txt[?attempt=N]`: the log as a file.
    func logDownload(_ request: Request, context: BasicRequestContext, id: String, task: String) async throws -> Response {
        let attempt = Self.query(request)["attempt"].flatMap(Int.init)
        guard let logs = try await engine.store.taskLogs(run: try runID(id), task: task, attempt: attempt) else {
            throw DeerFlowError(.notFound, "run \(id) has no task '\(task)'")
        }
        let text = logs.map { $0.text }.joined(separator: "\n")
        var headers = Self.headers(type: "text/plain; charset=utf-8")
        let safe = task.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        headers[.contentDisposition] = "attachment; filename=\"\(id)-\(safe)-\(attempt.map(String.init) ?? "all").log\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// `GET /runs/{id}/tasks/{task}/log/live?attempt=N&from=BYTES`: server-sent events with the
    /// attempt's new text (`log`, JSON `{"text", "to"}`) until it finished (`end`).
    func logStream(_ request: Request, context: BasicRequestContext, id: String, task: String) async throws -> Response {
        let parameters = Self.query(request)
        let run = try runID(id)
        guard let attempt = parameters["attempt"].flatMap(Int.init) else { throw DeerFlowError(.badRequest, "attempt=N is required") }
        let from = max(0, parameters["from"].flatMap(Int.init) ?? 0)
        let store = engine.store
        return Response(status: .ok, headers: Self.headers(type: "text/event-stream"), body: ResponseBody { writer in
            var sent = from
            try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
            let deadline = ContinuousClock.now + .seconds(600)
            while ContinuousClock.now < deadline {
                let log = try await store.taskLogs(run: run, task: task, attempt: attempt)?.first
                let bytes = Array((log?.text ?? "").utf8)
                if bytes.count > sent {
                    let chunk = String(decoding: bytes[sent...], as: UTF8.self)
                    sent = bytes.count
                    let data = JSONValue.object(["text": .string(chunk), "to": .int(sent)]).compactJSON
                    try await writer.write(ByteBuffer(string: "event: log\ndata: \(data)\n\n"))
                }
                if log.map({ $0.status.isFinished }) ?? true {
                    try await writer.write(ByteBuffer(string: "event: end\ndata: {}\n\n"))
                    break
                }
                try await Sleep.for(.milliseconds(400))
            }
            try await writer.finish(nil)
        })
    }

    // MARK: SVG view models

    /// A mapped task's node text: `process ×1000 998✓ 2✗` (glyphs beside counts; the instance list says it in words).
    static func mapCaptions(_ grouped: [GroupedTask]) -> [String: String] {
        var captions: [String: String] = [:]
        for group in grouped {
            guard let summary = group.summary else { continue }
            captions[group.task.id] = "\(group.task.id) ×\(summary.count) \(summary.succeeded)✓ \(summary.failed)✗"
        }
        return captions
    }

    /// The instance lists of a run's mapped tasks: index, state, attempts, last error, log link.
    static func mapContexts(_ grouped: [GroupedTask], runID: String) -> [[String: Any]] {
        grouped.compactMap { group -> [String: Any]? in
            guard let summary = group.summary else { return nil }
            var words = "\(summary.count) instances: \(summary.succeeded) succeeded, \(summary.failed) failed, \(summary.running) running, "
                + "\(summary.queued) queued, \(summary.waiting) waiting (at most \(summary.maxParallel) at once)"
            let failed = group.instances.filter { $0.status.isFinished && $0.status != .success }.compactMap(\.mapIndex)
            if !failed.isEmpty { words += "; failed: index " + failed.prefix(20).map(String.init).joined(separator: ", ") + (failed.count > 20 ? "…" : "") }
            return [
                "task": group.task.id, "anchor": encode(group.task.id), "summary": words, "count": summary.count,
                "open": summary.count <= 50 || !failed.isEmpty,
                "instances": group.instances.map { instance -> [String: Any] in
                    [
                        "index": instance.mapIndex ?? 0, "id": instance.id, "runID": runID, "href": encode(instance.id),
                        "state": Format.state(instance.status.rawValue), "attempts": instance.attempts.count,
                        "error": instance.attempts.last?.error ?? "", "hasLog": instance.attempts.contains { $0.startedAt != nil },
                    ]
                },
            ]
        }
    }

    /// Runs with more tasks than this show a selection of them in the timeline and attempts.
    static let foldAbove = 100
    /// How many of the tasks that finished last a folded run shows.
    static let lastFinished = 25

    /// The rows (indices of `timeline.rows`) a run with more than ``foldAbove`` tasks shows: the
    /// critical path, every task that did not succeed or was retried, and the ``lastFinished``
    /// tasks that finished last (what held the run up); nil: all of them.
    static func tasksWorthShowing(_ timeline: Timeline) -> [Int]? {
        guard timeline.rows.count > foldAbove else { return nil }
        var shown = Set<Int>()
        for (index, row) in timeline.rows.enumerated()
        where row.critical || row.task.status != .success || row.task.attempts.count > 1 {
            shown.insert(index)
        }
        let ends = timeline.rows.indices.map { ($0, timeline.rows[$0].segments.last?.end ?? timeline.start) }
        for (index, _) in ends.sorted(by: { $0.1 > $1.1 }).prefix(lastFinished) { shown.insert(index) }
        return shown.count == timeline.rows.count ? nil : shown.sorted()
    }
}
