public import Foundation
import DeerFlowCore

/// One element of an instant vector: a label set and a value.
public struct Sample: Sendable, Equatable, CustomStringConvertible {
    /// All labels, the metric name included as `__name__` when the result keeps it.
    public var labels: [String: String]
    public var value: Double

    public init(labels: [String: String], value: Double) {
        self.labels = labels
        self.value = value
    }

    /// The metric name (`__name__`), if the result still carries it.
    public var metricName: String? { labels[LabelSet.metricName] }

    public var description: String { "\(LabelSet(labels)) \(GoFormat.shortest(value))" }

    public static func == (lhs: Sample, rhs: Sample) -> Bool {
        lhs.labels == rhs.labels && (lhs.value == rhs.value || (lhs.value.isNaN && rhs.value.isNaN))
    }
}

/// The result of an instant query.
public enum PromQLValue: Sendable, Equatable {
    case scalar(Double)
    /// Samples sorted by label set.
    case vector([Sample])

    /// The samples; a scalar becomes one sample with no labels (what Prometheus' rule manager
    /// does with a scalar rule result).
    public var samples: [Sample] {
        switch self {
        case let .scalar(value): return [Sample(labels: [:], value: value)]
        case let .vector(samples): return samples
        }
    }

    public static func == (lhs: PromQLValue, rhs: PromQLValue) -> Bool {
        switch (lhs, rhs) {
        case let (.scalar(a), .scalar(b)): return a == b || (a.isNaN && b.isNaN)
        case let (.vector(a), .vector(b)): return a == b
        default: return false
        }
    }
}

/// A parsed PromQL expression of the supported subset, evaluated as an instant query.
///
/// Supported, with Prometheus 3 semantics:
/// - number literals (`1`, `1.5e3`, `0x1F`, `Inf`, `NaN`);
/// - instant selectors `name{label="v", label!="v", label=~"re", label!~"re"}` (regexes fully
///   anchored) with a 5-minute lookback, and range selectors `name{...}[5m]` (durations
///   `ms s m h d w y`, combinable as in `1h30m`);
/// - `rate`, `increase` (Prometheus' extrapolation), `histogram_quantile` (classic `le` buckets);
/// - `sum`, `avg`, `max`, `min`, `count` with `by (...)` / `without (...)` before or after the
///   argument;
/// - `+ - * / % ^` and `== != > < >= <=` (filtering, or 0/1 with `bool`) between scalars and
///   instant vectors, one-to-one vector matching with `on (...)` / `ignoring (...)`;
/// - unary minus, parentheses, `#` comments.
///
/// Everything else (`offset`, `@`, subqueries, `topk`, `group_left`, `and`/`or`/`unless`, other
/// functions, string literals) throws ``PromQLError`` with code `.unsupported` at parse time.
/// A bare range selector at the top level is rejected too: results are instant vectors or
/// scalars.
///
/// ```swift
/// let expr = try PromQLExpression(parsing: "sum(rate(deerflow_workflows_total[5m])) by (status)")
/// let result = try expr.evaluate(at: .now, in: store)
/// ```
/// The Prometheus major version whose evaluation details to follow. They differ in two places:
/// range and lookback windows (`(t - range, t]` in 3, `[t - range, t]` in 2), and the order in
/// which `rate`/`increase` cap their extrapolation towards the window start (3: the half-interval
/// cap, then the counter's zero point; 2: the other way round).
public enum PromQLCompatibility: Sendable, Hashable {
    case prometheus3
    case prometheus2
}

public struct PromQLExpression: Sendable, CustomStringConvertible {
    /// The expression text as given.
    public let text: String
    let root: Expr

    /// Parses `text`; throws on syntax errors, type errors and constructs outside the subset.
    public init(parsing text: String) throws(PromQLError) {
        self.text = text
        root = try Parser.parse(text)
        if root.type == .rangeVector {
            throw PromQLError(
                code: .unsupported,
                message: "expression evaluates to a range vector; only instant vectors and scalars are supported (wrap the range selector in rate() or increase())",
                position: PromQLError.Position(offset: 0, line: 1, column: 1)
            )
        }
    }

    public var description: String { text }

    /// The longest range selector in the expression (zero if none): the store must retain at
    /// least this much history, and at least the lookback delta.
    public var longestRange: Duration { .milliseconds(root.longestRangeMilliseconds) }

    /// Evaluates the expression at `time` over the store's samples.
    ///
    /// - Parameters:
    ///   - time: The evaluation instant.
    ///   - store: The sample history.
    ///   - lookbackDelta: How far back an instant selector looks for a sample. Default: 5 minutes,
    ///     Prometheus' default.
    ///   - compatibility: Which Prometheus to agree with; default Prometheus 3.
    public func evaluate(
        at time: Date, in store: SeriesStore, lookbackDelta: Duration = .seconds(300), compatibility: PromQLCompatibility = .prometheus3
    ) throws(PromQLError) -> PromQLValue {
        let snapshot = store.snapshot()
        let evaluator = Evaluator(
            timestamp: SeriesStore.milliseconds(time),
            lookbackMilliseconds: lookbackDelta.milliseconds,
            state: snapshot,
            prometheus2: compatibility == .prometheus2
        )
        switch try evaluator.evaluate(root) {
        case let .scalar(value):
            return .scalar(value)
        case let .vector(elements):
            return .vector(elements.sorted { $0.labels < $1.labels }.map {
                Sample(labels: $0.labels.dictionary, value: $0.value)
            })
        case .matrix:
            throw Evaluator.internalTypeError
        }
    }
}
