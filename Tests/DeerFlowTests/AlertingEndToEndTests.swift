import DeerFlow
import DeerFlowAlerting
import DeerFlowObservability
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Alerts without Prometheus, end to end: a real `deerflow server` evaluates its own metrics,
/// fires HighWorkflowFailureRate for a workflow that keeps failing, and notifies a loopback Slack
/// webhook, a loopback PagerDuty Events v2 endpoint and a real SMTP server (aiosmtpd) — each of
/// which fails the first attempts — across a server restart in the middle of the retries.
@Suite("Alerting end to end")
struct AlertingEndToEndTests {
    static func rules() -> String {
        """
        groups:
          - name: deerflow
            rules:
              - alert: HighWorkflowFailureRate
                expr: |
                  sum(rate(deerflow_workflows_total{status="failed"}[10s]))
                  /
                  sum(rate(deerflow_workflows_total[10s])) > 0.1
                for: 2s
                labels:
                  severity: critical
                annotations:
                  summary: "High workflow failure rate"
                  description: "Failure rate is {{ $value | humanizePercentage }}"
        """
    }

    static func notifications(slack: String, pagerDuty: String, smtpPort: Int) -> String {
        """
        notifications:
          channels:
            slack:
              webhook: \(slack)
              channel: "#deerflow-alerts"
              templates:
                critical: |
                  :rotating_light: *CRITICAL ALERT*
                  *Alert:* {{ .AlertName }}
                  *Description:* {{ .Description }}
                  *Status:* {{ .Status }}
            pagerduty:
              service_key: ${TEST_PAGERDUTY_KEY}
              url: \(pagerDuty)
              severity_mapping: {critical: critical, warning: warning, info: info}
            email:
              smtp_host: 127.0.0.1
              smtp_port: \(smtpPort)
              starttls: false
              from: alerts@example.com
              to: [oncall@example.com]
          routing:
            - match: {severity: critical}
              channels: [pagerduty, slack, email]
        """
    }

