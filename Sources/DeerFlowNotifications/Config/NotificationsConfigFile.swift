public import DeerFlowCore
import Foundation

/// Settings of `notifications.yaml`: channels, routing and timing, as the monitoring chapter writes
/// them, plus optional keys for endpoints, timeouts, templates and SMTP details.
///
/// ```yaml
/// notifications:
///   repeat_interval: 4h          # default 4h
///   group_wait: 0s               # default 0s
///   channels:
///     slack:
///       webhook: https://hooks.slack.com/services/...   # or url:
///       channel: "#deerflow-alerts"                      # optional
///       username: DeerFlow                               # optional
///       icon_emoji: ":deer:"                             # optional
///       timeout: 10s                                     # default 10s
///       templates:                                       # per severity; `default` for the rest
///         critical: |
///           :rotating_light: *CRITICAL ALERT* {{ .AlertName }}: {{ .Description }}
///     pagerduty:
///       service_key: ${PAGERDUTY_KEY}                    # or routing_key:
///       url: https://events.pagerduty.com/v2/enqueue     # the default
///       severity_mapping: {critical: critical, warning: warning, info: info}
///       summary: "{{ .AlertName }}: {{ .Summary }}"      # optional template
///       component: "{{ .Labels.workflow }}"              # optional templates: component, group, class
///       source: deerflow                                 # the default
///     email:
///       smtp_host: smtp.example.com
///       smtp_port: 587                                   # default 587 with starttls: true, else 25
///       starttls: auto                                   # true | false | auto (default: use when offered)
///       username: alerts                                 # optional, with password: AUTH PLAIN or LOGIN
///       password: ${SMTP_PASSWORD}
///       from: alerts@example.com                         # or "DeerFlow <alerts@example.com>"
///       to: [oncall@example.com]
///       subject: "[{{ .Status }}] {{ .AlertName }}"      # the default
///       hello: localhost                                 # EHLO name, the default
///       timeout: 30s                                     # per SMTP step, default 30s
///       tls: {insecure_skip_verify: false, ca_file: /etc/ssl/smtp-ca.pem}
///       templates: {default: "..."}                      # body templates, as for Slack
///   routing:
///     - match: {severity: critical}
///       channels: [pagerduty, slack]
///     - match_re: {alertname: "Scheduler.*"}             # anchored regular expressions
///       channels: [email]
///       continue: true                                   # keep matching later routes (default false)
/// ```
///
/// A channel's name is its type (`slack`, `pagerduty`, `email`) unless it says `type:`, so one file
/// may have several channels of a type (`slack-ops: {type: slack, ...}`).
///
/// `repeat_interval` and `group_wait` are read here and applied by the dispatcher, not by this module.
/// `group_wait` defaults to 0s: alerts that fire in the same evaluation are grouped anyway (one message
/// per channel), and each rule's `for:` already delays the first notification, so waiting longer only
/// helps alerts that fire in consecutive evaluations.
public struct NotificationsConfigFile: Sendable {
    /// One configured channel.
    public enum Channel: Sendable, Hashable {
        case slack(SlackChannel.Configuration)
        case pagerDuty(PagerDutyChannel.Configuration)
        case email(EmailChannel.Configuration)

        /// The channel's name, as routes refer to it.
        public var name: String {
            switch self {
            case .slack(let configuration): return configuration.name
            case .pagerDuty(let configuration): return configuration.name
            case .email(let configuration): return configuration.name
            }
        }
    }

    /// A `routing` entry: which alerts go to which channels.
    public struct Route: Sendable, Hashable {
        /// Labels that must equal these values (a missing label equals the empty string).
        public var match: [String: String]
        /// Labels that must match these fully anchored regular expressions.
        public var matchRegex: [String: LabelPattern]
        /// Channel names, in the order written.
        public var channels: [String]
        /// Whether later routes are tried after this one matched.
        public var `continue`: Bool
        /// Line of the entry in the file, for messages.
        public var line: Int

