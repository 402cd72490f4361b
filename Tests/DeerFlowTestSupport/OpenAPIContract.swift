import Foundation
import DeerFlowTesting
import Yams

/// Checks HTTP responses against an OpenAPI 3.1 document (`openapi.yaml`), so tests can assert
/// that what the server answers is what the document promises.
///
/// ```swift
/// let contract = try OpenAPIContract(yaml: String(contentsOfFile: "openapi.yaml", encoding: .utf8))
/// let problems = contract.validate(
///     method: "GET", path: "/api/v1/runs/{id}", status: 200,
///     contentType: "application/json; charset=utf-8", body: Array(responseBody))
/// #expect(problems.isEmpty, "\(problems)")
/// ```
///
/// A response conforms when its status is documented for the operation (exactly, as `2XX`, or
/// as `default`), its content type matches one of the documented media types (type, subtype and
/// every documented parameter; extra parameters such as `charset` are fine) and, for JSON media
/// types, the body parses and conforms to the schema.
///
/// The JSON Schema subset checked: `type` (a name or a list, e.g. `[string, "null"]`), `enum`,
/// `const`, `properties`, `required`, `additionalProperties` (`false`, `true` or a schema),
/// `items`, `$ref` to `#/...` in the same document, `allOf`, `anyOf`, `oneOf`, `pattern`,
/// `minimum`, `maximum`, and `format: date-time` (RFC 3339). Other formats are annotations.
/// The initialiser throws when a schema uses any other validating keyword, so nothing in the
/// document is silently left unchecked.
///
/// Problems name the place with a JSON pointer (`/` for the whole body), e.g.
/// `/tasks/0/attempts/0/status: "weird" is not one of [queued, running, success, failed, timeout, cancelled]`.
public struct OpenAPIContract: Sendable {
    /// Why a document cannot be used: not YAML, not an OpenAPI document, a dangling `$ref`, or a
    /// schema keyword this checker does not support.
    public struct DocumentError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    struct Operation: Sendable {
        var method: String
        var path: String
        var definition: Value
    }

    private let document: Value
    private let operationList: [Operation]

