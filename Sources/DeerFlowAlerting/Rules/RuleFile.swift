import DeerFlowCore
import Foundation

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
            text = try ConfigFileText.read(path)
        } catch {
            throw RuleFileError(error.errors.first ?? FileError(file: path, line: 0, column: 0, message: "cannot read file"), code: .yaml)
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses rule-file YAML; `file` names it in errors.
    ///
    /// The document is read with ``YAMLReader``, as every DeerFlow file is; the first problem
    /// found is thrown.
    public static func parse(yaml: String, file: String) throws(RuleFileError) -> RuleFile {
        let loader = RuleFileLoader(reader: YAMLReader(file: file))
        return try loader.load(yaml)
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

extension RuleFileError {
    init(_ error: FileError, code: Code) {
        self.init(code: code, file: error.file, line: error.line, column: error.column, key: error.key, message: error.message)
    }
}

/// Reads a rule file with a ``YAMLReader``: the reader locates every node and reports YAML syntax,
/// unknown keys and repeated keys as it does for every DeerFlow file; the loader adds the rule
/// file's own checks. Problems that are not schema problems (PromQL, templates, unsupported
/// constructs) carry their code beside the reader's error.
private final class RuleFileLoader {
    let reader: YAMLReader
    /// The code of each problem that is not ``RuleFileError/Code/schema``.
    private var codes: [(error: FileError, code: RuleFileError.Code)] = []

    init(reader: YAMLReader) {
        self.reader = reader
    }

    func load(_ yaml: String) throws(RuleFileError) -> RuleFile {
        guard let root = reader.read(yaml) else {
            // A syntax error; a repeated key names the key and is a schema problem.
            let error = reader.errors.first ?? FileError(file: reader.file, line: 1, column: 1, message: "invalid YAML")
            throw RuleFileError(error, code: error.key.isEmpty ? .yaml : .schema)
        }
        var groups: [RuleGroup] = []
        if !root.isNull, let top = mapping(root, allowed: ["groups"]), let groupsNode = top.optional("groups") {
            if groupsNode.isSequence {
                var groupNames: Set<String> = []
                for groupNode in groupsNode.sequence() ?? [] {
                    guard let group = loadGroup(groupNode) else { continue }
                    if !groupNames.insert(group.name).inserted {
                        reader.report("groupname: \"\(group.name)\" is repeated in the same file", key: "\(groupNode.path).name", at: groupNode.location)
                    }
                    groups.append(group)
                }
            } else {
                groupsNode.fail("must be a list of groups")
            }
        }
        if let first = reader.errors.first {
            throw RuleFileError(first, code: codes.first { $0.error == first }?.code ?? .schema)
        }
        return RuleFile(file: reader.file, groups: groups)
    }

    /// Records a problem that is not a schema problem.
    func report(_ code: RuleFileError.Code, _ message: String, key: String, at location: YAMLLocation) {
        let error = FileError(file: reader.file, line: location.line, column: location.column, key: key, message: message)
        codes.append((error, code))
        reader.report(error)
    }

    /// A mapping with only `allowed` keys (unknown ones are reported).
    func mapping(_ node: YAMLNode, allowed: [String]) -> YAMLMapping? {
        guard node.isMapping else {
            node.fail("must be a mapping")
            return nil
        }
        return node.mapping(allowedKeys: allowed)
    }

    /// A string value; nil when absent or null, or (reported) when not a scalar.
    func string(_ node: YAMLNode?) -> String? {
        guard let node, !node.isNull else { return nil }
        guard node.isScalar else {
            node.fail("must be a string")
            return nil
        }
        return node.string()
    }

    /// A Prometheus duration (`1h30m`, `5m`, `1d`).
    func duration(_ node: YAMLNode?) -> Duration? {
        guard let node, let text = string(node) else { return nil }
        guard let milliseconds = PrometheusDuration.parseMilliseconds(text) else {
            node.fail("not a valid duration string: \"\(text)\" (use e.g. 30s, 5m, 1h30m)")
            return nil
        }
        return .milliseconds(milliseconds)
    }

    /// The entries of a mapping of label or annotation names to string values.
    func stringMap(_ node: YAMLNode?, kind: String) -> [(name: String, value: String, node: YAMLNode)] {
        guard let node, !node.isNull else { return [] }
        guard node.isMapping, let mapping = node.mapping() else {
            node.fail("must be a mapping of \(kind) names to values")
            return []
        }
        return mapping.entries.compactMap { entry in
            string(entry.value).map { (entry.key, $0, entry.value) } ?? (entry.value.isNull ? (entry.key, "", entry.value) : nil)
        }
    }

    /// The entries of a `labels:` or `annotations:` mapping whose names are valid (the others are
    /// reported at their value), with each value parsed as a template when `templates` is true.
    func named(
        _ node: YAMLNode?, key: String, kind: String, isValid: (String) -> Bool, templates: Bool
    ) -> (values: [String: String], templates: [(String, AlertTemplate)]) {
        var values: [String: String] = [:]
        var parsed: [(String, AlertTemplate)] = []
        for entry in stringMap(node, kind: kind) {
            guard isValid(entry.name) else {
                reader.report("invalid \(kind) name: \(entry.name)", key: key, at: entry.node.location)
                continue
            }
            values[entry.name] = entry.value
            if templates, let template = template(entry.value, node: entry.node) { parsed.append((entry.name, template)) }
        }
        return (values, parsed)
    }

    static func isLabelName(_ name: String) -> Bool {
        LabelNames.isValidLabelName(name) && name != LabelSet.metricName
    }

    func loadGroup(_ node: YAMLNode) -> RuleGroup? {
        guard let entries = mapping(node, allowed: ["name", "interval", "rules", "labels", "limit", "query_offset"]) else { return nil }
        for unsupported in ["limit", "query_offset"] {
            if let value = entries[unsupported] {
                report(.unsupported, "'\(unsupported)' is not supported by the embedded evaluator; remove it", key: value.path, at: value.location)
            }
        }
        let nameNode = entries["name"]
        let name = string(nameNode)
        if nameNode?.isNull ?? true || name?.isEmpty == true {
            reader.report("group name must not be empty", key: "\(node.path).name", at: nameNode?.location ?? node.location)
        }
        let interval = duration(entries.optional("interval"))
        if let interval, interval <= .zero, let intervalNode = entries["interval"] {
            intervalNode.fail("interval must be greater than 0")
        }
        let labels = named(entries["labels"], key: "\(node.path).labels", kind: "label", isValid: Self.isLabelName, templates: false).values
        var rules: [AlertingRule] = []
        if let rulesNode = entries.optional("rules") {
            if rulesNode.isSequence {
                rules = (rulesNode.sequence() ?? []).compactMap(loadRule)
            } else {
                rulesNode.fail("must be a list of rules")
            }
        }
        guard let name, !name.isEmpty else { return nil }
        return RuleGroup(name: name, interval: interval, labels: labels, rules: rules)
    }

    func loadRule(_ node: YAMLNode) -> AlertingRule? {
        guard let entries = mapping(node, allowed: ["alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"]) else { return nil }
        let key = node.path
        let alert = string(entries["alert"])
        let record = string(entries["record"])
        if alert != nil && record != nil {
            reader.report("only one of 'record' and 'alert' must be set", key: key, at: node.location)
            return nil
        }
        if let record, let recordNode = entries["record"] {
            report(.unsupported, "recording rules are not supported by the embedded evaluator (rule '\(record)'); inline the expression into the alert, or run Prometheus", key: recordNode.path, at: recordNode.location)
            return nil
        }
        guard let alert else {
            if entries.optional("alert") == nil {
                reader.report("one of 'record' or 'alert' must be set", key: key, at: node.location)
            }
            return nil
        }
        guard !alert.isEmpty else {
            entries["alert"]?.fail("alert name must not be empty")
            return nil
        }
        let exprNode = entries.optional("expr")
        guard let exprNode, let exprText = string(exprNode), !exprText.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            if exprNode?.isScalar ?? true {
                reader.report("field 'expr' must be set in rule", key: "\(key).expr", at: entries["expr"]?.location ?? node.location)
            }
            return nil
        }
        let expression: PromQLExpression
        do {
            expression = try PromQLExpression(parsing: exprText)
        } catch {
            let location = error.position.map { exprNode.location(inText: $0.line, column: $0.column) } ?? exprNode.location
            report(error.code == .unsupported ? .unsupported : .expression, "alert '\(alert)': \(error.message)", key: exprNode.path, at: location)
            return nil
        }
        let hold = duration(entries.optional("for")) ?? .zero
        let keepFiring = duration(entries.optional("keep_firing_for")) ?? .zero
        let labels = named(entries["labels"], key: "\(key).labels", kind: "label", isValid: Self.isLabelName, templates: true)
        let annotations = named(entries["annotations"], key: "\(key).annotations", kind: "annotation", isValid: LabelNames.isValidLabelName, templates: true)
        return AlertingRule(
            name: alert, expression: expression, holdDuration: hold, keepFiringFor: keepFiring,
            labels: labels.values, annotations: annotations.values,
            labelTemplates: labels.templates.sorted { $0.0 < $1.0 },
            annotationTemplates: annotations.templates.sorted { $0.0 < $1.0 }
        )
    }

    func template(_ text: String, node: YAMLNode) -> AlertTemplate? {
        do {
            return try AlertTemplate(parsing: text)
        } catch {
            // The error's offset counts from 1 across the template's lines.
            let position = GoTemplateText.position(of: max(0, error.offset - 1), in: text)
            report(.template, "template: \(error.message)", key: node.path, at: node.location(inText: position.line, column: position.column))
            return nil
        }
    }
}
