import Foundation
import DeerFlowCore

/// A template error: where in the template text (1-based character offset) and what.
struct TemplateError: Error, Equatable {
    var offset: Int
    var message: String
}

/// The subset of Go `text/template` that Prometheus alert labels and annotations use, with the
/// data Prometheus passes (`template.AlertTemplateData`: `.Labels`, `.ExternalLabels`,
/// `.Value`, and the variables `$labels`, `$externalLabels`, `$value` its rule manager defines).
///
/// Supported actions: `{{ $value }}`, `{{ .Value }}`, `{{ $labels.name }}`, `{{ .Labels.name }}`,
/// `{{ index $labels "name" }}`, string and number literals, pipelines (`{{ $value | humanize }}`)
/// and calls (`{{ humanize $value }}`) of `humanize`, `humanize1024`, `humanizeDuration`,
/// `humanizePercentage`, `toUpper`, `toLower`; `{{- ` / ` -}}` trim markers and `{{/* */}}`
/// comments. Control structures (`if`, `range`, `with`, ...) and other functions are rejected
/// when the rule file loads.
///
/// Output follows Go: a float prints as `fmt.Sprint` does (`1500`, `0.25`, `1e+06`), a missing
/// label prints as the empty string, and a function failing at run time yields
/// `<error expanding template: ...>` like Prometheus.
struct AlertTemplate: Sendable {
    enum Operand: Sendable {
        case value
        case labels
        case externalLabels
        case label(String)
        case externalLabel(String)
        case externalURL
        case string(String)
        case number(Double)
    }

    enum Function: String, Sendable {
        case humanize, humanize1024, humanizeDuration, humanizePercentage, toUpper, toLower, index

        var arity: Int { self == .index ? 2 : 1 }
    }

    enum Command: Sendable {
        case operand(Operand)
        case call(Function, [Operand])
    }

    enum Node: Sendable {
        case text(String)
        case pipeline([Command])
    }

    enum Value {
        case number(Double)
        case string(String)
        case map([String: String])
    }

    let source: String
    let nodes: [Node]

    /// True when the text has no actions (rendering is the identity).
    var isConstant: Bool { nodes.allSatisfy { if case .text = $0 { true } else { false } } }

    init(parsing source: String) throws(TemplateError) {
        self.source = source
        self.nodes = try AlertTemplate.parse(source)
    }

    // MARK: Rendering

    func render(labels: [String: String], value: Double, externalLabels: [String: String] = [:]) -> String {
        var out = ""
        do throws(ExecutionError) {
            for node in nodes {
                switch node {
                case let .text(text):
                    out += text
                case let .pipeline(commands):
                    var result: Value?
                    for command in commands {
                        result = try execute(command, piped: result, labels: labels, value: value, externalLabels: externalLabels)
                    }
                    if let result { out += Self.print(result) }
                }
            }
        } catch {
            return "<error expanding template: \(error.message)>"
        }
        return out
    }

    private struct ExecutionError: Error { var message: String }

    private func execute(
        _ command: Command, piped: Value?, labels: [String: String], value: Double, externalLabels: [String: String]
    ) throws(ExecutionError) -> Value {
        func resolve(_ operand: Operand) -> Value {
            switch operand {
            case .value: return .number(value)
            case .labels: return .map(labels)
            case .externalLabels: return .map(externalLabels)
            case let .label(name): return .string(labels[name] ?? "")
            case let .externalLabel(name): return .string(externalLabels[name] ?? "")
            case .externalURL: return .string("")
            case let .string(text): return .string(text)
            case let .number(number): return .number(number)
            }
        }
        switch command {
        case let .operand(operand):
            if piped != nil { throw ExecutionError(message: "can't give argument to non-function") }
            return resolve(operand)
        case let .call(function, operands):
            var arguments = operands.map(resolve)
            if let piped { arguments.append(piped) }
            guard arguments.count == function.arity else {
                throw ExecutionError(message: "wrong number of args for \(function.rawValue): want \(function.arity) got \(arguments.count)")
            }
            return try Self.apply(function, arguments)
        }
    }

    private static func number(_ value: Value, for function: Function) throws(ExecutionError) -> Double {
        switch value {
        case let .number(number): return number
        case let .string(text):
            guard let number = GoNumbers.parseFloat(text) else {
                throw ExecutionError(message: "error calling \(function.rawValue): strconv.ParseFloat: parsing \"\(text)\": invalid syntax")
            }
            return number
        case .map:
            throw ExecutionError(message: "error calling \(function.rawValue): can't convert map to float")
        }
    }

