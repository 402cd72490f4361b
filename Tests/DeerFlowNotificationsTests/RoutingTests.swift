import DeerFlowNotifications
import Testing

@Suite("Routing")
struct RoutingTests {
    let seed = try! NotificationsConfigFile.parse(yaml: seedNotificationsYAML, file: "n.yaml", environment: ["PAGERDUTY_KEY": "k"])

    @Test("the chapter's routes: first match by severity")
    func seedRoutes() {
        let router = NotificationRouter(configuration: seed)
        #expect(router.channels(for: makeAlert(severity: "critical")) == ["pagerduty", "slack"])
        #expect(router.channels(for: makeAlert(severity: "warning")) == ["slack"])
        #expect(router.channels(for: makeAlert(severity: "info")) == ["email"])
    }

    @Test("an alert no route matches goes nowhere")
    func noMatch() {
        let router = NotificationRouter(configuration: seed)
        #expect(router.channels(for: makeAlert(severity: "debug")).isEmpty)
        #expect(router.channels(for: makeAlert(severity: nil)).isEmpty)
        #expect(router.notifications(for: [makeAlert(severity: "debug")]).isEmpty)
    }

    @Test("the first matching route wins unless it continues")
    func firstMatchAndContinue() throws {
        let routes: [NotificationsConfigFile.Route] = [
            .init(match: ["severity": "critical", "team": "data"], channels: ["pagerduty"]),
            .init(match: ["severity": "critical"], channels: ["slack"], continue: true),
            .init(matchRegex: ["alertname": try LabelPattern("Scheduler.*")], channels: ["email", "slack"]),
            .init(channels: ["fallback"]),
        ]
        let router = NotificationRouter(routes: routes)
        #expect(router.channels(for: makeAlert("X", labels: ["team": "data"])) == ["pagerduty"])
        #expect(router.channels(for: makeAlert("SchedulerLag")) == ["slack", "email"])
        #expect(router.channels(for: makeAlert("WorkerPoolExhausted")) == ["slack", "fallback"])
        #expect(router.channels(for: makeAlert("Other", severity: "warning")) == ["fallback"])
    }

    @Test("match_re is anchored; a missing label is the empty string")
    func regex() throws {
        let pattern = try LabelPattern("warn.*|crit")
        #expect(pattern.matches("warning") && pattern.matches("crit"))
        #expect(!pattern.matches("prewarning") && !pattern.matches("critical"))
        let empty = NotificationsConfigFile.Route(matchRegex: ["team": try LabelPattern(".*")], channels: ["a"])
        #expect(empty.matches(makeAlert()))
        let route = NotificationsConfigFile.Route(match: ["team": ""], channels: ["a"])
        #expect(route.matches(makeAlert()))
        #expect(!route.matches(makeAlert(labels: ["team": "x"])))
        let byName = NotificationsConfigFile.Route(match: ["alertname": "SchedulerLag"], channels: ["a"])
        #expect(byName.matches(makeAlert("SchedulerLag")))
    }

    @Test("alerts of one evaluation become one notification per channel, in channel order")
    func grouping() {
        let router = NotificationRouter(configuration: seed)
        let lag = makeAlert("SchedulerLag", severity: "critical")
        let failures = makeAlert("HighWorkflowFailureRate", severity: "critical")
        let backlog = makeAlert("TaskQueueBacklog", severity: "warning")
        let info = makeAlert("Info", severity: "info", status: .resolved)
        let notifications = router.notifications(for: [lag, backlog, failures, info])
        #expect(notifications.map(\.channel) == ["slack", "pagerduty", "email"])
        #expect(notifications[0].alerts.map(\.name) == ["SchedulerLag", "TaskQueueBacklog", "HighWorkflowFailureRate"])
        #expect(notifications[1].alerts.map(\.name) == ["SchedulerLag", "HighWorkflowFailureRate"])
        #expect(notifications[2].alerts.map(\.name) == ["Info"])
        #expect(notifications[2].status == .resolved)
    }
}
