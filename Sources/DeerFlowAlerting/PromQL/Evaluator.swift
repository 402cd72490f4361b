/// A sample of an instant vector during evaluation.
struct VectorElement: Sendable {
    var labels: LabelSet
    var value: Double
}

/// The samples of one series inside a range selector's window.
struct RangeSeries: Sendable {
    var labels: LabelSet
    var timestamps: [Int64]
    var values: [Double]
}

enum EvalValue {
    case scalar(Double)
    case vector([VectorElement])
    case matrix([RangeSeries])
}

/// Evaluates an ``Expr`` at one instant over a snapshot of a ``SeriesStore``, the way
/// Prometheus' engine (`promql/engine.go`) evaluates an instant query:
///
/// - instant selectors return, per series, the newest sample in `(t - lookback, t]` unless that
///   sample is a staleness marker (Prometheus 3 left-open lookback window; `[t - lookback, t]`
///   with `prometheus2`, as Prometheus 2);
/// - range selectors return the samples in `(t - range, t]` (`[t - range, t]` with
///   `prometheus2`), staleness markers dropped;
/// - functions, arithmetic, comparisons with `bool`, and unary minus drop the metric name;
///   comparisons without `bool` filter and keep the left-hand sample (name included);
/// - a result with two elements of the same label set is an error, as in `rangeEval`.
struct Evaluator {
    let timestamp: Int64
    let lookbackMilliseconds: Int64
    let state: SeriesStore.State
    /// Prometheus 2's closed windows and extrapolation order instead of Prometheus 3's.
    var prometheus2 = false

    /// The last timestamp outside a window that starts at `start`.
    private func beforeWindow(_ start: Int64) -> Int64 { prometheus2 ? start - 1 : start }

    func evaluate(_ expr: Expr) throws(PromQLError) -> EvalValue {
        switch expr {
        case let .number(value):
            return .scalar(value)
        case let .parenthesized(inner):
            return try evaluate(inner)
        case let .vectorSelector(selector):
            return .vector(instantVector(selector))
        case let .matrixSelector(selector, range):
            return .matrix(rangeVector(selector, rangeMilliseconds: range))
        case let .negate(inner):
            switch try evaluate(inner) {
            case let .scalar(value):
                return .scalar(-value)
            case let .vector(elements):
                return .vector(try Self.checkedUnique(elements.map {
                    VectorElement(labels: $0.labels.dropping(LabelSet.metricName), value: -$0.value)
                }))
            case .matrix:
                throw Self.internalTypeError
            }
        case let .call(function, arguments):
            return .vector(try call(function, arguments))
        case let .aggregate(op, inner, grouping, without):
            guard case let .vector(elements) = try evaluate(inner) else { throw Self.internalTypeError }
            return .vector(Self.aggregate(op, elements, grouping: grouping, without: without))
        case let .binary(op, lhs, rhs, returnBool, matching):
            switch (try evaluate(lhs), try evaluate(rhs)) {
            case let (.scalar(left), .scalar(right)):
                return .scalar(Self.scalarBinary(op, left, right))
            case let (.vector(left), .scalar(right)):
                return .vector(try Self.vectorScalarBinary(op, left, right, swapped: false, returnBool: returnBool))
            case let (.scalar(left), .vector(right)):
                return .vector(try Self.vectorScalarBinary(op, right, left, swapped: true, returnBool: returnBool))
            case let (.vector(left), .vector(right)):
                return .vector(try Self.vectorBinary(op, left, right, matching: matching, returnBool: returnBool))
            default:
                throw Self.internalTypeError
            }
        }
    }

    static let internalTypeError = PromQLError(code: .type, message: "internal error: unexpected value type")

    // MARK: Selectors

    private func selectSeries(_ selector: VectorSelector) -> [SeriesStore.Series] {
        let candidates: [SeriesStore.Series]
        if let name = selector.metricName {
            candidates = (state.idsByName[name] ?? []).compactMap { state.series[$0] }
        } else {
            candidates = Array(state.series.values)
        }
        // Sorted like Prometheus' storage returns series, so that sums add up in a fixed order.
        return candidates
            .filter { series in selector.matchers.allSatisfy { $0.matches(series.labels[$0.name]) } }
            .sorted { $0.labels < $1.labels }
    }

    /// Index of the first timestamp greater than `bound` (binary search).
    private static func firstIndex(after bound: Int64, in timestamps: [Int64]) -> Int {
        var low = 0
        var high = timestamps.count
        while low < high {
            let mid = (low + high) / 2
            if timestamps[mid] > bound { high = mid } else { low = mid + 1 }
        }
        return low
    }

    func instantVector(_ selector: VectorSelector) -> [VectorElement] {
        selectSeries(selector).compactMap { series in
            let end = Self.firstIndex(after: timestamp, in: series.timestamps)
            guard end > 0 else { return nil }
            let sampleTime = series.timestamps[end - 1]
            let value = series.values[end - 1]
            guard sampleTime > beforeWindow(timestamp - lookbackMilliseconds), !SeriesStore.isStaleMarker(value) else { return nil }
            return VectorElement(labels: series.labels, value: value)
        }
    }