        public init(match: [String: String] = [:], matchRegex: [String: LabelPattern] = [:], channels: [String], continue: Bool = false, line: Int = 0) {
            self.match = match
            self.matchRegex = matchRegex
            self.channels = channels
            self.continue = `continue`
            self.line = line
        }

        /// Whether the route takes `alert`: every `match` pair equal and every `match_re` pattern
        /// matching. A route with neither takes every alert.
        public func matches(_ alert: NotificationAlert) -> Bool {
            func label(_ name: String) -> String { name == "alertname" ? alert.labels[name] ?? alert.name : alert.labels[name] ?? "" }
            return match.allSatisfy { label($0.key) == $0.value } && matchRegex.allSatisfy { $0.value.matches(label($0.key)) }
        }
    }

    /// Channels in file order.
    public var channels: [Channel] = []
    /// Routes in file order.
    public var routes: [Route] = []
    /// How often a notification is repeated for an alert that keeps firing. Default 4h.
    public var repeatInterval: Duration = .seconds(4 * 3600)
    /// How long to wait for more alerts before the first notification of a group. Default 0s.
    public var groupWait: Duration = .zero
    /// The file the settings came from, for messages.
    public var file: String = ""

    public init() {}

    /// The channel called `name`.
    public func channel(named name: String) -> Channel? {
        channels.first { $0.name == name }
    }

    /// Reads `notifications.yaml`; `${VAR}` is replaced from `environment` (an unset variable is an
    /// error naming it). Every problem is reported with file, line and key.
    ///
    /// ```swift
    /// let config = try NotificationsConfigFile.parse(yaml: text, file: "config/notifications.yaml",
    ///                                                environment: ProcessInfo.processInfo.environment)
    /// ```
    public static func parse(yaml: String, file: String, environment: [String: String]) throws(FileErrors) -> NotificationsConfigFile {
        let reader = YAMLReader(file: file, environment: environment)
        var config = NotificationsConfigFile()
        config.file = file
        let parser = ConfigParser(reader: reader)
        if let root = reader.read(yaml), !root.isNull, let top = root.mapping(allowedKeys: ["notifications"]),
           let notifications = top.mapping("notifications", allowedKeys: ["channels", "routing", "repeat_interval", "group_wait"])
        {
            if let node = notifications.optional("repeat_interval"), let interval = node.duration() {
                if interval > .zero { config.repeatInterval = interval } else { node.fail("must be longer than 0") }
            }
            if let wait = notifications.duration("group_wait") { config.groupWait = wait }
            if let channels = notifications.mapping("channels") {
                var seen: [String: Int] = [:]
                for entry in channels.entries {
                    if let line = seen[entry.key] {
                        entry.value.fail("duplicate channel '\(entry.key)' (first defined at line \(line))")
                        continue
                    }
                    seen[entry.key] = (entry.value.keyLocation ?? entry.value.location).line
                    if let channel = parser.channel(named: entry.key, entry.value) { config.channels.append(channel) }
                }
            }
            let names = config.channels.map(\.name)
            let declared = Set(notifications.mapping("channels")?.keys ?? [])
            for item in notifications.sequence("routing") ?? [] {
                if let route = parser.route(item, channelNames: names, declared: declared) { config.routes.append(route) }
            }
        }
        try reader.throwIfErrors()
        return config
    }

    /// Reads the file at `path`.
    public static func load(path: String, environment: [String: String]) throws(FileErrors) -> NotificationsConfigFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: "no such file")])
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            let message = isDirectory.boolValue ? "is a directory, not a file" : "cannot read file (check its permissions)"
            throw FileErrors(errors: [FileError(file: path, line: 0, column: 0, message: message)])
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path, environment: environment)
    }
}

/// A fully anchored regular expression for a label value (`match_re`), as Alertmanager and
/// Prometheus anchor theirs: `warn.*` matches `warning`, not `prewarning`.
public struct LabelPattern: @unchecked Sendable, Hashable, CustomStringConvertible {
    // NSRegularExpression is immutable and safe to share.
    /// The pattern as written.
    public let pattern: String
    private let expression: NSRegularExpression

