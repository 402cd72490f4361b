import Foundation

/// Something outside DeerFlow that starts runs of a workflow (`triggers:` in its YAML file).
///
/// ```yaml
/// triggers:
///   - webhook:
///       name: github-push             # POST /api/v1/hooks/github-push
///       secret_env: GH_SECRET         # the HMAC-SHA256 secret, from the server's environment
///       delivery_header: X-GitHub-Delivery   # optional; the header a repeated delivery repeats
///       params:                       # the run's parameters, templates over the request
///         ref: "{{ body.ref }}"
/// ```
public enum WorkflowTrigger: Sendable, Hashable, Codable {
    /// `POST /api/v1/hooks/{name}` with a signed JSON body starts a run.
    case webhook(WebhookTrigger)

    /// The webhook of this trigger, if it is one.
    public var webhook: WebhookTrigger? {
        switch self {
        case .webhook(let webhook): return webhook
        }
    }
}

/// A webhook that starts runs of a workflow: its requests are authenticated by an HMAC-SHA256
/// signature of their body (GitHub's `X-Hub-Signature-256: sha256=<hex>`), their JSON body is
/// mapped to the run's parameters by templates, and a delivery repeated with the same delivery id
/// starts no second run.
public struct WebhookTrigger: Sendable, Hashable, Codable {
    /// The header GitHub sends a delivery's unique id in.
    public static let defaultDeliveryHeader = "X-GitHub-Delivery"
    /// The roots a webhook's parameter templates may read: the request's JSON body and its
    /// headers (names in lower case).
    public static let templateRoots: Set<String> = ["body", "headers"]

    /// Unique among all workflows; the last path component of `/api/v1/hooks/{name}`.
    public var name: String
    /// The environment variable of the server holding the signing secret. The secret itself is
    /// never part of the definition.
    public var secretEnvironmentVariable: String
    /// Run parameter name → template text (`"{{ body.ref }}"`) evaluated over `body` and `headers`.
    public var params: [String: String]
    /// The request header carrying the delivery id repeated deliveries share.
    public var deliveryHeader: String

    public init(name: String, secretEnvironmentVariable: String, params: [String: String] = [:], deliveryHeader: String = Self.defaultDeliveryHeader) {
        self.name = name
        self.secretEnvironmentVariable = secretEnvironmentVariable
        self.params = params
        self.deliveryHeader = deliveryHeader
    }
}

extension WorkflowDefinition {
    /// The webhooks of `triggers:`, with their index in that list.
    public var webhooks: [(index: Int, webhook: WebhookTrigger)] {
        (triggers ?? []).enumerated().compactMap { index, trigger in trigger.webhook.map { (index, $0) } }
    }

    /// What is wrong with the `triggers:` of this definition: hook names, secret variable names,
    /// delivery headers, parameters that are not declared or required ones left unmapped, and the
    /// parameter templates (syntax, and only `body` and `headers` read).
    func triggerIssues() -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        var names: [String: Int] = [:]
        for (index, webhook) in webhooks {
            let path = "triggers[\(index)].webhook"
            if !Self.isSafeName(webhook.name) {
                issues.append(.init(path: "\(path).name", message: Self.unsafeNameMessage(webhook.name, what: "webhook name")))
            } else if let first = names[webhook.name] {
                issues.append(.init(path: "\(path).name", message: "duplicate webhook '\(webhook.name)' (first declared at triggers[\(first)])"))
            } else {
                names[webhook.name] = index
            }
            if !TaskEnvironment.isValidPattern(webhook.secretEnvironmentVariable) || webhook.secretEnvironmentVariable.hasSuffix("*") {
                issues.append(.init(
                    path: "\(path).secret_env",
                    message: "'\(webhook.secretEnvironmentVariable)' is not an environment variable name (e.g. GH_SECRET); it names the variable holding the secret, not the secret"))
            }
            if !Self.isHeaderName(webhook.deliveryHeader) {
                issues.append(.init(path: "\(path).delivery_header", message: "'\(webhook.deliveryHeader)' is not an HTTP header name (e.g. X-GitHub-Delivery)"))
            }
            let declared = params.map(\.name)
            for name in webhook.params.keys.sorted() {
                let paramPath = "\(path).params.\(name)"
                guard declared.contains(name) else {
                    let known = declared.isEmpty ? " (this workflow declares none; add it under 'params:')" : " (declared: \(declared.joined(separator: ", ")))"
                    issues.append(.init(path: paramPath, message: "unknown parameter '\(name)'\(known)"))
                    continue
                }
                if let problem = WebhookTemplates.problem(webhook.params[name] ?? "") {
                    issues.append(.init(path: paramPath, message: problem))
                }
            }
            for param in params where param.isRequired && webhook.params[param.name] == nil {
                issues.append(.init(
                    path: "\(path).params",
                    message: "required parameter '\(param.name)' is not mapped: map it (\(param.name): \"{{ body.… }}\") or give it a default"))
            }
        }
        return issues
    }

    /// An HTTP field name: a token of letters, digits and `!#$%&'*+-.^_`|~`.
    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
        }
    }
}

/// The parameter templates of webhooks, checked when a workflow is loaded.
enum WebhookTemplates {
    /// What is wrong with one parameter's template text (syntax, a root other than `body` or
    /// `headers`); nil: nothing.
    static func problem(_ text: String) -> String? {
        let template: Template
        do {
            template = try Template(text)
        } catch {
            return error.message
        }
        for reference in template.references where !WebhookTrigger.templateRoots.contains(reference.root) {
            return "'\(reference)' cannot be used here: a webhook's parameters read only 'body' (the JSON payload) and 'headers' (e.g. {{ body.ref }}, {{ headers[\"x-github-event\"] }})"
        }
        return nil
    }
}
