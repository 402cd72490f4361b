import Foundation

/// Where a secret of `deerflow.yaml`'s `secrets:` comes from. Only its source is configured; the
/// value is read by the process that runs tasks, never stored in a run, and redacted by value in
/// every task log, output and error.
///
/// ```yaml
/// secrets:
///   API_TOKEN: {env: REPORTS_API_TOKEN}         # an environment variable of the server
///   DB_PASSWORD: {file: /run/secrets/db_password}  # a file (Docker/Kubernetes secrets); one trailing newline dropped
/// ```
/// Tasks read them as `{{ secrets.API_TOKEN }}` in templated fields.
public struct SecretSource: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case environment(String)
        case file(String)
    }

    public var kind: Kind
    /// `deerflow.yaml:12`, for errors.
    public var location: String

    public init(_ kind: Kind, location: String) {
        self.kind = kind
        self.location = location
    }

    /// The secret's value.
    /// - Throws: a message naming the secret, its source and what to do, when it cannot be read.
    public func read(name: String, environment: [String: String]) throws(SecretError) -> String {
        switch kind {
        case .environment(let variable):
            guard let value = environment[variable], !value.isEmpty else {
                throw SecretError("\(location): secret '\(name)': environment variable \(variable) is not set (set it for the server and every worker, or remove the secret)")
            }
            return value
        case .file(let path):
            guard let value = ConfigFileText.secretValue(atPath: path) else {
                throw SecretError("\(location): secret '\(name)': cannot read file \(path) (check that it exists and that DeerFlow's user may read it)")
            }
            guard !value.isEmpty else { throw SecretError("\(location): secret '\(name)': file \(path) is empty") }
            return value
        }
    }

    /// Every secret's value, by name.
    public static func readAll(_ sources: [String: SecretSource], environment: [String: String]) throws(SecretError) -> [String: String] {
        var values: [String: String] = [:]
        for name in sources.keys.sorted() {
            guard let source = sources[name] else { continue }
            values[name] = try source.read(name: name, environment: environment)
        }
        return values
    }

    /// Reads the `secrets:` section.
    static func section(of top: YAMLMapping, file: String) -> [String: SecretSource]? {
        guard let secrets = top.mapping("secrets") else { return nil }
        var sources: [String: SecretSource] = [:]
        for entry in secrets.entries {
            let location = "\(file):\(entry.value.location.line)"
            guard WorkflowDefinition.isValidName(entry.key), !entry.key.contains(".") else {
                entry.value.fail("'\(entry.key)' is not a valid secret name (use letters, digits, '_', '-')")
                continue
            }
            guard let source = entry.value.mapping(allowedKeys: ["env", "file"]) else { continue }
            switch (source.string("env"), source.string("file")) {
            case (let variable?, nil):
                sources[entry.key] = SecretSource(.environment(variable), location: location)
            case (nil, let path?):
                sources[entry.key] = SecretSource(.file(path), location: location)
            default:
                entry.value.fail("give the secret exactly one source: {env: VARIABLE} or {file: /path}")
            }
        }
        return sources
    }
}

/// A secret that cannot be read.
public struct SecretError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension WorkflowDefinition {
    /// The names of `secrets` its templates read.
    public var secretReferences: Set<String> {
        var names: Set<String> = []
        for (index, task) in tasks.enumerated() {
            for field in Self.templatedFields(of: task, at: "tasks[\(index)]") {
                guard let template = try? Template(field.text) else { continue }
                for reference in template.references where reference.root == "secrets" && reference.path.count == 2 {
                    names.insert(reference.path[1])
                }
            }
        }
        return names
    }
}