    /// Reads an OpenAPI document.
    ///
    /// - Parameter yaml: the document's text (YAML, or JSON, which is YAML too).
    /// - Throws: ``DocumentError`` when the text is not YAML, has no `paths`, has a `$ref` that
    ///   does not resolve, or a schema uses a keyword outside the supported subset.
    public init(yaml: String) throws {
        let node: Yams.Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw DocumentError(message: "the OpenAPI document is not valid YAML: \(error)")
        }
        guard let node else { throw DocumentError(message: "the OpenAPI document is empty") }
        document = try Value(yaml: node, at: "")
        guard case .object = document else {
            throw DocumentError(message: "the OpenAPI document must be a mapping at the top level")
        }
        guard case .object(let paths)? = document["paths"] else {
            throw DocumentError(message: "the OpenAPI document has no 'paths' mapping")
        }
        var operations: [Operation] = []
        for (path, item) in paths.entries {
            guard path.hasPrefix("/") else { throw DocumentError(message: "path '\(path)' does not start with '/'") }
            guard case .object(let pathItem) = item else { throw DocumentError(message: "/paths/\(Pointer.escape(path)) is not a mapping") }
            for (method, definition) in pathItem.entries where Self.methods.contains(method) {
                operations.append(Operation(method: method.uppercased(), path: path, definition: definition))
            }
        }
        operationList = operations
        try SchemaAudit(document: document).run()
    }

    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The documented operations, in document order: method upper-cased, path as templated in
    /// the document (`/api/v1/runs/{id}`).
    public var operations: [(method: String, path: String)] {
        operationList.map { ($0.method, $0.path) }
    }

    /// Checks one response against the document.
    ///
    /// - Parameters:
    ///   - method: the request method, any case.
    ///   - path: the documented path template (`/api/v1/runs/{id}`), or a concrete path that
    ///     matches a template (`/api/v1/runs/01J0...`); a template that is literally documented wins.
    ///   - status: the response status code.
    ///   - contentType: the `Content-Type` header, if any.
    ///   - body: the response body.
    /// - Returns: what does not conform, one sentence each; empty when the response conforms.
    public func validate(method: String, path: String, status: Int, contentType: String?, body: [UInt8]) -> [String] {
        let method = method.uppercased()
        guard let operation = operation(method: method, path: path) else {
            return ["\(method) \(path) is not a documented operation"]
        }
        let label = "\(method) \(operation.path)"
        guard case .object(let responses)? = operation.definition["responses"] else {
            return ["\(label) documents no responses"]
        }
        guard let declared = responses["\(status)"] ?? responses["\(status / 100)XX"] ?? responses["default"] else {
            let documented = responses.entries.map(\.key).joined(separator: ", ")
            return ["\(label): status \(status) is not documented (documented: \(documented))"]
        }
        let response = resolve(declared)
        guard case .object(let content)? = response["content"], !content.entries.isEmpty else {
            return body.isEmpty ? [] : ["\(label) \(status): no body is documented, got \(body.count) bytes"]
        }
        let documentedTypes = content.entries.map(\.key).joined(separator: ", ")
        guard let contentType else {
            return ["\(label) \(status): the response has no Content-Type; documented: \(documentedTypes)"]
        }
        guard let actual = MediaType(contentType) else {
            return ["\(label) \(status): content type \"\(contentType)\" is not a media type"]
        }
        guard let (_, media) = content.entries.first(where: { MediaType($0.key).map(actual.matches) ?? false }) else {
            return ["\(label) \(status): content type \"\(contentType)\" is not documented (documented: \(documentedTypes))"]
        }
        if actual.isJSON {
            let value: Value
            do {
                value = try JSONParser.parse(body)
            } catch {
                return ["\(label) \(status): the body is not valid JSON: \(error.message)"]
            }
            guard let schema = media["schema"] else { return [] }
            var problems: [String] = []
            SchemaChecker(document: document).check(value, against: schema, at: Pointer(), into: &problems)
            return problems
        }
        if actual.type == "text" || actual.subtype.hasSuffix("yaml"), String(validating: body, as: UTF8.self) == nil {
            return ["\(label) \(status): the \(actual.type)/\(actual.subtype) body is not valid UTF-8"]
        }
        return []
    }

    /// Checks every example in the document against its schema: response and parameter examples
    /// (`example` and `examples`), header examples, and `example` inside component schemas.
    ///
    /// - Returns: what does not conform, each prefixed with where the example is; empty when all do.
    public func validateExamples() -> [String] {
        let checker = SchemaChecker(document: document)
        var problems: [String] = []
        func check(_ container: Value, schema: Value?, where place: String) {
            guard let schema else { return }
            var examples: [(String, Value)] = []
            if let example = container["example"] { examples.append(("example", example)) }
            if case .object(let named)? = container["examples"] {
                for (name, entry) in named.entries {
                    if let value = resolve(entry)["value"] { examples.append(("example '\(name)'", value)) }
                }
            }
            for (name, example) in examples {
                var found: [String] = []
                checker.check(example, against: schema, at: Pointer(), into: &found)
                problems += found.map { "\(place), \(name): \($0)" }
            }
        }
        for operation in operationList {
            let label = "\(operation.method) \(operation.path)"
            let pathItem = document["paths"]?[operation.path]
            let parameters = (pathItem?["parameters"]?.arrayItems ?? []) + (operation.definition["parameters"]?.arrayItems ?? [])
            for parameter in parameters.map(resolve) {
                check(parameter, schema: parameter["schema"], where: "\(label) parameter '\(parameter["name"]?.stringValue ?? "?")'")
            }
            if case .object(let content)? = resolve(operation.definition["requestBody"] ?? .null)["content"] {
                for (mediaType, media) in content.entries where MediaType(mediaType)?.isJSON ?? false {
                    check(media, schema: media["schema"], where: "\(label) request body \(mediaType)")
                }
            }
            guard case .object(let responses)? = operation.definition["responses"] else { continue }
            for (status, declared) in responses.entries {
                let response = resolve(declared)
                if case .object(let headers)? = response["headers"] {
                    for (name, header) in headers.entries {
                        let header = resolve(header)
                        check(header, schema: header["schema"], where: "\(label) \(status) header \(name)")
                    }
                }
                guard case .object(let content)? = response["content"] else { continue }
                for (mediaType, media) in content.entries where MediaType(mediaType)?.isJSON ?? false {
                    check(media, schema: media["schema"], where: "\(label) \(status) \(mediaType)")
                }
            }
        }
        if case .object(let schemas)? = document["components"]?["schemas"] {
            for (name, schema) in schemas.entries {
                SchemaAudit.walk(schema, at: "/components/schemas/\(Pointer.escape(name))") { subschema, location in
                    if let example = subschema["example"] {
                        var found: [String] = []
                        checker.check(example, against: subschema, at: Pointer(), into: &found)
                        problems += found.map { "schema \(location), example: \($0)" }
                    }
                }
            }
        }
        return problems
    }

    // MARK: Lookup

    /// The operation documented for a template, or else the one whose template matches a concrete
    /// path (query ignored), preferring the template with the most literal segments.
    private func operation(method: String, path: String) -> Operation? {
        let candidates = operationList.filter { $0.method == method }
        if let exact = candidates.first(where: { $0.path == path }) { return exact }
        let concrete = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        let segments = concrete.split(separator: "/", omittingEmptySubsequences: false)
        var best: (operation: Operation, literals: Int)?
        for operation in candidates {
            let template = operation.path.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == segments.count else { continue }
            var literals = 0
            let matches = zip(template, segments).allSatisfy { pattern, segment in
                if pattern == segment {
                    literals += 1
                    return true
                }
                return pattern.hasPrefix("{") && pattern.hasSuffix("}") && !segment.isEmpty && !segment.contains("{")
            }
            if matches, literals > best?.literals ?? -1 { best = (operation, literals) }
        }
        return best?.operation
    }

    private func resolve(_ value: Value) -> Value {
        Value.resolve(value, in: document)
    }
}

