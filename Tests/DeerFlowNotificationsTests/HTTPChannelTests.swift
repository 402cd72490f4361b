import DeerFlowTestSupport
import DeerFlowTesting
import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Testing

/// The body of a recorded request as a JSON object.
func jsonObject(_ request: TestHTTPServer.Request) throws -> [String: JSONValue] {
    guard case .object(let object) = try JSONValue(parsing: request.body) else {
        throw JSONError.notAnObject(request.body)
    }
    return object
}

enum JSONError: Error { case notAnObject(String) }

/// Delivers and returns the DeliveryError (failing the test when delivery succeeds).
func deliveryError(_ channel: some NotificationChannel, _ notification: AlertNotification) async -> DeliveryError? {
    do {
        try await channel.deliver(notification)
        Issue.record("delivery succeeded, an error was expected")
        return nil
    } catch {
        return error
    }
}

@Suite("Slack channel")
struct SlackChannelTests {
    @Test("posts the webhook JSON and accepts 200 ok")
    func wireFormat() async throws {
        let server = try await TestHTTPServer.start()
        defer { Task { await server.stop() } }
        let templates = NotificationTemplates(
            bySeverity: ["critical": try NotificationTemplate(":rotating_light: *CRITICAL ALERT*\n*Alert:* {{ .AlertName }}\n*Value:* {{ .Value }}\n")],
            fallback: .defaultSlack)
        let slack = SlackChannel(configuration: .init(
            url: server.url("/services/T000/B000/XXXX"), channel: "#deerflow-alerts", username: "DeerFlow", iconEmoji: ":deer:", templates: templates))
        try await slack.deliver(AlertNotification(channel: "slack", alerts: [makeAlert(value: 75)]))

        let requests = server.requests
        #expect(requests.count == 1)
        let request = try #require(requests.first)
        #expect(request.method == "POST")
        #expect(request.uri == "/services/T000/B000/XXXX")
        #expect(request.header("Content-Type") == "application/json")
        let body = try jsonObject(request)
        #expect(Set(body.keys) == ["channel", "text", "username", "icon_emoji"])
        #expect(body["channel"] == "#deerflow-alerts")
        #expect(body["username"] == "DeerFlow")
        #expect(body["icon_emoji"] == ":deer:")
        #expect(body["text"] == ":rotating_light: *CRITICAL ALERT*\n*Alert:* SchedulerLag\n*Value:* 75")
    }

    @Test("optional fields are left out; grouped alerts make one message")
    func grouped() async throws {
        let server = try await TestHTTPServer.start()
        defer { Task { await server.stop() } }
        let slack = SlackChannel(configuration: .init(url: server.url("/hook"), templates: .init(fallback: try NotificationTemplate("{{ .AlertName }} {{ .Status }}"))))
        try await slack.deliver(AlertNotification(channel: "slack", alerts: [makeAlert("A"), makeAlert("B", status: .resolved)]))
        let request = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(try jsonObject(request) == ["text": "A firing\n\nB resolved"])
    }

    @Test("HTTP errors are classified", arguments: HTTPErrorCase.all)
    func errors(_ errorCase: HTTPErrorCase) async throws {
        let server = try await TestHTTPServer.start()
        defer { Task { await server.stop() } }
        server.enqueue(errorCase.answer)
        let slack = SlackChannel(configuration: .init(url: server.url("/hook"), timeout: errorCase.timeout))
        let error = try #require(await deliveryError(slack, AlertNotification(channel: "slack", alerts: [makeAlert()])))
        errorCase.check(error, channel: "slack")
        // The next attempt (a retry) goes through; with a timeout a loaded machine cannot miss.
        let patient = SlackChannel(configuration: .init(url: server.url("/hook"), timeout: .seconds(20)))
        try await patient.deliver(AlertNotification(channel: "slack", alerts: [makeAlert()]))
    }

