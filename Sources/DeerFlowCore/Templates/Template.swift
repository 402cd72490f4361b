import Foundation

/// A text with `{{ expression }}` placeholders, parsed once (when its workflow is loaded) and
/// rendered when a task runs.
///
/// The language is deliberately small — paths, indexes, literals and three filters — so that a
/// template can be checked before the run and cannot do anything but read values:
///
/// ```text
/// {{ params.day }}                         a parameter
/// {{ tasks.extract.output.rows }}           a key of an upstream task's JSON output
/// {{ tasks.list.output.files[0] }}          an index ([-1] is the last item)
/// {{ body["ref"] }}                         a key that is not a plain name
/// {{ run.id }}  {{ run.logical_time }}      the run
/// {{ secrets.API_TOKEN }}                   a secret of deerflow.yaml (redacted wherever it shows)
/// {{ params.limit | default(100) }}         a value for a missing key or null
/// {{ params.config | json }}                a string parsed as JSON
/// {{ tasks.extract.output | tojson }}       compact JSON text
/// {{ body.ref | urlencode }}                percent-encoded, for a URL path segment or query value
/// ```
///
/// A value never becomes code: templates render into http fields, environment variables and
/// argv items only, never into a shell script's text.
public struct Template: Sendable, Hashable {
    /// The text as written.
    public let source: String
    private let segments: [Segment]

    /// Parses `text`.
    /// - Throws: ``TemplateError`` naming the problem and its column, e.g. an unclosed `{{`.
    public init(_ text: String) throws(TemplateError) {
        source = text
        segments = try TemplateParser.segments(of: text)
    }

    /// Whether the text has at least one `{{ }}`.
    public var isTemplated: Bool {
        segments.contains { if case .expression = $0 { true } else { false } }
    }

    /// The path each expression reads (literal expressions read none), in order of appearance.
    public var references: [TemplateReference] {
        segments.compactMap { segment in
            guard case .expression(let expression) = segment, case .path(let path) = expression.primary else { return nil }
            return TemplateReference(path: path.map(\.description), hasDefault: expression.hasDefault)
        }
    }

    /// The text with every expression replaced by its value: strings as they are, numbers and
    /// booleans as text, null as nothing, arrays and objects as compact JSON.
    public func render(_ scope: TemplateScope) throws(TemplateError) -> String {
        var text = ""
        for segment in segments {
            switch segment {
            case .text(let literal): text += literal
            case .expression(let expression): text += try expression.evaluate(in: scope).plainText
            }
        }
        return text
    }

    /// The value of a text that is exactly one expression (`"{{ tasks.list.output.files }}"`
    /// gives the array itself); any other text gives its rendering as a string.
    public func value(_ scope: TemplateScope) throws(TemplateError) -> JSONValue {
        if segments.count == 1, case .expression(let expression) = segments[0] {
            return try expression.evaluate(in: scope)
        }
        return .string(try render(scope))
    }

    /// Whether the text is exactly one expression, whose ``value(_:)`` keeps its JSON type.
    public var isSingleExpression: Bool {
        if segments.count == 1, case .expression = segments[0] { return true }
        return false
    }
}

/// The values an expression can read, by the name it starts with: `params`, `tasks`
/// (`tasks.<id>.output`), `run`, `secrets`; a mapped instance's `item` and `index`; a webhook's
/// `body` and `headers`.
public struct TemplateScope: Sendable {
    public var roots: [String: JSONValue]

    public init(_ roots: [String: JSONValue]) {
        self.roots = roots
    }
}

/// The path one expression reads, for checks before a run (`deerflow validate`).
public struct TemplateReference: Sendable, Hashable, CustomStringConvertible {
    /// `["tasks", "extract", "output", "rows"]`; the first component is the root name.
    public let path: [String]
    /// Whether `| default(...)` follows, so a missing value is not an error.
    public let hasDefault: Bool

    public init(path: [String], hasDefault: Bool = false) {
        self.path = path
        self.hasDefault = hasDefault
    }

    /// The root name (`tasks`).
    public var root: String { path.first ?? "" }

    /// `tasks.extract.output.rows`.
    public var description: String {
        path.enumerated().map { index, component in
            index == 0 ? component : (component.hasPrefix("[") ? component : ".\(component)")
        }.joined()
    }
}

/// A template that does not parse, or an expression that cannot be evaluated.
public struct TemplateError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

// MARK: - Syntax

enum PathComponent: Sendable, Hashable, CustomStringConvertible {
    case key(String)
    case index(Int)

    var description: String {
        switch self {
        case .key(let key):
            return key.allSatisfy(TemplateParser.isNameCharacter) && !key.isEmpty ? key : "[\(JSONValue.string(key).compactJSON)]"
        case .index(let index): return "[\(index)]"
        }
    }
}

enum Primary: Sendable, Hashable {
    case path([PathComponent])
    case literal(JSONValue)
}

enum Filter: Sendable, Hashable {
    case `default`(JSONValue)
    case json
    case tojson
    case urlencode
}

struct Expression: Sendable, Hashable {
    let primary: Primary
    let filters: [Filter]