    func rangeVector(_ selector: VectorSelector, rangeMilliseconds: Int64) -> [RangeSeries] {
        selectSeries(selector).compactMap { series in
            let start = Self.firstIndex(after: beforeWindow(timestamp - rangeMilliseconds), in: series.timestamps)
            let end = Self.firstIndex(after: timestamp, in: series.timestamps)
            guard start < end else { return nil }
            var result = RangeSeries(labels: series.labels, timestamps: [], values: [])
            for index in start..<end where !SeriesStore.isStaleMarker(series.values[index]) {
                result.timestamps.append(series.timestamps[index])
                result.values.append(series.values[index])
            }
            return result.timestamps.isEmpty ? nil : result
        }
    }

    // MARK: Functions

    private func call(_ function: FunctionName, _ arguments: [Expr]) throws(PromQLError) -> [VectorElement] {
        switch function {
        case .rate, .increase:
            guard case let .matrixSelector(_, range) = Self.unwrapped(arguments[0]),
                  case let .matrix(series) = try evaluate(arguments[0])
            else { throw Self.internalTypeError }
            let elements = series.compactMap { series -> VectorElement? in
                guard let value = RateFunctions.extrapolatedRate(
                    timestamps: series.timestamps, values: series.values,
                    rangeStart: timestamp - range, rangeEnd: timestamp,
                    isCounter: true, isRate: function == .rate, prometheus2: prometheus2
                ) else { return nil }
                return VectorElement(labels: series.labels.dropping(LabelSet.metricName), value: value)
            }
            return try Self.checkedUnique(elements)
        case .histogramQuantile:
            guard case let .scalar(quantile) = try evaluate(arguments[0]),
                  case let .vector(elements) = try evaluate(arguments[1])
            else { throw Self.internalTypeError }
            return try Self.checkedUnique(HistogramQuantile.evaluate(quantile: quantile, elements))
        }
    }

    private static func unwrapped(_ expr: Expr) -> Expr {
        if case let .parenthesized(inner) = expr { return unwrapped(inner) }
        return expr
    }

    // MARK: Aggregation

    /// `sum`, `avg`, `max`, `min`, `count` as in `evaluator.aggregation`: Kahan(-Neumaier)
    /// summation for `sum` and `avg`, `avg` switching to an incremental mean only if the sum
    /// would overflow, NaN replaced by any later value in `max`/`min`.
    static func aggregate(
        _ op: AggregationOperator, _ elements: [VectorElement], grouping: [String], without: Bool
    ) -> [VectorElement] {
        struct Group {
            var labels: LabelSet
            var value: Double
            var mean: Double
            var compensation = 0.0
            var count = 1.0
            var incrementalMean = false
        }
        let groupingSet = Set(grouping)
        var groups: [LabelSet: Group] = [:]
        var order: [LabelSet] = []
        for element in elements {
            let key: LabelSet
            if without {
                key = element.labels.dropping(groupingSet.union([LabelSet.metricName]))
            } else {
                key = element.labels.keeping(groupingSet)
            }
            let value = element.value
            guard var group = groups[key] else {
                groups[key] = Group(labels: key, value: value, mean: value)
                order.append(key)
                continue
            }
            switch op {
            case .sum:
                (group.value, group.compensation) = kahanSumInc(value, group.value, group.compensation)
            case .avg:
                group.count += 1
                if !group.incrementalMean {
                    let (sum, compensation) = kahanSumInc(value, group.value, group.compensation)
                    if !sum.isInfinite {
                        (group.value, group.compensation) = (sum, compensation)
                        break
                    }
                    group.incrementalMean = true
                    group.mean = group.value / (group.count - 1)
                    group.compensation /= group.count - 1
                }
                let q = (group.count - 1) / group.count
                (group.mean, group.compensation) = kahanSumInc(value / group.count, q * group.mean, q * group.compensation)
            case .max:
                if group.value < value || group.value.isNaN { group.value = value }
            case .min:
                if group.value > value || group.value.isNaN { group.value = value }
            case .count:
                group.count += 1
            }
            groups[key] = group
        }
        return order.compactMap { key in
            guard let group = groups[key] else { return nil }
            let value: Double
            switch op {
            case .sum: value = group.value + group.compensation
            case .avg:
                value = group.incrementalMean
                    ? group.mean + group.compensation
                    : group.value / group.count + group.compensation / group.count
            case .max, .min: value = group.value
            case .count: value = group.count
            }
            return VectorElement(labels: group.labels, value: value)
        }
    }

    /// `kahanSumInc` (Neumaier's variant), as in Prometheus.
    static func kahanSumInc(_ increment: Double, _ sum: Double, _ compensation: Double) -> (Double, Double) {
        let total = sum + increment
        var c = compensation
        if total.isInfinite {
            c = 0
        } else if abs(sum) >= abs(increment) {
            c += (sum - total) + increment
        } else {
            c += (increment - total) + sum
        }
        return (total, c)
    }

