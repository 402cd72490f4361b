/// Decides which channels get which alerts, per the `routing` entries of `notifications.yaml`.
///
/// For each alert the routes are tried in order; the first whose `match` labels are all equal
/// (a missing label equals the empty string) and whose `match_re` patterns all match the whole
/// label value takes the alert, and routing stops there unless that route says `continue: true`.
/// An alert that no route takes is not sent anywhere (add a last route without `match` to catch
/// the rest). A channel listed by several matching routes gets the alert once.
///
/// Alerts routed to the same channel in one call become one ``AlertNotification`` per channel,
/// in the order the channels are declared in the file.
///
/// ```swift
/// let router = NotificationRouter(configuration: config)
/// for notification in router.notifications(for: transitions) {
///     try await channels[notification.channel]?.deliver(notification)
/// }
/// ```
public struct NotificationRouter: Sendable {
    public let routes: [NotificationsConfigFile.Route]
    /// Channel names in declaration order: the order of the notifications.
    public let channelOrder: [String]

    public init(routes: [NotificationsConfigFile.Route], channelOrder: [String] = []) {
        self.routes = routes
        self.channelOrder = channelOrder
    }

    public init(configuration: NotificationsConfigFile) {
        self.init(routes: configuration.routes, channelOrder: configuration.channels.map(\.name))
    }

    /// The channels `alert` goes to, in the order the matching routes list them.
    public func channels(for alert: NotificationAlert) -> [String] {
        var result: [String] = []
        for route in routes where route.matches(alert) {
            for channel in route.channels where !result.contains(channel) { result.append(channel) }
            if !route.continue { break }
        }
        return result
    }

    /// One notification per channel that receives any of `alerts`, with its alerts in the given order.
    public func notifications(for alerts: [NotificationAlert]) -> [AlertNotification] {
        var byChannel: [String: [NotificationAlert]] = [:]
        var firstSeen: [String] = []
        for alert in alerts {
            for channel in channels(for: alert) {
                if byChannel[channel] == nil { firstSeen.append(channel) }
                byChannel[channel, default: []].append(alert)
            }
        }
        let ordered = channelOrder.filter { byChannel[$0] != nil } + firstSeen.filter { !channelOrder.contains($0) }
        return ordered.map { AlertNotification(channel: $0, alerts: byChannel[$0] ?? []) }
    }
}