// MARK: - Values

extension OpenAPIContract {
    /// A JSON value (also what the YAML document is converted to), objects keeping key order.
    enum Value: Sendable {
        case null
        case bool(Bool)
        /// The number and its text as written (for messages).
        case number(Double, text: String)
        case string(String)
        case array([Value])
        case object(Object)

        struct Object: Sendable {
            var entries: [(key: String, value: Value)] = []
            var index: [String: Int] = [:]

            subscript(key: String) -> Value? { index[key].map { entries[$0].value } }

            /// Adds a key; false when it is already there.
            mutating func add(_ key: String, _ value: Value) -> Bool {
                guard index[key] == nil else { return false }
                index[key] = entries.count
                entries.append((key, value))
                return true
            }
        }

        subscript(key: String) -> Value? {
            if case .object(let object) = self { return object[key] }
            return nil
        }

        var stringValue: String? {
            if case .string(let text) = self { return text }
            return nil
        }

        var arrayItems: [Value]? {
            if case .array(let items) = self { return items }
            return nil
        }

        var numberValue: Double? {
            if case .number(let number, _) = self { return number }
            return nil
        }

        /// Follows `$ref`s (`#/a/b`) until a value without one; a dangling or cyclic ref gives null.
        static func resolve(_ value: Value, in document: Value) -> Value {
            var current = value
            for _ in 0..<32 {
                guard let reference = current["$ref"]?.stringValue else { return current }
                guard let target = document.lookup(reference) else { return .null }
                current = target
            }
            return .null
        }

        /// The value at a `#/...` JSON pointer reference in this document.
        func lookup(_ reference: String) -> Value? {
            guard reference.hasPrefix("#"), let tokens = Pointer.tokens(of: String(reference.dropFirst())) else { return nil }
            var current = self
            for token in tokens {
                switch current {
                case .object(let object):
                    guard let next = object[token] else { return nil }
                    current = next
                case .array(let items):
                    guard let index = Int(token), items.indices.contains(index) else { return nil }
                    current = items[index]
                default:
                    return nil
                }
            }
            return current
        }

        /// The JSON Schema type names this value has (`integer` numbers are also `number`).
        var typeNames: [String] {
            switch self {
            case .null: return ["null"]
            case .bool: return ["boolean"]
            case .number(let number, _): return number.isFinite && number.rounded() == number ? ["integer", "number"] : ["number"]
            case .string: return ["string"]
            case .array: return ["array"]
            case .object: return ["object"]
            }
        }

        /// A short description for messages: `string "x"`, `number 3`, `object`.
        var described: String {
            switch self {
            case .null: return "null"
            case .bool(let flag): return "boolean \(flag)"
            case .number(_, let text): return "number \(text)"
            case .string: return "string \(preview)"
            case .array(let items): return "array of \(items.count)"
            case .object: return "object"
            }
        }

        /// The value as it reads in a message: strings quoted and shortened.
        var preview: String {
            switch self {
            case .null: return "null"
            case .bool(let flag): return "\(flag)"
            case .number(_, let text): return text
            case .string(let text):
                let short = text.count > 80 ? String(text.prefix(77)) + "..." : text
                let escaped = short
                    .replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: "\\n")
                return "\"" + escaped + "\""
            case .array: return "[...]"
            case .object: return "{...}"
            }
        }

