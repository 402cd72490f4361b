import Foundation
import Yams

/// A position in a YAML document; line and column are 1-based.
public struct YAMLLocation: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// Line 1, column 1: where problems of the document as a whole are reported.
    public static let start = YAMLLocation(line: 1, column: 1)

    public var description: String { "\(line):\(column)" }
}

/// Reads a YAML document into typed values, collecting every problem as a ``FileError`` located at
/// the offending node, instead of stopping at the first.
///
/// The reader remembers the location of every node it hands out under its path (`tasks[1].retries`),
/// so problems found later, for example by validating the value built from the document, can still
/// point at a line with ``location(of:)``.
///
/// With an `environment`, scalar values may refer to variables as `${NAME}` or `${NAME:-default}`
/// (the default applies when the variable is unset or empty); an unset variable without default is
/// an error naming it. Keys are never substituted. Without an environment (the default), `${...}` is
/// plain text.
///
/// ```swift
/// let reader = YAMLReader(file: "metrics.yaml", environment: ProcessInfo.processInfo.environment)
/// if let root = reader.read(text)?.mapping() {
///     root.checkKeys(["port", "path"])
///     port = root.int("port") ?? 9090
/// }
/// try reader.throwIfErrors()
/// ```
public final class YAMLReader {
    /// File name used in errors.
    public let file: String
    /// Variables for `${NAME}` substitution in scalar values; nil disables substitution.
    public let environment: [String: String]?
    /// Every problem found so far, in the order found, without duplicates.
    public private(set) var errors: [FileError] = []
    private var locations: [String: YAMLLocation] = [:]
    /// The lines of the text last read, to locate positions inside block scalars.
    private var lines: [Substring] = []

    /// - Parameters:
    ///   - file: Name of the file, used in every error.
    ///   - environment: Variables for `${NAME}` substitution; nil (the default) disables it.
    public init(file: String, environment: [String: String]? = nil) {
        self.file = file
        self.environment = environment
    }

    /// Parses YAML text and returns its root node.
    ///
    /// An empty document (nothing but comments and blank lines) gives a null node at line 1.
    /// Returns nil when the text is not valid YAML, after recording the syntax error.
    public func read(_ yaml: String) -> YAMLNode? {
        lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let root: Node?
        do {
            // Without Yams' resolver: `ScalarKind` types plain scalars (see there).
            root = try Yams.compose(yaml: yaml, .basic)
        } catch let error as YamlError {
            report(Self.syntaxError(error, yaml: yaml, file: file))
            return nil
        } catch {
            report("invalid YAML: \(error)", key: "", at: .start)
            return nil
        }
        let node = root ?? Node("", Tag(.null, .basic))
        let location = node.mark.map(YAMLLocation.init) ?? .start
        record(path: "", at: location)
        return YAMLNode(reader: self, node: node, path: "", location: location, keyLocation: nil)
    }

    /// Records a problem located at `location`, naming `key` (a path such as `tasks[1].retries`).
    public func report(_ message: String, key: String, at location: YAMLLocation) {
        report(FileError(file: file, line: location.line, column: location.column, key: key, message: message))
    }

    /// Records a problem; an identical one already recorded is not repeated.
    public func report(_ error: FileError) {
        if !errors.contains(error) { errors.append(error) }
    }

    /// Records where the node at `path` is. Nodes handed out by the reader are recorded automatically;
    /// loaders record aliases, e.g. `schedule.cron` for a schedule written as a plain string.
    /// The first location recorded for a path is kept.
    public func record(path: String, at location: YAMLLocation) {
        if locations[path] == nil { locations[path] = location }
    }

    /// Where the node at `path` is; if it was never read, the nearest recorded parent
    /// (`tasks[1].retries` → `tasks[1]` → `tasks`), else line 1, column 1.
    public func location(of path: String) -> YAMLLocation {
        var current = path
        while true {
            if let location = locations[current] { return location }
            if current.isEmpty { return .start }
            current = Self.parentPath(of: current)
        }
    }

