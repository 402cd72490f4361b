import Crypto
import DeerFlow
public import DeerFlowCore
import Foundation
import HTTPTypes
import Logging
import OpenAPIRuntime

/// GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
/// request body keyed with the webhook's secret.
///
/// ```swift
/// let header = WebhookSignature.sign(Array(body.utf8), secret: "s3cret")   // "sha256=…"
/// WebhookSignature.isValid(header, body: Array(body.utf8), secret: Array("s3cret".utf8))  // true
/// ```
public enum WebhookSignature {
    /// The header the signature is sent in.
    public static let header = "X-Hub-Signature-256"

    /// The header value for `body` signed with `secret`: `sha256=` and 64 lower-case hex digits.
    public static func sign(_ body: [UInt8], secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `header` is `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`. The
    /// comparison takes the same time wherever the codes differ; a missing or malformed header
    /// is simply not valid.
    public static func isValid(_ header: String?, body: [UInt8], secret: [UInt8]) -> Bool {
        guard let header, header.count == 71, header.lowercased().hasPrefix("sha256="), let code = bytes(hex: header.dropFirst(7)) else {
            return false
        }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: body, using: SymmetricKey(data: secret))
    }

    /// The bytes of an even number of hex digits; nil for anything else.
    static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = value(ofHexDigit: digits[index]), let low = value(ofHexDigit: digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func value(ofHexDigit digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// The webhooks of the loaded workflows (`triggers:`), with their secrets read from the
/// environment once, when the server starts. A webhook whose `secret_env` is not set (or empty)
/// refuses every request with 503: it never accepts an unsigned one.
public struct Webhooks: Sendable {
    /// One webhook ready to serve.
    struct Endpoint: Sendable {
        var workflow: String
        var trigger: WebhookTrigger
        /// The HMAC key; nil when the variable was not set at start.
        var secret: [UInt8]?
        /// Parameter name → parsed template.
        var templates: [(param: String, template: Template)]
        /// The declared type of each parameter.
        var types: [String: ParamType]
    }

    let endpoints: [String: Endpoint]
    /// What an operator must fix (secrets not set, templates that do not parse, duplicate names
    /// among workflows defined in Swift); logged when the server starts.
    public let problems: [String]

    /// The webhooks of `workflows`, their secrets taken from `environment`.
    public init(workflows: [WorkflowDefinition], environment: [String: String]) {
        var endpoints: [String: Endpoint] = [:]
        var problems: [String] = []
        for workflow in workflows {
            for (_, webhook) in workflow.webhooks {
                if let other = endpoints[webhook.name] {
                    problems.append("webhook '\(webhook.name)' of workflow '\(workflow.name)' is ignored: workflow '\(other.workflow)' declares it too")
                    continue
                }
                var templates: [(String, Template)] = []
                do {
                    for (param, text) in webhook.params.sorted(by: { $0.key < $1.key }) { templates.append((param, try Template(text))) }
                } catch {
                    problems.append("webhook '\(webhook.name)' of workflow '\(workflow.name)' is not served: \(error.message)")
                    continue
                }
                let secret = environment[webhook.secretEnvironmentVariable].flatMap { $0.isEmpty ? nil : Array($0.utf8) }
                if secret == nil {
                    problems.append(Self.noSecret(webhook))
                }
                endpoints[webhook.name] = Endpoint(
                    workflow: workflow.name, trigger: webhook, secret: secret, templates: templates,
                    types: Dictionary(workflow.params.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first }))
            }
        }
        self.endpoints = endpoints
        self.problems = problems
    }

    /// The names of the served webhooks, sorted.
    public var names: [String] { endpoints.keys.sorted() }

    static func noSecret(_ webhook: WebhookTrigger) -> String {
        "webhook '\(webhook.name)' has no secret: the environment variable \(webhook.secretEnvironmentVariable) (its secret_env) was not set when the server started, so it refuses every request; set it and restart the server"
    }

    /// What a request to a webhook came to: the `result` label of `deerflow_webhook_requests_total`.
    enum Result: String {
        case accepted, duplicate
        case notFound = "not_found"
        case noSecret = "no_secret"
        case badSignature = "bad_signature"
        case badRequest = "bad_request"
        case unmapped
        case error
    }

    /// A refused request: the status's error code, the message, and the metric's result.
    struct Refusal: Error {
        var code: DeerFlowError.Code
        var message: String
        var result: Result
    }

    /// Handles `POST /api/v1/hooks/{name}`: finds the webhook, checks the signature, maps the
    /// body to parameters and starts the run once per delivery id.
    ///
    /// - Returns: the run, and whether the delivery was seen before.
    /// - Throws: ``Refusal`` for a request refused (404, 503, 401, 400, 422); store errors as they are.
    func receive(name: String, body: [UInt8], headers: HTTPFields, engine: DeerFlowEngine) async throws -> DeliveryOutcome {
        // The answer does not list the webhooks there are: the caller is not authenticated yet.
        guard let endpoint = endpoints[name] else {
            throw Refusal(code: .notFound, message: "no webhook '\(name)': no workflow of this server declares it under triggers:", result: .notFound)
        }
        guard let secret = endpoint.secret else {
            throw Refusal(code: .unavailable, message: Self.noSecret(endpoint.trigger), result: .noSecret)
        }
        let signature = headers[HTTPField.Name(WebhookSignature.header) ?? .authorization]
        guard WebhookSignature.isValid(signature, body: body, secret: secret) else {
            let problem = signature == nil ? "has no \(WebhookSignature.header) header" : "has an \(WebhookSignature.header) that does not match its body"
            throw Refusal(
                code: .unauthorized,
                message: "this request \(problem) under the secret of webhook '\(name)' (send sha256=<hex of HMAC-SHA256 of the body>, keyed with the secret)",
                result: .badSignature)
        }
        let payload: JSONValue
        do {
            payload = try JSONValue(parsing: String(decoding: body, as: UTF8.self))
        } catch {
            throw Refusal(code: .badRequest, message: "the body of webhook '\(name)' is not JSON (configure the sender to send application/json)", result: .badRequest)
        }
        let params = try Self.params(of: endpoint, payload: payload, headers: headers)
        let deliveryID = headers[HTTPField.Name(endpoint.trigger.deliveryHeader) ?? .authorization].flatMap { $0.isEmpty ? nil : $0 }
        if let deliveryID, deliveryID.utf8.count > 200 {
            throw Refusal(code: .badRequest, message: "the \(endpoint.trigger.deliveryHeader) header is longer than 200 bytes", result: .badRequest)
        }
        do {
            guard let deliveryID else {
                return .created(try await engine.trigger(endpoint.workflow, params: params, trigger: .webhook))
            }
            return try await engine.trigger(endpoint.workflow, params: params, delivery: WebhookDelivery(hook: name, id: deliveryID, receivedAt: Date()))
        } catch let error as DeerFlowError where error.code == .invalidParams {
            throw Refusal(code: .invalidParams, message: "webhook '\(name)': \(error.message)", result: .unmapped)
        }
    }

    /// The run parameters the webhook's templates give for a payload. A value of the wrong kind is
    /// converted where it is unambiguous (a number for a string parameter gives its text, a text
    /// for an int parameter its number); `null` leaves the parameter to its default.
    static func params(of endpoint: Endpoint, payload: JSONValue, headers: HTTPFields) throws(Refusal) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for field in headers {
            let key = field.name.canonicalName
            if case .string(let earlier)? = fields[key] {
                fields[key] = .string(earlier + ", " + field.value)
            } else {
                fields[key] = .string(field.value)
            }
        }
        let scope = TemplateScope(["body": payload, "headers": .object(fields)])
        var params: [String: JSONValue] = [:]
        for (param, template) in endpoint.templates {
            let value: JSONValue
            do {
                value = try template.value(scope)
            } catch {
                throw Refusal(
                    code: .invalidParams, message: "webhook '\(endpoint.trigger.name)': parameter '\(param)': \(error.message)", result: .unmapped)
            }
            if value == .null { continue }
            params[param] = convert(value, to: endpoint.types[param])
        }
        return params
    }

    /// `value` as the parameter's type where the conversion is unambiguous; else unchanged (the
    /// engine's parameter check then answers the mismatch).
    static func convert(_ value: JSONValue, to type: ParamType?) -> JSONValue {
        switch (type, value) {
        case (.string?, .int), (.string?, .double), (.string?, .bool):
            return .string(value.compactJSON)
        case (.int?, .string(let text)), (.float?, .string(let text)), (.bool?, .string(let text)):
            return type?.parse(commandLine: text) ?? value
        default:
            return value
        }
    }
}

/// The header fields of a webhook request, for the templates' `headers` and the delivery id
/// (the generated operation input has only the documented headers).
enum WebhookRequest {
    @TaskLocal static var headers = HTTPFields()
}

/// Keeps the headers of `POST /api/v1/hooks/{name}` for ``Webhooks`` (``WebhookRequest``).
struct WebhookHeadersMiddleware: ServerMiddleware {
    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard operationID == "receiveWebhook" else { return try await next(request, body, metadata) }
        return try await WebhookRequest.$headers.withValue(request.headerFields) {
            try await next(request, body, metadata)
        }
    }
}