        /// How an enum member reads in a list: strings bare.
        var listed: String {
            if case .string(let text) = self { return text }
            return preview
        }

        /// JSON equality (numbers by value, objects ignoring key order).
        func equals(_ other: Value) -> Bool {
            switch (self, other) {
            case (.null, .null): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.number(let a, _), .number(let b, _)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
            case (.object(let a), .object(let b)):
                return a.entries.count == b.entries.count && a.entries.allSatisfy { entry in b[entry.key].map(entry.value.equals) ?? false }
            default: return false
            }
        }

        /// Converts a composed YAML node; scalars take their resolved YAML 1.1 core type
        /// (timestamps stay strings, as in JSON).
        init(yaml node: Yams.Node, at location: String) throws {
            switch node {
            case .scalar(let scalar):
                switch Yams.Tag.Name(rawValue: node.tag.rawValue) {
                case .null: self = .null
                case .bool: self = node.bool.map(Value.bool) ?? .string(scalar.string)
                case .int:
                    if let number = node.int { self = .number(Double(number), text: String(number)) } else { self = .string(scalar.string) }
                case .float:
                    if let number = node.float { self = .number(number, text: scalar.string) } else { self = .string(scalar.string) }
                default: self = .string(scalar.string)
                }
            case .sequence(let sequence):
                self = .array(try sequence.enumerated().map { index, item in try Value(yaml: item, at: "\(location)/\(index)") })
            case .mapping(let mapping):
                var object = Object()
                for (key, value) in mapping {
                    guard case .scalar(let keyScalar) = key else {
                        throw DocumentError(message: "\(location.isEmpty ? "/" : location): mapping keys must be scalars")
                    }
                    let name = keyScalar.string
                    let child = try Value(yaml: value, at: "\(location)/\(Pointer.escape(name))")
                    guard object.add(name, child) else {
                        throw DocumentError(message: "\(location.isEmpty ? "/" : location): duplicate key '\(name)'")
                    }
                }
                self = .object(object)
            case .alias:
                throw DocumentError(message: "\(location.isEmpty ? "/" : location): YAML aliases are not supported; write the value out")
            }
        }
    }

    /// A JSON pointer (RFC 6901) built up while descending into a value.
    struct Pointer: CustomStringConvertible {
        var tokens: [String] = []

        func appending(_ token: String) -> Pointer { Pointer(tokens: tokens + [token]) }
        func appending(_ index: Int) -> Pointer { appending(String(index)) }

        var description: String {
            tokens.isEmpty ? "/" : tokens.map { "/" + Pointer.escape($0) }.joined()
        }

        static func escape(_ token: String) -> String {
            token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        }

        /// The unescaped tokens of a pointer (`/a/b~1c`); nil when it does not start with `/`.
        static func tokens(of pointer: String) -> [String]? {
            if pointer.isEmpty { return [] }
            guard pointer.hasPrefix("/") else { return nil }
            return pointer.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
                $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            }
        }
    }

    /// A media type such as `application/json; charset=utf-8`.
    struct MediaType {
        var type: String
        var subtype: String
        var parameters: [String: String]

        init?(_ text: String) {
            let parts = text.split(separator: ";").map { $0.trimmingSpaces }
            let kind = parts.first?.lowercased().split(separator: "/", omittingEmptySubsequences: false) ?? []
            guard kind.count == 2, !kind[0].isEmpty, !kind[1].isEmpty else { return nil }
            type = String(kind[0])
            subtype = String(kind[1])
            parameters = [:]
            for part in parts.dropFirst() where !part.isEmpty {
                guard let equals = part.firstIndex(of: "=") else { return nil }
                var value = part[part.index(after: equals)...].trimmingSpaces
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                parameters[part[..<equals].trimmingSpaces.lowercased()] = value.lowercased()
            }
        }

        var isJSON: Bool { subtype == "json" || subtype.hasSuffix("+json") }

        /// Whether this actual media type is covered by a documented one (wildcards allowed; every
        /// documented parameter must be present with the same value).
        func matches(_ documented: MediaType) -> Bool {
            guard documented.type == "*" || documented.type == type else { return false }
            guard documented.subtype == "*" || documented.subtype == subtype else { return false }
            return documented.parameters.allSatisfy { parameters[$0.key] == $0.value }
        }
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

// MARK: - Schema checks

extension OpenAPIContract {
    /// Validates values against schemas of one document.
    struct SchemaChecker {
        let document: Value

        func check(_ value: Value, against schema: Value, at pointer: Pointer, into problems: inout [String], refDepth: Int = 0) {
            switch schema {
            case .bool(true): return
            case .bool(false):
                problems.append("\(pointer): no value is allowed here")
                return
            case .object: break
            default: return
            }
            if let reference = schema["$ref"]?.stringValue {
                guard refDepth < 64 else {
                    problems.append("\(pointer): the schema's $ref chain does not end (\(reference))")
                    return
                }
                guard let target = document.lookup(reference) else {
                    problems.append("\(pointer): the schema's $ref \(reference) does not resolve")
                    return
                }
                check(value, against: target, at: pointer, into: &problems, refDepth: refDepth + 1)
            }
            if let type = schema["type"] {
                let allowed = type.arrayItems?.compactMap(\.stringValue) ?? type.stringValue.map { [$0] } ?? []
                let actual = value.typeNames
                guard allowed.contains(where: actual.contains) else {
                    problems.append("\(pointer): expected \(allowed.joined(separator: " or ")), got \(value.described)")
                    return
                }
            }
            if let members = schema["enum"]?.arrayItems, !members.contains(where: value.equals) {
                problems.append("\(pointer): \(value.preview) is not one of [\(members.map(\.listed).joined(separator: ", "))]")
            }
            if let constant = schema["const"], !constant.equals(value) {
                problems.append("\(pointer): \(value.preview) is not \(constant.preview)")
            }
            if case .string(let text) = value {
                if schema["format"]?.stringValue == "date-time", !RFC3339.isDateTime(text) {
                    problems.append("\(pointer): \(value.preview) is not an RFC 3339 date-time")
                }
                if let pattern = schema["pattern"]?.stringValue {
                    if let regex = try? Regex(pattern) {
                        if !text.contains(regex) { problems.append("\(pointer): \(value.preview) does not match the pattern \(pattern)") }
                    } else {
                        problems.append("\(pointer): the schema's pattern \(pattern) is not a valid regular expression")
                    }
                }
            }
            if case .number(let number, let text) = value {
                if let minimum = schema["minimum"], let bound = minimum.numberValue, number < bound {
                    problems.append("\(pointer): \(text) is less than the minimum \(minimum.preview)")
                }
                if let maximum = schema["maximum"], let bound = maximum.numberValue, number > bound {
                    problems.append("\(pointer): \(text) is greater than the maximum \(maximum.preview)")
                }
            }
            if case .object(let object) = value {
                checkObject(object, against: schema, at: pointer, into: &problems)
            }
            if case .array(let items) = value, let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() {
                    check(item, against: itemSchema, at: pointer.appending(index), into: &problems)
                }
            }
            if let all = schema["allOf"]?.arrayItems {
                for subschema in all { check(value, against: subschema, at: pointer, into: &problems) }
            }
            if let any = schema["anyOf"]?.arrayItems {
                let failures = any.map { alternative(value, $0, pointer) }
                if !failures.contains(where: \.isEmpty) {
                    problems.append("\(pointer): matches none of the anyOf alternatives: \(summary(failures))")
                }
            }
            if let one = schema["oneOf"]?.arrayItems {
                let failures = one.map { alternative(value, $0, pointer) }
                let matched = failures.indices.filter { failures[$0].isEmpty }
                if matched.isEmpty {
                    problems.append("\(pointer): matches none of the oneOf alternatives: \(summary(failures))")
                } else if matched.count > 1 {
                    let indices = matched.map(String.init).joined(separator: ", ")
                    problems.append("\(pointer): matches \(matched.count) oneOf alternatives (\(indices)); exactly one must match")
                }
            }
        }

        private func checkObject(_ object: Value.Object, against schema: Value, at pointer: Pointer, into problems: inout [String]) {
            let properties: Value.Object
            if case .object(let declared)? = schema["properties"] { properties = declared } else { properties = .init() }
            for key in schema["required"]?.arrayItems?.compactMap(\.stringValue) ?? [] where object[key] == nil {
                problems.append("\(pointer): missing required key \"\(key)\"")
            }
            let additional = schema["additionalProperties"]
            for (key, item) in object.entries {
                if let propertySchema = properties[key] {
                    check(item, against: propertySchema, at: pointer.appending(key), into: &problems)
                } else if case .bool(false)? = additional {
                    let allowed = properties.entries.map(\.key).joined(separator: ", ")
                    problems.append("\(pointer): unexpected key \"\(key)\" (allowed: \(allowed.isEmpty ? "none" : allowed))")
                } else if let additional {
                    check(item, against: additional, at: pointer.appending(key), into: &problems)
                }
            }
        }

        private func alternative(_ value: Value, _ schema: Value, _ pointer: Pointer) -> [String] {
            var found: [String] = []
            check(value, against: schema, at: pointer, into: &found)
            return found
        }

        private func summary(_ failures: [[String]]) -> String {
            failures.enumerated().map { index, problems in "[\(index)] \(problems.joined(separator: "; "))" }.joined(separator: " | ")
        }
    }

    /// Checks at load time that every `$ref` resolves and that schemas use only the keywords
    /// ``SchemaChecker`` understands, so a constraint is never silently ignored.
    struct SchemaAudit {
        let document: Value

        static let validating: Set<String> = [
            "type", "enum", "const", "properties", "required", "additionalProperties", "items", "$ref",
            "allOf", "anyOf", "oneOf", "pattern", "minimum", "maximum", "format",
        ]
        static let annotations: Set<String> = [
            "description", "title", "example", "examples", "default", "deprecated", "readOnly", "writeOnly",
            "$comment", "externalDocs",
        ]
        static let types: Set<String> = ["null", "boolean", "object", "array", "number", "string", "integer"]

        func run() throws {
            try checkReferences(document, at: "")
            var schemas: [(Value, String)] = []
            if case .object(let components)? = document["components"]?["schemas"] {
                schemas += components.entries.map { ($0.value, "/components/schemas/\(Pointer.escape($0.key))") }
            }
            collectSchemas(in: document, at: "", into: &schemas)
            for (schema, location) in schemas {
                var problem: String?
                Self.walk(schema, at: location) { subschema, place in
                    if problem == nil { problem = audit(subschema, at: place) }
                }
                if let problem { throw DocumentError(message: problem) }
            }
        }

        /// Every `schema` of a parameter, header, request body or response in the document.
        private func collectSchemas(in value: Value, at location: String, into schemas: inout [(Value, String)]) {
            switch value {
            case .object(let object):
                for (key, child) in object.entries {
                    let place = "\(location)/\(Pointer.escape(key))"
                    if key == "schema" {
                        schemas.append((child, place))
                    } else if location != "/components/schemas", key != "example", key != "examples" {
                        collectSchemas(in: child, at: place, into: &schemas)
                    }
                }
            case .array(let items):
                for (index, item) in items.enumerated() { collectSchemas(in: item, at: "\(location)/\(index)", into: &schemas) }
            default:
                break
            }
        }

        private func checkReferences(_ value: Value, at location: String) throws {
            switch value {
            case .object(let object):
                if let reference = object["$ref"]?.stringValue, document.lookup(reference) == nil {
                    throw DocumentError(
                        message: "\(location): $ref \(reference) does not resolve (only #/... references within the document are supported)")
                }
                for (key, child) in object.entries where key != "example" && key != "examples" {
                    try checkReferences(child, at: "\(location)/\(Pointer.escape(key))")
                }
            case .array(let items):
                for (index, item) in items.enumerated() { try checkReferences(item, at: "\(location)/\(index)") }
            default:
                break
            }
        }

        private func audit(_ schema: Value, at location: String) -> String? {
            guard case .object(let object) = schema else {
                if case .bool = schema { return nil }
                return "\(location): a schema must be a mapping or a boolean"
            }
            for key in object.entries.map(\.key) where !Self.validating.contains(key) && !Self.annotations.contains(key) && !key.hasPrefix("x-") {
                let supported = Self.validating.sorted().joined(separator: ", ")
                return "\(location): schema keyword '\(key)' is not checked by OpenAPIContract; use the supported subset (\(supported)) or extend the checker"
            }
            if let type = object["type"] {
                let names = type.arrayItems ?? [type]
                for name in names where !(name.stringValue.map(Self.types.contains) ?? false) {
                    return "\(location)/type: \(name.preview) is not a JSON Schema type"
                }
            }
            if let pattern = object["pattern"] {
                guard let text = pattern.stringValue, (try? Regex(text)) != nil else {
                    return "\(location)/pattern: \(pattern.preview) is not a valid regular expression"
                }
            }
            if let required = object["required"], required.arrayItems?.allSatisfy({ $0.stringValue != nil }) != true {
                return "\(location)/required: must be a list of key names"
            }
            if let members = object["enum"], members.arrayItems == nil {
                return "\(location)/enum: must be a list"
            }
            for key in ["minimum", "maximum"] {
                if let bound = object[key], bound.numberValue == nil { return "\(location)/\(key): must be a number" }
            }
            return nil
        }

        /// Calls `visit` with a schema and each schema nested in it (not following `$ref`s).
        static func walk(_ schema: Value, at location: String, _ visit: (Value, String) -> Void) {
            visit(schema, location)
            guard case .object(let object) = schema else { return }
            if case .object(let properties)? = object["properties"] {
                for (key, property) in properties.entries { walk(property, at: "\(location)/properties/\(Pointer.escape(key))", visit) }
            }
            for key in ["items", "additionalProperties"] {
                if let nested = object[key], case .object = nested { walk(nested, at: "\(location)/\(key)", visit) }
            }
            for key in ["allOf", "anyOf", "oneOf"] {
                for (index, nested) in (object[key]?.arrayItems ?? []).enumerated() { walk(nested, at: "\(location)/\(key)/\(index)", visit) }
            }
        }
    }
}