    /// How many spaces line `line` (1-based) of the text read starts with; 0 past its end.
    func indentation(ofLine line: Int) -> Int {
        guard line >= 1, line <= lines.count else { return 0 }
        return lines[line - 1].prefix { $0 == " " }.count
    }

    /// Throws every recorded problem, if there is any.
    public func throwIfErrors() throws(FileErrors) {
        if !errors.isEmpty { throw FileErrors(errors: errors) }
    }

    /// The candidate closest to `word` by edit distance (ignoring case), if it is close enough to be
    /// a plausible typo, or if one starts with the other; for "did you mean" hints.
    public static func suggestion(for word: String, from candidates: some Sequence<String>) -> String? {
        let lowered = word.lowercased()
        let limit = lowered.count < 4 ? 1 : max(2, lowered.count / 4)
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            if distance <= limit, distance < (best?.distance ?? .max) { best = (candidate, distance) }
        }
        if let best { return best.candidate }
        guard lowered.count >= 3 else { return nil }
        return candidates.first { candidate in
            let other = candidate.lowercased()
            return other.hasPrefix(lowered) || lowered.hasPrefix(other)
        }
    }

    /// Path of the node containing `path`: `a.b[2]` → `a.b` → `a` → empty.
    static func parentPath(of path: String) -> String {
        if path.hasSuffix("]"), let open = path.lastIndex(of: "[") { return String(path[..<open]) }
        if let dot = path.lastIndex(of: ".") { return String(path[..<dot]) }
        return ""
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ lhs: String, _ rhs: String) -> Int {
        let lhs = Array(lhs)
        let rhs = Array(rhs)
        if lhs.isEmpty { return rhs.count }
        if rhs.isEmpty { return lhs.count }
        var previous = Array(0...rhs.count)
        var current = Array(repeating: 0, count: rhs.count + 1)
        for i in 1...lhs.count {
            current[0] = i
            for j in 1...rhs.count {
                let substitution = previous[j - 1] + (lhs[i - 1] == rhs[j - 1] ? 0 : 1)
                current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
            }
            swap(&previous, &current)
        }
        return previous[rhs.count]
    }

    /// `${NAME}` / `${NAME:-default}` substitution of a scalar's text; problems are reported at `node`.
    func substitute(_ text: String, in node: YAMLNode) -> String {
        guard let environment, text.contains("${") else { return text }
        var result = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            result += rest[..<open.lowerBound]
            let afterOpen = rest[open.upperBound...]
            guard let close = afterOpen.firstIndex(of: "}") else {
                node.fail("unterminated '${' in '\(text)' (write ${NAME})")
                return result + rest[open.lowerBound...]
            }
            let reference = afterOpen[..<close]
            var name = reference
            var fallback: Substring?
            if let separator = reference.range(of: ":-") {
                name = reference[..<separator.lowerBound]
                fallback = reference[separator.upperBound...]
            }
            if !Self.isVariableName(name) {
                node.fail("'${\(reference)}' is not a variable reference (write ${NAME} or ${NAME:-default})")
            } else if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                node.fail("environment variable '\(name)' is not set")
            }
            rest = afterOpen[afterOpen.index(after: close)...]
        }
        return result + rest
    }

    private static func isVariableName(_ name: Substring) -> Bool {
        func isLetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
        guard let first = name.unicodeScalars.first, first == "_" || isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || isLetter($0) || ("0"..."9").contains($0) }
    }

    /// A Yams parse error as a located ``FileError`` (duplicate keys name the key).
    static func syntaxError(_ error: YamlError, yaml: String, file: String) -> FileError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context, problem.hasPrefix("but ") {
                // Yams' own composer errors read as one sentence: "expected a single document ... but found another".
                message = "invalid YAML: \(context.text) \(problem)"
            } else if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            return FileError(file: file, line: mark.line, column: mark.column, message: message)
        case .reader(let problem, let offset, _, _):
            let location = offset.map { Self.location(ofCharacterOffset: $0, in: yaml) } ?? YAMLLocation.start
            return FileError(file: file, line: location.line, column: location.column, message: "invalid text: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? ""
            let first = context.mark
            if let second = repeatedKeyLocation(key, after: first, in: yaml) {
                return FileError(
                    file: file, line: second.line, column: second.column, key: key,
                    message: "duplicate key '\(key)' (first defined at line \(first.line))"
                )
            }
            return FileError(file: file, line: first.line, column: first.column, key: key, message: "duplicate key '\(key)'")
        default:
            return FileError(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
    }

    private static func location(ofCharacterOffset offset: Int, in text: String) -> YAMLLocation {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return YAMLLocation(line: line, column: column)
    }

    /// Best effort: the line repeating block-mapping key `key` at the column of its first definition.
    /// Yams reports only the first occurrence; the second is the one to remove.
    private static func repeatedKeyLocation(_ key: String, after first: Mark, in yaml: String) -> YAMLLocation? {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line < lines.count else { return nil }
        let indent = first.column - 1
        for index in first.line..<lines.count {
            let line = lines[index].unicodeScalars
            // Leading spaces and sequence dashes count as indentation.
            let content = line.drop { $0 == " " || $0 == "-" }
            let column = line.count - content.count
            let text = String(content)
            if text.isEmpty || text.hasPrefix("#") { continue }
            if column < indent { return nil }
            guard column == indent else { continue }
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where text.hasPrefix(spelling) {
                let after = text.dropFirst(spelling.count).drop { $0 == " " }
                if after.hasPrefix(":") { return YAMLLocation(line: index + 1, column: column + 1) }
            }
        }
        return nil
    }
}