    /// - Throws: when the pattern is not a valid regular expression.
    public init(_ pattern: String) throws {
        self.pattern = pattern
        expression = try NSRegularExpression(pattern: "\\A(?:" + pattern + ")\\z", options: [.dotMatchesLineSeparators])
    }

    /// Whether the whole of `value` matches.
    public func matches(_ value: String) -> Bool {
        expression.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
    }

    public var description: String { pattern }
    public static func == (lhs: LabelPattern, rhs: LabelPattern) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }
}

/// The channel and route readers of ``NotificationsConfigFile``.
private struct ConfigParser {
    let reader: YAMLReader

    static let types = ["slack", "pagerduty", "email"]

    func channel(named name: String, _ node: YAMLNode) -> NotificationsConfigFile.Channel? {
        guard let mapping = node.mapping() else { return nil }
        var type = name
        if let typeNode = mapping.optional("type") {
            guard let value = typeNode.oneOf(Self.types, what: "channel type") else { return nil }
            type = value
        } else if !Self.types.contains(name) {
            var message = "unknown channel '\(name)': name it slack, pagerduty or email, or give its type (type: slack)"
            if let suggestion = YAMLReader.suggestion(for: name, from: Self.types) { message += " (did you mean '\(suggestion)'?)" }
            reader.report(message, key: node.path, at: node.keyLocation ?? node.location)
            return nil
        }
        switch type {
        case "slack": return slack(name, mapping).map { .slack($0) }
        case "pagerduty": return pagerDuty(name, mapping).map { .pagerDuty($0) }
        default: return email(name, mapping).map { .email($0) }
        }
    }

    // MARK: Channels

    private func slack(_ name: String, _ mapping: YAMLMapping) -> SlackChannel.Configuration? {
        mapping.checkKeys(["type", "webhook", "url", "channel", "username", "icon_emoji", "templates", "timeout"])
        let urlNode = mapping.optional("url") ?? mapping.optional("webhook")
        guard let urlNode else {
            _ = mapping.require("webhook")
            return nil
        }
        var config = SlackChannel.Configuration(name: name, url: httpURL(urlNode) ?? "")
        config.channel = mapping.string("channel")
        config.username = mapping.string("username")
        config.iconEmoji = mapping.string("icon_emoji")
        if let timeout = timeout(mapping) { config.timeout = timeout }
        if let templates = templates(mapping, fallback: NotificationTemplate.defaultSlack) { config.templates = templates }
        return config
    }

    private func pagerDuty(_ name: String, _ mapping: YAMLMapping) -> PagerDutyChannel.Configuration? {
        mapping.checkKeys([
            "type", "service_key", "routing_key", "url", "severity_mapping", "summary", "source", "component", "group", "class", "timeout",
        ])
        if mapping.optional("service_key") != nil, let routing = mapping.optional("routing_key") {
            routing.fail("give either service_key or routing_key, not both")
        }
        let errorsBefore = reader.errors.count
        guard let keyNode = mapping.optional("routing_key") ?? mapping.require("service_key"), let key = keyNode.string() else { return nil }
        // An unset ${VAR} is reported already; an empty key otherwise.
        if key.trimmingCharacters(in: .whitespaces).isEmpty, reader.errors.count == errorsBefore { keyNode.fail("must not be empty") }
        var config = PagerDutyChannel.Configuration(name: name, routingKey: key)
        if let node = mapping.optional("url"), let url = httpURL(node) { config.url = url }
        if let timeout = timeout(mapping) { config.timeout = timeout }
        if let source = mapping.string("source") { config.source = source }
        if let mappingNode = mapping.mapping("severity_mapping") {
            for entry in mappingNode.entries {
                if let severity = entry.value.oneOf(PagerDutyChannel.Severity.self, what: "PagerDuty severity") {
                    config.severityMapping[entry.key] = severity
                }
            }
        }
        config.summary = mapping.optional("summary").flatMap(template)
        config.component = mapping.optional("component").flatMap(template)
        config.group = mapping.optional("group").flatMap(template)
        config.class = mapping.optional("class").flatMap(template)
        return config
    }

