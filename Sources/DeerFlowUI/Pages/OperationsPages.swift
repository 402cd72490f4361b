import DeerFlow
import DeerFlowAlerting
import DeerFlowCore
import Foundation
import Hummingbird

extension WebUI {
    // MARK: Overview

    /// `GET /`: what is going on now and in the last hour and day. Four store calls.
    func overview(_ request: Request) async throws -> Response {
        let now = Date()
        let store = engine.store
        // Every open overview refreshes on changes: what they show is read from the store at most
        // once a second, however many are open.
        let figures = try await caches.overview.value {
            async let statisticsCall = store.statistics(now: now)
            async let hourCall = store.runCounts(since: now.addingTimeInterval(-3600))
            async let dayCall = store.runCounts(since: now.addingTimeInterval(-86400))
            async let workersCall = store.workers()
            async let recentCall = store.runs(RunQuery(limit: 10))
            return OverviewFigures(
                statistics: try await statisticsCall, hour: try await hourCall, day: try await dayCall,
                workers: try await workersCall, recent: try await recentCall)
        }
        let (statistics, hour, day, workers, recent) = (figures.statistics, figures.hour, figures.day, figures.workers, figures.recent)
        let live = workers.filter { $0.state == .active }
        let alerts = monitoring?.activeAlerts() ?? []
        let firing = alerts.filter { $0.state == .firing }.count
        func rate(_ counts: [RunStatus: Int]) -> String {
            let finished = (counts[.success] ?? 0) + (counts[.failed] ?? 0) + (counts[.cancelled] ?? 0)
            return Format.percent(counts[.success] ?? 0, of: finished)
        }
        let oldest = statistics.queues.values.compactMap(\.oldestReadyAt).min()
        var context: [String: Any] = [
            "active": String(statistics.activeRuns),
            "hourSucceeded": String(hour[.success] ?? 0), "hourFailed": String(hour[.failed] ?? 0), "hourRate": rate(hour),
            "daySucceeded": String(day[.success] ?? 0), "dayFailed": String(day[.failed] ?? 0), "dayRate": rate(day),
            "queued": String(statistics.queuedTotal), "oldest": oldest.map { Format.duration(now.timeIntervalSince($0)) } ?? "—",
            "busy": String(live.reduce(0) { $0 + $1.busy }), "slots": String(live.reduce(0) { $0 + $1.slots }), "workers": String(live.count),
            "lag": Format.duration(statistics.schedulerLag(now: now)), "firing": String(firing), "anyFiring": firing > 0,
            "pendingAlerts": String(alerts.count - firing),
            "queues": statistics.queues.sorted { $0.key < $1.key }.map { name, queue -> [String: Any] in
                ["name": name, "depth": String(queue.depth), "oldest": queue.oldestReadyAt.map { Format.duration(now.timeIntervalSince($0)) } ?? "—"]
            },
            "hasQueues": !statistics.queues.isEmpty,
            "recent": recent.runs.map { Self.runRow($0, now: now) },
        ]
        let panels = [
            UIPanel(title: "Runs finished per minute", expressions: ["sum(rate(deerflow_workflows_total[5m])) * 60"], unit: "short"),
            UIPanel(title: "Failed runs per minute", expressions: ["sum(rate(deerflow_workflows_total{status=\"failed\"}[5m])) * 60"], unit: "short"),
            UIPanel(title: "Queued tasks", expressions: ["sum(deerflow_queue_depth)"], unit: "short"),
            UIPanel(title: "Workers busy", expressions: ["avg(deerflow_worker_utilization)"], unit: "percentunit"),
            UIPanel(title: "Scheduler lag", expressions: ["max(deerflow_scheduler_lag_seconds)"], unit: "s"),
        ]
        let charts = self.charts(panels, now: now)
        context["charts"] = charts.isEmpty ? false : ["items": charts]
        context["noHistory"] = noHistoryText
        return page(request, title: "Overview", section: "/", content: Templates.render("overview", context), live: "/live")
    }

    var noHistoryText: String {
        monitoring == nil
            ? "No metric history in this process: charts need metrics on (metrics.yaml) and the scheduler in this process (in-process alerting samples the history)."
            : "The history is still empty: the first samples arrive within one scrape interval."
    }

    /// Charts of the last hour: each panel's expressions evaluated at 40 instants (the sum of
    /// their samples), as SVG paths. `showExpressions`: each chart lists its PromQL, and says
    /// when DeerFlow's evaluator does not understand an expression (the Metrics page).
    func charts(_ panels: [UIPanel], now: Date, showExpressions: Bool = false) -> [[String: Any]] {
        guard let history = monitoring?.history, history.sampleCount > 0 else { return [] }
        let points = 40
        let width = 300.0
        let height = 90.0
        let left = 4.0
        let right = width - 4
        let top = 16.0
        let bottom = height - 16
        let f = DAGLayout.format
        // A panel's values are shared by every page that shows it for a few seconds (PageCaches).
        return panels.map { panel -> [String: Any] in
            let values = caches.charts.value(panel.expressions.joined(separator: "\n")) {
                let parsed = panel.expressions.compactMap { try? PromQLExpression(parsing: $0) }
                var values: [Double?] = []
                for step in 0..<points {
                    let time = now.addingTimeInterval(-3600 + Double(step) * 3600 / Double(points - 1))
                    var sum: Double?
                    for expression in parsed {
                        guard let result = try? expression.evaluate(at: time, in: history) else { continue }
                        for sample in result.samples where sample.value.isFinite { sum = (sum ?? 0) + sample.value }
                    }
                    values.append(sum)
                }
                return values
            }
            let known = values.compactMap { $0 }
            let maximum = max(known.max() ?? 0, 0.000_001)
            var line = ""
            var area = ""
            var firstX: Double?
            var lastX = left
            for (step, value) in values.enumerated() {
                guard let value else { continue }
                let x = left + (right - left) * Double(step) / Double(points - 1)
                let y = bottom - (bottom - top) * max(0, value) / maximum
                line += (line.isEmpty ? "M" : "L") + "\(f(x)),\(f(y))"
                if firstX == nil { firstX = x }
                lastX = x
            }
            if let firstX, !line.isEmpty { area = line + "L\(f(lastX)),\(f(bottom))L\(f(firstX)),\(f(bottom))Z" }
            var chart: [String: Any] = [
                "title": panel.title, "width": f(width), "height": f(height), "left": f(left), "right": f(right), "bottom": f(bottom),
                "labelY": f(height - 3), "max": Format.figure(known.max() ?? 0, unit: panel.unit),
                "current": Format.figure(values.last.flatMap { $0 } ?? .nan, unit: panel.unit),
            ]
            chart["promql"] = !showExpressions ? false : ["items": panel.expressions.map { text -> [String: Any] in
                do {
                    _ = try PromQLExpression(parsing: text)
                    return ["text": text, "problem": false]
                } catch {
                    return ["text": text, "problem": "DeerFlow's evaluator does not understand it: \(error)"]
                }
            }]
            chart["line"] = line.isEmpty ? false : line
            chart["area"] = area.isEmpty ? false : area
            return chart
        }
    }

