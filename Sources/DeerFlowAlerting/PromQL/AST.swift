import Foundation

/// The value type of an expression (`parser.ValueType`).
enum ValueType: String {
    case scalar
    case instantVector = "instant vector"
    case rangeVector = "range vector"
}

/// One label matcher of a selector (`labels.Matcher`).
struct LabelMatcher: Sendable {
    enum Kind: String, Sendable {
        case equal = "="
        case notEqual = "!="
        case regexMatch = "=~"
        case regexNoMatch = "!~"
    }

    let name: String
    let kind: Kind
    let value: String
    /// Regex matchers are fully anchored, as Prometheus compiles `^(?s:value)$`.
    let regex: AnchoredRegex?

    init(name: String, kind: Kind, value: String) throws(PromQLError) {
        self.name = name
        self.kind = kind
        self.value = value
        switch kind {
        case .equal, .notEqual:
            regex = nil
        case .regexMatch, .regexNoMatch:
            regex = try AnchoredRegex(value)
        }
    }

    /// Absent labels match as the empty string.
    func matches(_ labelValue: String) -> Bool {
        switch kind {
        case .equal: return labelValue == value
        case .notEqual: return labelValue != value
        // `regex` is set for both regex kinds by the initializer.
        case .regexMatch: return regex?.matches(labelValue) ?? false
        case .regexNoMatch: return !(regex?.matches(labelValue) ?? false)
        }
    }
}

/// A regular expression that must match the whole string (`^(?s:re)$` in Prometheus; here
/// `\A(?:re)\z` with "dot matches newline"). RE2 and ICU agree on the syntax label matchers use;
/// RE2-only constructs that ICU rejects fail at parse time.
struct AnchoredRegex: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe.
    let pattern: String
    private let expression: NSRegularExpression

    init(_ pattern: String) throws(PromQLError) {
        self.pattern = pattern
        do {
            expression = try NSRegularExpression(pattern: "\\A(?:" + pattern + ")\\z", options: [.dotMatchesLineSeparators])
        } catch {
            throw PromQLError(code: .syntax, message: "invalid regular expression \"\(pattern)\"")
        }
    }

    func matches(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return expression.firstMatch(in: text, options: [], range: range) != nil
    }
}

/// An instant vector selector: `name{matchers}`.
struct VectorSelector: Sendable {
    let metricName: String?
    let matchers: [LabelMatcher]
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", power = "^"
    case equal = "==", notEqual = "!=", greater = ">", less = "<", greaterOrEqual = ">=", lessOrEqual = "<="

    var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual: return true
        default: return false
        }
    }

    /// Prometheus precedence (`generated_parser.y`): comparisons 3, `+ -` 4, `* / %` 5, `^` 6.
    var precedence: Int {
        switch self {
        case .equal, .notEqual, .greater, .less, .greaterOrEqual, .lessOrEqual: return 3
        case .add, .subtract: return 4
        case .multiply, .divide, .modulo: return 5
        case .power: return 6
        }
    }

    var isRightAssociative: Bool { self == .power }
}

/// `on(...)` / `ignoring(...)`; absent means one-to-one matching on all labels but `__name__`.
struct VectorMatching: Sendable {
    let on: Bool
    let labels: [String]
}

enum AggregationOperator: String, Sendable, CaseIterable {
    case sum, avg, max, min, count
}

enum FunctionName: String, Sendable, CaseIterable {
    case rate, increase
    case histogramQuantile = "histogram_quantile"
}

indirect enum Expr: Sendable {
    case number(Double)
    case vectorSelector(VectorSelector)
    case matrixSelector(VectorSelector, rangeMilliseconds: Int64)
    case call(FunctionName, [Expr])
    case aggregate(AggregationOperator, Expr, grouping: [String], without: Bool)
    case binary(BinaryOperator, Expr, Expr, returnBool: Bool, matching: VectorMatching?)
    case negate(Expr)
    case parenthesized(Expr)

    var type: ValueType {
        switch self {
        case .number: return .scalar
        case .vectorSelector, .call, .aggregate: return .instantVector
        case .matrixSelector: return .rangeVector
        case let .binary(_, lhs, rhs, _, _):
            return lhs.type == .scalar && rhs.type == .scalar ? .scalar : .instantVector
        case let .negate(inner), let .parenthesized(inner): return inner.type
        }
    }

    /// The longest range selector inside the expression, in milliseconds (0 if none).
    var longestRangeMilliseconds: Int64 {
        switch self {
        case .number, .vectorSelector: return 0
        case let .matrixSelector(_, range): return range
        case let .call(_, args): return args.map(\.longestRangeMilliseconds).max() ?? 0
        case let .aggregate(_, inner, _, _), let .negate(inner), let .parenthesized(inner):
            return inner.longestRangeMilliseconds
        case let .binary(_, lhs, rhs, _, _): return max(lhs.longestRangeMilliseconds, rhs.longestRangeMilliseconds)
        }
    }
}
