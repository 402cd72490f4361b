import DeerFlowCore
import Foundation
import Yams

/// A rule file that failed to load: the file, the line and column (1-based), the key path
/// (`groups[0].rules[1].expr`) and what is wrong.
public struct RuleFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Not readable, or not well-formed YAML.
        case yaml
        /// A missing, unknown, repeated or mistyped key.
        case schema
        /// An `expr` that is not valid PromQL.
        case expression
        /// A valid Prometheus construct this evaluator does not implement (recording rules,
        /// `query_offset`, `limit`, PromQL outside the subset).
        case unsupported
        /// A label or annotation template that does not parse.
        case template
    }

    public var code: Code
    public var file: String
    public var line: Int
    public var column: Int
    public var key: String
    public var message: String

    public var description: String {
        let location = line > 0 ? "\(file):\(line):\(column)" : file
        return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}

/// A Prometheus rule file (`groups: [{name, interval, rules: [...]}]`) with alerting rules.
///
/// Loading validates like `promtool check rules`: unknown keys, missing `expr`, invalid
/// durations and label names, repeated group names, and every `expr` is parsed as PromQL and
/// every label and annotation template is parsed. Errors name the file, line and key.
/// Recording rules (`record:`), `query_offset` and `limit` are rejected with a clear message.
///
/// ```swift
/// let rules = try RuleFile.parse(yaml: text, file: "deploy/prometheus/alerts.yaml")
/// let evaluator = AlertEvaluator(rules: rules)
/// ```
public struct RuleFile: Sendable {
    /// The name used in error messages.
    public var file: String
    public var groups: [RuleGroup]

    /// The lookback of instant selectors, which the retention must also cover.
    public static let lookbackDelta: Duration = .seconds(300)

    /// The longest range selector of any rule (zero without range selectors).
    public var longestRange: Duration {
        groups.flatMap(\.rules).map(\.expression.longestRange).max() ?? .zero
    }

    /// The least history a ``SeriesStore`` needs for these rules: the longest range selector or
    /// the 5-minute lookback, whichever is longer, plus the longest group interval (default 1
    /// minute) so that an evaluation running behind the latest scrape still finds its window.
    /// `for:` needs no sample history: pending state lives in the ``AlertEvaluator``.
    public var minimumRetention: Duration {
        let longest = longestRange
        let interval = groups.compactMap(\.interval).max() ?? RuleFile.defaultInterval
        return max(longest, RuleFile.lookbackDelta) + max(interval, RuleFile.defaultInterval)
    }

    /// Prometheus' default `evaluation_interval`, used for groups without `interval`.
    public static let defaultInterval: Duration = .seconds(60)

    init(file: String, groups: [RuleGroup]) {
        self.file = file
        self.groups = groups
    }

    /// Reads and parses the rule file at `path`.
    public static func load(path: String) throws(RuleFileError) -> RuleFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RuleFileError(code: .yaml, file: path, line: 0, column: 0, key: "", message: "cannot read file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses rule-file YAML; `file` names it in errors.
    public static func parse(yaml: String, file: String) throws(RuleFileError) -> RuleFile {
        var loader = RuleFileLoader(file: file, yaml: yaml)
        return try loader.load()
    }
}

/// A group of rules evaluated together.
public struct RuleGroup: Sendable {
    public var name: String
    /// The group's `interval`, if set; the caller evaluates at this cadence (Prometheus' default
    /// is the global `evaluation_interval`, 1 minute).
    public var interval: Duration?
    /// Group `labels`, added to every alert of the group (rule labels win).
    public var labels: [String: String]
    public var rules: [AlertingRule]
}

/// One `alert:` rule.
public struct AlertingRule: Sendable {
    /// The `alert` name, which becomes the `alertname` label.
    public var name: String
    public var expression: PromQLExpression
    /// How long the condition must hold before the alert fires (`for`, default 0).
    public var holdDuration: Duration
    /// How long a firing alert keeps firing after the condition stops (`keep_firing_for`, default 0).
    public var keepFiringFor: Duration
    /// Rule labels (templates, as written).
    public var labels: [String: String]
    /// Annotations (templates, as written).
    public var annotations: [String: String]

    let labelTemplates: [(String, AlertTemplate)]
    let annotationTemplates: [(String, AlertTemplate)]
}

private struct RuleFileLoader {
    let file: String
    let yaml: String
    let lines: [Substring]