/// One node of a document read by a ``YAMLReader``: its path (`tasks[1].retries`), its location and
/// typed accessors. An accessor that finds the wrong kind of value records an error at this node
/// (`expected an integer, got 'three'`) and returns nil.
public struct YAMLNode {
    /// The reader collecting errors and locations.
    public let reader: YAMLReader
    /// The Yams node.
    let node: Node
    /// Path in the document: `name`, `tasks[1].retries`; empty for the root.
    public let path: String
    /// Where the value starts.
    public let location: YAMLLocation
    /// Where the key of this value is, for values of a mapping.
    public let keyLocation: YAMLLocation?

    init(reader: YAMLReader, node: Node, path: String, location: YAMLLocation, keyLocation: YAMLLocation?) {
        self.reader = reader
        self.node = node
        self.path = path
        self.location = location
        self.keyLocation = keyLocation
        reader.record(path: path, at: keyLocation ?? location)
    }

    // MARK: Kinds

    /// Whether this is a null scalar (`~`, `null` or nothing at all).
    public var isNull: Bool {
        if case .scalar(let scalar) = node { return kind(of: scalar, text: scalar.string) == .null }
        return false
    }

    /// Whether this is a scalar (null included).
    public var isScalar: Bool {
        if case .scalar = node { return true }
        return false
    }

    public var isMapping: Bool {
        if case .mapping = node { return true }
        return false
    }

    public var isSequence: Bool {
        if case .sequence = node { return true }
        return false
    }