    @Test("a failing workflow fires HighWorkflowFailureRate; Slack, PagerDuty and e-mail get it once each despite failures and a restart; fixed, it resolves")
    func firesNotifiesAndResolves() async throws {
        let slack = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "ok"))
        // Slack's rate limit, as its API sends it: the retry waits the 6 s it asks for, long enough for
        // the restart below to happen in between.
        slack.enqueue(.respond(status: 429, headers: [("Retry-After", "6")], body: "rate_limited"))
        let pagerDuty = try await TestHTTPServer.start(
            fallback: .respond(status: 202, headers: [("Content-Type", "application/json")], body: #"{"status":"success","message":"Event processed","dedup_key":"x"}"#))
        pagerDuty.enqueue(.respond(status: 500, body: "internal error"))
        let smtp = try await SMTPSink(failFirst: 1)
        defer { smtp.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let fixed = directory.file("fixed")
        try directory.write("workflows/flaky.yaml", """
            name: flaky
            tasks:
              - {id: check, type: shell, script: "test -f '\(fixed)'"}
            """)
        try directory.write("config/metrics.yaml", "metrics:\n  prometheus:\n    scrape_interval: 1s\n")
        try directory.write("config/alerts.yaml", Self.rules())
        try directory.write("config/notifications.yaml", Self.notifications(
            slack: slack.url("/services/T000/B000/XXXX"), pagerDuty: pagerDuty.url("/v2/enqueue"), smtpPort: smtp.port))
        let arguments = [
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ]
        let environment = ["TEST_PAGERDUTY_KEY": "test-routing-key", "DEERFLOW_DATABASE_URL": ""]

        var server = try ServerProcess(arguments, environment: environment)
        defer { server.stop() }
        var api = try await server.apiPort()
        // Failing runs until the alert fires.
        try await eventually("HighWorkflowFailureRate fires", timeout: .seconds(60)) {
            _ = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/flaky/runs", body: "{}", headers: [:])
            return try await Self.alertState(api: api, "HighWorkflowFailureRate") == "firing"
        }
        let listed = try await CLITests.deerflow(["alerts", "--api", "http://127.0.0.1:\(api)"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stdoutLines.first?.hasPrefix("ALERT") == true, "\(listed)")
        #expect(listed.stdoutLines.contains { $0.hasPrefix("HighWorkflowFailureRate") && $0.contains("firing") && $0.contains("critical") }, "\(listed)")
        let metrics = try await TestServer.send("GET", "http://127.0.0.1:\(try await server.metricsPort())/metrics", body: nil, headers: [:]).text
        #expect(metrics.contains(#"deerflow_alerts_firing{alertname="HighWorkflowFailureRate",severity="critical"} 1"#), "\(metrics)")

        // The first Slack attempt is rate-limited (429); restart the server while deliveries are being retried.
        try await eventually("Slack got its first attempt", timeout: .seconds(30)) { !slack.requests.isEmpty }
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.log.suffix(3000))")
        let firstLog = server.log
        server = try ServerProcess(arguments, environment: environment)
        api = try await server.apiPort()
        // The restarted server still sees the alert firing (restored), keeps failing runs coming,
        // and delivers what was pending.
        try await eventually("every channel got the firing notification", timeout: .seconds(90)) {
            _ = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/flaky/runs", body: "{}", headers: [:])
            let delivered = try smtp.messages().filter { !$0.rejected }
            return slack.requests.count >= 2 && pagerDuty.requests.count >= 2 && !delivered.isEmpty
        }
        #expect(try await Self.alertState(api: api, "HighWorkflowFailureRate") == "firing")

        // Fixed: successful runs only; the failure rate drops and the alert resolves.
        try directory.write("fixed", "")
        try await eventually("resolved notifications arrived", timeout: .seconds(90)) {
            _ = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/workflows/flaky/runs", body: "{}", headers: [:])
            let accepted = try smtp.messages().filter { !$0.rejected }
            return slack.requests.count >= 3 && pagerDuty.requests.count >= 3 && accepted.count >= 2
        }
        // Give a duplicate the time to show up, then count.
        try await Task.sleep(for: .seconds(3))
        let context = "first server log:\n\(firstLog.suffix(4000))\nsecond server log:\n\(server.log.suffix(4000))"

        // Slack: 429, then the firing message once, then the resolved one once.
        let slackBodies = slack.requests.map { $0.body }
        #expect(slackBodies.count == 3, "\(slackBodies)\n\(context)")
        for request in slack.requests {
            #expect(request.method == "POST" && request.uri == "/services/T000/B000/XXXX")
            #expect(request.header("Content-Type")?.hasPrefix("application/json") == true)
        }
        let slackJSON = slackBodies.compactMap { try? JSONValue(parsing: $0) }
        #expect(slackJSON.allSatisfy { $0["channel"]?.stringValue == "#deerflow-alerts" })
        let slackTexts = slackJSON.compactMap { $0["text"]?.stringValue }
        #expect(slackTexts.count == 3)
        #expect(slackTexts.prefix(2).allSatisfy { $0.contains("*Alert:* HighWorkflowFailureRate") && $0.contains("CRITICAL") })
        #expect(slackTexts.prefix(2).allSatisfy { $0.contains("*Status:* firing") })
        #expect(slackTexts.last?.contains("resolved") == true, "\(slackTexts)")

        // PagerDuty Events v2: 500, the trigger once, the resolve once, with one dedup_key.
        let events = pagerDuty.requests.compactMap { try? JSONValue(parsing: $0.body) }
        #expect(events.count == 3, "\(pagerDuty.requests.map(\.body))\n\(context)")
        #expect(pagerDuty.requests.allSatisfy { $0.uri == "/v2/enqueue" })
        #expect(events.map { $0["event_action"]?.stringValue } == ["trigger", "trigger", "resolve"])
        #expect(events.allSatisfy { $0["routing_key"]?.stringValue == "test-routing-key" })
        let dedupKeys = Set(events.compactMap { $0["dedup_key"]?.stringValue })
        #expect(dedupKeys.count == 1, "one stable dedup_key per alert: \(dedupKeys)")
        #expect(events.first?["payload"]?["severity"]?.stringValue == "critical")
        #expect(events.first?["payload"]?["summary"]?.stringValue?.contains("HighWorkflowFailureRate") == true)

        // E-mail through real SMTP: one 451, then the firing message, then the resolved one.
        let mails = try smtp.messages()
        #expect(mails.map(\.rejected) == [true, false, false], "\(mails.map(\.data))\n\(context)")
        #expect(mails.allSatisfy { $0.mailFrom == "alerts@example.com" && $0.recipients == ["oncall@example.com"] })
        let accepted = mails.filter { !$0.rejected }
        #expect(accepted.first?.data.contains("HighWorkflowFailureRate") == true)
        #expect(accepted.first?.data.lowercased().contains("subject:") == true)
        #expect(accepted.last?.data.uppercased().contains("RESOLVED") == true, "\(accepted.last?.data ?? "")")

        #expect(try await Self.alertState(api: api, "HighWorkflowFailureRate") == nil)
        let after = try await TestServer.send("GET", "http://127.0.0.1:\(try await server.metricsPort())/metrics", body: nil, headers: [:]).text
        // Two Slack messages were sent (firing, then resolved), between them. The retry of the
        // firing one is normally left to the restarted server; on a machine slow enough to take
        // over 6 s to stop, the first server sends it.
        let sentByFirst = Self.sentNotifications(channel: "slack", log: firstLog)
        #expect(sentByFirst <= 1, "\(firstLog.suffix(4000))")
        #expect(Self.sentNotifications(channel: "slack", log: server.log) == 2 - sentByFirst, "\(server.log.suffix(4000))")
        #expect(after.contains(#"deerflow_notifications_total{channel="slack",status="sent"} \#(2 - sentByFirst)"#), "\(after)")
    }

    /// Counts the "notification sent" lines of a server's JSON log for one channel.
    static func sentNotifications(channel: String, log: String) -> Int {
        log.split(separator: "\n").filter { line in
            guard line.hasPrefix("{"), let object = try? JSONValue(parsing: String(line)) else { return false }
            return object["message"]?.stringValue == "notification sent" && object["channel"]?.stringValue == channel
        }.count
    }

    @Test("an Alertmanager webhook is routed to the channels once per transition; a bad payload gets a 400 naming the problem")
    func alertmanagerWebhook() async throws {
        let slack = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "ok"))
        let pagerDuty = try await TestHTTPServer.start(
            fallback: .respond(status: 202, headers: [("Content-Type", "application/json")], body: #"{"status":"success","message":"Event processed","dedup_key":"x"}"#))
        let smtp = try await SMTPSink()
        defer { smtp.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/notifications.yaml", Self.notifications(slack: slack.url("/hook"), pagerDuty: pagerDuty.url("/v2/enqueue"), smtpPort: smtp.port))
        let server = try ServerProcess([
            "server", "--config", directory.file("config"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ], environment: ["TEST_PAGERDUTY_KEY": "key-2", "DEERFLOW_DATABASE_URL": ""])
        defer { server.stop() }
        let api = try await server.apiPort()
        let url = "http://127.0.0.1:\(api)/api/v1/alertmanager/webhook"
        func payload(_ status: String) -> String {
            """
            {"version":"4","groupKey":"{}:{alertname=\\"SchedulerLag\\"}","status":"\(status)","receiver":"deerflow",
             "groupLabels":{"alertname":"SchedulerLag"},"commonLabels":{"alertname":"SchedulerLag","severity":"critical"},
             "commonAnnotations":{},"externalURL":"http://alertmanager:9093","truncatedAlerts":0,
             "alerts":[{"status":"\(status)","labels":{"alertname":"SchedulerLag","severity":"critical"},
                        "annotations":{"summary":"Scheduler lag detected","description":"Lag is 75 seconds"},
                        "startsAt":"2026-11-26T10:00:00.123456789Z","endsAt":"\(status == "resolved" ? "2026-11-26T10:05:00Z" : "0001-01-01T00:00:00Z")",
                        "generatorURL":"http://prometheus:9090/graph","fingerprint":"3f2a9c1d0b7e6a54"}]}
            """
        }
        let first = try await TestServer.send("POST", url, body: payload("firing"), headers: ["Content-Type": "application/json"])
        #expect(first.status == 202, "\(first.text)")
        #expect(first.json?["queued"] == .int(3))
        // Alertmanager sends the same group again (group_interval): nothing new is queued.
        let again = try await TestServer.send("POST", url, body: payload("firing"), headers: ["Content-Type": "application/json"])
        #expect(again.json?["queued"] == .int(0))
        let resolved = try await TestServer.send("POST", url, body: payload("resolved"), headers: ["Content-Type": "application/json"])
        #expect(resolved.json?["queued"] == .int(3))
        try await eventually("both notifications reached every channel", timeout: .seconds(30)) {
            let mails = try smtp.messages().count
            return slack.requests.count >= 2 && pagerDuty.requests.count >= 2 && mails >= 2
        }
        try await Task.sleep(for: .seconds(2))
        #expect(slack.requests.count == 2)
        let events = pagerDuty.requests.compactMap { try? JSONValue(parsing: $0.body) }
        #expect(events.map { $0["event_action"]?.stringValue } == ["trigger", "resolve"])
        #expect(events.allSatisfy { $0["dedup_key"]?.stringValue == events.first?["dedup_key"]?.stringValue })

        let bad = try await TestServer.send("POST", url, body: #"{"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-26T10:00:00Z"}]}"#, headers: ["Content-Type": "application/json"])
        #expect(bad.status == 400)
        #expect(bad.json?["error"]?["message"]?.stringValue == "alerts[0].labels has no alertname", "\(bad.text)")
        let notJSON = try await TestServer.send("POST", url, body: "alerts!", headers: ["Content-Type": "application/json"])
        #expect(notJSON.status == 400)
    }

    @Test("{{ .Value }} survives the trip through Prometheus and Alertmanager: the exported rules' value annotation feeds the webhook's alerts")
    func valueThroughAlertmanager() async throws {
        // Every exported rule carries the value as an annotation, which Alertmanager passes on.
        let rules = try RuleFile.parse(yaml: MonitoringContract().alertsYAML(), file: "alerts.yaml")
        for rule in rules.groups.flatMap(\.rules) {
            #expect(rule.annotations["value"] == "{{ $value }}", "\(rule.name) has no value annotation")
        }
        let slack = try await TestHTTPServer.start(fallback: .respond(status: 200, body: "ok"))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/notifications.yaml", """
            notifications:
              channels:
                slack:
                  webhook: \(slack.url("/hook"))
                  templates:
                    critical: "{{ .AlertName }} {{ .Status }}: {{ .Value }} ({{ .Description }})"
              routing:
                - match: {severity: critical}
                  channels: [slack]
            """)
        let server = try ServerProcess([
            "server", "--config", directory.file("config"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ], environment: ["DEERFLOW_DATABASE_URL": ""])
        defer { server.stop() }
        let api = try await server.apiPort()
        // The annotations as Prometheus renders SchedulerLag's at 120 s (alerts_test.yaml checks that rendering).
        let payload = """
            {"version":"4","status":"firing","receiver":"deerflow","groupLabels":{},"commonLabels":{},"commonAnnotations":{},
             "alerts":[{"status":"firing","labels":{"alertname":"SchedulerLag","severity":"critical"},
                        "annotations":{"summary":"Scheduler lag detected","description":"Lag is 120 seconds","value":"120"},
                        "startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"5e1f"}]}
            """
        let answer = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/alertmanager/webhook", body: payload, headers: ["Content-Type": "application/json"])
        #expect(answer.status == 202, "\(answer.text)")
        try await eventually("Slack got the alert", timeout: .seconds(30)) { !slack.requests.isEmpty }
        let text = try #require(slack.requests.first).body
        #expect(text.contains("SchedulerLag firing: 120 (Lag is 120 seconds)"), "\(text)")
    }

    @Test("a rule outside the supported PromQL stops the server with the file, line, rule and construct")
    func unsupportedRuleStopsTheStart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let rules = try directory.write("alerts.yaml", """
            groups:
              - name: custom
                rules:
                  - alert: QueueWillOverflow
                    expr: predict_linear(deerflow_tasks_queued[1h], 3600) > 5000
            """)
        let outcome = try await CLITests.deerflow([
            "server", "--rules", rules, "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stderr.contains("\(rules):5:"), "\(outcome)")
        #expect(outcome.stderr.contains("alert 'QueueWillOverflow': function 'predict_linear' is not supported"), "\(outcome)")
        #expect(!outcome.stderr.contains("crashed"), "\(outcome)")
    }

    /// The state of an alert in `GET /api/v1/alerts`, or nil when it is not pending or firing.
    static func alertState(api: Int, _ name: String) async throws -> String? {
        let answer = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/alerts", body: nil, headers: [:])
        guard case .array(let alerts)? = answer.json?["alerts"] else { throw TestFailure("no alerts in \(answer.text)") }
        return alerts.first { $0["name"]?.stringValue == name }?["state"]?.stringValue
    }
}

private extension JSONValue {
    subscript(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }
}