    @Test("any 2xx is delivered: Slack answers 200 ok, Slack-compatible receivers other bodies")
    func anyTwoHundredIsDelivered() async throws {
        for (status, body) in [(200, "ok"), (200, ""), (200, #"{"success":true}"#), (200, #"{"ok":true}"#), (204, "")] {
            let server = try await TestHTTPServer.start(fallback: .respond(status: status, body: body))
            let slack = SlackChannel(configuration: .init(url: server.url("/hook")))
            do {
                try await slack.deliver(AlertNotification(channel: "slack", alerts: [makeAlert()]))
            } catch {
                Issue.record("HTTP \(status) '\(body)' counted as a failure: \(error)")
            }
            #expect(server.requests.count == 1)
            await server.stop()
        }
    }

    @Test("a JSON answer with ok: false is a permanent error naming Slack's reason")
    func okFalse() async throws {
        let server = try await TestHTTPServer.start(
            fallback: .respond(status: 200, headers: [("Content-Type", "application/json")], body: #"{"ok":false,"error":"channel_not_found"}"#))
        defer { Task { await server.stop() } }
        let slack = SlackChannel(configuration: .init(url: server.url("/hook")))
        let error = try #require(await deliveryError(slack, AlertNotification(channel: "slack", alerts: [makeAlert()])))
        #expect(error.code == .rejected && !error.isRetryable)
        #expect(error.message.contains("ok: false: channel_not_found"), "\(error)")
        #expect(error.message.contains("check `channel` in notifications.yaml"), "\(error)")
    }

    @Test("Slack's 4xx answers are permanent and say what to do")
    func rejectedWithHint() async throws {
        let server = try await TestHTTPServer.start(fallback: .respond(status: 404, body: "no_service"))
        defer { Task { await server.stop() } }
        let slack = SlackChannel(configuration: .init(url: server.url("/hook")))
        let error = try #require(await deliveryError(slack, AlertNotification(channel: "slack", alerts: [makeAlert()])))
        #expect(error.code == .rejected && !error.isRetryable && error.statusCode == 404)
        #expect(error.message.contains("no_service") && error.message.contains("create a new incoming webhook"), "\(error)")
    }

    @Test("a refused connection is retryable")
    func connectionRefused() async throws {
        let refused = try RefusedPort()
        let url = "http://127.0.0.1:\(refused.port)/hook"
        defer { withExtendedLifetime(refused) {} }
        let slack = SlackChannel(configuration: .init(url: url, timeout: .seconds(1)))
        let error = try #require(await deliveryError(slack, AlertNotification(channel: "slack", alerts: [makeAlert()])))
        #expect(error.isRetryable)
        // AsyncHTTPClient retries connecting until the deadline, then reports the last failure.
        #expect(error.code == .connectionFailed, "\(error)")
        #expect(error.message.contains("refused"), "\(error)")
    }
}

/// A failing answer and what it must be classified as.
struct HTTPErrorCase: Sendable, CustomTestStringConvertible {
    var name: String
    var answer: TestHTTPServer.Answer
    var code: DeliveryError.Code
    var retryable: Bool
    var status: Int?
    var retryAfter: Duration?

    var testDescription: String { name }

    /// The channel's timeout: short only where no answer comes, so the test is quick; where one
    /// comes, 500 ms (as before) could pass on a loaded machine and turn the case into a timeout.
    var timeout: Duration { code == .timeout ? .milliseconds(500) : .seconds(20) }

    static let all: [HTTPErrorCase] = [
        .init(name: "500", answer: .respond(status: 500, body: "rollup_error"), code: .serverError, retryable: true, status: 500),
        .init(name: "503 with Retry-After", answer: .respond(status: 503, headers: [("Retry-After", "7")]), code: .serverError, retryable: true, status: 503, retryAfter: .seconds(7)),
        .init(name: "429 with Retry-After: 3", answer: .respond(status: 429, headers: [("Retry-After", "3")], body: "rate limited"), code: .rateLimited, retryable: true, status: 429, retryAfter: .seconds(3)),
        .init(name: "429 without Retry-After", answer: .respond(status: 429), code: .rateLimited, retryable: true, status: 429),
        .init(name: "400", answer: .respond(status: 400, body: "invalid_payload"), code: .rejected, retryable: false, status: 400),
        .init(name: "404", answer: .respond(status: 404, body: "no_service"), code: .rejected, retryable: false, status: 404),
        .init(name: "no answer", answer: .silence, code: .timeout, retryable: true),
    ]

    func check(_ error: DeliveryError, channel: String) {
        #expect(error.code == code, "\(error)")
        #expect(error.isRetryable == retryable)
        #expect(error.statusCode == status)
        #expect(error.retryAfter == retryAfter)
        #expect(error.channel == channel)
    }
}

@Suite("PagerDuty channel")
struct PagerDutyChannelTests {
    static let accepted = TestHTTPServer.Answer.respond(
        status: 202, headers: [("Content-Type", "application/json")], body: #"{"status":"success","message":"Event processed","dedup_key":"x"}"#)

    func channel(_ server: TestHTTPServer, timeout: Duration = .seconds(10)) -> PagerDutyChannel {
        var configuration = PagerDutyChannel.Configuration(
            routingKey: "R0UT1NGKEY", url: server.url("/v2/enqueue"), severityMapping: ["critical": .critical, "warning": .warning, "info": .info, "page": .error],
            timeout: timeout)
        configuration.component = try? NotificationTemplate("{{ .Labels.workflow }}")
        return PagerDutyChannel(configuration: configuration)
    }

    /// Checks an Events API v2 body against the schema and returns it.
    @discardableResult
    func checkEvent(_ request: TestHTTPServer.Request) throws -> [String: JSONValue] {
        #expect(request.method == "POST")
        #expect(request.uri == "/v2/enqueue")
        #expect(request.header("Content-Type") == "application/json")
        let event = try jsonObject(request)
        #expect(event["routing_key"] == "R0UT1NGKEY")
        let action = try #require(event["event_action"]?.stringValue)
        #expect(["trigger", "resolve"].contains(action))
        let dedupKey = try #require(event["dedup_key"]?.stringValue)
        #expect(dedupKey.hasPrefix("deerflow-") && dedupKey.utf8.count <= 255)
        if action == "resolve" {
            #expect(Set(event.keys) == ["routing_key", "event_action", "dedup_key"])
            return event
        }
        #expect(Set(event.keys) == ["routing_key", "event_action", "dedup_key", "payload"])
        guard case .object(let payload) = try #require(event["payload"]) else {
            Issue.record("payload is not an object")
            return event
        }
        let summary = try #require(payload["summary"]?.stringValue)
        #expect(!summary.isEmpty && summary.count <= 1024)
        #expect(payload["source"]?.stringValue?.isEmpty == false)
        #expect(["critical", "error", "warning", "info"].contains(try #require(payload["severity"]?.stringValue)))
        #expect(Timestamp.parse(try #require(payload["timestamp"]?.stringValue)) != nil)
        #expect(Set(payload.keys).isSubset(of: ["summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"]))
        guard case .object(let details) = try #require(payload["custom_details"]) else {
            Issue.record("custom_details is not an object")
            return event
        }
        #expect(details["labels"] != nil && details["annotations"] != nil)
        return event
    }

    @Test("one trigger event per alert, with the Events API v2 schema")
    func trigger() async throws {
        let server = try await TestHTTPServer.start(fallback: Self.accepted)
        defer { Task { await server.stop() } }
        let pagerDuty = channel(server)
        let lag = makeAlert("SchedulerLag", labels: ["workflow": "etl"], annotations: ["summary": "Scheduler lag detected", "description": "Lag is 75 seconds"], value: 75)
        let backlog = makeAlert("TaskQueueBacklog", severity: "page", annotations: ["description": "1500 tasks in queue"], value: 1500)
        try await pagerDuty.deliver(AlertNotification(channel: "pagerduty", alerts: [lag, backlog]))

        let requests = server.requests
        #expect(requests.count == 2)
        let first = try checkEvent(requests[0])
        #expect(first["event_action"] == "trigger")
        #expect(first["dedup_key"]?.stringValue == "deerflow-" + lag.fingerprint)
        #expect(first["payload"] == [
            "summary": "SchedulerLag: Scheduler lag detected",
            "source": "deerflow",
            "severity": "critical",
            "timestamp": "2024-06-01T12:00:00.000Z",
            "component": "etl",
            "custom_details": [
                "labels": ["severity": "critical", "workflow": "etl"],
                "annotations": ["summary": "Scheduler lag detected", "description": "Lag is 75 seconds"],
                "value": 75,
            ],
        ])
        let second = try checkEvent(requests[1])
        guard case .object(let payload) = second["payload"] else { return }
        #expect(payload["severity"] == "error")
        #expect(payload["summary"] == "TaskQueueBacklog: 1500 tasks in queue")
        #expect(payload["component"] == nil)
    }