    /// What this value is, for messages: `'three'`, `null`, `a list`, `a mapping`.
    public var summary: String {
        switch node {
        case .scalar(let scalar):
            if kind(of: scalar, text: scalar.string) == .null { return "null" }
            func quoted(_ text: String) -> String {
                let firstLine = text.prefix { $0 != "\n" }
                return firstLine.count < text.count || firstLine.count > 60 ? "'\(firstLine.prefix(60))...'" : "'\(text)'"
            }
            let substituted = reader.substitute(scalar.string, in: self)
            return substituted == scalar.string ? quoted(substituted) : "\(quoted(substituted)) (from \(quoted(scalar.string)))"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Records a problem at this node (at its key when the value is empty).
    public func fail(_ message: String) {
        reader.report(message, key: path, at: isNull ? (keyLocation ?? location) : location)
    }

    /// Where a position inside this scalar's text is in the file, for problems found by parsing
    /// the text (a template, an expression): `line` and `column` are 1-based in the text. A block
    /// scalar (`|`, `>`) starts on the line after its indicator, at that line's indentation; a
    /// quoted scalar one column after its quote. Not a scalar: the node's own location.
    public func location(inText line: Int, column: Int) -> YAMLLocation {
        guard case .scalar(let scalar) = node else { return location }
        switch scalar.style {
        case .literal, .folded:
            let fileLine = location.line + line
            return YAMLLocation(line: fileLine, column: reader.indentation(ofLine: fileLine) + column)
        case .singleQuoted, .doubleQuoted:
            return YAMLLocation(line: location.line + line - 1, column: line == 1 ? location.column + column : column)
        default:
            return YAMLLocation(line: location.line + line - 1, column: line == 1 ? location.column + column - 1 : column)
        }
    }

    // MARK: Scalars

    /// The text of a non-null scalar (any scalar: `5` and `true` read as `"5"` and `"true"`).
    public func string() -> String? {
        guard let text = scalarText(), !isNull else {
            fail("expected a string, got \(summary)")
            return nil
        }
        return text
    }

    /// An integer (`42`, `-1`, `1_000`).
    public func int() -> Int? {
        guard let text = scalarText(), let value = Int(text.replacingOccurrences(of: "_", with: "")) else {
            fail("expected an integer, got \(summary)")
            return nil
        }
        return value
    }

    /// A number (`1.5`, `2`, `1e3`).
    public func double() -> Double? {
        guard let text = scalarText(), let value = Double(text.replacingOccurrences(of: "_", with: "")), value.isFinite else {
            fail("expected a number, got \(summary)")
            return nil
        }
        return value
    }

    /// A boolean: `true`/`false` (also `yes`/`no`, `on`/`off`), in any case.
    public func bool() -> Bool? {
        switch scalarText()?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            fail("expected true or false, got \(summary)")
            return nil
        }
    }

    /// A duration in ``DurationText`` notation (`500ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`); `0` is
    /// zero. At most ``Limits/anyDuration`` (ten years).
    public func duration() -> Duration? {
        duration(in: Limits.anyDuration)
    }

    /// A duration in `range`; outside it, an error `must be between 1s and 1d, got 2d`.
    public func duration(in range: ClosedRange<Duration>) -> Duration? {
        guard isScalar, !isNull, let text = scalarText() else {
            fail("expected a duration (e.g. 30s, 5m, 2h, 1d), got \(summary)")
            return nil
        }
        switch Limits.duration(text, in: range) {
        case .success(let duration):
            return duration
        case .failure(let problem):
            fail(problem.message)
            return nil
        }
    }

    /// An integer in `range`; outside it, an error `must be between 1 and 10000, got 0`.
    public func int(in range: ClosedRange<Int>) -> Int? {
        guard let value = int() else { return nil }
        if let problem = Limits.problem(value, outside: range) {
            fail(problem)
            return nil
        }
        return value
    }

    /// One of `allowed`, spelled exactly; otherwise an error `unknown <what> 'x' (did you mean 'y'?)`.
    ///
    /// - Parameters:
    ///   - allowed: The accepted values.
    ///   - what: What the value is, for the message (`task type`, `log level`).
    public func oneOf(_ allowed: [String], what: String) -> String? {
        guard let text = string() else { return nil }
        if allowed.contains(text) { return text }
        if let suggestion = YAMLReader.suggestion(for: text, from: allowed) {
            fail("unknown \(what) '\(text)' (did you mean '\(suggestion)'?)")
        } else {
            fail("unknown \(what) '\(text)' (expected one of: \(allowed.joined(separator: ", ")))")
        }
        return nil
    }

    /// A case of a string enumeration, by raw value (see ``oneOf(_:what:)``).
    public func oneOf<Value: CaseIterable & RawRepresentable>(_ type: Value.Type, what: String) -> Value?
    where Value.RawValue == String {
        oneOf(type.allCases.map(\.rawValue), what: what).flatMap(Value.init(rawValue:))
    }

    // MARK: Collections

    /// A mapping; with `allowedKeys`, unknown keys are reported (see ``YAMLMapping/checkKeys(_:explain:)``).
    public func mapping(allowedKeys: [String]? = nil) -> YAMLMapping? {
        guard case .mapping(let mapping) = node else {
            fail("expected a mapping, got \(summary)")
            return nil
        }
        let result = YAMLMapping(node: self, mapping: mapping)
        if let allowedKeys { result.checkKeys(allowedKeys) }
        return result
    }

    /// The items of a list.
    public func sequence() -> [YAMLNode]? {
        guard case .sequence(let sequence) = node else {
            fail("expected a list, got \(summary)")
            return nil
        }
        return sequence.enumerated().map { index, item in
            YAMLNode(
                reader: reader, node: item, path: "\(path)[\(index)]",
                location: item.mark.map(YAMLLocation.init) ?? location, keyLocation: nil
            )
        }
    }

    /// A list of strings; with `allowSingle`, a lone string is a list of one.
    /// Returns nil if the value or any item is not a string.
    public func stringList(allowSingle: Bool = false) -> [String]? {
        list(allowSingle: allowSingle, what: "a list of strings") { $0.string() }
    }

    /// A list of integers; with `allowSingle`, a lone integer is a list of one.
    public func intList(allowSingle: Bool = false) -> [Int]? {
        list(allowSingle: allowSingle, what: "a list of integers") { $0.int() }
    }

    /// A mapping of strings to strings (environment variables, headers).
    public func stringMap() -> [String: String]? {
        guard let mapping = mapping() else { return nil }
        var result: [String: String] = [:]
        var valid = true
        for entry in mapping.entries {
            if let value = entry.value.string() { result[entry.key] = value } else { valid = false }
        }
        return valid ? result : nil
    }

    /// Any value as JSON: scalars by their YAML type (`5` → `.int(5)`, `"5"` → `.string("5")`,
    /// `true`, `1.5`, `~` → `.null`; other scalars, such as dates, as strings), lists and mappings
    /// recursively.
    public func json() -> JSONValue {
        switch node {
        case .scalar(let scalar):
            let text = reader.substitute(scalar.string, in: self)
            switch kind(of: scalar, text: text) {
            case .null: return .null
            case .bool: return .bool(["true", "yes", "on"].contains(text.lowercased()))
            case .int:
                if let value = Int(text.replacingOccurrences(of: "_", with: "")) { return .int(value) }
                if let value = Int.construct(from: Node.Scalar(text, Tag(.implicit, .basic))) { return .int(value) }
                return .string(text)
            case .float:
                if let value = Double(text.replacingOccurrences(of: "_", with: "")), value.isFinite { return .double(value) }
                return .string(text)
            case .string: return .string(text)
            }
        case .sequence:
            return .array((sequence() ?? []).map { $0.json() })
        case .mapping:
            var object: [String: JSONValue] = [:]
            for entry in mapping()?.entries ?? [] { object[entry.key] = entry.value.json() }
            return .object(object)
        case .alias:
            return .null
        }
    }

    // MARK: Helpers

    /// The scalar's text after substitution; nil for lists and mappings.
    func scalarText() -> String? {
        guard case .scalar(let scalar) = node else { return nil }
        return reader.substitute(scalar.string, in: self)
    }

    private func list<Element>(allowSingle: Bool, what: String, _ item: (YAMLNode) -> Element?) -> [Element]? {
        if allowSingle, isScalar, !isNull {
            let single = YAMLNode(reader: reader, node: node, path: "\(path)[0]", location: location, keyLocation: nil)
            return item(single).map { [$0] }
        }
        guard case .sequence = node else {
            fail("expected \(what), got \(summary)")
            return nil
        }
        let items = (sequence() ?? []).map(item)
        let values = items.compactMap { $0 }
        return values.count == items.count ? values : nil
    }

    /// The YAML type of a scalar: its explicit tag (`!!str 5`), else, for a plain scalar, the type
    /// its text has (``ScalarKind/init(plain:)``); quoted and block scalars are strings. For text
    /// changed by substitution, the type the new text has.
    func kind(of scalar: Node.Scalar, text: String) -> ScalarKind {
        // The tag as written: the document is composed without a resolver, and nothing here asks
        // Yams to resolve it, so an untagged scalar still has the implicit (empty) tag.
        switch Tag.Name(rawValue: scalar.tag.rawValue) {
        case .implicit:
            return scalar.style == .plain || scalar.style == .any ? ScalarKind(plain: text) : .string
        case .null: return .null
        case .bool: return .bool
        case .int: return .int
        case .float: return .float
        default: return .string
        }
    }
}

/// The type of a YAML scalar, as far as settings and parameters care.
enum ScalarKind: Equatable {
    case null, bool, int, float, string

