import DeerFlow
import DeerFlowAlerting
import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Turns alert transitions into notifications and delivers them through the store's outbox.
///
/// Routing follows `notifications.yaml`: alerts that change state in one evaluation are grouped
/// into one message per channel. Each message is written to the outbox with a key unique to its
/// transition and channel, so a transition is queued once however often it is reported. A
/// delivery loop (in every process that runs it; claims never overlap) sends due messages, and
/// retries failed ones (timeouts, 5xx, 429 with `Retry-After`) with exponential backoff. Pending
/// messages survive restarts.
final class NotificationDispatcher: Service, Sendable {
    /// Delivery settings.
    struct Settings: Sendable {
        /// First retry delay; doubles per attempt up to `maxRetryDelay`.
        var retryBase: Duration = .seconds(2)
        var maxRetryDelay: Duration = .seconds(300)
        /// Attempts before a message is given up (marked failed).
        var maxAttempts = 12
        /// How long a dispatcher holds a claimed message.
        var lease: Duration = .seconds(60)
        /// How often the outbox is looked at when nothing wakes the loop.
        var pollInterval: Duration = .seconds(1)
    }

    let configuration: NotificationsConfigFile
    private let channels: [String: any NotificationChannel]
    private let router: NotificationRouter
    private let store: any OutboxStore
    private let metrics: EngineMetrics
    private let logger: Logger
    private let settings: Settings
    private let wakeup = Wakeup()
    private let stopping = Atomic<Bool>(false)
    /// Fingerprint → when a firing notification for that alert was last queued (repeat_interval).
    private let lastQueued = Mutex<[String: Date]>([:])

    init(configuration: NotificationsConfigFile, store: any OutboxStore, metrics: EngineMetrics, logger: Logger, settings: Settings = Settings()) {
        self.configuration = configuration
        self.channels = configuration.makeChannels(logger: logger)
        self.router = NotificationRouter(configuration: configuration)
        self.store = store
        self.metrics = metrics
        self.logger = logger
        self.settings = settings
    }

    // MARK: Queueing

    /// Queues notifications for an evaluation's transitions (firing and resolved; pending ones
    /// are not notified) and repeats for alerts still firing after `repeat_interval`.
    func handle(_ transitions: [AlertTransition], firing: [Alert], now: Date) async {
        var changed: [NotificationAlert] = []
        var firingNow: Set<String> = []
        for transition in transitions {
            switch transition {
            case .pending:
                continue
            case .firing(let alert):
                let notified = Self.notificationAlert(alert, status: .firing)
                firingNow.insert(notified.fingerprint)
                lastQueued.withLock { $0[notified.fingerprint] = now }
                changed.append(notified)
            case .resolved(let alert):
                let notified = Self.notificationAlert(alert, status: .resolved)
                lastQueued.withLock { $0[notified.fingerprint] = nil }
                changed.append(notified)
            }
        }
        var repeats: [NotificationAlert] = []
        for alert in firing {
            let notified = Self.notificationAlert(alert, status: .firing)
            guard !firingNow.contains(notified.fingerprint) else { continue }
            let due = lastQueued.withLock { last -> Bool in
                guard let previous = last[notified.fingerprint], now.timeIntervalSince(previous) >= configuration.repeatInterval.seconds else { return false }
                last[notified.fingerprint] = now
                return true
            }
            if due { repeats.append(notified) }
        }
        await queue(changed, occasion: "transition", now: now)
        await queue(repeats, occasion: "repeat-\(Self.milliseconds(now))", now: now)
    }

    /// Alerts restored as firing after a restart count as notified now (repeats start from here).
    func restore(firing: [Alert], now: Date) async {
        lastQueued.withLock { last in
            for alert in firing { last[Self.notificationAlert(alert, status: .firing).fingerprint] = now }
        }
    }

    /// Queues alerts received from Alertmanager. A firing alert is queued once per
    /// `repeat_interval` (Alertmanager sends it again on its own schedule), a resolved one once.
    func handleExternal(_ alerts: [NotificationAlert], now: Date) async -> Int {
        let bucket = Int64(now.timeIntervalSince1970 / max(1, configuration.repeatInterval.seconds))
        let firing = alerts.filter { $0.status == .firing }
        let resolved = alerts.filter { $0.status == .resolved }
        return await queue(firing, occasion: "alertmanager-firing-\(bucket)", now: now)
            + queue(resolved, occasion: "alertmanager-resolved", now: now)
    }

    /// Routes `alerts` and writes one message per channel; returns how many were new.
    @discardableResult
    private func queue(_ alerts: [NotificationAlert], occasion: String, now: Date) async -> Int {
        guard !alerts.isEmpty else { return 0 }
        let notifications = router.notifications(for: alerts)
        if notifications.isEmpty {
            logger.notice("alerts matched no notification route", metadata: ["alerts": "\(alerts.map(\.name))"])
            return 0
        }
        let messages = notifications.compactMap { notification in
            OutboxPayload.message(notification, key: Self.key(notification, occasion: occasion), at: now)
        }
        let added = await OutboxPayload.enqueue(messages, in: store, logger: logger) ?? 0
        if added > 0 { wakeup.signal() }
        return added
    }

    /// Unique per channel, alert states and occasion: a transition reported twice maps to one key.
    static func key(_ notification: AlertNotification, occasion: String) -> String {
        let alerts = notification.alerts.map { alert in
            "\(alert.fingerprint):\(alert.status.rawValue):\(milliseconds(alert.startsAt)):\(alert.endsAt.map(milliseconds) ?? 0)"
        }.sorted().joined(separator: ",")
        var hash = FNV1a()
        hash.combine("\(alerts)|\(occasion)".utf8)
        return "\(notification.channel)|\(hash.hex)|\(occasion)"
    }