    @Test("dedup_key is stable across calls and differs per label set; resolve sends only the key")
    func dedupKey() async throws {
        let server = try await TestHTTPServer.start(fallback: Self.accepted)
        defer { Task { await server.stop() } }
        let pagerDuty = channel(server)
        let a = makeAlert(labels: ["instance": "a"])
        let b = makeAlert(labels: ["instance": "b"])
        try await pagerDuty.deliver(AlertNotification(channel: "pagerduty", alerts: [a]))
        try await pagerDuty.deliver(AlertNotification(channel: "pagerduty", alerts: [makeAlert(labels: ["instance": "a"])]))
        try await pagerDuty.deliver(AlertNotification(channel: "pagerduty", alerts: [b]))
        var resolved = a
        resolved.status = .resolved
        resolved.endsAt = Date()
        try await pagerDuty.deliver(AlertNotification(channel: "pagerduty", alerts: [resolved]))

        let events = try server.requests.map { try checkEvent($0) }
        let keys = events.compactMap { $0["dedup_key"]?.stringValue }
        #expect(keys.count == 4)
        #expect(keys[0] == keys[1])
        #expect(keys[0] != keys[2])
        #expect(keys[3] == keys[0])
        #expect(events[3] == ["routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": .string(keys[0])])
    }

