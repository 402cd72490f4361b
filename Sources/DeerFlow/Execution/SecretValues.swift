import DeerFlowCore
import Foundation

/// Values an attempt must never show: its run's `secret: true` parameters. Whatever a task prints,
/// logs, returns or fails with is passed through ``redact(_:)-(String)`` before it reaches the
/// task log, the process log, the store, the API or a notification.
///
/// Values shorter than ``minimumLength`` characters are not hidden: masking every `a` or `42` in a
/// log would hide the log, not the secret.
struct SecretValues: Sendable {
    /// Shorter values are left alone.
    static let minimumLength = 4

    /// Longest first, so a value containing another is masked whole.
    let values: [String]

    init(_ values: some Sequence<String>) {
        self.values = Set(values.filter { $0.count >= Self.minimumLength }).sorted { $0.count > $1.count }
    }

    /// The secret parameters of `attempt`'s run, as the task sees them (their plain text), and
    /// `configured`: the values of `deerflow.yaml`'s secrets (all of them: a task may reach one by
    /// other means than a template, and its value must not show either way). Without secret
    /// parameters, `configured` as it is.
    init(params: [String: JSONValue], definition: WorkflowDefinition?, configured: SecretValues = SecretValues([String]())) {
        let secret = Set(definition?.params.filter(\.secret).map(\.name) ?? [])
        let values = params.filter { secret.contains($0.key) }.map { $0.value.plainText }
        self = values.isEmpty ? configured : SecretValues(values + configured.values)
    }

    var isEmpty: Bool { values.isEmpty }

    /// The longest value, in characters (0 without values).
    var longest: Int { values.first?.count ?? 0 }

    /// `text` with every value replaced by `[REDACTED]`.
    func redact(_ text: String) -> String {
        guard !values.isEmpty else { return text }
        var result = text
        for value in values where result.contains(value) {
            result = result.replacingOccurrences(of: value, with: "[REDACTED]")
        }
        return result
    }

    /// Every string in `value` (keys too) redacted.
    func redact(_ value: JSONValue) -> JSONValue {
        guard !values.isEmpty else { return value }
        switch value {
        case .string(let text): return .string(redact(text))
        case .array(let items): return .array(items.map(redact))
        case .object(let object):
            var redacted: [String: JSONValue] = [:]
            for (key, item) in object { redacted[redact(key)] = redact(item) }
            return .object(redacted)
        default: return value
        }
    }

    /// The outcome with its message (and a success's output) redacted.
    func redact(_ outcome: AttemptOutcome) -> AttemptOutcome {
        guard !values.isEmpty else { return outcome }
        switch outcome {
        case .success(let output): return .success(output: redact(output))
        case .failure(let message): return .failure(message: redact(message))
        case .timeout(let message): return .timeout(message: redact(message))
        case .cancelled(let message): return .cancelled(message: redact(message))
        case .interrupted(let message): return .interrupted(message: redact(message))
        }
    }
}