    private func email(_ name: String, _ mapping: YAMLMapping) -> EmailChannel.Configuration? {
        mapping.checkKeys([
            "type", "smtp_host", "smtp_port", "from", "to", "starttls", "username", "password", "subject", "templates", "hello", "timeout", "tls",
        ])
        let hostNode = mapping.require("smtp_host")
        let host = hostNode?.string()
        if let hostNode, let host, !Self.isHostName(host) {
            let port = host.split(separator: ":").last.map(String.init) ?? ""
            if host.split(separator: ":").count == 2, Int(port) != nil {
                hostNode.fail("'\(host)' contains a port: write smtp_host: \(host.split(separator: ":")[0]) and smtp_port: \(port)")
            } else {
                hostNode.fail("'\(host)' is not a host name or IP address")
            }
        }
        let fromNode = mapping.require("from")
        let from = fromNode.flatMap { node in address(node) }
        var recipients: [String] = []
        var recipientsValid = true
        if let toNode = mapping.require("to") {
            let items: [YAMLNode]
            if toNode.isScalar {
                items = [toNode]
            } else {
                items = toNode.sequence() ?? []
                if toNode.isSequence, items.isEmpty { toNode.fail("needs at least one recipient") }
            }
            for item in items {
                if let recipient = address(item) { recipients.append(recipient) } else { recipientsValid = false }
            }
            if recipientsValid {
                var seen = Set<String>()
                for (item, recipient) in zip(items, recipients) where !seen.insert(EmailAddress.addrSpec(of: recipient).lowercased()).inserted {
                    item.fail("recipient '\(recipient)' is listed twice")
                }
            }
        }
        var startTLS = EmailChannel.StartTLS.auto
        if let node = mapping.optional("starttls") {
            switch node.isScalar ? node.string()?.lowercased() : nil {
            case "auto": startTLS = .auto
            case "true", "yes", "on": startTLS = .always
            case "false", "no", "off": startTLS = .never
            default: node.fail("expected true, false or auto, got \(node.summary)")
            }
        }
        var port = startTLS == .always ? 587 : 25
        if let node = mapping.optional("smtp_port"), let value = node.int() {
            if (1...65535).contains(value) { port = value } else { node.fail("must be a port number from 1 to 65535, got \(value)") }
        }
        let username = mapping.string("username")
        let password = mapping.string("password")
        if username != nil, password == nil { _ = mapping.require("password") }
        if password != nil, username == nil { _ = mapping.require("username") }
        var insecure = false
        var caFile: String?
        if let tls = mapping.mapping("tls", allowedKeys: ["insecure_skip_verify", "ca_file"]) {
            insecure = tls.bool("insecure_skip_verify") ?? false
            if let node = tls.optional("ca_file"), let path = node.string() {
                if FileManager.default.isReadableFile(atPath: path) { caFile = path } else { node.fail("cannot read CA file '\(path)'") }
            }
        }
        guard let host, let from, recipientsValid, !recipients.isEmpty else { return nil }
        var config = EmailChannel.Configuration(name: name, host: host, port: port, from: from, to: recipients)
        config.startTLS = startTLS
        if let username, let password { config.credentials = .init(username: username, password: password) }
        config.tlsInsecureSkipVerify = insecure
        config.tlsCAFile = caFile
        if let hello = mapping.optional("hello"), let text = hello.string() {
            if Self.isHostName(text) || (text.hasPrefix("[") && text.hasSuffix("]")) { config.hello = text } else { hello.fail("'\(text)' is not a host name") }
        }
        if let timeout = timeout(mapping) { config.timeout = timeout }
        if let subject = mapping.optional("subject").flatMap(template) { config.subject = subject }
        if let templates = templates(mapping, fallback: NotificationTemplate.defaultEmailBody) { config.templates = templates }
        return config
    }

