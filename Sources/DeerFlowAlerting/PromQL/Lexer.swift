/// PromQL tokens (after `promql/parser/lex.go`).
enum TokenKind: Equatable {
    case identifier(String)
    case number(Double)
    case duration(milliseconds: Int64, text: String)
    case string(String)
    case leftParen, rightParen, leftBrace, rightBrace, leftBracket, rightBracket, comma, colon, at
    case assign  // =
    case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual  // == != < <= > >=
    case regexMatch, regexNoMatch  // =~ !~
    case plus, minus, multiply, divide, modulo, power
    case end
}

struct Token: Equatable {
    var kind: TokenKind
    /// UTF-8 offset of the first byte.
    var offset: Int
    var text: String
}

/// Turns an expression into tokens. Whitespace and `#` comments are skipped. Numbers follow the
/// lexer's `scanNumber` (decimal, `0x` hex, exponent); a number immediately followed by a unit
/// letter is a duration (`5m`, `1h30m`, `100ms`), validated with `model.ParseDuration`.
struct Lexer {
    let bytes: [UInt8]
    let source: String
    private var index = 0

    init(_ source: String) {
        self.source = source
        self.bytes = Array(source.utf8)
    }

    static func tokenize(_ source: String) throws(PromQLError) -> [Token] {
        var lexer = Lexer(source)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    private func peek(at offset: Int) -> UInt8? { index + offset < bytes.count ? bytes[index + offset] : nil }

    private mutating func next() throws(PromQLError) -> Token {
        skipSpaceAndComments()
        let start = index
        guard let byte = peek else { return Token(kind: .end, offset: start, text: "") }
        func single(_ kind: TokenKind, length: Int = 1) -> Token {
            index += length
            return Token(kind: kind, offset: start, text: String(decoding: bytes[start..<index], as: UTF8.self))
        }
        switch byte {
        case UInt8(ascii: "("): return single(.leftParen)
        case UInt8(ascii: ")"): return single(.rightParen)
        case UInt8(ascii: "{"): return single(.leftBrace)
        case UInt8(ascii: "}"): return single(.rightBrace)
        case UInt8(ascii: "["): return single(.leftBracket)
        case UInt8(ascii: "]"): return single(.rightBracket)
        case UInt8(ascii: ","): return single(.comma)
        case UInt8(ascii: ":"):
            // A colon starts a metric name (`:foo`) unless it is a subquery separator.
            if let next = peek(at: 1), LabelNames.isAlpha(next) || next == UInt8(ascii: ":") {
                return lexIdentifier(start: start)
            }
            return single(.colon)
        case UInt8(ascii: "@"): return single(.at)
        case UInt8(ascii: "+"): return single(.plus)
        case UInt8(ascii: "-"): return single(.minus)
        case UInt8(ascii: "*"): return single(.multiply)
        case UInt8(ascii: "/"): return single(.divide)
        case UInt8(ascii: "%"): return single(.modulo)
        case UInt8(ascii: "^"): return single(.power)
        case UInt8(ascii: "="):
            if peek(at: 1) == UInt8(ascii: "=") { return single(.equal, length: 2) }
            if peek(at: 1) == UInt8(ascii: "~") { return single(.regexMatch, length: 2) }
            return single(.assign)
        case UInt8(ascii: "!"):
            if peek(at: 1) == UInt8(ascii: "=") { return single(.notEqual, length: 2) }
            if peek(at: 1) == UInt8(ascii: "~") { return single(.regexNoMatch, length: 2) }
            throw error("unexpected character after '!'", at: start)
        case UInt8(ascii: "<"):
            if peek(at: 1) == UInt8(ascii: "=") { return single(.lessOrEqual, length: 2) }
            return single(.less)
        case UInt8(ascii: ">"):
            if peek(at: 1) == UInt8(ascii: "=") { return single(.greaterOrEqual, length: 2) }
            return single(.greater)
        case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "`"):
            return try lexString(start: start, quote: byte)
        default:
            if LabelNames.isDigit(byte) || (byte == UInt8(ascii: ".") && peek(at: 1).map(LabelNames.isDigit) == true) {
                return try lexNumberOrDuration(start: start)
            }
            if LabelNames.isAlpha(byte) { return lexIdentifier(start: start) }
            let scalar = String(decoding: bytes[start...].prefix(4), as: UTF8.self).unicodeScalars.first
            throw error("unexpected character '\(scalar.map(String.init) ?? "?")'", at: start)
        }
    }

    private mutating func skipSpaceAndComments() {
        while let byte = peek {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
                || byte == UInt8(ascii: "\r") {
                index += 1
            } else if byte == UInt8(ascii: "#") {
                while let c = peek, c != UInt8(ascii: "\n") { index += 1 }
            } else {
                return
            }
        }
    }

