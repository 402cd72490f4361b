import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `deerflow export alertmanager-config`: notifications.yaml as an Alertmanager configuration that
/// Alertmanager's own amtool accepts and routes the same way.
@Suite("Alertmanager config export")
struct AlertmanagerExportTests {
    /// The seed chapter's notifications.yaml, plus a warning route, a regex route and SMTP auth.
    static let notifications = """
        notifications:
          repeat_interval: 2h
          channels:
            slack:
              webhook: https://hooks.slack.com/services/T000/B000/XXXX
              channel: "#deerflow-alerts"
              templates:
                critical: |
                  :rotating_light: *CRITICAL ALERT*
                  *Alert:* {{ .AlertName }}
                  *Description:* {{ .Description }}
                  *Value:* {{ .Value }}
            pagerduty:
              service_key: ${PAGERDUTY_KEY}
              severity_mapping:
                critical: critical
                warning: warning
                info: info
            email:
              smtp_host: smtp.example.com
              smtp_port: 587
              starttls: true
              username: alerts
              password: ${SMTP_PASSWORD}
              from: alerts@example.com
              to:
                - oncall@example.com
                - team@example.com
          routing:
            - match:
                severity: critical
              channels: [pagerduty, slack]
            - match_re:
                alertname: "Task.*|Worker.*"
              match:
                severity: warning
              channels: [slack, email]
              continue: true
            - match:
                severity: warning
              channels: [email]
        """

    @Test("the exported alertmanager.yml passes amtool check-config, routes like notifications.yaml, and is private")
    func exportPassesAmtool() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/notifications.yaml", Self.notifications)
        let exported = try await CLITests.deerflow(
            ["export", "alertmanager-config", "--config", directory.file("config"), "--out", directory.file("out")],
            environment: ["PAGERDUTY_KEY": "R0UT1NGKEY", "SMTP_PASSWORD": "s3cret"])
        #expect(exported.status == 0, "\(exported)")
        let path = directory.file("out/alertmanager.yml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600, "the file holds secrets")

        let check = try PrometheusTool.execute("amtool", ["check-config", path])
        #expect(check.status == 0, "\(check.output)\n\(text)")
        #expect(check.output.contains("SUCCESS"), "\(check.output)")
        #expect(check.output.contains("3 receivers") || check.output.contains("receivers"), "\(check.output)")

        // amtool's own routing agrees with notifications.yaml's first-match routing.
        func receivers(_ labels: String...) throws -> String {
            let result = try PrometheusTool.execute("amtool", ["config", "routes", "test", "--config.file=\(path)"] + labels)
            #expect(result.status == 0, "\(result.output)")
            // amtool also warns that --config.file overrides --alertmanager.url: keep the answer.
            return result.output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("Warning:") }.joined(separator: "\n")
        }
        #expect(try receivers("severity=critical", "alertname=SchedulerLag") == "route-1-pagerduty-slack")
        #expect(try receivers("severity=warning", "alertname=TaskQueueBacklog") == "route-2-slack-email,route-3-email")
        #expect(try receivers("severity=warning", "alertname=Other") == "route-3-email")
        #expect(try receivers("severity=info") == "deerflow-unrouted")

        #expect(text.contains(#"routing_key: "R0UT1NGKEY""#))
        #expect(text.contains(#"auth_password: "s3cret""#))
        #expect(text.contains(#"smarthost: "smtp.example.com:587""#))
        #expect(text.contains("require_tls: true"))
        #expect(text.contains("repeat_interval: 2h"))
        #expect(text.contains(##"channel: "#deerflow-alerts""##))
        #expect(text.contains(#"{{ $alert.Labels.alertname }}"#))

        let missing = try await CLITests.deerflow(["export", "alertmanager-config", "--out", directory.file("none")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("notifications.yaml"), "\(missing)")
    }
}
