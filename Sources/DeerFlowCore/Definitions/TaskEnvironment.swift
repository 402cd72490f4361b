/// What a shell task inherits from DeerFlow's own environment: only ``baseVariables`` and the
/// variables matching a passthrough pattern (`worker.env_passthrough` in `deerflow.yaml`, a
/// task's `env_passthrough`). Everything else — `DEERFLOW_DATABASE_URL`, `DEERFLOW_API_TOKENS`,
/// cloud credentials — stays out of the task.
public enum TaskEnvironment {
    /// Inherited always: what programs need to run at all.
    public static let baseVariables = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME"]

    /// Whether `pattern` is a variable name (`AWS_REGION`), a prefix (`AWS_*`), or `*` (everything).
    public static func isValidPattern(_ pattern: String) -> Bool {
        let name = pattern.hasSuffix("*") ? pattern.dropLast() : Substring(pattern)
        if name.isEmpty { return pattern == "*" }
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// Whether a variable passes one of the patterns.
    public static func passes(_ name: String, patterns: [String]) -> Bool {
        patterns.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }

    /// The inherited part of a task's environment.
    public static func inherited(from environment: [String: String], passthrough: [String]) -> [String: String] {
        environment.filter { baseVariables.contains($0.key) || passes($0.key, patterns: passthrough) }
    }
}
