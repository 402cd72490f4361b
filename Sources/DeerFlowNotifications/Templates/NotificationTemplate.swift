import DeerFlowCore
import Foundation

/// A problem in a notification template, located inside the template text (1-based line and column).
public struct NotificationTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Line inside the template, 1-based.
    public var line: Int
    /// Column inside that line, 1-based.
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column) of the template: \(message)" }
}

/// A notification template: text with Go-template placeholders, rendered once per alert.
///
/// Placeholders (Alertmanager's names where it has them):
///
/// | Placeholder | Renders |
/// |---|---|
/// | `{{ .AlertName }}` | the alert's name |
/// | `{{ .Description }}`, `{{ .Summary }}` | the `description` / `summary` annotation, or nothing |
/// | `{{ .Value }}` | the expression's value as Go prints a float (`0.15`, `1500`, `1e+06`), or nothing |
/// | `{{ .Severity }}` | the `severity` label, or nothing |
/// | `{{ .Status }}` | `firing` or `resolved` |
/// | `{{ .Labels.x }}`, `{{ .Annotations.x }}` | one label / annotation, or nothing when absent |
/// | `{{ .Labels }}`, `{{ .Annotations }}` | all of them as Go prints a map: `map[a:1 b:2]` |
/// | `{{ .StartsAt }}`, `{{ .EndsAt }}` | RFC 3339 UTC times (`2024-06-01T12:00:00.000Z`); `EndsAt` is empty while firing |
///
/// Go's trim markers (`{{- .X -}}` remove the white space before / after) and comments
/// (`{{/* ... */}}`) work; anything else inside `{{ }}` (functions, pipelines, `if`, `range`,
/// Prometheus' `$value`/`$labels`) is rejected when the template is created.
///
/// ```swift
/// let template = try NotificationTemplate("*{{ .AlertName }}*: {{ .Description }} ({{ .Value }})")
/// let text = template.render(alert)
/// ```
public struct NotificationTemplate: Sendable, Hashable, CustomStringConvertible {
    enum Field: Sendable, Hashable {
        case alertName, description, summary, value, severity, status, startsAt, endsAt
        case labels, annotations
        case label(String)
        case annotation(String)
    }

    enum Node: Sendable, Hashable {
        case text(String)
        case field(Field)
    }

    /// The template text as written.
    public let source: String
    let nodes: [Node]
    /// Built-in templates drop lines whose placeholders all render empty (`Summary: ` without a summary).
    var dropsEmptyLines = false

    /// The placeholder names, for messages.
    static let fieldNames: [String: Field] = [
        "AlertName": .alertName, "Description": .description, "Summary": .summary, "Value": .value,
        "Severity": .severity, "Status": .status, "StartsAt": .startsAt, "EndsAt": .endsAt,
        "Labels": .labels, "Annotations": .annotations,
    ]

    /// Parses a template.
    /// - Throws: ``NotificationTemplateError`` for an unknown placeholder or an unterminated `{{`.
    public init(_ source: String) throws(NotificationTemplateError) {
        self.source = source
        self.nodes = try Self.parse(source)
    }

    private init(builtin source: String) {
        self.source = source
        // Built-in templates are known to parse.
        self.nodes = (try? Self.parse(source)) ?? [.text(source)]
        self.dropsEmptyLines = true
    }

    public var description: String { source }

    public static func == (lhs: NotificationTemplate, rhs: NotificationTemplate) -> Bool {
        lhs.source == rhs.source && lhs.dropsEmptyLines == rhs.dropsEmptyLines
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(source) }

    // MARK: Rendering

    /// Renders the template for one alert.
    public func render(_ alert: NotificationAlert) -> String {
        guard dropsEmptyLines else {
            return nodes.map { node in
                switch node {
                case .text(let text): return text
                case .field(let field): return Self.value(of: field, in: alert)
                }
            }.joined()
        }
        // Line by line: a line with placeholders that all rendered empty is left out.
        var kept: [String] = []
        var line = ""
        var placeholders = 0
        var nonEmpty = 0
        func endLine() {
            if placeholders == 0 || nonEmpty > 0 { kept.append(line) }
            line = ""
            placeholders = 0
            nonEmpty = 0
        }
        for node in nodes {
            switch node {
            case .field(let field):
                let value = Self.value(of: field, in: alert)
                placeholders += 1
                if !value.trimmingCharacters(in: .whitespaces).isEmpty { nonEmpty += 1 }
                line += value
            case .text(let text):
                var rest = Substring(text)
                while let newline = rest.firstIndex(of: "\n") {
                    line += rest[..<newline]
                    endLine()
                    rest = rest[rest.index(after: newline)...]
                }
                line += rest
            }
        }
        endLine()
        return kept.joined(separator: "\n")
    }

