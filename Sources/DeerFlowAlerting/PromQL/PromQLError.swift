/// An error from parsing or evaluating a PromQL expression.
///
/// `description` reads like Prometheus' own parse errors, `line:column: message`, e.g.
/// `1:1: aggregation 'topk' is not supported (supported: sum, avg, max, min, count)`.
public struct PromQLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Code: String, Sendable {
        /// Not valid PromQL.
        case syntax
        /// Valid PromQL outside the subset this evaluator implements.
        case unsupported
        /// Valid syntax with the wrong value types (e.g. `rate(foo)` without a range).
        case type
        /// Failed at evaluation (e.g. many-to-many matching, duplicate label sets).
        case evaluation
    }

    /// Where in the expression text, 1-based; `offset` counts Unicode scalars from the start.
    public struct Position: Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var line: Int
        public var column: Int

        public var description: String { "\(line):\(column)" }
    }

    public var code: Code
    public var message: String
    public var position: Position?

    public init(code: Code, message: String, position: Position? = nil) {
        self.code = code
        self.message = message
        self.position = position
    }

    public var description: String {
        guard let position else { return message }
        return "\(position): \(message)"
    }
}