// MARK: - RFC 3339

extension OpenAPIContract {
    /// `date-time` of RFC 3339 section 5.6: `2024-06-01T12:00:00.123Z`, `2024-06-01t12:00:00+02:00`.
    enum RFC3339 {
        static func isDateTime(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            var position = 0
            func digits(_ count: Int) -> Int? {
                guard position + count <= bytes.count else { return nil }
                var value = 0
                for byte in bytes[position..<position + count] {
                    guard (48...57).contains(byte) else { return nil }
                    value = value * 10 + Int(byte - 48)
                }
                position += count
                return value
            }
            func expect(_ characters: String) -> Bool {
                guard position < bytes.count, characters.utf8.contains(bytes[position]) else { return false }
                position += 1
                return true
            }
            guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2) else { return false }
            guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day) else { return false }
            guard expect("Tt"), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"), let second = digits(2) else { return false }
            guard hour <= 23, minute <= 59, second <= 60 else { return false }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                let start = position
                while position < bytes.count, (48...57).contains(bytes[position]) { position += 1 }
                guard position > start else { return false }
            }
            if expect("Zz") { return position == bytes.count }
            guard expect("+-"), let offsetHour = digits(2), expect(":"), let offsetMinute = digits(2) else { return false }
            return offsetHour <= 23 && offsetMinute <= 59 && position == bytes.count
        }

        private static func daysIn(month: Int, year: Int) -> Int {
            switch month {
            case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
            case 4, 6, 9, 11: return 30
            default: return 31
            }
        }
    }
}

