@testable import DeerFlowCLI
@testable import DeerFlowServer
import DeerFlow
import DeerFlowAlerting
import DeerFlowNotifications
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import Testing

/// What the dispatcher queues for alert transitions: grouping per channel, repeats after
/// `repeat_interval`, once per transition, restored alerts not notified again. On a real SQLite
/// store's outbox, without delivering (the end-to-end tests deliver).
@Suite("Notification dispatcher")
struct NotificationDispatcherTests {
    static let yaml = """
        notifications:
          repeat_interval: 1h
          channels:
            slack:
              webhook: http://127.0.0.1:9/hook
            pagerduty:
              service_key: key
              url: http://127.0.0.1:9/v2/enqueue
          routing:
            - match: {severity: critical}
              channels: [pagerduty, slack]
            - match: {severity: warning}
              channels: [slack]
        """

    static func alert(_ name: String, severity: String, state: Alert.State = .firing, at start: Date) -> Alert {
        Alert(
            name: name, group: "deerflow", labels: ["alertname": name, "severity": severity], annotations: ["summary": name], state: state,
            activeAt: start, firedAt: state == .firing ? start.addingTimeInterval(300) : nil, resolvedAt: nil, value: 1)
    }

    func withDispatcher(_ body: (NotificationDispatcher, SQLiteWorkflowStore) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = SQLiteWorkflowStore(path: directory.file("db.sqlite"))
        try await store.prepare()
        let configuration = try NotificationsConfigFile.parse(yaml: Self.yaml, file: "notifications.yaml", environment: [:])
        let metrics = try EngineMetrics(registry: MetricsRegistry())
        let dispatcher = NotificationDispatcher(configuration: configuration, store: store, metrics: metrics, logger: Logger(label: "test"))
        do {
            try await body(dispatcher, store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    static func queued(_ store: SQLiteWorkflowStore) async throws -> [(channel: String, alerts: [String], status: String)] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try await store.outbox(status: nil, limit: 100).reversed().map { message in
            let notification = try decoder.decode(AlertNotification.self, from: Data(message.payload.utf8))
            return (message.channel, notification.alerts.map(\.name), notification.status.rawValue)
        }
    }

    @Test("alerts firing in one evaluation become one message per channel, routed by severity")
    func grouping() async throws {
        try await withDispatcher { (dispatcher: NotificationDispatcher, store: SQLiteWorkflowStore) async throws in
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let lag = Self.alert("SchedulerLag", severity: "critical", at: now)
            let failures = Self.alert("HighWorkflowFailureRate", severity: "critical", at: now)
            let backlog = Self.alert("TaskQueueBacklog", severity: "warning", at: now)
            await dispatcher.handle([.firing(lag), .firing(failures), .firing(backlog), .pending(Self.alert("Other", severity: "critical", state: .pending, at: now))],
                                    firing: [lag, failures, backlog], now: now)
            let messages = try await Self.queued(store)
            // One message per channel, in the order notifications.yaml declares the channels.
            #expect(messages.map(\.channel) == ["slack", "pagerduty"])
            #expect(messages.first?.alerts == ["SchedulerLag", "HighWorkflowFailureRate", "TaskQueueBacklog"])
            #expect(messages.last?.alerts == ["SchedulerLag", "HighWorkflowFailureRate"])
            #expect(messages.allSatisfy { $0.status == "firing" })
        }
    }

    @Test("a transition reported again queues nothing; a still-firing alert repeats after repeat_interval; resolution is queued once")
    func repeatsAndOnce() async throws {
        try await withDispatcher { (dispatcher: NotificationDispatcher, store: SQLiteWorkflowStore) async throws in
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            let lag = Self.alert("SchedulerLag", severity: "warning", at: start)
            await dispatcher.handle([.firing(lag)], firing: [lag], now: start)
            await dispatcher.handle([.firing(lag)], firing: [lag], now: start.addingTimeInterval(15))
            #expect(try await Self.queued(store).count == 1, "the same transition twice")
            await dispatcher.handle([], firing: [lag], now: start.addingTimeInterval(30 * 60))
            #expect(try await Self.queued(store).count == 1, "before repeat_interval")
            await dispatcher.handle([], firing: [lag], now: start.addingTimeInterval(61 * 60))
            #expect(try await Self.queued(store).count == 2, "after repeat_interval")
            await dispatcher.handle([], firing: [lag], now: start.addingTimeInterval(62 * 60))
            #expect(try await Self.queued(store).count == 2, "the repeat restarts the interval")
            var resolved = lag
            resolved.state = .resolved
            resolved.resolvedAt = start.addingTimeInterval(70 * 60)
            await dispatcher.handle([.resolved(resolved)], firing: [], now: start.addingTimeInterval(70 * 60))
            await dispatcher.handle([.resolved(resolved)], firing: [], now: start.addingTimeInterval(70 * 60 + 15))
            let messages = try await Self.queued(store)
            #expect(messages.map(\.status) == ["firing", "firing", "resolved"])
            #expect(messages.allSatisfy { $0.channel == "slack" })
        }
    }

    @Test("an alert restored as firing after a restart repeats only after repeat_interval from the restart")
    func restoredAlertsAreNotNotifiedAgain() async throws {
        try await withDispatcher { (dispatcher: NotificationDispatcher, store: SQLiteWorkflowStore) async throws in
            let restart = Date(timeIntervalSince1970: 1_800_000_000)
            let lag = Self.alert("SchedulerLag", severity: "critical", at: restart.addingTimeInterval(-3600))
            await dispatcher.restore(firing: [lag], now: restart)
            await dispatcher.handle([], firing: [lag], now: restart.addingTimeInterval(60))
            #expect(try await Self.queued(store).isEmpty)
            await dispatcher.handle([], firing: [lag], now: restart.addingTimeInterval(3601))
            #expect(try await Self.queued(store).map(\.channel) == ["slack", "pagerduty"])
        }
    }
}
