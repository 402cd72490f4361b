/// Recursive-descent parser for the supported PromQL subset, with Prometheus' grammar
/// (`promql/parser/generated_parser.y`) and checks (`parser.checkAST`):
///
/// - precedence, lowest first: comparisons `== != > < >= <=`, then `+ -`, then `* / %`, then
///   `^`; all left-associative except `^`, which is right-associative;
/// - unary `-`/`+` binds like `*` (`%prec MUL`), so `-a ^ b` is `-(a ^ b)` and `-a * b` is
///   `(-a) * b`; a negated number literal folds into the literal;
/// - modifiers after the operator: `bool`, then `on(...)`/`ignoring(...)`;
/// - aggregations take `by`/`without` before or after the argument list;
/// - trailing commas are allowed in argument, label and matcher lists.
///
/// Everything else in PromQL is recognised and rejected with ``PromQLError/Code/unsupported``,
/// naming the construct and its position.
struct Parser {
    static let supportedOperators = "+ - * / % ^ == != > < >= <="
    static let supportedAggregations = AggregationOperator.allCases.map(\.rawValue).joined(separator: ", ")
    static let supportedFunctions = FunctionName.allCases.map(\.rawValue).joined(separator: ", ")

    /// Every aggregation operator Prometheus knows (keywords, case-insensitive).
    static let prometheusAggregations: Set<String> = [
        "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
        "count_values", "quantile", "limitk", "limit_ratio",
    ]

    /// Every function Prometheus 3 knows (`promql/parser/functions.go`).
    static let prometheusFunctions: Set<String> = [
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
        "delta", "deriv", "double_exponential_smoothing", "exp", "first_over_time", "floor",
        "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
        "histogram_quantiles", "histogram_stddev", "histogram_stdvar", "histogram_sum",
        "holt_winters", "hour", "idelta", "increase", "info", "irate", "label_join",
        "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
        "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
        "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt",
        "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
        "timestamp", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
        "ts_of_min_over_time", "vector", "year",
    ]

    /// Keywords that cannot start an expression.
    static let keywords: Set<String> = [
        "and", "or", "unless", "atan2", "offset", "by", "without", "on", "ignoring", "group_left",
        "group_right", "bool", "start", "end",
    ]

    /// How deep parentheses, unary signs, calls and aggregations may nest, and how many binary
    /// operators one expression may hold: the evaluator walks the tree recursively, so these
    /// bound its stack (a rule nesting 20,000 `-` crashed the parser). Real rules stay far below.
    static let maxNesting = 100
    static let maxBinaryOperators = 500

    private let tokens: [Token]
    private let bytes: [UInt8]
    private var index = 0
    private var nesting = 0
    private var binaryOperators = 0

    private init(tokens: [Token], bytes: [UInt8]) {
        self.tokens = tokens
        self.bytes = bytes
    }

    static func parse(_ source: String) throws(PromQLError) -> Expr {
        var parser = Parser(tokens: try Lexer.tokenize(source), bytes: Array(source.utf8))
        let expr = try parser.parseExpression(minPrecedence: 0)
        guard parser.current.kind == .end else { throw parser.unexpected(parser.current) }
        return expr
    }

    // MARK: Tokens