    // MARK: Workers

    /// `GET /workers`: one store call.
    func workersPage(_ request: Request) async throws -> Response {
        let now = Date()
        let workers = try await engine.store.workers().sorted { ($0.state == .active ? 0 : 1, $0.id) < ($1.state == .active ? 0 : 1, $1.id) }
        let draining = engine.isDraining ? Set(engine.localWorkerLoad.map(\.id)) : []
        let rows = workers.map { worker -> [String: Any] in
            let isDraining = draining.contains(worker.id) && worker.state == .active
            let state: [String: Any] = isDraining ? ["status": "pending", "glyph": "↘", "label": "draining"] : Format.state(worker.state.rawValue)
            let fraction = worker.slots == 0 ? 0 : Double(min(worker.busy, worker.slots)) / Double(worker.slots)
            let heartbeat = Format.duration(max(0, now.timeIntervalSince(worker.lastSeen)))
            var row: [String: Any] = ["id": worker.id, "state": state, "host": worker.host, "pid": String(worker.pid)]
            row["queues"] = worker.queues.joined(separator: ", ")
            row["busy"] = String(worker.busy)
            row["slots"] = String(worker.slots)
            row["barWidth"] = DAGLayout.format(80 * fraction)
            row["heartbeat"] = heartbeat
            row["version"] = worker.version
            row["started"] = Format.time(worker.startedAt)
            return row
        }
        return page(request, title: "Workers", section: "/workers", content: Templates.render("workers", ["workers": rows]), live: "/live")
    }

    // MARK: Alerts

    /// `GET /alerts`: the process's active alerts and the outbox's last deliveries (one store call).
    func alertsPage(_ request: Request) async throws -> Response {
        let alerts = (monitoring?.activeAlerts() ?? []).sorted { ($0.state == .firing ? 0 : 1, $0.name) < ($1.state == .firing ? 0 : 1, $1.name) }
        let messages = try await outbox?.outbox(status: nil, limit: 50) ?? []
        var context: [String: Any] = [
            "alerts": alerts.map { alert -> [String: Any] in
                let labels: [String] = alert.labels.filter { $0.key != "alertname" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                var row: [String: Any] = [
                    "name": alert.name, "state": Format.state(alert.state.rawValue), "labels": labels.joined(separator: " "),
                    "summary": alert.annotations["summary"] ?? "", "value": Format.figure(alert.value, unit: "short"),
                    "since": Format.time(alert.firedAt ?? alert.activeAt),
                ]
                row["description"] = Format.orFalse(alert.annotations["description"])
                return row
            },
            "deliveries": messages.map { message -> [String: Any] in
                let status = message.status == .pending && message.attempts > 0 ? "retrying" : message.status.rawValue
                return [
                    "created": Format.time(message.createdAt), "channel": message.channel, "key": message.key, "state": Format.state(status),
                    "attempts": String(message.attempts), "when": Format.time(message.deliveredAt ?? (message.status == .pending ? message.nextAttemptAt : nil)),
                    "error": message.lastError ?? "",
                ]
            },
        ]
        if let monitoring {
            context["evaluation"] = monitoring.evaluates
                ? "This process evaluates the alert rules over its own sampled metrics."
                : "Another process (the scheduler leader) evaluates the alert rules; this one only samples."
        } else {
            context["evaluation"] = "In-process alerting is off in this process (it needs metrics on and the scheduler)."
        }
        context["noDeliveries"] = outbox == nil ? "This process has no notification outbox." : "No notification has been queued yet."
        return page(request, title: "Alerts", section: "/alerts", content: Templates.render("alerts", context), live: "/live")
    }

    // MARK: Metrics

    /// `GET /dashboard`: the Grafana dashboard's panels from the in-process history.
    func dashboardPage(_ request: Request) -> Response {
        let charts = self.charts(configuration.panels, now: Date(), showExpressions: true)
        var context: [String: Any] = ["noHistory": noHistoryText]
        context["grafanaOnly"] = configuration.grafanaOnlyPanels.isEmpty ? false : configuration.grafanaOnlyPanels.joined(separator: ", ")
        context["charts"] = charts.isEmpty ? false : ["items": charts]
        return page(request, title: "Metrics", section: "/dashboard", content: Templates.render("dashboard", context))
    }
}