    /// The type YAML 1.1 gives a plain scalar's text: the rules of Yams' default resolver for
    /// null, bool, int and float (timestamps and the rest stay strings).
    ///
    /// Written out here because Yams matches its rules with `NSRegularExpression`, which is ICU's:
    /// seven patterns compiled at the first file read and up to seven matches per scalar (a
    /// 10,000-task workflow validated in 0.48 s with them, 0.30 s without). Swift's `Regex` would
    /// map its own engine into every server for these few patterns; the matchers below are the
    /// patterns alternative by alternative, and a test holds them to Yams' answers.
    init(plain text: String) {
        // ICU's `$` also matches before a final line break.
        let text = text.last?.isNewline == true ? text.dropLast() : Substring(text)
        if Self.nulls.contains(text) {
            self = .null
        } else if Self.bools.contains(text) {
            self = .bool
        } else {
            let bytes = Array(text.utf8)
            if Self.isInt(bytes) {
                self = .int
            } else if Self.isFloat(bytes) {
                self = .float
            } else {
                self = .string
            }
        }
    }

    private static let nulls: Set<Substring> = ["", "~", "null", "Null", "NULL"]
    private static let bools: Set<Substring> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ]

    /// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
    /// | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
    private static func isInt(_ bytes: [UInt8]) -> Bool {
        var text = Cursor(bytes)
        text.skipSign()
        if text.skip("0") {
            if text.atEnd { return true }
            if text.skip("b") { return text.skipAll(isBinaryOrUnderscore) > 0 && text.atEnd }
            if text.skip("x") { return text.skipAll(isHexOrUnderscore) > 0 && text.atEnd }
            _ = text.skip("o")
            return text.skipAll(isOctalOrUnderscore) > 0 && text.atEnd
        }
        guard text.skip(where: { $0 >= UInt8(ascii: "1") && $0 <= UInt8(ascii: "9") }) else { return false }
        text.skipAll(isDigitOrUnderscore)
        if text.atEnd { return true }
        return text.skipSexagesimalParts() && text.atEnd
    }