    @Test("severity mapping and a summary cut to 1024 characters")
    func severityAndSummary() throws {
        let pagerDuty = PagerDutyChannel(configuration: .init(routingKey: "k", severityMapping: ["critical": .critical, "warning": .info]))
        #expect(pagerDuty.severity(of: makeAlert(severity: "warning")) == .info)
        #expect(pagerDuty.severity(of: makeAlert(severity: "error")) == .error)
        #expect(pagerDuty.severity(of: makeAlert(severity: "info")) == .info)
        #expect(pagerDuty.severity(of: makeAlert(severity: "page")) == .error)
        #expect(pagerDuty.severity(of: makeAlert(severity: nil)) == .error)
        let long = makeAlert(annotations: ["summary": String(repeating: "x", count: 3000)])
        guard case .object(let event) = pagerDuty.event(for: long), case .object(let payload) = event["payload"] else {
            Issue.record("not an object")
            return
        }
        #expect(payload["summary"]?.stringValue?.count == 1024)
        #expect(PagerDutyChannel.dedupKey(for: long) == "deerflow-" + NotificationAlert.fingerprint(name: long.name, labels: long.labels))
    }

    @Test("HTTP errors are classified", arguments: HTTPErrorCase.all)
    func errors(_ errorCase: HTTPErrorCase) async throws {
        let server = try await TestHTTPServer.start(fallback: Self.accepted)
        defer { Task { await server.stop() } }
        server.enqueue(errorCase.answer)
        let pagerDuty = channel(server, timeout: errorCase.timeout)
        let error = try #require(await deliveryError(pagerDuty, AlertNotification(channel: "pagerduty", alerts: [makeAlert()])))
        errorCase.check(error, channel: "pagerduty")
        try await channel(server, timeout: .seconds(20)).deliver(AlertNotification(channel: "pagerduty", alerts: [makeAlert()]))
    }

    @Test("a rejected event in a 2xx answer is a permanent error")
    func rejectedStatus() async throws {
        let server = try await TestHTTPServer.start(fallback: .respond(status: 202, body: #"{"status":"invalid event","message":"Event object is invalid"}"#))
        defer { Task { await server.stop() } }
        let error = try #require(await deliveryError(channel(server), AlertNotification(channel: "pagerduty", alerts: [makeAlert()])))
        #expect(error.code == .rejected && !error.isRetryable)
    }
}