    // MARK: Routes

    func route(_ node: YAMLNode, channelNames: [String], declared: Set<String>) -> NotificationsConfigFile.Route? {
        guard let mapping = node.mapping(allowedKeys: ["match", "match_re", "channels", "continue"]) else { return nil }
        let match = mapping.stringMap("match") ?? [:]
        var patterns: [String: LabelPattern] = [:]
        if let regexes = mapping.mapping("match_re") {
            for entry in regexes.entries {
                guard let pattern = entry.value.string() else { continue }
                do {
                    patterns[entry.key] = try LabelPattern(pattern)
                } catch {
                    entry.value.fail("'\(pattern)' is not a valid regular expression")
                }
            }
        }
        var channels: [String] = []
        if let channelsNode = mapping.require("channels") {
            let items = channelsNode.isScalar ? [channelsNode] : channelsNode.sequence() ?? []
            if channelsNode.isSequence, items.isEmpty { channelsNode.fail("a route needs at least one channel") }
            for item in items {
                guard let name = item.string() else { continue }
                if channels.contains(name) {
                    item.fail("channel '\(name)' is listed twice")
                } else if !declared.contains(name) {
                    var message = "unknown channel '\(name)'"
                    if let suggestion = YAMLReader.suggestion(for: name, from: channelNames) {
                        message += " (did you mean '\(suggestion)'?)"
                    } else if channelNames.isEmpty {
                        message += " (no channels are defined under notifications.channels)"
                    } else {
                        message += " (defined: \(channelNames.joined(separator: ", ")))"
                    }
                    item.fail(message)
                } else {
                    channels.append(name)
                }
            }
        }
        let isContinue = mapping.bool("continue") ?? false
        guard !channels.isEmpty else { return nil }
        return .init(match: match, matchRegex: patterns, channels: channels, continue: isContinue, line: node.location.line)
    }

    // MARK: Values

    private func timeout(_ mapping: YAMLMapping) -> Duration? {
        guard let node = mapping.optional("timeout"), let duration = node.duration() else { return nil }
        guard duration > .zero else {
            node.fail("must be longer than 0")
            return nil
        }
        return duration
    }

    private func httpURL(_ node: YAMLNode) -> String? {
        guard let text = node.string() else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            node.fail("'\(text)' is not an http(s) URL")
            return nil
        }
        return text
    }

    private func address(_ node: YAMLNode) -> String? {
        guard let text = node.string() else { return nil }
        guard EmailAddress.parse(text) != nil else {
            node.fail("'\(text)' is not an e-mail address (write name@example.com or \"Name <name@example.com>\")")
            return nil
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    private func templates(_ mapping: YAMLMapping, fallback: NotificationTemplate) -> NotificationTemplates? {
        guard let node = mapping.mapping("templates") else { return nil }
        var result = NotificationTemplates(fallback: fallback)
        for entry in node.entries {
            guard let template = template(entry.value) else { continue }
            if entry.key == "default" { result.fallback = template } else { result.bySeverity[entry.key] = template }
        }
        return result
    }

    /// A template; a problem in it is reported at its line in the file.
    private func template(_ node: YAMLNode) -> NotificationTemplate? {
        guard let text = node.string() else { return nil }
        do {
            return try NotificationTemplate(text)
        } catch {
            reader.report(error.message, key: node.path, at: node.location(inText: error.line, column: error.column))
            return nil
        }
    }

    static func isHostName(_ text: String) -> Bool {
        if text.isEmpty || text.count > 253 { return false }
        if text.hasPrefix("[") && text.hasSuffix("]") { return false }
        if text.contains(":") { return text.split(separator: ":", omittingEmptySubsequences: false).count > 2 && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.unicodeScalars.allSatisfy { $0 == "-" || $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
        }
    }
}