    private static func apply(_ function: Function, _ arguments: [Value]) throws(ExecutionError) -> Value {
        switch function {
        case .humanize: return .string(TemplateFormatting.humanize(try number(arguments[0], for: function)))
        case .humanize1024: return .string(TemplateFormatting.humanize1024(try number(arguments[0], for: function)))
        case .humanizeDuration: return .string(TemplateFormatting.humanizeDuration(try number(arguments[0], for: function)))
        case .humanizePercentage: return .string(TemplateFormatting.humanizePercentage(try number(arguments[0], for: function)))
        case .toUpper: return .string(print(arguments[0]).uppercased())
        case .toLower: return .string(print(arguments[0]).lowercased())
        case .index:
            guard case let .map(map) = arguments[0] else {
                throw ExecutionError(message: "error calling index: can't index item of this type")
            }
            return .string(map[print(arguments[1])] ?? "")
        }
    }

    /// `fmt.Sprint` of the value: floats in Go's shortest form, maps as `map[k:v ...]`.
    static func print(_ value: Value) -> String {
        switch value {
        case let .number(number): return GoFormat.shortest(number)
        case let .string(text): return text
        case let .map(map):
            let items = map.keys.sorted(by: LabelSet.precedes).map { "\($0):\(map[$0]!)" }
            return "map[" + items.joined(separator: " ") + "]"
        }
    }

    // MARK: Parsing

    private static func parse(_ source: String) throws(TemplateError) -> [Node] {
        let pieces: [GoTemplateText.Piece]
        do {
            pieces = try GoTemplateText.split(source)
        } catch {
            throw TemplateError(offset: error.offset + 1, message: "unclosed action")
        }
        var nodes: [Node] = []
        for piece in pieces {
            switch piece {
            case .text(let text): nodes.append(.text(text))
            case .action(let content, let offset): if let node = try parseAction(content, offset: offset + 1) { nodes.append(node) }
            }
        }
        return nodes
    }