    /// `[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)? | \.[0-9_]+([eE][-+][0-9]+)?
    /// | [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
    private static func isFloat(_ bytes: [UInt8]) -> Bool {
        var text = Cursor(bytes)
        let signed = text.skipSign()
        if text.skip(".") {
            let rest = Substring(decoding: bytes[text.index...], as: UTF8.self)
            if ["inf", "Inf", "INF"].contains(rest) { return true }
            if signed { return false }
            if ["nan", "NaN", "NAN"].contains(rest) { return true }
            guard text.skipAll(isDigitOrUnderscore) > 0 else { return false }
            if text.atEnd { return true }
            return text.skipExponent(signRequired: true) && text.atEnd
        }
        guard text.skip(where: isDigit) else { return false }
        text.skipAll(isDigitOrUnderscore)
        if text.bytes.dropFirst(text.index).first == UInt8(ascii: ":") {
            guard text.skipSexagesimalParts(), text.skip(".") else { return false }
            text.skipAll(isDigitOrUnderscore)
            return text.atEnd
        }
        if text.skip(".") { text.skipAll(isDigitOrUnderscore) }
        if text.atEnd { return true }
        return text.skipExponent(signRequired: false) && text.atEnd
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isDigitOrUnderscore(_ byte: UInt8) -> Bool { isDigit(byte) || byte == UInt8(ascii: "_") }
    private static func isBinaryOrUnderscore(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "0") || byte == UInt8(ascii: "1") || byte == UInt8(ascii: "_")
    }
    private static func isOctalOrUnderscore(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "7")) || byte == UInt8(ascii: "_")
    }
    private static func isHexOrUnderscore(_ byte: UInt8) -> Bool {
        isDigitOrUnderscore(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
            || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
    }

    /// A position in a scalar's UTF-8 bytes; each `skip` moves past what it matched.
    private struct Cursor {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func skip(where matches: (UInt8) -> Bool) -> Bool {
            guard index < bytes.count, matches(bytes[index]) else { return false }
            index += 1
            return true
        }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            skip { $0 == UInt8(ascii: character) }
        }

        /// An optional `+` or `-`; whether there was one.
        @discardableResult
        mutating func skipSign() -> Bool {
            skip("+") || skip("-")
        }

        /// How many bytes in a row matched.
        @discardableResult
        mutating func skipAll(_ matches: (UInt8) -> Bool) -> Int {
            let start = index
            while skip(where: matches) {}
            return index - start
        }

        /// `(:[0-5]?[0-9])+`.
        mutating func skipSexagesimalParts() -> Bool {
            var parts = 0
            while skip(":") {
                let tens = index
                guard skip(where: ScalarKind.isDigit) else { return false }
                // A second digit belongs to the part when the first was 0-5 (the pattern is greedy).
                if bytes[tens] <= UInt8(ascii: "5") { _ = skip(where: ScalarKind.isDigit) }
                parts += 1
            }
            return parts > 0
        }

        /// `[eE][-+]?[0-9]+`, the sign required when `signRequired`.
        mutating func skipExponent(signRequired: Bool) -> Bool {
            guard skip("e") || skip("E") else { return false }
            guard skipSign() || !signRequired else { return false }
            return skipAll(ScalarKind.isDigit) > 0
        }
    }
}