    private mutating func lexIdentifier(start: Int) -> Token {
        while let byte = peek, LabelNames.isAlpha(byte) || LabelNames.isDigit(byte) || byte == UInt8(ascii: ":") {
            index += 1
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        let lowered = text.lowercased()
        if lowered == "inf" { return Token(kind: .number(.infinity), offset: start, text: text) }
        if lowered == "nan" { return Token(kind: .number(.nan), offset: start, text: text) }
        return Token(kind: .identifier(text), offset: start, text: text)
    }

    private mutating func acceptRun(_ predicate: (UInt8) -> Bool) {
        while let byte = peek, predicate(byte) { index += 1 }
    }

    private mutating func lexNumberOrDuration(start: Int) throws(PromQLError) -> Token {
        let isHexDigit: (UInt8) -> Bool = { b in
            LabelNames.isDigit(b) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
        }
        var hex = false
        if peek == UInt8(ascii: "0"), let x = peek(at: 1), x == UInt8(ascii: "x") || x == UInt8(ascii: "X") {
            hex = true
            index += 2
        }
        acceptRun(hex ? isHexDigit : LabelNames.isDigit)
        if peek == UInt8(ascii: ".") {
            index += 1
            acceptRun(hex ? isHexDigit : LabelNames.isDigit)
        }
        if !hex, let e = peek, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            index += 1
            if let sign = peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            acceptRun(LabelNames.isDigit)
        }
        let isAlphaNumeric: (UInt8) -> Bool = { LabelNames.isAlpha($0) || LabelNames.isDigit($0) }
        if let next = peek, isAlphaNumeric(next) {
            // Not a plain number: try a duration such as 5m or 1h30m.
            index = start
            acceptRun(isAlphaNumeric)
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            guard let milliseconds = PrometheusDuration.parseMilliseconds(text) else {
                throw error("bad number or duration syntax: \"\(text)\"", at: start)
            }
            return Token(kind: .duration(milliseconds: milliseconds, text: text), offset: start, text: text)
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        let value: Double?
        if hex {
            value = UInt64(text.dropFirst(2), radix: 16).map { Double($0) }
        } else {
            value = Double(text)
        }
        guard let value else { throw error("bad number syntax: \"\(text)\"", at: start) }
        return Token(kind: .number(value), offset: start, text: text)
    }

    /// Double- and single-quoted strings use Go's escapes; backquoted strings are raw.
    private mutating func lexString(start: Int, quote: UInt8) throws(PromQLError) -> Token {
        index += 1
        var out: [UInt8] = []
        while let byte = peek {
            index += 1
            if byte == quote {
                let text = String(decoding: bytes[start..<index], as: UTF8.self)
                return Token(kind: .string(String(decoding: out, as: UTF8.self)), offset: start, text: text)
            }
            if quote != UInt8(ascii: "`") && byte == UInt8(ascii: "\n") { break }
            if byte != UInt8(ascii: "\\") || quote == UInt8(ascii: "`") {
                out.append(byte)
                continue
            }
            guard let escape = peek else { break }
            index += 1
            switch escape {
            case UInt8(ascii: "a"): out.append(0x07)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "v"): out.append(0x0B)
            case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"):
                guard escape == UInt8(ascii: "\\") || escape == quote else {
                    throw error("unknown escape sequence in string", at: index - 2)
                }
                out.append(escape)
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let count = escape == UInt8(ascii: "x") ? 2 : (escape == UInt8(ascii: "u") ? 4 : 8)
                guard index + count <= bytes.count,
                      let code = UInt32(String(decoding: bytes[index..<index + count], as: UTF8.self), radix: 16)
                else { throw error("invalid escape sequence in string", at: index - 2) }
                index += count
                if escape == UInt8(ascii: "x") {
                    out.append(UInt8(code))
                } else {
                    guard let scalar = Unicode.Scalar(code) else {
                        throw error("invalid Unicode code point in string", at: index - count - 2)
                    }
                    out.append(contentsOf: Array(String(scalar).utf8))
                }
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard index + 2 <= bytes.count,
                      let code = UInt16(String(decoding: bytes[index - 1..<index + 2], as: UTF8.self), radix: 8),
                      code <= 255
                else { throw error("invalid octal escape in string", at: index - 2) }
                index += 2
                out.append(UInt8(code))
            default:
                throw error("unknown escape sequence in string", at: index - 2)
            }
        }
        throw error("unterminated quoted string", at: start)
    }

    private func error(_ message: String, at offset: Int) -> PromQLError {
        PromQLError(code: .syntax, message: message, position: SourcePosition.position(in: bytes, utf8Offset: offset))
    }
}

enum SourcePosition {
    static func position(in bytes: [UInt8], utf8Offset: Int) -> PromQLError.Position {
        let prefix = String(decoding: bytes[0..<min(utf8Offset, bytes.count)], as: UTF8.self)
        var line = 1
        var column = 1
        var offset = 0
        for scalar in prefix.unicodeScalars {
            offset += 1
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return PromQLError.Position(offset: offset, line: line, column: column)
    }
}