    /// Renders the template once per alert and joins the parts with `separator`, each part without
    /// trailing white space: the text of a grouped notification.
    public func render(_ alerts: [NotificationAlert], separator: String = "\n\n") -> String {
        alerts.map { render($0).trimmingTrailingWhitespace() }.joined(separator: separator)
    }

    static func value(of field: Field, in alert: NotificationAlert) -> String {
        switch field {
        case .alertName: return alert.name
        case .description: return alert.annotations["description"] ?? ""
        case .summary: return alert.annotations["summary"] ?? ""
        case .value: return alert.value.map(GoFormat.shortest) ?? ""
        case .severity: return alert.severity
        case .status: return alert.status.rawValue
        case .startsAt: return Timestamp.rfc3339(alert.startsAt)
        case .endsAt: return alert.endsAt.map(Timestamp.rfc3339) ?? ""
        case .labels: return goMap(alert.labels)
        case .annotations: return goMap(alert.annotations)
        case .label(let name): return alert.labels[name] ?? ""
        case .annotation(let name): return alert.annotations[name] ?? ""
        }
    }

    /// `fmt.Sprint` of a `map[string]string`: keys sorted, `map[k:v k2:v2]`.
    private static func goMap(_ map: [String: String]) -> String {
        "map[" + map.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: " ") + "]"
    }

    // MARK: Parsing

    private static func parse(_ source: String) throws(NotificationTemplateError) -> [Node] {
        let pieces: [GoTemplateText.Piece]
        do {
            pieces = try GoTemplateText.split(source)
        } catch {
            throw Self.error("unterminated '{{' (close it with '}}')", at: error.offset, in: source)
        }
        var nodes: [Node] = []
        for piece in pieces {
            switch piece {
            case .text(let text):
                if case .text(let previous)? = nodes.last {
                    nodes[nodes.count - 1] = .text(previous + text)
                } else {
                    nodes.append(.text(text))
                }
            case .action(let content, let offset):
                let action = content.trimmingCharacters(in: .whitespacesAndNewlines)
                // A comment renders nothing.
                if action.hasPrefix("/*") && action.hasSuffix("*/") && action.count >= 4 { continue }
                nodes.append(.field(try parseAction(action, at: offset, in: source)))
            }
        }
        return nodes
    }

    private static func parseAction(_ action: String, at index: Int, in source: String) throws(NotificationTemplateError) -> Field {
        let shown = "{{ \(action) }}"
        if action.isEmpty { throw error("empty placeholder '{{ }}'", at: index, in: source) }
        if action.hasPrefix("$") {
            // Prometheus rule-annotation syntax.
            var hint = "use .Value, .Labels.name, ..."
            if action == "$value" { hint = "use '{{ .Value }}'" }
            if action.hasPrefix("$labels.") { hint = "use '{{ .Labels.\(action.dropFirst("$labels.".count)) }}'" }
            throw error("'\(shown)' is Prometheus rule syntax, not a notification placeholder (\(hint))", at: index, in: source)
        }
        let isPath = action.hasPrefix(".") && action.dropFirst().allSatisfy { $0 == "." || $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
        guard isPath else {
            throw error(
                "unsupported template action '\(shown)': only placeholders such as {{ .AlertName }} or {{ .Labels.severity }} are allowed (no functions, pipelines or conditions)",
                at: index, in: source)
        }
        let parts = action.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let known = fieldNames.keys.sorted()
        guard let first = parts.first, let field = fieldNames[first] else {
            let name = parts.first ?? ""
            var message = "unknown placeholder '\(shown)'"
            if let suggestion = YAMLReader.suggestion(for: name, from: known) {
                message += " (did you mean '{{ .\(suggestion) }}'?)"
            } else {
                message += " (known: \(known.map { "." + $0 }.joined(separator: ", ")), .Labels.<name>, .Annotations.<name>)"
            }
            throw error(message, at: index, in: source)
        }
        if parts.count == 1 { return field }
        guard parts.count == 2, field == .labels || field == .annotations, isName(parts[1]) else {
            if field == .labels || field == .annotations {
                throw error("'\(shown)': write '{{ .\(first).<name> }}' with a single name", at: index, in: source)
            }
            throw error("'\(shown)': .\(first) has no fields (only .Labels and .Annotations do)", at: index, in: source)
        }
        return field == .labels ? .label(parts[1]) : .annotation(parts[1])
    }

    private static func isName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return text.unicodeScalars.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) }
    }

    private static func error(_ message: String, at offset: Int, in source: String) -> NotificationTemplateError {
        let (line, column) = GoTemplateText.position(of: offset, in: source)
        return NotificationTemplateError(line: line, column: column, message: message)
    }

    // MARK: Built-in templates

    /// The Slack text when no template is configured (lines whose placeholders are all empty are left out):
    ///
    /// ```
    /// *[{{ .Status }}] {{ .AlertName }}*
    /// {{ .Summary }}
    /// {{ .Description }}
    /// Severity: {{ .Severity }}
    /// Value: {{ .Value }}
    /// ```
    public static let defaultSlack = NotificationTemplate(builtin: """
        *[{{ .Status }}] {{ .AlertName }}*
        {{ .Summary }}
        {{ .Description }}
        Severity: {{ .Severity }}
        Value: {{ .Value }}
        """)

    /// The e-mail body when no template is configured (lines whose placeholders are all empty are left out):
    ///
    /// ```
    /// [{{ .Status }}] {{ .AlertName }}
    /// Summary: {{ .Summary }}
    /// Description: {{ .Description }}
    /// Severity: {{ .Severity }}
    /// Value: {{ .Value }}
    /// Started: {{ .StartsAt }}
    /// Ended: {{ .EndsAt }}
    /// Labels: {{ .Labels }}
    /// ```
    public static let defaultEmailBody = NotificationTemplate(builtin: """
        [{{ .Status }}] {{ .AlertName }}
        Summary: {{ .Summary }}
        Description: {{ .Description }}
        Severity: {{ .Severity }}
        Value: {{ .Value }}
        Started: {{ .StartsAt }}
        Ended: {{ .EndsAt }}
        Labels: {{ .Labels }}
        """)

    /// The e-mail subject when none is configured: `[{{ .Status }}] {{ .AlertName }}`.
    public static let defaultEmailSubject = NotificationTemplate(builtin: "[{{ .Status }}] {{ .AlertName }}")

    /// The PagerDuty summary when none is configured: `{{ .AlertName }}: {{ .Summary }}`, with the
    /// description when there is no summary, and just the name when there is neither.
    static func defaultPagerDutySummary(_ alert: NotificationAlert) -> String {
        let detail = [alert.annotations["summary"], alert.annotations["description"]].compactMap { $0 }.first { !$0.isEmpty }
        return detail.map { "\(alert.name): \($0)" } ?? alert.name
    }
}