    // MARK: Binary operators

    /// `vectorElemBinop`: arithmetic gives a value; a comparison keeps the left value when true.
    static func elementBinary(_ op: BinaryOperator, _ lhs: Double, _ rhs: Double) -> (value: Double, keep: Bool) {
        switch op {
        case .add: return (lhs + rhs, true)
        case .subtract: return (lhs - rhs, true)
        case .multiply: return (lhs * rhs, true)
        case .divide: return (lhs / rhs, true)
        case .modulo: return (fmodGo(lhs, rhs), true)
        case .power: return (powGo(lhs, rhs), true)
        case .equal: return (lhs, lhs == rhs)
        case .notEqual: return (lhs, lhs != rhs)
        case .greater: return (lhs, lhs > rhs)
        case .less: return (lhs, lhs < rhs)
        case .greaterOrEqual: return (lhs, lhs >= rhs)
        case .lessOrEqual: return (lhs, lhs <= rhs)
        }
    }

    /// `scalarBinop`: comparisons (only reachable with `bool`) give 1 or 0.
    static func scalarBinary(_ op: BinaryOperator, _ lhs: Double, _ rhs: Double) -> Double {
        let (value, keep) = elementBinary(op, lhs, rhs)
        return op.isComparison ? (keep ? 1 : 0) : value
    }

    /// `VectorscalarBinop`. With the scalar on the left (`swapped`), a comparison still returns
    /// the vector element's value.
    static func vectorScalarBinary(
        _ op: BinaryOperator, _ vector: [VectorElement], _ scalar: Double, swapped: Bool, returnBool: Bool
    ) throws(PromQLError) -> [VectorElement] {
        var out: [VectorElement] = []
        for element in vector {
            let (left, right) = swapped ? (scalar, element.value) : (element.value, scalar)
            var (value, keep) = elementBinary(op, left, right)
            if op.isComparison && swapped { value = right }
            if returnBool {
                value = keep ? 1 : 0
                keep = true
            }
            guard keep else { continue }
            let dropName = !op.isComparison || returnBool
            out.append(VectorElement(labels: dropName ? element.labels.dropping(LabelSet.metricName) : element.labels, value: value))
        }
        return try checkedUnique(out)
    }

    /// `VectorBinop` with one-to-one matching: the signature is the label set without
    /// `__name__` (and without the `ignoring` labels), or only the `on` labels.
    static func vectorBinary(
        _ op: BinaryOperator, _ lhs: [VectorElement], _ rhs: [VectorElement], matching: VectorMatching?, returnBool: Bool
    ) throws(PromQLError) -> [VectorElement] {
        guard !lhs.isEmpty, !rhs.isEmpty else { return [] }
        let matchLabels = Set(matching?.labels ?? [])
        let on = matching?.on ?? false
        func signature(_ labels: LabelSet) -> LabelSet {
            on ? labels.keeping(matchLabels) : labels.dropping(matchLabels.union([LabelSet.metricName]))
        }
        var rightBySignature: [LabelSet: VectorElement] = [:]
        for element in rhs {
            let key = signature(element.labels)
            if let duplicate = rightBySignature[key] {
                throw PromQLError(
                    code: .evaluation,
                    message: "found duplicate series for the match group \(key) on the right hand-side of the operation: [\(element.labels), \(duplicate.labels)];many-to-many matching not allowed: matching labels must be unique on one side"
                )
            }
            rightBySignature[key] = element
        }
        var matched: Set<LabelSet> = []
        var out: [VectorElement] = []
        for element in lhs {
            let key = signature(element.labels)
            guard let right = rightBySignature[key] else { continue }
            var (value, keep) = elementBinary(op, element.value, right.value)
            if returnBool {
                value = keep ? 1 : 0
            } else if !keep {
                continue
            }
            var labels = element.labels
            if !op.isComparison || returnBool { labels = labels.dropping(LabelSet.metricName) }
            if let matching {
                labels = matching.on ? labels.keeping(matchLabels) : labels.dropping(matchLabels)
            }
            guard matched.insert(key).inserted else {
                throw PromQLError(
                    code: .evaluation,
                    message: "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                )
            }
            out.append(VectorElement(labels: labels, value: value))
        }
        return try checkedUnique(out)
    }

    /// Go's `math.Mod` (same as C `fmod`: the result has the sign of `x`).
    static func fmodGo(_ x: Double, _ y: Double) -> Double {
        x.truncatingRemainder(dividingBy: y)
    }

    /// Go's `math.Pow`, whose special cases match C `pow` for the values PromQL produces.
    static func powGo(_ x: Double, _ y: Double) -> Double {
        RateFunctions.pow(x, y)
    }

    static func checkedUnique(_ elements: [VectorElement]) throws(PromQLError) -> [VectorElement] {
        var seen: Set<LabelSet> = []
        for element in elements where !seen.insert(element.labels).inserted {
            throw PromQLError(code: .evaluation, message: "vector cannot contain metrics with the same labelset")
        }
        return elements
    }
}