/// A mapping of a document read by a ``YAMLReader``, with its entries in order.
///
/// YAML merge keys (`<<: *defaults`) are expanded: merged entries appear where the merge key is,
/// and keys written in the mapping itself win.
public struct YAMLMapping {
    /// One key and its value.
    public struct Entry {
        public let key: String
        public let value: YAMLNode
    }

    /// The mapping as a node.
    public let node: YAMLNode
    /// Entries in document order.
    public let entries: [Entry]

    /// Path of the mapping.
    public var path: String { node.path }
    /// Keys in document order.
    public var keys: [String] { entries.map(\.key) }

    init(node: YAMLNode, mapping: Node.Mapping) {
        self.node = node
        entries = Self.pairs(of: mapping, in: node).map { key, keyLocation, value in
            let path = node.path.isEmpty ? key : "\(node.path).\(key)"
            let child = YAMLNode(
                reader: node.reader, node: value, path: path,
                location: value.mark.map(YAMLLocation.init) ?? keyLocation, keyLocation: keyLocation
            )
            return Entry(key: key, value: child)
        }
    }

    /// The key-value pairs of a mapping with merge keys expanded. Keys written in the mapping itself
    /// win over merged ones wherever the merge key is; among merged mappings, the first wins.
    private static func pairs(of mapping: Node.Mapping, in parent: YAMLNode) -> [(String, YAMLLocation, Node)] {
        var result: [(String, YAMLLocation, Node)] = []
        var seen = Set(mapping.compactMap { key, _ in isMergeKey(key) ? nil : key.scalar?.string })
        for (key, value) in mapping {
            let keyLocation = key.mark.map(YAMLLocation.init) ?? parent.location
            if isMergeKey(key) {
                let merged: [Node.Mapping]
                switch value {
                case .mapping(let mapping): merged = [mapping]
                case .sequence(let sequence): merged = sequence.compactMap(\.mapping)
                default: merged = []
                }
                if merged.isEmpty {
                    parent.reader.report("a merge key '<<' needs a mapping or a list of mappings", key: parent.path, at: keyLocation)
                }
                for mapping in merged {
                    for pair in pairs(of: mapping, in: parent) where seen.insert(pair.0).inserted {
                        result.append(pair)
                    }
                }
            } else if case .scalar(let scalar) = key {
                result.append((scalar.string, keyLocation, value))
            } else {
                let kind = key.mapping != nil ? "a mapping" : "a list"
                parent.reader.report("keys must be plain strings, not \(kind)", key: parent.path, at: keyLocation)
            }
        }
        return result
    }