    static func notificationAlert(_ alert: Alert, status: NotificationAlert.Status) -> NotificationAlert {
        NotificationAlert(
            name: alert.name, labels: alert.labels, annotations: alert.annotations, value: alert.value.isFinite ? alert.value : nil,
            status: status, startsAt: alert.firedAt ?? alert.activeAt, endsAt: status == .resolved ? (alert.resolvedAt ?? Date()) : nil)
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    // MARK: Delivery

    func run() async throws {
        logger.info("notifications on", metadata: [
            "channels": "\(configuration.channels.map(\.name).joined(separator: ", "))", "routes": "\(configuration.routes.count)",
        ])
        // On shutdown, deliveries in flight finish (each has its channel's timeout): a message
        // the channel took but that is not yet marked delivered would otherwise go out twice.
        await withGracefulShutdownHandler {
            await self.deliveryLoop()
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.wakeup.signal()
        }
    }

    private func deliveryLoop() async {
        var failures = 0
        while !Task.isCancelled && !stopping.load(ordering: .relaxed) {
            let due: [OutboxMessage]
            do {
                due = try await store.claimOutbox(now: Date(), limit: 20, lease: settings.lease)
                failures = 0
            } catch {
                failures += 1
                logger.warning("could not read the notification outbox; retrying", metadata: ["error": "\(error)"])
                try? await Sleep.for(.milliseconds(min(5000, 100 << min(failures, 6))))
                continue
            }
            await withDiscardingTaskGroup { group in
                for message in due { group.addTask { await self.deliver(message) } }
            }
            if due.count == 20 { continue }
            // Sleep until woken by new messages or the poll interval passes.
            await wakeup.wait(until: .now + settings.pollInterval)
        }
    }

    private func deliver(_ message: OutboxMessage) async {
        guard let channel = channels[message.channel] else {
            await settle(message, .failed(error: "channel '\(message.channel)' is not configured in notifications.yaml"), status: "failed")
            return
        }
        guard let notification = OutboxPayload.notification(in: message) else {
            await settle(message, .failed(error: "the queued notification could not be read"), status: "failed")
            return
        }
        do {
            try await channel.deliver(notification)
            logger.info("notification sent", metadata: [
                "channel": "\(message.channel)", "status": "\(notification.status.rawValue)",
                "alerts": "\(notification.alerts.map(\.name).joined(separator: ","))", "attempt": "\(message.attempts + 1)",
            ])
            await settle(message, .delivered, status: "sent")
        } catch {
            let attempts = message.attempts + 1
            if error.isRetryable && attempts < settings.maxAttempts {
                let delay = error.retryAfter ?? backoff(attempts: attempts)
                logger.warning("notification not delivered; will retry", metadata: [
                    "channel": "\(message.channel)", "attempt": "\(attempts)", "retry_in_seconds": "\(delay.seconds)", "error": "\(error)",
                ])
                await settle(message, .retry(at: Date().addingTimeInterval(delay.seconds), error: error.description), status: "retried")
            } else {
                logger.error("notification failed; giving up", metadata: [
                    "channel": "\(message.channel)", "attempts": "\(attempts)", "error": "\(error)",
                ])
                await settle(message, .failed(error: error.description), status: "failed")
            }
        }
    }

    private func backoff(attempts: Int) -> Duration {
        let base = settings.retryBase.seconds * pow(2, Double(max(0, attempts - 1)))
        let capped = min(base, settings.maxRetryDelay.seconds)
        return .milliseconds(Int64(capped * Double.random(in: 0.8...1.0) * 1000))
    }

    private func settle(_ message: OutboxMessage, _ outcome: OutboxOutcome, status: String) async {
        metrics.recordNotification(channel: message.channel, status: status)
        do {
            try await store.settleOutbox(message.id, outcome: outcome, at: Date())
        } catch {
            // The claim ends with its lease and the message is tried again then.
            logger.error("could not record a notification's outcome", metadata: ["channel": "\(message.channel)", "error": "\(error)"])
        }
    }
}

/// Alert notifications as the outbox holds them: JSON of ``AlertNotification``, dates in
/// milliseconds. Alert transitions and run notifications are written, and delivered, alike.
enum OutboxPayload {
    /// The outbox message of a notification (nil if it cannot be encoded, which its types rule out).
    static func message(_ notification: AlertNotification, key: String, at now: Date) -> NewOutboxMessage? {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        guard let payload = try? encoder.encode(notification) else { return nil }
        return NewOutboxMessage(key: key, channel: notification.channel, payload: String(decoding: payload, as: UTF8.self), createdAt: now)
    }

    /// The notification a message holds, or nil when it cannot be read.
    static func notification(in message: OutboxMessage) -> AlertNotification? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try? decoder.decode(AlertNotification.self, from: Data(message.payload.utf8))
    }

    /// Writes messages to the outbox; returns how many were new, nil when they could not be
    /// written. The store may be restarting: this tries for about 7 s, then logs what was not
    /// queued.
    static func enqueue(_ messages: [NewOutboxMessage], in store: any OutboxStore, logger: Logger) async -> Int? {
        guard !messages.isEmpty else { return 0 }
        for delay in [0, 500, 1000, 2000, 4000] {
            if delay > 0 { try? await Sleep.for(.milliseconds(delay)) }
            do {
                return try await store.enqueue(messages)
            } catch {
                logger.warning("could not queue notifications; trying again", metadata: ["error": "\(error)"])
            }
        }
        logger.error("notifications not queued: the store kept failing", metadata: ["channels": "\(messages.map(\.channel))", "keys": "\(messages.map(\.key))"])
        return nil
    }
}