/// Templates chosen by the alert's `severity` label, with a fallback: a channel's `templates:`
/// setting.
///
/// ```yaml
/// templates:
///   critical: ":rotating_light: *{{ .AlertName }}* {{ .Description }}"
///   default: "{{ .AlertName }}: {{ .Summary }}"
/// ```
public struct NotificationTemplates: Sendable, Hashable {
    /// Templates by severity.
    public var bySeverity: [String: NotificationTemplate]
    /// The `default` template, or the channel's built-in one.
    public var fallback: NotificationTemplate

    public init(bySeverity: [String: NotificationTemplate] = [:], fallback: NotificationTemplate) {
        self.bySeverity = bySeverity
        self.fallback = fallback
    }

    /// The template for an alert: the one for its severity, else the fallback.
    public func template(for alert: NotificationAlert) -> NotificationTemplate {
        bySeverity[alert.severity] ?? fallback
    }

    /// Each alert rendered with its own template, without trailing white space, joined with
    /// `separator` (a blank line by default): the text of a grouped notification.
    public func render(_ alerts: [NotificationAlert], separator: String = "\n\n") -> String {
        alerts.map { template(for: $0).render($0).trimmingTrailingWhitespace() }.joined(separator: separator)
    }
}

extension StringProtocol {
    func trimmingTrailingWhitespace() -> String {
        var end = endIndex
        while end > startIndex {
            let previous = index(before: end)
            guard self[previous].isWhitespace else { break }
            end = previous
        }
        return String(self[..<end])
    }
}