    init(file: String, yaml: String) {
        self.file = file
        self.yaml = yaml
        self.lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func error(_ code: RuleFileError.Code, _ key: String, _ message: String, at node: Node?) -> RuleFileError {
        RuleFileError(code: code, file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, key: key, message: message)
    }

    mutating func load() throws(RuleFileError) -> RuleFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let yamlError as YamlError {
            throw Self.convert(yamlError, yaml: yaml, file: file)
        } catch {
            throw RuleFileError(code: .yaml, file: file, line: 0, column: 0, key: "", message: "\(error)")
        }
        guard let root, !Self.isNull(root) else { return RuleFile(file: file, groups: []) }
        let top = try mapping(root, key: "", allowed: ["groups"])
        var groups: [RuleGroup] = []
        var groupNames: [String: Int] = [:]
        if let groupsNode = top["groups"], !Self.isNull(groupsNode) {
            guard case let .sequence(sequence) = groupsNode else {
                throw error(.schema, "groups", "must be a list of groups", at: groupsNode)
            }
            for (index, groupNode) in sequence.enumerated() {
                let group = try loadGroup(groupNode, key: "groups[\(index)]")
                if groupNames[group.name] != nil {
                    throw error(.schema, "groups[\(index)].name", "groupname: \"\(group.name)\" is repeated in the same file", at: groupNode)
                }
                groupNames[group.name] = index
                groups.append(group)
            }
        }
        return RuleFile(file: file, groups: groups)
    }

