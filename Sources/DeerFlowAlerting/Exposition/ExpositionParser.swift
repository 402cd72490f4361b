/// One sample of a Prometheus text exposition: `name{labels} value`.
public struct ExposedSample: Sendable, Equatable {
    /// The metric name, e.g. `deerflow_tasks_total`.
    public var name: String
    /// The sample's labels, without the metric name. Empty values mean "absent", as in Prometheus.
    public var labels: [String: String]
    /// The value; `+Inf`, `-Inf` and `NaN` are allowed.
    public var value: Double

    public init(name: String, labels: [String: String] = [:], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }

    public static func == (lhs: ExposedSample, rhs: ExposedSample) -> Bool {
        lhs.name == rhs.name && lhs.labels == rhs.labels
            && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// A malformed exposition: the line and column (1-based) and what is wrong.
public struct ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "exposition line \(line), column \(column): \(message)" }
}

/// Parser for the Prometheus text exposition format 0.0.4 (what swift-prometheus serves on
/// `/metrics`).
///
/// Follows `model/textparse/promlex.l` / `promparse.go` in prometheus/prometheus:
/// - `# HELP name text` and `# TYPE name counter|gauge|histogram|summary|untyped` lines are
///   checked for shape; any other `#` line is a comment; blank lines are skipped.
/// - A sample is `name`, optional `{label="value",...}` (a trailing comma is allowed), a value
///   (Go `ParseFloat`: `1`, `1.5e3`, `+Inf`, `-Inf`, `NaN`) and an optional integer timestamp.
/// - Label values unescape `\\`, `\"` and `\n`; other escapes are kept as written.
/// - A label name repeated within one sample is an error.
///
/// ```swift
/// let samples = try ExpositionParser.parse("deerflow_tasks_queued 3\n")
/// ```
public enum ExpositionParser {
    /// Parses a whole exposition; throws on the first malformed line.
    public static func parse(_ text: String) throws(ExpositionError) -> [ExposedSample] {
        var samples: [ExposedSample] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Array(rawLine.utf8)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            var cursor = LineCursor(bytes: line, line: lineNumber)
            cursor.skipBlanks()
            if cursor.atEnd { continue }
            if cursor.peek == UInt8(ascii: "#") {
                try parseComment(&cursor)
                continue
            }
            samples.append(try parseSample(&cursor))
        }
        return samples
    }

    private static func parseComment(_ cursor: inout LineCursor) throws(ExpositionError) {
        cursor.advance()  // '#'
        cursor.skipBlanks()
        let keyword = cursor.readWhile { !LineCursor.isBlank($0) }
        guard keyword == "HELP" || keyword == "TYPE" else { return }  // a plain comment
        cursor.skipBlanks()
        let name = cursor.readWhile { !LineCursor.isBlank($0) }
        guard LabelNames.isValidMetricName(name) else {
            throw cursor.error("invalid metric name \"\(name)\" in # \(keyword) line")
        }
        guard keyword == "TYPE" else { return }
        cursor.skipBlanks()
        let type = cursor.readWhile { !LineCursor.isBlank($0) }
        guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(type) else {
            throw cursor.error("invalid metric type \"\(type)\" in # TYPE line")
        }
    }

    private static func parseSample(_ cursor: inout LineCursor) throws(ExpositionError) -> ExposedSample {
        let name = cursor.readWhile { LabelNames.isAlpha($0) || LabelNames.isDigit($0) || $0 == UInt8(ascii: ":") }
        guard LabelNames.isValidMetricName(name) else {
            throw cursor.error("expected a metric name")
        }
        var labels: [String: String] = [:]
        var blanks = cursor.skipBlanks()
        if cursor.peek == UInt8(ascii: "{") {
            cursor.advance()
            labels = try parseLabels(&cursor)
            blanks = cursor.skipBlanks()
        }
        guard blanks > 0 || cursor.atEnd else {
            throw cursor.error("expected a blank between the metric name or labels and the value")
        }
        let valueText = cursor.readWhile { !LineCursor.isBlank($0) }
        guard !valueText.isEmpty else { throw cursor.error("missing value for metric \"\(name)\"") }
        guard let value = GoNumbers.parseFloat(valueText) else {
            throw cursor.error("invalid value \"\(valueText)\" for metric \"\(name)\"")
        }
        cursor.skipBlanks()
        if !cursor.atEnd {
            let timestamp = cursor.readWhile { !LineCursor.isBlank($0) }
            guard Int64(timestamp) != nil else {
                throw cursor.error("invalid timestamp \"\(timestamp)\" for metric \"\(name)\"")
            }
            cursor.skipBlanks()
            guard cursor.atEnd else { throw cursor.error("unexpected text after the timestamp") }
        }
        return ExposedSample(name: name, labels: labels, value: value)
    }

    private static func parseLabels(_ cursor: inout LineCursor) throws(ExpositionError) -> [String: String] {
        var labels: [String: String] = [:]
        var seen: Set<String> = []
        while true {
            cursor.skipBlanks()
            if cursor.peek == UInt8(ascii: "}") { cursor.advance(); return labels }
            let labelName = cursor.readWhile { LabelNames.isAlpha($0) || LabelNames.isDigit($0) }
            guard LabelNames.isValidLabelName(labelName) else { throw cursor.error("expected a label name") }
            cursor.skipBlanks()
            guard cursor.peek == UInt8(ascii: "=") else { throw cursor.error("expected '=' after label name \"\(labelName)\"") }
            cursor.advance()
            cursor.skipBlanks()
            guard cursor.peek == UInt8(ascii: "\"") else { throw cursor.error("expected '\"' to start the value of label \"\(labelName)\"") }
            cursor.advance()
            let value = try cursor.readQuotedLabelValue()
            guard seen.insert(labelName).inserted else {
                throw cursor.error("duplicate label name \"\(labelName)\"")
            }
            if !value.isEmpty { labels[labelName] = value }
            cursor.skipBlanks()
            switch cursor.peek {
            case UInt8(ascii: ","): cursor.advance()
            case UInt8(ascii: "}"): continue
            default: throw cursor.error("expected ',' or '}' after the value of label \"\(labelName)\"")
            }
        }
    }
}

/// A read position within one exposition line.
private struct LineCursor {
    let bytes: [UInt8]
    let line: Int
    var index = 0

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[index] }

    mutating func advance() { index += 1 }

    static func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    @discardableResult
    mutating func skipBlanks() -> Int {
        let start = index
        while let byte = peek, LineCursor.isBlank(byte) { index += 1 }
        return index - start
    }

    mutating func readWhile(_ predicate: (UInt8) -> Bool) -> String {
        let start = index
        while let byte = peek, predicate(byte) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Reads up to the closing quote, unescaping `\\`, `\"` and `\n`.
    mutating func readQuotedLabelValue() throws(ExpositionError) -> String {
        var out: [UInt8] = []
        while let byte = peek {
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = peek else { throw error("unterminated label value") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\\"): out.append(escaped)
                case UInt8(ascii: "\""): out.append(escaped)
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                default: out.append(contentsOf: [byte, escaped])
                }
            default:
                out.append(byte)
            }
        }
        throw error("unterminated label value")
    }

    func error(_ message: String) -> ExpositionError {
        let column = String(decoding: bytes[0..<min(index, bytes.count)], as: UTF8.self).unicodeScalars.count + 1
        return ExpositionError(line: line, column: column, message: message)
    }
}