// MARK: - JSON

extension OpenAPIContract {
    /// A strict JSON (RFC 8259) parser that keeps key order and number text, and rejects duplicate keys.
    enum JSONParser {
        struct Failure: Error {
            let message: String
        }

        static func parse(_ bytes: [UInt8]) throws(Failure) -> Value {
            var parser = State(bytes: bytes)
            parser.skipSpace()
            guard parser.position < bytes.count else { throw Failure(message: "the body is empty") }
            let value = try parser.value(depth: 0)
            parser.skipSpace()
            guard parser.position == bytes.count else { throw parser.fail("unexpected content after the JSON value") }
            return value
        }

        private struct State {
            let bytes: [UInt8]
            var position = 0

            func fail(_ message: String) -> Failure {
                Failure(message: "\(message) at byte \(position)")
            }

            mutating func skipSpace() {
                while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
            }

            mutating func value(depth: Int) throws(Failure) -> Value {
                guard depth < 512 else { throw fail("nesting deeper than 512") }
                guard position < bytes.count else { throw fail("unexpected end of input") }
                switch bytes[position] {
                case UInt8(ascii: "{"): return try object(depth: depth)
                case UInt8(ascii: "["): return try array(depth: depth)
                case UInt8(ascii: "\""): return .string(try string())
                case UInt8(ascii: "t"): try literal("true"); return .bool(true)
                case UInt8(ascii: "f"): try literal("false"); return .bool(false)
                case UInt8(ascii: "n"): try literal("null"); return .null
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
                default: throw fail("unexpected character '\(Character(Unicode.Scalar(bytes[position])))'")
                }
            }