    private static func isMergeKey(_ key: Node) -> Bool {
        guard case .scalar(let scalar) = key, scalar.string == "<<", scalar.style == .plain || scalar.style == .any else { return false }
        return true
    }

    /// The value of `key`, null values included; nil when the key is absent.
    public subscript(key: String) -> YAMLNode? {
        entries.first { $0.key == key }?.value
    }

    /// The value of `key` unless it is absent or null: what optional settings are read with.
    public func optional(_ key: String) -> YAMLNode? {
        guard let value = self[key], !value.isNull else { return nil }
        return value
    }

    /// The value of `key`; records `missing required key '<key>'` when it is absent or null.
    public func require(_ key: String) -> YAMLNode? {
        if let value = optional(key) { return value }
        let path = self.path.isEmpty ? key : "\(self.path).\(key)"
        node.reader.report("missing required key '\(key)'", key: path, at: self[key]?.keyLocation ?? node.location)
        return nil
    }

    /// Reports every key not in `allowed`: `unknown key 'comand' (did you mean 'command'?)`, or with
    /// the allowed keys listed when none is close. `explain` may give a better message for a key
    /// (e.g. one that belongs to another kind of object).
    public func checkKeys(_ allowed: [String], explain: (String) -> String? = { _ in nil }) {
        for entry in entries where !allowed.contains(entry.key) {
            let message: String
            if let explanation = explain(entry.key) {
                message = explanation
            } else if let suggestion = YAMLReader.suggestion(for: entry.key, from: allowed) {
                message = "unknown key '\(entry.key)' (did you mean '\(suggestion)'?)"
            } else if allowed.isEmpty {
                message = "unknown key '\(entry.key)' (no keys are allowed here)"
            } else {
                message = "unknown key '\(entry.key)' (allowed: \(allowed.joined(separator: ", ")))"
            }
            node.reader.report(message, key: entry.value.path, at: entry.value.keyLocation ?? entry.value.location)
        }
    }

    // MARK: Optional typed values
    // Each returns nil when the key is absent or null, and records an error (returning nil) when
    // the value is of the wrong kind; see the accessors of the same name on ``YAMLNode``.

    /// The string value of `key` (``YAMLNode/string()``).
    public func string(_ key: String) -> String? { optional(key)?.string() }
    /// The integer value of `key` (``YAMLNode/int()``).
    public func int(_ key: String) -> Int? { optional(key)?.int() }
    /// The numeric value of `key` (``YAMLNode/double()``).
    public func double(_ key: String) -> Double? { optional(key)?.double() }
    /// The boolean value of `key` (``YAMLNode/bool()``).
    public func bool(_ key: String) -> Bool? { optional(key)?.bool() }
    /// The duration value of `key` (``YAMLNode/duration()``).
    public func duration(_ key: String) -> Duration? { optional(key)?.duration() }
    /// The string list of `key` (``YAMLNode/stringList(allowSingle:)``).
    public func stringList(_ key: String, allowSingle: Bool = false) -> [String]? { optional(key)?.stringList(allowSingle: allowSingle) }
    /// The integer list of `key` (``YAMLNode/intList(allowSingle:)``).
    public func intList(_ key: String, allowSingle: Bool = false) -> [Int]? { optional(key)?.intList(allowSingle: allowSingle) }
    /// The string-to-string mapping of `key` (``YAMLNode/stringMap()``).
    public func stringMap(_ key: String) -> [String: String]? { optional(key)?.stringMap() }
    /// The mapping of `key` (``YAMLNode/mapping(allowedKeys:)``).
    public func mapping(_ key: String, allowedKeys: [String]? = nil) -> YAMLMapping? { optional(key)?.mapping(allowedKeys: allowedKeys) }
    /// The list items of `key` (``YAMLNode/sequence()``).
    public func sequence(_ key: String) -> [YAMLNode]? { optional(key)?.sequence() }
}

extension YAMLLocation {
    init(_ mark: Mark) {
        self.init(line: mark.line, column: mark.column)
    }
}
