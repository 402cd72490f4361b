public import AsyncHTTPClient
public import Logging
public import NIOCore
public import NIOPosix

extension NotificationsConfigFile {
    /// A client for every configured channel, by name.
    ///
    /// ```swift
    /// let channels = config.makeChannels()
    /// try await channels["slack"]?.deliver(notification)
    /// ```
    ///
    /// - Parameters:
    ///   - httpClient: For Slack and PagerDuty. Default `HTTPClient.shared`.
    ///   - eventLoopGroup: For SMTP connections. Default `MultiThreadedEventLoopGroup.singleton`.
    ///   - logger: Where delivery outcomes are logged at debug level.
    public func makeChannels(
        httpClient: HTTPClient = .shared, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "deerflow.notifications")
    ) -> [String: any NotificationChannel] {
        var result: [String: any NotificationChannel] = [:]
        for channel in channels {
            switch channel {
            case .slack(let configuration):
                result[channel.name] = SlackChannel(configuration: configuration, httpClient: httpClient, logger: logger)
            case .pagerDuty(let configuration):
                result[channel.name] = PagerDutyChannel(configuration: configuration, httpClient: httpClient, logger: logger)
            case .email(let configuration):
                result[channel.name] = EmailChannel(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
            }
        }
        return result
    }
}
