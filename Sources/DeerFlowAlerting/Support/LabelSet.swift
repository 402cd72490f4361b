/// One label of a series: a name and a non-empty value.
struct Label: Hashable, Sendable {
    var name: String
    var value: String
}

/// A canonical, sorted label set, the identity of a series (Prometheus' `labels.Labels`).
///
/// As in Prometheus, a label with an empty value is the same as an absent label, so empty values
/// are never stored. The metric name is the label `__name__`.
struct LabelSet: Hashable, Sendable, Comparable, CustomStringConvertible {
    static let metricName = "__name__"

    private(set) var labels: [Label]

    init() { labels = [] }

    init(_ dictionary: [String: String]) {
        labels = dictionary
            .filter { !$0.value.isEmpty }
            .map { Label(name: $0.key, value: $0.value) }
            .sorted { LabelSet.precedes($0.name, $1.name) }
    }

    /// Labels that are already sorted by name, unique and non-empty.
    private init(sorted: [Label]) { labels = sorted }

    subscript(name: String) -> String {
        labels.first { $0.name == name }?.value ?? ""
    }

    var metricName: String? {
        let value = self[LabelSet.metricName]
        return value.isEmpty ? nil : value
    }

    var dictionary: [String: String] {
        Dictionary(uniqueKeysWithValues: labels.map { ($0.name, $0.value) })
    }

    var isEmpty: Bool { labels.isEmpty }

    /// The set without the given label names (`labels.Builder.Del`).
    func dropping(_ names: Set<String>) -> LabelSet {
        LabelSet(sorted: labels.filter { !names.contains($0.name) })
    }

    func dropping(_ name: String) -> LabelSet {
        LabelSet(sorted: labels.filter { $0.name != name })
    }

    /// The set with only the given label names (`labels.Builder.Keep`).
    func keeping(_ names: Set<String>) -> LabelSet {
        LabelSet(sorted: labels.filter { names.contains($0.name) })
    }

    /// The set with `name` set to `value`; an empty value removes the label.
    func setting(_ name: String, to value: String) -> LabelSet {
        var result = labels.filter { $0.name != name }
        if !value.isEmpty {
            let index = result.firstIndex { LabelSet.precedes(name, $0.name) } ?? result.endIndex
            result.insert(Label(name: name, value: value), at: index)
        }
        return LabelSet(sorted: result)
    }

    /// `{__name__="x", a="b"}` rendered as Prometheus does: `x{a="b"}`.
    var description: String {
        let inner = labels.filter { $0.name != LabelSet.metricName }
            .map { "\($0.name)=\"\(LabelSet.escape($0.value))\"" }
            .joined(separator: ", ")
        return (metricName ?? "") + "{" + inner + "}"
    }

    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Byte-wise ordering, as Go compares strings.
    static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// Ordering of `labels.Compare`: label by label, name then value, shorter set first.
    static func < (lhs: LabelSet, rhs: LabelSet) -> Bool {
        for (left, right) in zip(lhs.labels, rhs.labels) {
            if left.name != right.name { return precedes(left.name, right.name) }
            if left.value != right.value { return precedes(left.value, right.value) }
        }
        return lhs.labels.count < rhs.labels.count
    }
}

enum LabelNames {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus' classic label name.
    static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlpha(first) else { return false }
        return name.utf8.allSatisfy { isAlpha($0) || isDigit($0) }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, Prometheus' classic metric name.
    static func isValidMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlpha(first) || first == UInt8(ascii: ":") else { return false }
        return name.utf8.allSatisfy { isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: ":") }
    }

    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == UInt8(ascii: "_")
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
}