    var hasDefault: Bool {
        filters.contains { if case .default = $0 { true } else { false } }
    }

    func evaluate(in scope: TemplateScope) throws(TemplateError) -> JSONValue {
        var value: JSONValue?
        var missing: TemplateError?
        switch primary {
        case .literal(let literal): value = literal
        case .path(let path):
            do throws(TemplateError) {
                value = try Self.lookUp(path, in: scope)
            } catch {
                missing = error
            }
        }
        for filter in filters {
            switch filter {
            case .default(let fallback):
                if value == nil || value == .null {
                    value = fallback
                    missing = nil
                }
            case .json:
                guard let current = value else { continue }
                guard case .string(let text) = current else {
                    throw TemplateError("`| json` parses a string, but the value is \(current.typeName == "array" || current.typeName == "object" ? "an" : "a") \(current.typeName) (it is JSON already)")
                }
                do {
                    value = try JSONValue(parsing: text)
                } catch {
                    // No excerpt: the value may be a secret, and a cut one would escape redaction.
                    throw TemplateError("`| json`: the value is not JSON text (a string of \(text.count) characters)")
                }
            case .tojson:
                value = value.map { .string($0.compactJSON) }
            case .urlencode:
                // Everything but RFC 3986's unreserved characters: a value cannot end a path
                // segment, start a query or fragment, or change the host.
                let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
                value = value.map { .string($0.plainText.addingPercentEncoding(withAllowedCharacters: unreserved) ?? "") }
            }
        }
        if let missing { throw missing }
        return value ?? .null
    }

    static func lookUp(_ path: [PathComponent], in scope: TemplateScope) throws(TemplateError) -> JSONValue {
        guard case .key(let root)? = path.first else { throw TemplateError("an expression starts with a name") }
        guard var value = scope.roots[root] else {
            let names = scope.roots.keys.sorted().joined(separator: ", ")
            throw TemplateError("unknown name '\(root)'; templates here can read: \(names)")
        }
        var walked = root
        for component in path.dropFirst() {
            switch (component, value) {
            case (.key(let key), .object(let object)):
                guard let next = object[key] else {
                    let keys = object.keys.sorted()
                    let known = keys.isEmpty ? "it is an empty object" : "its keys: \(keys.prefix(10).joined(separator: ", "))\(keys.count > 10 ? ", …" : "")"
                    throw TemplateError("\(walked) has no key '\(key)' (\(known)); add `| default(...)` if it may be missing")
                }
                value = next
            case (.index(let index), .array(let items)):
                let position = index < 0 ? items.count + index : index
                guard items.indices.contains(position) else {
                    throw TemplateError("\(walked)[\(index)] is out of range: the array has \(items.count) item\(items.count == 1 ? "" : "s")")
                }
                value = items[position]
            case (.key(let key), _):
                throw TemplateError("\(walked) is \(article(value.typeName)) \(value.typeName), not an object, so it has no key '\(key)'")
            case (.index(let index), _):
                throw TemplateError("\(walked) is \(article(value.typeName)) \(value.typeName), not an array, so it has no item [\(index)]")
            }
            walked += component.description.hasPrefix("[") ? component.description : ".\(component.description)"
        }
        return value
    }

    private static func article(_ typeName: String) -> String {
        ["array", "object", "integer"].contains(typeName) ? "an" : "a"
    }
}

enum Segment: Sendable, Hashable {
    case text(String)
    case expression(Expression)
}

/// A hand-written recursive-descent parser: the grammar is a dozen lines, and a parser library
/// (none is among the project's dependencies) would not give better error messages.
enum TemplateParser {
    static func isNameCharacter(_ character: Character) -> Bool {
        character == "_" || character == "-" || (character.isASCII && (character.isLetter || character.isNumber))
    }

    static func excerpt(_ text: String) -> String {
        text.count > 40 ? "\(text.prefix(40))…" : text
    }

    /// Whether the text inside `{{ }}` is meant as a DeerFlow expression: it starts with a name
    /// (`params.day`) or a literal. Anything else — Go templates of `docker --format '{{.ID}}'`,
    /// `{{-`, JSON such as `{{"a": 1}}` — is left as text, so such values load as they always did.
    static func isExpression(_ body: Substring) -> Bool {
        guard let first = body.first(where: { $0 != " " && $0 != "\t" }) else { return true }
        return first.isLetter || first.isNumber || first == "\"" || first == "'" || first == "_"
    }

    static func segments(of text: String) throws(TemplateError) -> [Segment] {
        var segments: [Segment] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            literal += rest[..<open.lowerBound]
            let column = text.distance(from: text.startIndex, to: open.lowerBound) + 1
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                guard isExpression(rest[open.upperBound...]) else {
                    literal += rest[open.lowerBound...]
                    rest = rest[rest.endIndex...]
                    break
                }
                throw TemplateError("column \(column): `{{` is not closed by `}}`")
            }
            let body = rest[open.upperBound..<close.lowerBound]
            guard isExpression(body) else {
                literal += rest[open.lowerBound..<close.upperBound]
                rest = rest[close.upperBound...]
                continue
            }
            do throws(TemplateError) {
                var parser = ExpressionParser(body)
                let expression = try parser.parseAll()
                if !literal.isEmpty { segments.append(.text(literal)) }
                literal = ""
                segments.append(.expression(expression))
            } catch {
                throw TemplateError("column \(column), in `{{\(body)}}`: \(error.message)")
            }
            rest = rest[close.upperBound...]
        }
        // A `}}` without `{{` is text (JSON ends objects that way).
        literal += rest
        if !literal.isEmpty { segments.append(.text(literal)) }
        return segments
    }
}

