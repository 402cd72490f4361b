import DeerFlowNotifications
import Foundation
import Testing

@Suite("Templates")
struct TemplateTests {
    let alert = makeAlert(
        "HighWorkflowFailureRate", severity: "critical", labels: ["workflow": "etl", "queue": "default"],
        annotations: ["summary": "High workflow failure rate", "description": "Failure rate is 15%", "runbook": "https://runbooks/failures"],
        value: 0.15)

    @Test("every placeholder")
    func everyPlaceholder() throws {
        let cases: [(String, String)] = [
            ("{{ .AlertName }}", "HighWorkflowFailureRate"),
            ("{{ .Description }}", "Failure rate is 15%"),
            ("{{ .Summary }}", "High workflow failure rate"),
            ("{{ .Value }}", "0.15"),
            ("{{ .Severity }}", "critical"),
            ("{{ .Status }}", "firing"),
            ("{{ .Labels.workflow }}", "etl"),
            ("{{ .Labels.missing }}", ""),
            ("{{ .Annotations.runbook }}", "https://runbooks/failures"),
            ("{{ .StartsAt }}", "2024-06-01T12:00:00.000Z"),
            ("{{ .EndsAt }}", ""),
            ("{{ .Labels }}", "map[queue:default severity:critical workflow:etl]"),
            ("{{.AlertName}}", "HighWorkflowFailureRate"),
            ("a {{- .Status -}} b", "afiringb"),
            ("a {{/* a comment */}}b", "a b"),
        ]
        for (source, expected) in cases {
            #expect(try NotificationTemplate(source).render(alert) == expected, "\(source)")
        }
        let resolved = makeAlert(status: .resolved)
        #expect(try NotificationTemplate("{{ .Status }} at {{ .EndsAt }}").render(resolved) == "resolved at 2024-06-01T12:10:00.000Z")
    }

    @Test("values print as Go prints a float64", arguments: [
        (75.0, "75"), (0.15, "0.15"), (1500.0, "1500"), (1e6, "1e+06"), (0.00001, "1e-05"), (-2.5, "-2.5"), (123456.0, "123456"),
    ])
    func values(value: Double, expected: String) throws {
        #expect(try NotificationTemplate("{{ .Value }}").render(makeAlert(value: value)) == expected)
        #expect(try NotificationTemplate("[{{ .Value }}]").render(makeAlert(value: nil)) == "[]")
    }