    private var current: Token { tokens[index] }
    private var nextToken: Token { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private func isKeyword(_ token: Token, _ keyword: String) -> Bool {
        if case let .identifier(word) = token.kind { return word.lowercased() == keyword }
        return false
    }

    private mutating func expect(_ kind: TokenKind, _ what: String) throws(PromQLError) {
        guard current.kind == kind else { throw error(.syntax, "expected \(what), got \(describe(current))", at: current) }
        advance()
    }

    private func describe(_ token: Token) -> String {
        switch token.kind {
        case .end: return "end of input"
        case .identifier: return "identifier \"\(token.text)\""
        case .number: return "number \"\(token.text)\""
        case .duration: return "duration \"\(token.text)\""
        case .string: return "string \(token.text)"
        default: return "\"\(token.text)\""
        }
    }

    private func unexpected(_ token: Token) -> PromQLError {
        error(.syntax, "unexpected \(describe(token))", at: token)
    }

    private func error(_ code: PromQLError.Code, _ message: String, at token: Token) -> PromQLError {
        PromQLError(code: code, message: message, position: SourcePosition.position(in: bytes, utf8Offset: token.offset))
    }

    // MARK: Expressions

    private mutating func parseExpression(minPrecedence: Int) throws(PromQLError) -> Expr {
        nesting += 1
        defer { nesting -= 1 }
        guard nesting <= Parser.maxNesting else {
            throw error(.unsupported, "expression nested more than \(Parser.maxNesting) levels deep; split it into several rules", at: current)
        }
        var lhs = try parseUnary()
        while true {
            let operatorToken = current
            if case let .identifier(word) = operatorToken.kind,
               ["and", "or", "unless", "atan2"].contains(word.lowercased()) {
                throw error(.unsupported, "operator '\(word)' is not supported (supported: \(Parser.supportedOperators))", at: operatorToken)
            }
            guard let op = Parser.binaryOperator(operatorToken.kind), op.precedence >= minPrecedence else { return lhs }
            binaryOperators += 1
            guard binaryOperators <= Parser.maxBinaryOperators else {
                throw error(.unsupported, "expression has more than \(Parser.maxBinaryOperators) binary operators; split it into several rules", at: operatorToken)
            }
            advance()
            var returnBool = false
            if isKeyword(current, "bool") {
                returnBool = true
                advance()
            }
            var matching: VectorMatching?
            if isKeyword(current, "on") || isKeyword(current, "ignoring") {
                let on = isKeyword(current, "on")
                advance()
                matching = VectorMatching(on: on, labels: try parseLabelList())
            }
            if isKeyword(current, "group_left") || isKeyword(current, "group_right") {
                throw error(.unsupported, "\(current.text.lowercased()) modifier is not supported (only one-to-one vector matching with on/ignoring)", at: current)
            }
            let rhs = try parseExpression(minPrecedence: op.isRightAssociative ? op.precedence : op.precedence + 1)
            lhs = try makeBinary(op, lhs, rhs, returnBool: returnBool, matching: matching, at: operatorToken)
        }
    }

    private static func binaryOperator(_ kind: TokenKind) -> BinaryOperator? {
        switch kind {
        case .plus: return .add
        case .minus: return .subtract
        case .multiply: return .multiply
        case .divide: return .divide
        case .modulo: return .modulo
        case .power: return .power
        case .equal: return .equal
        case .notEqual: return .notEqual
        case .greater: return .greater
        case .less: return .less
        case .greaterOrEqual: return .greaterOrEqual
        case .lessOrEqual: return .lessOrEqual
        default: return nil
        }
    }

    private func makeBinary(
        _ op: BinaryOperator, _ lhs: Expr, _ rhs: Expr, returnBool: Bool, matching: VectorMatching?, at token: Token
    ) throws(PromQLError) -> Expr {
        let (lt, rt) = (lhs.type, rhs.type)
        if returnBool && !op.isComparison {
            throw error(.type, "bool modifier can only be used on comparison operators", at: token)
        }
        if op.isComparison && !returnBool && lt == .scalar && rt == .scalar {
            throw error(.type, "comparisons between scalars must use BOOL modifier", at: token)
        }
        guard lt != .rangeVector, rt != .rangeVector else {
            throw error(.type, "binary expression must contain only scalar and instant vector types", at: token)
        }
        var matching = matching
        if lt != .instantVector || rt != .instantVector, let given = matching {
            if !given.labels.isEmpty {
                throw error(.type, "vector matching only allowed between instant vectors", at: token)
            }
            matching = nil
        }
        return .binary(op, lhs, rhs, returnBool: returnBool, matching: matching)
    }

    private mutating func parseUnary() throws(PromQLError) -> Expr {
        let token = current
        guard token.kind == .minus || token.kind == .plus else {
            return try parsePostfix(try parsePrimary())
        }
        advance()
        // `unary_expr: unary_op expr %prec MUL`: only `^` binds tighter than a unary sign.
        let operand = try parseExpression(minPrecedence: BinaryOperator.power.precedence)
        guard operand.type != .rangeVector else {
            throw error(.type, "unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"", at: token)
        }
        if token.kind == .plus { return operand }
        if case let .number(value) = operand { return .number(-value) }
        return .negate(operand)
    }

    private mutating func parsePostfix(_ base: Expr) throws(PromQLError) -> Expr {
        var expr = base
        while true {
            let token = current
            switch token.kind {
            case .leftBracket:
                advance()
                if current.kind == .colon {
                    throw error(.unsupported, "subqueries are not supported", at: token)
                }
                guard case let .duration(milliseconds, _) = current.kind else {
                    throw error(.syntax, "expected a duration such as 5m in the range selector, got \(describe(current))", at: current)
                }
                advance()
                if current.kind == .colon {
                    throw error(.unsupported, "subqueries are not supported", at: token)
                }
                try expect(.rightBracket, "\"]\"")
                guard case let .vectorSelector(selector) = expr else {
                    throw error(.type, "ranges only allowed for vector selectors", at: token)
                }
                guard milliseconds > 0 else {
                    throw error(.syntax, "range duration must be greater than 0", at: token)
                }
                expr = .matrixSelector(selector, rangeMilliseconds: milliseconds)
            case .at:
                throw error(.unsupported, "@ modifier is not supported", at: token)
            case .identifier where isKeyword(token, "offset"):
                throw error(.unsupported, "offset modifier is not supported", at: token)
            default:
                return expr
            }
        }
    }

    private mutating func parsePrimary() throws(PromQLError) -> Expr {
        let token = current
        switch token.kind {
        case let .number(value):
            advance()
            return .number(value)
        case .string:
            throw error(.unsupported, "string literals are not supported", at: token)
        case .leftParen:
            advance()
            let inner = try parseExpression(minPrecedence: 0)
            try expect(.rightParen, "\")\"")
            return .parenthesized(inner)
        case .leftBrace:
            return .vectorSelector(try parseSelector(metricName: nil))
        case let .identifier(word):
            let lowered = word.lowercased()
            if Parser.prometheusAggregations.contains(lowered) { return try parseAggregation() }
            if Parser.keywords.contains(lowered) { throw unexpected(token) }
            if nextToken.kind == .leftParen { return try parseCall() }
            advance()
            return .vectorSelector(try parseSelector(metricName: word))
        default:
            throw unexpected(token)
        }
    }

    // MARK: Selectors

    private mutating func parseSelector(metricName: String?) throws(PromQLError) -> VectorSelector {
        let start = current
        var matchers: [LabelMatcher] = []
        if let metricName {
            matchers.append(try LabelMatcher(name: LabelSet.metricName, kind: .equal, value: metricName))
        }
        if current.kind == .leftBrace {
            advance()
            while current.kind != .rightBrace {
                let nameToken = current
                if case .string = nameToken.kind {
                    throw error(.unsupported, "quoted metric or label names are not supported", at: nameToken)
                }
                guard let name = labelName(nameToken), LabelNames.isValidLabelName(name) else {
                    throw error(.syntax, "expected a label name, got \(describe(nameToken))", at: nameToken)
                }
                advance()
                let kind: LabelMatcher.Kind
                switch current.kind {
                case .assign: kind = .equal
                case .notEqual: kind = .notEqual
                case .regexMatch: kind = .regexMatch
                case .regexNoMatch: kind = .regexNoMatch
                default:
                    throw error(.syntax, "expected a label matching operator (=, !=, =~, !~) after \"\(name)\", got \(describe(current))", at: current)
                }
                advance()
                guard case let .string(value) = current.kind else {
                    throw error(.syntax, "expected a quoted label value, got \(describe(current))", at: current)
                }
                let matcher: LabelMatcher
                do {
                    matcher = try LabelMatcher(name: name, kind: kind, value: value)
                } catch {
                    throw self.error(.syntax, error.message, at: current)
                }
                if let metricName, name == LabelSet.metricName {
                    throw self.error(.syntax, "metric name must not be set twice: \"\(metricName)\" or \"\(value)\"", at: nameToken)
                }
                matchers.append(matcher)
                advance()
                if current.kind == .comma {
                    advance()
                } else if current.kind != .rightBrace {
                    throw error(.syntax, "expected \",\" or \"}\" in label matchers, got \(describe(current))", at: current)
                }
            }
            advance()
        }
        guard matchers.contains(where: { !$0.matches("") }) else {
            throw error(.syntax, "vector selector must contain at least one non-empty matcher", at: start)
        }
        let name = metricName ?? matchers.first { $0.name == LabelSet.metricName && $0.kind == .equal }?.value
        return VectorSelector(metricName: name, matchers: matchers)
    }

    /// Label names may be keywords (`by (on)`); `inf`/`nan` lex as numbers but are names here.
    private func labelName(_ token: Token) -> String? {
        switch token.kind {
        case let .identifier(word): return word
        case .number where token.text.utf8.allSatisfy(LabelNames.isAlpha): return token.text
        default: return nil
        }
    }

    private mutating func parseLabelList() throws(PromQLError) -> [String] {
        try expect(.leftParen, "\"(\" to start a label list")
        var labels: [String] = []
        while current.kind != .rightParen {
            guard let name = labelName(current), LabelNames.isValidLabelName(name) else {
                if case .string = current.kind {
                    throw error(.unsupported, "quoted label names are not supported", at: current)
                }
                throw error(.syntax, "expected a label name in the label list, got \(describe(current))", at: current)
            }
            labels.append(name)
            advance()
            if current.kind == .comma {
                advance()
            } else if current.kind != .rightParen {
                throw error(.syntax, "expected \",\" or \")\" in the label list, got \(describe(current))", at: current)
            }
        }
        advance()
        return labels
    }

    // MARK: Aggregations and calls

    private mutating func parseAggregation() throws(PromQLError) -> Expr {
        let token = current
        guard let op = AggregationOperator(rawValue: token.text.lowercased()) else {
            throw error(.unsupported, "aggregation '\(token.text)' is not supported (supported: \(Parser.supportedAggregations))", at: token)
        }
        advance()
        var grouping: [String]?
        var without = false
        if isKeyword(current, "by") || isKeyword(current, "without") {
            without = isKeyword(current, "without")
            advance()
            grouping = try parseLabelList()
        }
        guard current.kind == .leftParen else {
            throw error(.syntax, "expected \"(\" after aggregation '\(token.text)', got \(describe(current))", at: current)
        }
        let arguments = try parseArguments()
        guard arguments.count == 1 else {
            throw error(.syntax, "wrong number of arguments for aggregate expression provided, expected 1, got \(arguments.count)", at: token)
        }
        if grouping == nil, isKeyword(current, "by") || isKeyword(current, "without") {
            without = isKeyword(current, "without")
            advance()
            grouping = try parseLabelList()
        }
        guard arguments[0].type == .instantVector else {
            throw error(.type, "expected type instant vector in aggregation expression, got \(arguments[0].type.rawValue)", at: token)
        }
        return .aggregate(op, arguments[0], grouping: grouping ?? [], without: without)
    }

    private mutating func parseCall() throws(PromQLError) -> Expr {
        let token = current
        guard let function = FunctionName(rawValue: token.text) else {
            if Parser.prometheusFunctions.contains(token.text) {
                throw error(.unsupported, "function '\(token.text)' is not supported (supported: \(Parser.supportedFunctions))", at: token)
            }
            throw error(.syntax, "unknown function '\(token.text)'", at: token)
        }
        advance()
        let arguments = try parseArguments()
        let expected: [ValueType]
        switch function {
        case .rate, .increase: expected = [.rangeVector]
        case .histogramQuantile: expected = [.scalar, .instantVector]
        }
        guard arguments.count == expected.count else {
            throw error(.type, "expected \(expected.count) argument(s) in call to \"\(function.rawValue)\", got \(arguments.count)", at: token)
        }
        for (argument, type) in zip(arguments, expected) where argument.type != type {
            throw error(.type, "expected type \(type.rawValue) in call to function \"\(function.rawValue)\", got \(argument.type.rawValue)", at: token)
        }
        return .call(function, arguments)
    }

    private mutating func parseArguments() throws(PromQLError) -> [Expr] {
        try expect(.leftParen, "\"(\"")
        var arguments: [Expr] = []
        while current.kind != .rightParen {
            arguments.append(try parseExpression(minPrecedence: 0))
            if current.kind == .comma {
                advance()
            } else if current.kind != .rightParen {
                throw error(.syntax, "expected \",\" or \")\" in argument list, got \(describe(current))", at: current)
            }
        }
        advance()
        return arguments
    }
}