struct ExpressionParser {
    private var rest: Substring

    init(_ text: Substring) {
        rest = text
    }

    mutating func parseAll() throws(TemplateError) -> Expression {
        skipSpaces()
        guard !rest.isEmpty else { throw TemplateError("an empty expression") }
        let primary = try parsePrimary()
        var filters: [Filter] = []
        skipSpaces()
        while consume("|") {
            skipSpaces()
            filters.append(try parseFilter())
            skipSpaces()
        }
        guard rest.isEmpty else {
            throw TemplateError("unexpected `\(TemplateParser.excerpt(rest.trimmingCharacters(in: .whitespacesAndNewlines)))`")
        }
        return Expression(primary: primary, filters: filters)
    }

    private mutating func parsePrimary() throws(TemplateError) -> Primary {
        if let literal = try parseLiteral() { return .literal(literal) }
        let root = parseName()
        guard !root.isEmpty else { throw TemplateError("expected a name such as params.day, found `\(TemplateParser.excerpt(String(rest)))`") }
        var path: [PathComponent] = [.key(root)]
        while true {
            if consume(".") {
                let key = parseName()
                guard !key.isEmpty else { throw TemplateError("expected a key after `.`") }
                path.append(.key(key))
            } else if consume("[") {
                skipSpaces()
                if let number = parseInteger() {
                    path.append(.index(number))
                } else if case .string(let key)? = try parseString() {
                    path.append(.key(key))
                } else {
                    throw TemplateError("expected an index or a quoted key inside `[ ]`")
                }
                skipSpaces()
                guard consume("]") else { throw TemplateError("`[` is not closed by `]`") }
            } else {
                return .path(path)
            }
        }
    }

    private mutating func parseFilter() throws(TemplateError) -> Filter {
        let name = parseName()
        switch name {
        case "default":
            skipSpaces()
            guard consume("(") else { throw TemplateError("`default` needs a value: `default(0)`, `default(\"\")`") }
            skipSpaces()
            guard let fallback = try parseLiteral() else { throw TemplateError("`default(...)` takes a literal: a number, a quoted string, true, false or null") }
            skipSpaces()
            guard consume(")") else { throw TemplateError("`default(` is not closed by `)`") }
            return .default(fallback)
        case "json": return .json
        case "tojson": return .tojson
        case "urlencode": return .urlencode
        case "": throw TemplateError("expected a filter after `|`: default(...), json, tojson or urlencode")
        default: throw TemplateError("unknown filter '\(name)'; the filters are default(...), json, tojson and urlencode")
        }
    }

    private mutating func parseLiteral() throws(TemplateError) -> JSONValue? {
        if let string = try parseString() { return string }
        if let first = rest.first, first.isNumber || first == "-" {
            let text = rest.prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "e" || $0 == "E" || $0 == "+" }
            rest = rest.dropFirst(text.count)
            if let integer = Int(text) { return .int(integer) }
            if let number = Double(text) { return .double(number) }
            throw TemplateError("`\(text)` is not a number")
        }
        for (word, value) in [("true", JSONValue.bool(true)), ("false", .bool(false)), ("null", .null)] where rest.hasPrefix(word) {
            let after = rest.dropFirst(word.count)
            if let next = after.first, TemplateParser.isNameCharacter(next) || next == "." || next == "[" { continue }
            rest = after
            return value
        }
        return nil
    }

    private mutating func parseString() throws(TemplateError) -> JSONValue? {
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        rest = rest.dropFirst()
        var text = ""
        while let character = rest.first {
            rest = rest.dropFirst()
            if character == quote { return .string(text) }
            if character == "\\", let escaped = rest.first {
                rest = rest.dropFirst()
                switch escaped {
                case "n": text.append("\n")
                case "t": text.append("\t")
                default: text.append(escaped)
                }
            } else {
                text.append(character)
            }
        }
        throw TemplateError("a string is not closed by \(quote)")
    }

    private mutating func parseInteger() -> Int? {
        let text = rest.prefix { $0.isNumber || $0 == "-" }
        guard !text.isEmpty, let number = Int(text) else { return nil }
        rest = rest.dropFirst(text.count)
        return number
    }

    private mutating func parseName() -> String {
        let name = rest.prefix(while: TemplateParser.isNameCharacter)
        rest = rest.dropFirst(name.count)
        return String(name)
    }

    private mutating func consume(_ character: Character) -> Bool {
        guard rest.first == character else { return false }
        rest = rest.dropFirst()
        return true
    }

    private mutating func skipSpaces() {
        rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "\n" }
    }
}
