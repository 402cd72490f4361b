import DeerFlowTestSupport
import DeerFlowTesting
import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Testing

@Suite("Config → routing → channels")
struct EndToEndTests {
    @Test("a config with endpoint overrides routes each alert to loopback receivers, once per channel")
    func routeAndDeliver() async throws {
        let slackServer = try await TestHTTPServer.start()
        let pagerDutyServer = try await TestHTTPServer.start(fallback: .respond(status: 202, body: #"{"status":"success","dedup_key":"x"}"#))
        let smtpServer = try await TestSMTPServer.start()
        defer {
            Task {
                await slackServer.stop()
                await pagerDutyServer.stop()
                await smtpServer.stop()
            }
        }
        let yaml = """
            notifications:
              channels:
                slack:
                  webhook: https://hooks.slack.com/services/...
                  url: \(slackServer.url("/slack"))
                  channel: "#deerflow-alerts"
                  templates:
                    critical: |
                      :rotating_light: *CRITICAL ALERT*
                      *Alert:* {{ .AlertName }}
                      *Description:* {{ .Description }}
                      *Value:* {{ .Value }}
                pagerduty:
                  service_key: ${PAGERDUTY_KEY}
                  url: \(pagerDutyServer.url("/v2/enqueue"))
                  severity_mapping: {critical: critical, warning: warning, info: info}
                email:
                  smtp_host: 127.0.0.1
                  smtp_port: \(smtpServer.port)
                  from: alerts@example.com
                  to: [oncall@example.com]
              routing:
                - match: {severity: critical}
                  channels: [pagerduty, slack]
                - match: {severity: warning}
                  channels: [slack]
                - match: {severity: info}
                  channels: [email]
            """
        let config = try NotificationsConfigFile.parse(yaml: yaml, file: "notifications.yaml", environment: ["PAGERDUTY_KEY": "KEY"])
        let channels = config.makeChannels()
        #expect(Set(channels.keys) == ["slack", "pagerduty", "email"])
        let router = NotificationRouter(configuration: config)
        let alerts = [
            makeAlert("HighWorkflowFailureRate", severity: "critical", annotations: ["description": "Failure rate is 15%"], value: 0.15),
            makeAlert("SchedulerLag", severity: "critical", annotations: ["description": "Lag is 75 seconds"], value: 75),
            makeAlert("TaskQueueBacklog", severity: "warning", annotations: ["description": "1500 tasks in queue"], value: 1500),
            makeAlert("DiskAlmostFull", severity: "info", value: 0.9),
        ]
        for notification in router.notifications(for: alerts) {
            try await #require(channels[notification.channel]).deliver(notification)
        }
        #expect(slackServer.requests.count == 1)
        let text = try jsonObject(try #require(slackServer.requests.first))["text"]?.stringValue
        #expect(text == """
            :rotating_light: *CRITICAL ALERT*
            *Alert:* HighWorkflowFailureRate
            *Description:* Failure rate is 15%
            *Value:* 0.15

            :rotating_light: *CRITICAL ALERT*
            *Alert:* SchedulerLag
            *Description:* Lag is 75 seconds
            *Value:* 75

            *[firing] TaskQueueBacklog*
            1500 tasks in queue
            Severity: warning
            Value: 1500
            """)
        #expect(pagerDutyServer.requests.count == 2)
        #expect(smtpServer.transcript.messages.count == 1)
        #expect(parseMessage(smtpServer.transcript.messages[0].text).headers["subject"] == "[firing] DiskAlmostFull")
    }
}
