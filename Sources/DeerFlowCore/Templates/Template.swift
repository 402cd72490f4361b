import Foundation

// TEMPORARY stand-in for the coordinator's template language (same API, paths only); replaced
// by main's Template.swift at the merge.

/// A text with `{{ expression }}` placeholders, parsed once.
public struct Template: Sendable, Hashable {
    public let source: String
    private let parts: [Part]

    private enum Part: Sendable, Hashable {
        case text(String)
        case path([String])
    }

    public init(_ text: String) throws(TemplateError) {
        source = text
        var parts: [Part] = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            parts.append(.text(String(rest[..<open.lowerBound])))
            guard let close = rest.range(of: "}}", range: open.upperBound..<rest.endIndex) else {
                throw TemplateError(message: "unclosed '{{' in '\(text)'")
            }
            let expression = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            let path = expression.split(separator: ".").map(String.init)
            guard !path.isEmpty else { throw TemplateError(message: "empty expression in '\(text)'") }
            parts.append(.path(path))
            rest = rest[close.upperBound...]
        }
        parts.append(.text(String(rest)))
        self.parts = parts
    }

    public var isTemplated: Bool { parts.contains { if case .path = $0 { return true } else { return false } } }

    public var references: [TemplateReference] {
        parts.compactMap { if case .path(let path) = $0 { return TemplateReference(path: path) } else { return nil } }
    }

    public func render(_ scope: TemplateScope) throws(TemplateError) -> String {
        var text = ""
        for part in parts {
            switch part {
            case .text(let piece): text += piece
            case .path(let path):
                switch try Self.resolve(path, scope) {
                case .string(let string): text += string
                case .null: break
                case let value: text += value.compactJSON
                }
            }
        }
        return text
    }

    public func value(_ scope: TemplateScope) throws(TemplateError) -> JSONValue {
        let expressions = parts.filter { if case .text(let t) = $0 { return !t.isEmpty } else { return true } }
        if expressions.count == 1, case .path(let path) = expressions[0] { return try Self.resolve(path, scope) }
        return .string(try render(scope))
    }

    private static func resolve(_ path: [String], _ scope: TemplateScope) throws(TemplateError) -> JSONValue {
        guard let root = scope.roots[path[0]] else { throw TemplateError(message: "unknown name '\(path[0])'") }
        var value = root
        for key in path.dropFirst() {
            guard case .object(let object) = value, let next = object[key] else {
                throw TemplateError(message: "\(path.joined(separator: ".")): no key '\(key)'")
            }
            value = next
        }
        return value
    }
}

/// The names an expression can start with, each a JSON value.
public struct TemplateScope: Sendable {
    public init(_ roots: [String: JSONValue]) { self.roots = roots }
    public var roots: [String: JSONValue]
}

/// The path an expression reads.
public struct TemplateReference: Sendable, Hashable {
    public let path: [String]
}

/// A template that does not parse or cannot be rendered.
public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