            mutating func literal(_ word: String) throws(Failure) {
                let expected = Array(word.utf8)
                guard position + expected.count <= bytes.count, Array(bytes[position..<position + expected.count]) == expected else {
                    throw fail("invalid literal (expected \(word))")
                }
                position += expected.count
            }

            mutating func object(depth: Int) throws(Failure) -> Value {
                position += 1
                var object = Value.Object()
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(object)
                }
                while true {
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    let keyStart = position
                    let key = try string()
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    position += 1
                    skipSpace()
                    let item = try value(depth: depth + 1)
                    guard object.add(key, item) else {
                        position = keyStart
                        throw fail("duplicate key \"\(key)\"")
                    }
                    skipSpace()
                    guard position < bytes.count else { throw fail("unexpected end of input in an object") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "}") { position += 1; return .object(object) }
                    throw fail("expected ',' or '}'")
                }
            }

            mutating func array(depth: Int) throws(Failure) -> Value {
                position += 1
                var items: [Value] = []
                skipSpace()
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(items)
                }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard position < bytes.count else { throw fail("unexpected end of input in an array") }
                    if bytes[position] == UInt8(ascii: ",") { position += 1; continue }
                    if bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            }

            mutating func string() throws(Failure) -> String {
                position += 1
                var scalars = String.UnicodeScalarView()
                var run: [UInt8] = []
                func flush() throws(Failure) {
                    guard !run.isEmpty else { return }
                    guard let text = String(validating: run, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
                    scalars.append(contentsOf: text.unicodeScalars)
                    run.removeAll(keepingCapacity: true)
                }
                while position < bytes.count {
                    let byte = bytes[position]
                    switch byte {
                    case UInt8(ascii: "\""):
                        position += 1
                        try flush()
                        return String(scalars)
                    case UInt8(ascii: "\\"):
                        try flush()
                        position += 1
                        guard position < bytes.count else { break }
                        let escape = bytes[position]
                        position += 1
                        switch escape {
                        case UInt8(ascii: "\""): scalars.append("\"")
                        case UInt8(ascii: "\\"): scalars.append("\\")
                        case UInt8(ascii: "/"): scalars.append("/")
                        case UInt8(ascii: "b"): scalars.append("\u{08}")
                        case UInt8(ascii: "f"): scalars.append("\u{0C}")
                        case UInt8(ascii: "n"): scalars.append("\n")
                        case UInt8(ascii: "r"): scalars.append("\r")
                        case UInt8(ascii: "t"): scalars.append("\t")
                        case UInt8(ascii: "u"):
                            var code = try hex4()
                            if (0xD800...0xDBFF).contains(code) {
                                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                                      bytes[position + 1] == UInt8(ascii: "u") else {
                                    throw fail("unpaired surrogate in \\u escape")
                                }
                                position += 2
                                let low = try hex4()
                                guard (0xDC00...0xDFFF).contains(low) else { throw fail("invalid low surrogate in \\u escape") }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            } else if (0xDC00...0xDFFF).contains(code) {
                                throw fail("unpaired surrogate in \\u escape")
                            }
                            guard let scalar = Unicode.Scalar(code) else { throw fail("invalid \\u escape") }
                            scalars.append(scalar)
                        default:
                            position -= 1
                            throw fail("invalid escape")
                        }
                    case 0x00..<0x20:
                        throw fail("unescaped control character in a string")
                    default:
                        run.append(byte)
                        position += 1
                    }
                }
                throw fail("unterminated string")
            }

            mutating func hex4() throws(Failure) -> UInt32 {
                guard position + 4 <= bytes.count else { throw fail("short \\u escape") }
                var code: UInt32 = 0
                for byte in bytes[position..<position + 4] {
                    let digit: UInt8
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                    default: throw fail("invalid hex digit in \\u escape")
                    }
                    code = code * 16 + UInt32(digit)
                }
                position += 4
                return code
            }

            mutating func number() throws(Failure) -> Value {
                let start = position
                func isDigit(_ index: Int) -> Bool { index < bytes.count && (48...57).contains(bytes[index]) }
                if bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard isDigit(position) else { throw fail("invalid number") }
                if bytes[position] == UInt8(ascii: "0") {
                    position += 1
                    if isDigit(position) { throw fail("leading zero in a number") }
                } else {
                    while isDigit(position) { position += 1 }
                }
                if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                    position += 1
                    guard isDigit(position) else { throw fail("invalid number: digits must follow '.'") }
                    while isDigit(position) { position += 1 }
                }
                if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                    position += 1
                    if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                    guard isDigit(position) else { throw fail("invalid number: digits must follow the exponent") }
                    while isDigit(position) { position += 1 }
                }
                let text = String(decoding: bytes[start..<position], as: UTF8.self)
                guard let number = Double(text) else { throw fail("invalid number") }
                return .number(number, text: text)
            }
        }
    }
}