    @Test("the chapter's Slack template")
    func chapterTemplate() throws {
        let template = try NotificationTemplate("""
            :rotating_light: *CRITICAL ALERT*
            *Alert:* {{ .AlertName }}
            *Description:* {{ .Description }}
            *Value:* {{ .Value }}

            """)
        #expect(template.render(alert) == """
            :rotating_light: *CRITICAL ALERT*
            *Alert:* HighWorkflowFailureRate
            *Description:* Failure rate is 15%
            *Value:* 0.15

            """)
    }

    @Test("a grouped notification renders each alert and joins the parts")
    func grouping() throws {
        let template = try NotificationTemplate("{{ .AlertName }} is {{ .Status }}\n")
        let alerts = [makeAlert("A"), makeAlert("B", status: .resolved)]
        #expect(template.render(alerts) == "A is firing\n\nB is resolved")
        #expect(template.render(alerts, separator: "\n---\n") == "A is firing\n---\nB is resolved")

        let templates = NotificationTemplates(bySeverity: ["critical": try NotificationTemplate("CRIT {{ .AlertName }}")], fallback: try NotificationTemplate("{{ .Severity }} {{ .AlertName }}"))
        #expect(templates.render([makeAlert("A"), makeAlert("B", severity: "warning"), makeAlert("C", severity: nil)]) == "CRIT A\n\nwarning B\n\n C")
    }

    @Test("built-in templates leave out lines whose placeholders are empty")
    func defaults() {
        let bare = makeAlert("Bare", severity: nil, value: nil)
        #expect(NotificationTemplate.defaultSlack.render(bare) == "*[firing] Bare*")
        #expect(NotificationTemplate.defaultSlack.render(alert) == """
            *[firing] HighWorkflowFailureRate*
            High workflow failure rate
            Failure rate is 15%
            Severity: critical
            Value: 0.15
            """)
        #expect(NotificationTemplate.defaultEmailBody.render(bare) == """
            [firing] Bare
            Started: 2024-06-01T12:00:00.000Z
            Labels: map[]
            """)
        #expect(NotificationTemplate.defaultEmailSubject.render(alert) == "[firing] HighWorkflowFailureRate")
    }

    @Test("unknown placeholders and other actions are errors with their position", arguments: [
        ("{{ .Valeu }}", 1, 1, "unknown placeholder '{{ .Valeu }}' (did you mean '{{ .Value }}'?)"),
        ("ok\n  {{ .Foo }}", 2, 3, "unknown placeholder '{{ .Foo }}' (known: .AlertName, .Annotations, .Description, .EndsAt, .Labels, .Severity, .StartsAt, .Status, .Summary, .Value, .Labels.<name>, .Annotations.<name>)"),
        ("{{ $value }}", 1, 1, "'{{ $value }}' is Prometheus rule syntax, not a notification placeholder (use '{{ .Value }}')"),
        ("{{ $labels.job }}", 1, 1, "'{{ $labels.job }}' is Prometheus rule syntax, not a notification placeholder (use '{{ .Labels.job }}')"),
        ("x {{ .Value | humanize }}", 1, 3, "unsupported template action '{{ .Value | humanize }}': only placeholders such as {{ .AlertName }} or {{ .Labels.severity }} are allowed (no functions, pipelines or conditions)"),
        ("{{ if .Value }}x{{ end }}", 1, 1, "unsupported template action '{{ if .Value }}': only placeholders such as {{ .AlertName }} or {{ .Labels.severity }} are allowed (no functions, pipelines or conditions)"),
        ("{{ .Labels.a.b }}", 1, 1, "'{{ .Labels.a.b }}': write '{{ .Labels.<name> }}' with a single name"),
        ("{{ .Value.x }}", 1, 1, "'{{ .Value.x }}': .Value has no fields (only .Labels and .Annotations do)"),
        ("abc {{ .AlertName", 1, 5, "unterminated '{{' (close it with '}}')"),
    ])
    func errors(source: String, line: Int, column: Int, message: String) {
        #expect(throws: NotificationTemplateError(line: line, column: column, message: message)) {
            try NotificationTemplate(source)
        }
    }
}

@Suite("Alert model")
struct AlertModelTests {
    @Test("the fingerprint is stable, order-independent and differs per label set")
    func fingerprint() {
        let one = NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["severity": "critical", "instance": "a"])
        #expect(one.count == 16 && one.allSatisfy(\.isHexDigit))
        #expect(one == NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["instance": "a", "severity": "critical"]))
        #expect(one == NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["instance": "a", "severity": "critical", "alertname": "SchedulerLag"]))
        #expect(one != NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["severity": "critical", "instance": "b"]))
        #expect(one != NotificationAlert.fingerprint(name: "Other", labels: ["severity": "critical", "instance": "a"]))
        #expect(NotificationAlert.fingerprint(name: "x", labels: ["ab": "c"]) != NotificationAlert.fingerprint(name: "x", labels: ["a": "bc"]))
        // Pinned: the value must not change between releases (PagerDuty dedup keys depend on it).
        #expect(NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["severity": "critical"]) == pinnedFingerprint)
        #expect(makeAlert().fingerprint == NotificationAlert.fingerprint(name: "SchedulerLag", labels: ["severity": "critical"]))
    }

    @Test("alerts and notifications round-trip through JSON")
    func codable() throws {
        let notification = AlertNotification(channel: "slack", alerts: [makeAlert(), makeAlert("B", status: .resolved)])
        let data = try JSONEncoder().encode(notification)
        #expect(try JSONDecoder().decode(AlertNotification.self, from: data) == notification)
        #expect(notification.status == .firing)
        #expect(AlertNotification(channel: "x", alerts: [makeAlert(status: .resolved)]).status == .resolved)
    }
}

let pinnedFingerprint = "43c16a68d28432eb"  // FNV-1a 64 of "alertname\xffSchedulerLag\xfeseverity\xffcritical\xfe"