    static func isNull(_ node: Node) -> Bool {
        guard case let .scalar(scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// A mapping's entries by key, rejecting unknown and non-string keys.
    func mapping(_ node: Node, key: String, allowed: [String]) throws(RuleFileError) -> [String: Node] {
        guard case let .mapping(mapping) = node else {
            throw error(.schema, key, "must be a mapping", at: node)
        }
        var entries: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case let .scalar(scalar) = keyNode else {
                throw error(.schema, key, "keys must be strings", at: keyNode)
            }
            let path = key.isEmpty ? scalar.string : "\(key).\(scalar.string)"
            guard allowed.contains(scalar.string) else {
                throw error(.schema, path, "unknown key '\(scalar.string)' (allowed: \(allowed.joined(separator: ", ")))", at: keyNode)
            }
            entries[scalar.string] = value
        }
        return entries
    }

    func string(_ node: Node?, key: String) throws(RuleFileError) -> String? {
        guard let node, !Self.isNull(node) else { return nil }
        guard case let .scalar(scalar) = node else {
            throw error(.schema, key, "must be a string", at: node)
        }
        return scalar.string
    }

    func duration(_ node: Node?, key: String) throws(RuleFileError) -> Duration? {
        guard let text = try string(node, key: key) else { return nil }
        guard let milliseconds = PrometheusDuration.parseMilliseconds(text) else {
            throw error(.schema, key, "not a valid duration string: \"\(text)\" (use e.g. 30s, 5m, 1h30m)", at: node)
        }
        return .milliseconds(milliseconds)
    }

    func stringMap(_ node: Node?, key: String, kind: String) throws(RuleFileError) -> [(String, String, Node)] {
        guard let node, !Self.isNull(node) else { return [] }
        guard case let .mapping(mapping) = node else {
            throw error(.schema, key, "must be a mapping of \(kind) names to values", at: node)
        }
        var entries: [(String, String, Node)] = []
        for (keyNode, valueNode) in mapping {
            guard case let .scalar(name) = keyNode else {
                throw error(.schema, key, "\(kind) names must be strings", at: keyNode)
            }
            let value = try string(valueNode, key: "\(key).\(name.string)") ?? ""
            entries.append((name.string, value, valueNode))
        }
        return entries
    }

    func loadGroup(_ node: Node, key: String) throws(RuleFileError) -> RuleGroup {
        let entries = try mapping(node, key: key, allowed: ["name", "interval", "rules", "labels", "limit", "query_offset"])
        for unsupported in ["limit", "query_offset"] {
            if let value = entries[unsupported] {
                throw error(.unsupported, "\(key).\(unsupported)", "'\(unsupported)' is not supported by the embedded evaluator; remove it", at: value)
            }
        }
        guard let name = try string(entries["name"], key: "\(key).name"), !name.isEmpty else {
            throw error(.schema, "\(key).name", "group name must not be empty", at: entries["name"] ?? node)
        }
        let interval = try duration(entries["interval"], key: "\(key).interval")
        if let interval, interval <= .zero {
            throw error(.schema, "\(key).interval", "interval must be greater than 0", at: entries["interval"])
        }
        var labels: [String: String] = [:]
        for (labelName, value, valueNode) in try stringMap(entries["labels"], key: "\(key).labels", kind: "label") {
            guard LabelNames.isValidLabelName(labelName), labelName != LabelSet.metricName else {
                throw error(.schema, "\(key).labels", "invalid label name: \(labelName)", at: valueNode)
            }
            labels[labelName] = value
        }
        var rules: [AlertingRule] = []
        if let rulesNode = entries["rules"], !Self.isNull(rulesNode) {
            guard case let .sequence(sequence) = rulesNode else {
                throw error(.schema, "\(key).rules", "must be a list of rules", at: rulesNode)
            }
            for (index, ruleNode) in sequence.enumerated() {
                rules.append(try loadRule(ruleNode, key: "\(key).rules[\(index)]"))
            }
        }
        return RuleGroup(name: name, interval: interval, labels: labels, rules: rules)
    }

    func loadRule(_ node: Node, key: String) throws(RuleFileError) -> AlertingRule {
        let entries = try mapping(node, key: key, allowed: ["alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"])
        let alert = try string(entries["alert"], key: "\(key).alert")
        let record = try string(entries["record"], key: "\(key).record")
        if alert != nil && record != nil {
            throw error(.schema, key, "only one of 'record' and 'alert' must be set", at: node)
        }
        if let record {
            throw error(.unsupported, "\(key).record", "recording rules are not supported by the embedded evaluator (rule '\(record)'); inline the expression into the alert, or run Prometheus", at: entries["record"])
        }
        guard let alert else {
            throw error(.schema, key, "one of 'record' or 'alert' must be set", at: node)
        }
        guard !alert.isEmpty else {
            throw error(.schema, "\(key).alert", "alert name must not be empty", at: entries["alert"])
        }
        guard let exprNode = entries["expr"], let exprText = try string(exprNode, key: "\(key).expr"),
              !exprText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else {
            throw error(.schema, "\(key).expr", "field 'expr' must be set in rule", at: entries["expr"] ?? node)
        }
        let expression: PromQLExpression
        do {
            expression = try PromQLExpression(parsing: exprText)
        } catch {
            var failure = expressionError(error, node: exprNode, key: "\(key).expr")
            failure.message = "alert '\(alert)': " + failure.message
            throw failure
        }
        let hold = try duration(entries["for"], key: "\(key).for") ?? .zero
        let keepFiring = try duration(entries["keep_firing_for"], key: "\(key).keep_firing_for") ?? .zero
        var labels: [String: String] = [:]
        var labelTemplates: [(String, AlertTemplate)] = []
        for (name, value, valueNode) in try stringMap(entries["labels"], key: "\(key).labels", kind: "label") {
            guard LabelNames.isValidLabelName(name), name != LabelSet.metricName else {
                throw error(.schema, "\(key).labels", "invalid label name: \(name)", at: valueNode)
            }
            labels[name] = value
            labelTemplates.append((name, try template(value, node: valueNode, key: "\(key).labels.\(name)")))
        }
        var annotations: [String: String] = [:]
        var annotationTemplates: [(String, AlertTemplate)] = []
        for (name, value, valueNode) in try stringMap(entries["annotations"], key: "\(key).annotations", kind: "annotation") {
            guard LabelNames.isValidLabelName(name) else {
                throw error(.schema, "\(key).annotations", "invalid annotation name: \(name)", at: valueNode)
            }
            annotations[name] = value
            annotationTemplates.append((name, try template(value, node: valueNode, key: "\(key).annotations.\(name)")))
        }
        return AlertingRule(
            name: alert, expression: expression, holdDuration: hold, keepFiringFor: keepFiring,
            labels: labels, annotations: annotations,
            labelTemplates: labelTemplates.sorted { $0.0 < $1.0 },
            annotationTemplates: annotationTemplates.sorted { $0.0 < $1.0 }
        )
    }

    func template(_ text: String, node: Node, key: String) throws(RuleFileError) -> AlertTemplate {
        do {
            return try AlertTemplate(parsing: text)
        } catch {
            var failure = self.error(.template, key, "template: \(error.message)", at: node)
            let (line, column) = location(in: node, line: 1, column: error.offset)
            failure.line = line
            failure.column = column
            throw failure
        }
    }

    func expressionError(_ promQLError: PromQLError, node: Node, key: String) -> RuleFileError {
        let code: RuleFileError.Code = promQLError.code == .unsupported ? .unsupported : .expression
        var failure = error(code, key, promQLError.message, at: node)
        if let position = promQLError.position {
            (failure.line, failure.column) = location(in: node, line: position.line, column: position.column)
        }
        return failure
    }

    /// Maps a line/column inside a scalar's text to the file: block scalars (`|`, `>`) start on
    /// the line after their indicator, at the line's indentation; quoted scalars one column in.
    func location(in node: Node, line: Int, column: Int) -> (Int, Int) {
        guard case let .scalar(scalar) = node, let mark = scalar.mark else { return (node.mark?.line ?? 0, node.mark?.column ?? 0) }
        switch scalar.style {
        case .literal, .folded:
            let fileLine = mark.line + line
            let text = fileLine - 1 < lines.count ? lines[fileLine - 1] : ""
            let indentation = text.prefix { $0 == " " }.count
            return (fileLine, indentation + column)
        case .singleQuoted, .doubleQuoted:
            return (mark.line + line - 1, line == 1 ? mark.column + column : column)
        default:
            return (mark.line + line - 1, line == 1 ? mark.column + column - 1 : column)
        }
    }

    /// A YAML syntax error, located as every DeerFlow file's is (``YAMLReader/syntaxError(_:yaml:file:)``).
    static func convert(_ error: YamlError, yaml: String, file: String) -> RuleFileError {
        let located = YAMLReader.syntaxError(error, yaml: yaml, file: file)
        let code: RuleFileError.Code = located.key.isEmpty ? .yaml : .schema
        return RuleFileError(code: code, file: file, line: located.line, column: located.column, key: located.key, message: located.message)
    }
}
