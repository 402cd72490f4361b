import DeerFlowCore
import DeerFlowNotifications
import Testing

/// `config/notifications.yaml` exactly as the monitoring chapter writes it.
let seedNotificationsYAML = """
# config/notifications.yaml
notifications:
  channels:
    slack:
      webhook: https://hooks.slack.com/services/...
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
      from: alerts@example.com
      to:
        - oncall@example.com

  routing:
    - match:
        severity: critical
      channels: [pagerduty, slack]

    - match:
        severity: warning
      channels: [slack]

    - match:
        severity: info
      channels: [email]
"""

/// The same file as the issue writes it, in flow style.
let compactNotificationsYAML = """
notifications:
  channels:
    slack:
      webhook: https://hooks.slack.com/services/...
      channel: "#deerflow-alerts"
      templates:
        critical: |
          :rotating_light: *CRITICAL ALERT*
          *Alert:* {{ .AlertName }}
          *Description:* {{ .Description }}
          *Value:* {{ .Value }}
    pagerduty:
      service_key: ${PAGERDUTY_KEY}
      severity_mapping: {critical: critical, warning: warning, info: info}
    email:
      smtp_host: smtp.example.com
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

/// The errors of parsing `yaml` (which must fail).
func configErrors(_ yaml: String, environment: [String: String] = ["PAGERDUTY_KEY": "k"]) -> [FileError] {
    do {
        _ = try NotificationsConfigFile.parse(yaml: yaml, file: "notifications.yaml", environment: environment)
        Issue.record("expected errors for:\n\(yaml)")
        return []
    } catch {
        return error.errors
    }
}

@Suite("notifications.yaml")
struct ConfigTests {
    @Test("the chapter's file loads as written", arguments: [seedNotificationsYAML, compactNotificationsYAML])
    func seedFileLoads(yaml: String) throws {
        let config = try NotificationsConfigFile.parse(
            yaml: yaml, file: "config/notifications.yaml", environment: ["PAGERDUTY_KEY": "0123456789abcdef0123456789abcdef"])
        #expect(config.channels.map(\.name) == ["slack", "pagerduty", "email"])
        guard case .slack(let slack) = config.channel(named: "slack"),
              case .pagerDuty(let pagerDuty) = config.channel(named: "pagerduty"),
              case .email(let email) = config.channel(named: "email")
        else {
            Issue.record("wrong channel types: \(config.channels)")
            return
        }
        #expect(slack.url == "https://hooks.slack.com/services/...")
        #expect(slack.channel == "#deerflow-alerts")
        #expect(slack.username == nil && slack.iconEmoji == nil)
        #expect(slack.timeout == .seconds(10))
        #expect(slack.templates.bySeverity["critical"]?.source.hasPrefix(":rotating_light: *CRITICAL ALERT*\n*Alert:* {{ .AlertName }}") == true)
        #expect(slack.templates.fallback == .defaultSlack)

        #expect(pagerDuty.routingKey == "0123456789abcdef0123456789abcdef")
        #expect(pagerDuty.url == "https://events.pagerduty.com/v2/enqueue")
        #expect(pagerDuty.severityMapping == ["critical": .critical, "warning": .warning, "info": .info])
        #expect(pagerDuty.source == "deerflow")

        #expect(email.host == "smtp.example.com")
        #expect(email.port == 25)
        #expect(email.startTLS == .auto)
        #expect(email.from == "alerts@example.com")
        #expect(email.to == ["oncall@example.com"])
        #expect(email.credentials == nil)
        #expect(email.timeout == .seconds(30))
        #expect(email.hello == "localhost")
        #expect(email.subject == .defaultEmailSubject)

        #expect(config.routes.map(\.channels) == [["pagerduty", "slack"], ["slack"], ["email"]])
        #expect(config.routes.map(\.match) == [["severity": "critical"], ["severity": "warning"], ["severity": "info"]])
        #expect(config.routes.allSatisfy { !$0.continue && $0.matchRegex.isEmpty })
        #expect(config.repeatInterval == .seconds(4 * 3600))
        #expect(config.groupWait == .zero)
    }

    @Test("a missing environment variable is an error naming it, with its line")
    func missingVariable() {
        let errors = configErrors(seedNotificationsYAML, environment: [:])
        #expect(errors.count == 1)
        let error = errors.first
        #expect(error?.message == "environment variable 'PAGERDUTY_KEY' is not set")
        #expect(error?.line == 15)
        #expect(error?.key == "notifications.channels.pagerduty.service_key")
        #expect(error?.description.hasPrefix("notifications.yaml:15:") == true)
    }

    @Test("optional keys")
    func optionalKeys() throws {
        let yaml = """
            notifications:
              repeat_interval: 1h
              group_wait: 10s
              channels:
                slack:
                  webhook: https://hooks.slack.com/services/T/B/X
                  url: http://127.0.0.1:8080/slack
                  username: DeerFlow
                  icon_emoji: ":deer:"
                  timeout: 2s
                  templates:
                    default: "{{ .AlertName }}"
                slack-ops:
                  type: slack
                  webhook: https://hooks.slack.com/services/T/B/Y
                pagerduty:
                  routing_key: ${PD_KEY:-fallback-key}
                  url: http://127.0.0.1:9/v2/enqueue
                  summary: "{{ .AlertName }} on {{ .Labels.instance }}"
                  component: "{{ .Labels.workflow }}"
                  group: "{{ .Labels.queue }}"
                  class: "{{ .AlertName }}"
                  source: deerflow-prod
                email:
                  smtp_host: mail.example.com
                  starttls: true
                  username: alerts
                  password: ${SMTP_PASSWORD}
                  from: "DeerFlow Alerts <alerts@example.com>"
                  to: oncall@example.com
                  subject: "{{ .Severity }}: {{ .AlertName }}"
                  hello: deerflow.example.com
                  timeout: 5s
                  tls: {insecure_skip_verify: true}
                email-local:
                  type: email
                  smtp_host: 127.0.0.1
                  smtp_port: 2525
                  starttls: false
                  from: a@example.com
                  to: [b@example.com, "Ops <ops@example.com>"]
              routing:
                - match_re: {alertname: "Scheduler.*", severity: "crit|warn.*"}
                  channels: [slack]
                  continue: true
                - channels: slack-ops
            """
        let config = try NotificationsConfigFile.parse(yaml: yaml, file: "n.yaml", environment: ["SMTP_PASSWORD": "s3cret"])
        #expect(config.repeatInterval == .seconds(3600))
        #expect(config.groupWait == .seconds(10))
        #expect(config.channels.map(\.name) == ["slack", "slack-ops", "pagerduty", "email", "email-local"])
        guard case .slack(let slack) = config.channel(named: "slack"), case .slack(let ops) = config.channel(named: "slack-ops"),
              case .pagerDuty(let pagerDuty) = config.channel(named: "pagerduty"), case .email(let email) = config.channel(named: "email"),
              case .email(let local) = config.channel(named: "email-local")
        else {
            Issue.record("wrong channel types")
            return
        }
        #expect(slack.url == "http://127.0.0.1:8080/slack")
        #expect(slack.username == "DeerFlow" && slack.iconEmoji == ":deer:")
        #expect(slack.timeout == .seconds(2))
        #expect(slack.templates.fallback.source == "{{ .AlertName }}")
        #expect(ops.url == "https://hooks.slack.com/services/T/B/Y")
        #expect(pagerDuty.routingKey == "fallback-key")
        #expect(pagerDuty.url == "http://127.0.0.1:9/v2/enqueue")
        #expect(pagerDuty.summary?.source == "{{ .AlertName }} on {{ .Labels.instance }}")
        #expect(pagerDuty.component != nil && pagerDuty.group != nil && pagerDuty.class != nil)
        #expect(pagerDuty.source == "deerflow-prod")
        #expect(email.port == 587)
        #expect(email.startTLS == .always)
        #expect(email.credentials == .init(username: "alerts", password: "s3cret"))
        #expect(email.from == "DeerFlow Alerts <alerts@example.com>")
        #expect(email.to == ["oncall@example.com"])
        #expect(email.subject.source == "{{ .Severity }}: {{ .AlertName }}")
        #expect(email.hello == "deerflow.example.com")
        #expect(email.timeout == .seconds(5))
        #expect(email.tlsInsecureSkipVerify)
        #expect(local.port == 2525 && local.startTLS == .never)
        #expect(local.to == ["b@example.com", "Ops <ops@example.com>"])
        #expect(config.routes.count == 2)
        #expect(config.routes[0].continue)
        #expect(config.routes[0].matchRegex.mapValues(\.pattern) == ["alertname": "Scheduler.*", "severity": "crit|warn.*"])
        #expect(config.routes[1].channels == ["slack-ops"])
        #expect(config.routes[1].match.isEmpty && config.routes[1].matchRegex.isEmpty)
    }

    @Test("an empty file configures nothing")
    func emptyFile() throws {
        let config = try NotificationsConfigFile.parse(yaml: "# nothing yet\n", file: "n.yaml", environment: [:])
        #expect(config.channels.isEmpty && config.routes.isEmpty)
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var line: Int
        var key: String
        var message: String
        var testDescription: String { name }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(
            name: "unknown channel in routing",
            yaml: """
                notifications:
                  channels:
                    slack: {webhook: "https://hooks.slack.com/services/T/B/X"}
                  routing:
                    - match: {severity: critical}
                      channels: [slak]
                """, line: 6, key: "notifications.routing[0].channels[0]", message: "unknown channel 'slak' (did you mean 'slack'?)"),
        ErrorCase(
            name: "unknown key",
            yaml: """
                notifications:
                  channels:
                    slack:
                      webhook: https://hooks.slack.com/services/T/B/X
                      chanel: "#x"
                """, line: 5, key: "notifications.channels.slack.chanel", message: "unknown key 'chanel' (did you mean 'channel'?)"),
        ErrorCase(
            name: "unknown top-level key",
            yaml: """
                notifications:
                  channels: {}
                  repeat: 1h
                """, line: 3, key: "notifications.repeat", message: "unknown key 'repeat' (did you mean 'repeat_interval'?)"),
        ErrorCase(
            name: "bad URL",
            yaml: """
                notifications:
                  channels:
                    slack:
                      webhook: hooks.slack.com/services/T/B/X
                """, line: 4, key: "notifications.channels.slack.webhook", message: "'hooks.slack.com/services/T/B/X' is not an http(s) URL"),
        ErrorCase(
            name: "bad PagerDuty URL",
            yaml: """
                notifications:
                  channels:
                    pagerduty:
                      service_key: k
                      url: ftp://events.pagerduty.com
                """, line: 5, key: "notifications.channels.pagerduty.url", message: "'ftp://events.pagerduty.com' is not an http(s) URL"),
        ErrorCase(
            name: "bad e-mail address",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      from: alerts@example.com
                      to:
                        - oncall@example.com
                        - oncall.example.com
                """, line: 8, key: "notifications.channels.email.to[1]",
            message: "'oncall.example.com' is not an e-mail address (write name@example.com or \"Name <name@example.com>\")"),
        ErrorCase(
            name: "bad sender",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      from: "alerts at example"
                      to: [oncall@example.com]
                """, line: 5, key: "notifications.channels.email.from",
            message: "'alerts at example' is not an e-mail address (write name@example.com or \"Name <name@example.com>\")"),
        ErrorCase(
            name: "duplicate channel",
            yaml: """
                notifications:
                  channels:
                    slack:
                      webhook: https://hooks.slack.com/services/T/B/X
                    slack:
                      webhook: https://hooks.slack.com/services/T/B/Y
                """, line: 5, key: "slack", message: "duplicate key 'slack' (first defined at line 3)"),
        ErrorCase(
            name: "channel listed twice in a route",
            yaml: """
                notifications:
                  channels:
                    slack: {webhook: "https://hooks.slack.com/services/T/B/X"}
                  routing:
                    - channels: [slack, slack]
                """, line: 5, key: "notifications.routing[0].channels[1]", message: "channel 'slack' is listed twice"),
        ErrorCase(
            name: "empty to",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      from: alerts@example.com
                      to: []
                """, line: 6, key: "notifications.channels.email.to", message: "needs at least one recipient"),
        ErrorCase(
            name: "missing to",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      from: alerts@example.com
                """, line: 4, key: "notifications.channels.email.to", message: "missing required key 'to'"),
        ErrorCase(
            name: "unknown placeholder in a block template",
            yaml: """
                notifications:
                  channels:
                    slack:
                      webhook: https://hooks.slack.com/services/T/B/X
                      templates:
                        critical: |
                          *Alert:* {{ .AlertName }}
                          *Value:* {{ .Valeu }}
                """, line: 8, key: "notifications.channels.slack.templates.critical",
            message: "unknown placeholder '{{ .Valeu }}' (did you mean '{{ .Value }}'?)"),
        ErrorCase(
            name: "Prometheus syntax in a subject",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      from: alerts@example.com
                      to: [oncall@example.com]
                      subject: "Value {{ $value }}"
                """, line: 7, key: "notifications.channels.email.subject",
            message: "'{{ $value }}' is Prometheus rule syntax, not a notification placeholder (use '{{ .Value }}')"),
        ErrorCase(
            name: "unknown channel type",
            yaml: """
                notifications:
                  channels:
                    teams:
                      webhook: https://example.com/x
                """, line: 3, key: "notifications.channels.teams",
            message: "unknown channel 'teams': name it slack, pagerduty or email, or give its type (type: slack)"),
        ErrorCase(
            name: "invalid PagerDuty severity",
            yaml: """
                notifications:
                  channels:
                    pagerduty:
                      service_key: k
                      severity_mapping: {critical: page}
                """, line: 5, key: "notifications.channels.pagerduty.severity_mapping.critical",
            message: "unknown PagerDuty severity 'page' (expected one of: critical, error, warning, info)"),
        ErrorCase(
            name: "invalid starttls",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      starttls: maybe
                      from: alerts@example.com
                      to: [oncall@example.com]
                """, line: 5, key: "notifications.channels.email.starttls", message: "expected true, false or auto, got 'maybe'"),
        ErrorCase(
            name: "host with port",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com:587
                      from: alerts@example.com
                      to: [oncall@example.com]
                """, line: 4, key: "notifications.channels.email.smtp_host",
            message: "'smtp.example.com:587' contains a port: write smtp_host: smtp.example.com and smtp_port: 587"),
        ErrorCase(
            name: "invalid match_re",
            yaml: """
                notifications:
                  channels:
                    slack: {webhook: "https://hooks.slack.com/services/T/B/X"}
                  routing:
                    - match_re: {severity: "crit(ical"}
                      channels: [slack]
                """, line: 5, key: "notifications.routing[0].match_re.severity", message: "'crit(ical' is not a valid regular expression"),
        ErrorCase(
            name: "unknown route key",
            yaml: """
                notifications:
                  channels:
                    slack: {webhook: "https://hooks.slack.com/services/T/B/X"}
                  routing:
                    - matches: {severity: critical}
                      channels: [slack]
                """, line: 5, key: "notifications.routing[0].matches", message: "unknown key 'matches' (did you mean 'match'?)"),
        ErrorCase(
            name: "zero repeat interval",
            yaml: """
                notifications:
                  repeat_interval: 0
                """, line: 2, key: "notifications.repeat_interval", message: "must be longer than 0"),
        ErrorCase(
            name: "password without username",
            yaml: """
                notifications:
                  channels:
                    email:
                      smtp_host: smtp.example.com
                      password: x
                      from: alerts@example.com
                      to: [oncall@example.com]
                """, line: 4, key: "notifications.channels.email.username", message: "missing required key 'username'"),
    ]

    @Test("errors name file, line and key", arguments: errorCases)
    func errors(_ errorCase: ErrorCase) {
        let errors = configErrors(errorCase.yaml)
        #expect(errors.count == 1, "\(errors)")
        guard let error = errors.first else { return }
        #expect(error.file == "notifications.yaml")
        #expect(error.line == errorCase.line, "\(error)")
        #expect(error.key == errorCase.key, "\(error)")
        #expect(error.message == errorCase.message, "\(error)")
    }

    @Test("every problem is reported, not just the first")
    func collectsAll() {
        let errors = configErrors("""
            notifications:
              channels:
                slack:
                  webhook: not a url
                email:
                  smtp_host: smtp.example.com
                  from: nobody
                  to: []
              routing:
                - channels: [pager]
            """)
        #expect(errors.map(\.line) == [4, 7, 8, 10])
    }

    @Test("load reports a missing file")
    func missingFile() {
        #expect(throws: FileErrors.self) {
            try NotificationsConfigFile.load(path: "/nonexistent/notifications.yaml", environment: [:])
        }
    }
}