    private static let controlKeywords: Set<String> = [
        "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    ]

    private static func parseAction(_ content: String, offset: Int) throws(TemplateError) -> Node? {
        let trimmed = content.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("/*") {
            guard trimmed.hasSuffix("*/") else { throw TemplateError(offset: offset, message: "unclosed comment") }
            return nil
        }
        guard !trimmed.isEmpty else { throw TemplateError(offset: offset, message: "missing value for command") }
        var commands: [Command] = []
        for part in try splitPipeline(trimmed, offset: offset) {
            let words = try splitWords(part, offset: offset)
            guard let head = words.first else {
                throw TemplateError(offset: offset, message: "missing command in pipeline")
            }
            if controlKeywords.contains(head) {
                throw TemplateError(offset: offset, message: "template action '\(head)' is not supported (supported: values, labels, and the functions humanize, humanize1024, humanizeDuration, humanizePercentage, toUpper, toLower, index)")
            }
            if let function = Function(rawValue: head) {
                let operands = try words.dropFirst().map { word throws(TemplateError) in try parseOperand(word, offset: offset) }
                if operands.count > function.arity || (commands.isEmpty && operands.count != function.arity)
                    || (!commands.isEmpty && operands.count != function.arity - 1) {
                    throw TemplateError(offset: offset, message: "wrong number of args for \(head): want \(function.arity)")
                }
                commands.append(.call(function, operands))
            } else {
                let operand = try parseOperand(head, offset: offset)
                guard words.count == 1 else {
                    throw TemplateError(offset: offset, message: "can't give argument to non-function \(head)")
                }
                guard commands.isEmpty else {
                    throw TemplateError(offset: offset, message: "non-function \(head) in a pipeline stage")
                }
                commands.append(.operand(operand))
            }
        }
        return .pipeline(commands)
    }

    private static func parseOperand(_ word: String, offset: Int) throws(TemplateError) -> Operand {
        switch word {
        case "$value", ".Value": return .value
        case "$labels", ".Labels": return .labels
        case "$externalLabels", ".ExternalLabels": return .externalLabels
        case "$externalURL", ".ExternalURL": return .externalURL
        default: break
        }
        for prefix in ["$labels.", ".Labels."] where word.hasPrefix(prefix) {
            let name = String(word.dropFirst(prefix.count))
            guard !name.isEmpty, name.utf8.allSatisfy({ LabelNames.isAlpha($0) || LabelNames.isDigit($0) }) else { break }
            return .label(name)
        }
        for prefix in ["$externalLabels.", ".ExternalLabels."] where word.hasPrefix(prefix) {
            let name = String(word.dropFirst(prefix.count))
            guard !name.isEmpty else { break }
            return .externalLabel(name)
        }
        if let first = word.first, first == "\"" || first == "`" {
            guard word.count >= 2, word.last == first else {
                throw TemplateError(offset: offset, message: "unterminated quoted string")
            }
            let body = String(word.dropFirst().dropLast())
            return .string(first == "`" ? body : unescape(body))
        }
        if let number = Double(word) { return .number(number) }
        if word.hasPrefix("$") {
            throw TemplateError(offset: offset, message: "undefined variable \"\(word)\"")
        }
        if let first = word.unicodeScalars.first, CharacterSet.letters.contains(first) {
            throw TemplateError(offset: offset, message: "function \"\(word)\" not defined or not supported (supported: humanize, humanize1024, humanizeDuration, humanizePercentage, toUpper, toLower, index)")
        }
        throw TemplateError(offset: offset, message: "unsupported template operand \"\(word)\"")
    }

    private static func unescape(_ body: String) -> String {
        var out = ""
        var escaping = false
        for character in body {
            if escaping {
                switch character {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(character)
                }
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else {
                out.append(character)
            }
        }
        return out
    }

    /// Splits on `|` outside quotes; empty stages are kept (they are errors).
    private static func splitPipeline(_ text: String, offset: Int) throws(TemplateError) -> [String] {
        try split(text, offset: offset, keepingEmpty: true, rejectingParentheses: false) { $0 == "|" }
    }

    /// Splits on whitespace outside quotes; parentheses are not supported.
    private static func splitWords(_ text: String, offset: Int) throws(TemplateError) -> [String] {
        try split(text, offset: offset, keepingEmpty: false, rejectingParentheses: true) { $0.isWhitespace }
    }

    /// Splits `text` at the separators outside quoted strings (`"..."` with `\` escapes, or
    /// `` `...` ``); the quotes stay in the parts.
    private static func split(
        _ text: String, offset: Int, keepingEmpty: Bool, rejectingParentheses: Bool, at isSeparator: (Character) -> Bool
    ) throws(TemplateError) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        var escaped = false
        for character in text {
            if let open = quote {
                current.append(character)
                if escaped { escaped = false } else if character == "\\" && open == "\"" { escaped = true } else if character == open { quote = nil }
                continue
            }
            if rejectingParentheses, character == "(" || character == ")" {
                throw TemplateError(offset: offset, message: "parenthesized template expressions are not supported")
            }
            if isSeparator(character) {
                if keepingEmpty || !current.isEmpty { parts.append(current) }
                current = ""
            } else {
                if character == "\"" || character == "`" { quote = character }
                current.append(character)
            }
        }
        if keepingEmpty {
            if quote != nil { throw TemplateError(offset: offset, message: "unterminated quoted string") }
            parts.append(current)
        } else if !current.isEmpty {
            parts.append(current)
        }
        return parts
    }
}

/// Prometheus' template functions (`template/template.go`), formatting as Go's `%.4g`.
enum TemplateFormatting {
    /// SI prefixes: `k M G T P E Z Y` for |v| ≥ 1000, `m u n p f a z y` for |v| < 1 (Prometheus
    /// writes micro as `u`), 4 significant digits: `1234567` → "1.235M", `0.001234` → "1.234m".
    static func humanize(_ input: Double) -> String {
        var v = input
        if v == 0 || v.isNaN || v.isInfinite { return GoFormat.g(v, precision: 4) }
        if abs(v) >= 1 {
            var prefix = ""
            for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
                if abs(v) < 1000 { break }
                prefix = p
                v /= 1000
            }
            return GoFormat.g(v, precision: 4) + prefix
        }
        var prefix = ""
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if abs(v) >= 1 { break }
            prefix = p
            v *= 1000
        }
        return GoFormat.g(v, precision: 4) + prefix
    }

    /// Binary prefixes `ki Mi Gi ...` for |v| > 1.
    static func humanize1024(_ input: Double) -> String {
        var v = input
        if abs(v) <= 1 || v.isNaN || v.isInfinite { return GoFormat.g(v, precision: 4) }
        var prefix = ""
        for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
            if abs(v) < 1024 { break }
            prefix = p
            v /= 1024
        }
        return GoFormat.g(v, precision: 4) + prefix
    }

    /// Seconds as `1d 2h 3m 4s`, `1.5s`, `250ms`.
    static func humanizeDuration(_ input: Double) -> String {
        var v = input
        if v.isNaN || v.isInfinite { return GoFormat.g(v, precision: 4) }
        if v == 0 { return GoFormat.g(v, precision: 4) + "s" }
        if abs(v) >= 1 {
            var sign = ""
            if v < 0 {
                sign = "-"
                v = -v
            }
            // Saturated: a value past Int64 (a metric can hold 1e300) must not trap the evaluator.
            let whole = v < 9_223_372_036_854_774_784 ? Int64(v) : Int64.max
            let seconds = whole % 60
            let minutes = (whole / 60) % 60
            let hours = (whole / 60 / 60) % 24
            let days = whole / 60 / 60 / 24
            if days != 0 { return "\(sign)\(days)d \(hours)h \(minutes)m \(seconds)s" }
            if hours != 0 { return "\(sign)\(hours)h \(minutes)m \(seconds)s" }
            if minutes != 0 { return "\(sign)\(minutes)m \(seconds)s" }
            return sign + GoFormat.g(v, precision: 4) + "s"
        }
        var prefix = ""
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if abs(v) >= 1 { break }
            prefix = p
            v *= 1000
        }
        return GoFormat.g(v, precision: 4) + prefix + "s"
    }

    /// `v × 100` with 4 significant digits and `%`: `0.1234` → "12.34%".
    static func humanizePercentage(_ input: Double) -> String {
        GoFormat.g(input * 100, precision: 4) + "%"
    }
}
