import DeerFlow
import DeerFlowAPI
import DeerFlowCore
import Foundation
import HTTPTypes
import OpenAPIRuntime

/// What the API does around the generated request decoding and response encoding, as
/// openapi.yaml describes it:
///
/// - a body is read up to the configured limit (413 `payload_too_large` past it), and a body of
///   only whitespace counts as no body (`POST …/runs` with an empty body runs with the defaults);
/// - a body that is not UTF-8 answers 400 naming the offset of the first bad byte (JSON is
///   UTF-8; decoding it anyway would store U+FFFD in place of what the client sent);
/// - there is no content negotiation: `Content-Type` and `Accept` are not checked;
/// - an empty query value (`?cursor=`) is a value like any other, checked against the schema
///   (an empty `status`, `limit`, `cursor` or `attempt` answers 400);
/// - a JSON response ends with a newline;
/// - a request the generated code cannot decode answers 400 with a message naming the value and
///   what to send (``RequestDiagnosis``), not the decoder's.
struct RequestShapeMiddleware: ServerMiddleware {
    let maxBodyBytes: Int

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.contentType] = nil
        request.headerFields[.accept] = nil
        var bytes: ArraySlice<UInt8> = []
        if let body {
            do {
                bytes = try await ArraySlice(collecting: body, upTo: maxBodyBytes)
            } catch {
                throw DeerFlowError(.payloadTooLarge, "the request body is larger than \(maxBodyBytes) bytes")
            }
        }
        if let offset = Self.firstInvalidUTF8(bytes) {
            throw DeerFlowError(.badRequest, "the request body is not valid UTF-8: byte 0x\(String(bytes[bytes.startIndex + offset], radix: 16, uppercase: true)) at offset \(offset) starts no UTF-8 character; send JSON encoded as UTF-8")
        }
        let hasBody = bytes.contains { !Self.isWhitespace($0) }
        // `{"params": null}` decodes as no parameters (the generated decoder reads an optional
        // property), in a batch's entries too; openapi.yaml says `params` is an object. Only a body with `null` in it can be
        // that, so only such a body is parsed twice.
        if hasBody, operationID == Operations.TriggerRun.id, Self.contains(bytes, "null"),
            let problem = RequestDiagnosis.triggerBody(bytes)
        {
            throw problem
        }
        if hasBody, operationID == Operations.TriggerRunBatch.id, Self.contains(bytes, "null"),
            let problem = RequestDiagnosis.batchBody(bytes)
        {
            throw problem
        }
        if hasBody, let optional = RequestDiagnosis.optionalFields[operationID], Self.contains(bytes, "null"),
            let problem = RequestDiagnosis.nullField(bytes, optional: optional)
        {
            throw problem
        }
        let (answer, responseBody): (HTTPResponse, HTTPBody?)
        do {
            // A webhook's body is passed as it is: its signature covers every byte.
            let passed = hasBody || operationID == Operations.ReceiveWebhook.id
            (answer, responseBody) = try await next(request, passed ? HTTPBody(bytes) : nil, metadata)
        } catch let error as ServerError where error.operationInput == nil && !(error.underlyingError is DeerFlowError) {
            // The generated code could not decode the request into the operation's input.
            throw RequestDiagnosis.explain(operationID: operationID, request: request, body: bytes)
                ?? DeerFlowError(.badRequest, "the request does not match openapi.yaml (\(error.causeDescription)); see GET /api/v1/openapi.yaml")
        }
        var response = answer
        // The generated serializer percent-encodes header values (`%2Fapi%2Fv1%2Fruns%2F…`,
        // swift-openapi-generator issue #857); the API sends paths as they are.
        if let location = response.headerFields[.location], let decoded = Self.percentDecoded(location) {
            response.headerFields[.location] = decoded
        }
        guard let responseBody, response.headerFields[.contentType]?.hasPrefix("application/json") == true else {
            return (response, responseBody)
        }
        var json = try await ArraySlice(collecting: responseBody, upTo: .max)
        json.append(UInt8(ascii: "\n"))
        response.headerFields[.contentLength] = String(json.count)
        return (response, HTTPBody(json))
    }

    /// Whether `bytes` holds the ASCII text `word`.
    static func contains(_ bytes: ArraySlice<UInt8>, _ word: StaticString) -> Bool {
        let pattern = Array(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
        guard bytes.count >= pattern.count else { return false }
        var index = bytes.startIndex
        while index <= bytes.endIndex - pattern.count {
            if bytes[index] == pattern[0], bytes[index..<index + pattern.count].elementsEqual(pattern) { return true }
            index += 1
        }
        return false
    }

    /// `text` with its `%XX` escapes decoded; nil when it has none, or when an escape is malformed
    /// or the decoded bytes are not UTF-8 (the value is then sent as it is).
    ///
    /// Written here rather than Foundation's `removingPercentEncoding`, which bridges through
    /// NSString: on the trigger path, once per request, it cost about 1 % of the server's CPU.
    static func percentDecoded(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return nil }
        let source = Array(text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(source.count)
        var index = 0
        while index < source.count {
            guard source[index] == UInt8(ascii: "%") else {
                bytes.append(source[index])
                index += 1
                continue
            }
            guard index + 2 < source.count, let high = hexValue(source[index + 1]), let low = hexValue(source[index + 2]) else { return nil }
            bytes.append(high << 4 | low)
            index += 3
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// The offset of the first byte of `bytes` that is not part of a valid UTF-8 character; nil
    /// when all are.
    static func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .error: return offset
            case .emptyInput: return nil
            }
        }
    }
}

/// Says in the API's words why a request could not be decoded: the value, what is expected and
/// what to send. Runs only after the generated decoding failed.
enum RequestDiagnosis {
    static func explain(operationID: String, request: HTTPRequest, body: ArraySlice<UInt8>) -> DeerFlowError? {
        let query = queryItems(request.path ?? "")
        switch operationID {
        case Operations.TriggerRun.id, Operations.RerunRun.id:
            return triggerBody(body)
        case Operations.TriggerRunBatch.id:
            return batchBody(body)
        case Operations.RetryRun.id:
            return retryBody(body)
        case Operations.ListRuns.id:
            if let status = query["status"], RunStatus(rawValue: status) == nil { return Messages.unknownStatus(status) }
            if let limit = query["limit"], Int(limit) == nil { return Messages.limit(limit) }
            return nil
        case Operations.GetTaskLog.id:
            if let attempt = query["attempt"], Int(attempt) == nil {
                // A positive integer past Int64: no task has that attempt, like any other it does not have.
                if let first = attempt.first, first != "0", attempt.allSatisfy({ ("0"..."9").contains($0) }) {
                    return DeerFlowError(.notFound, "there is no attempt \(attempt) (attempts are numbered from 1)")
                }
                return Messages.attempt(attempt)
            }
            return nil
        case Operations.ReceiveAlertmanagerWebhook.id:
            return DeerFlowError(.badRequest, "the request body is not valid JSON; send Alertmanager's webhook payload (version 4)")
        default:
            return nil
        }
    }

    /// Optional body fields of operations, with what they must be: the generated decoder reads
    /// such a field given as `null` as absent, while openapi.yaml allows only a value.
    static let optionalFields: [String: [String: String]] = [
        Operations.UnpauseWorkflow.id: ["catch_up": "true or false"],
        Operations.CreateBackfill.id: ["params": "a JSON object of parameter names to values", "max_active": "an integer from 1 to 1000"],
        Operations.RerunRun.id: ["params": "a JSON object of parameter names to values"],
        Operations.RetryRun.id: ["tasks": "a list of task ids"],
        Operations.PurgeHistory.id: [
            "older_than": "a duration such as 30d", "task_logs_older_than": "a duration such as 7d",
            "dry_run": "true or false", "vacuum": "true or false",
        ],
    ]

    /// The first optional field of a JSON object body that is `null`.
    static func nullField(_ body: ArraySlice<UInt8>, optional: [String: String]) -> DeerFlowError? {
        guard case .object(let object)? = try? JSONValue(parsing: String(decoding: body, as: UTF8.self)) else { return nil }
        for key in object.keys.sorted() where object[key] == .null {
            if let what = optional[key] { return DeerFlowError(.badRequest, "'\(key)' must be \(what), got null; leave it out for the default") }
        }
        return nil
    }

    /// Why a trigger body is not `{"params": {...}}`.
    static func triggerBody(_ body: ArraySlice<UInt8>) -> DeerFlowError? {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: String(decoding: body, as: UTF8.self))
        } catch {
            return DeerFlowError(.badRequest, "the request body is not valid JSON; send {\"params\": {...}}")
        }
        return triggerEntry(json, place: "the request body", field: "")
    }

    /// Why `json` (a trigger's body, or an entry of a batch's `runs`) is not `{"params": {...}}`.
    private static func triggerEntry(_ json: JSONValue, place: String, field: String) -> DeerFlowError? {
        guard case .object(let object) = json else {
            return DeerFlowError(.badRequest, "\(place) must be a JSON object: {\"params\": {...}}")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "params" }) {
            return DeerFlowError(.badRequest, "unknown field '\(unknown)' in \(place); the only field is 'params'")
        }
        if let given = object["params"], !isObject(given) {
            return DeerFlowError(.badRequest, "'\(field)params' must be a JSON object of parameter names to values, got \(given.typeName)")
        }
        return nil
    }

    /// Why a batch trigger's body is not `{"runs": [{"params": {...}}, ...]}`.
    static func batchBody(_ body: ArraySlice<UInt8>) -> DeerFlowError? {
        let shape = "{\"runs\": [{\"params\": {...}}, ...]}"
        guard let json = try? JSONValue(parsing: String(decoding: body, as: UTF8.self)) else {
            return DeerFlowError(.badRequest, "the request body is not valid JSON; send \(shape)")
        }
        guard case .object(let object) = json else {
            return DeerFlowError(.badRequest, "the request body must be a JSON object: \(shape)")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "runs" }) {
            return DeerFlowError(.badRequest, "unknown field '\(unknown)' in the request body; the only field is 'runs'")
        }
        guard case .array(let entries)? = object["runs"] else {
            return DeerFlowError(.badRequest, "'runs' must be a list of 1 to 1000 objects like {\"params\": {...}}, got \(object["runs"]?.typeName ?? "nothing")")
        }
        for (index, entry) in entries.enumerated() {
            if let problem = triggerEntry(entry, place: "runs[\(index)]", field: "runs[\(index)].") { return problem }
        }
        return nil
    }

    /// Why a retry body is not `{"tasks": ["id", ...]}`.
    static func retryBody(_ body: ArraySlice<UInt8>) -> DeerFlowError? {
        guard case .object(let object)? = try? JSONValue(parsing: String(decoding: body, as: UTF8.self)) else {
            return DeerFlowError(.badRequest, "the request body must be a JSON object: {\"tasks\": [\"task-id\", ...]}, or no body to retry every unsuccessful task")
        }
        if let unknown = object.keys.sorted().first(where: { $0 != "tasks" }) {
            return DeerFlowError(.badRequest, "unknown field '\(unknown)' in the request body; the only field is 'tasks'")
        }
        if let given = object["tasks"] {
            guard case .array(let items) = given, items.allSatisfy({ $0.stringValue != nil }) else {
                return DeerFlowError(.badRequest, "'tasks' must be a list of task ids, got \(given.typeName)")
            }
        }
        return nil
    }

    private static func isObject(_ value: JSONValue) -> Bool {
        if case .object = value { return true }
        return false
    }

    /// The query's names and percent-decoded values (the first of repeated names).
    static func queryItems(_ path: String) -> [String: String] {
        guard let question = path.firstIndex(of: "?") else { return [:] }
        var items: [String: String] = [:]
        for item in path[path.index(after: question)...].split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = RequestShapeMiddleware.percentDecoded(String(parts[0])) ?? String(parts[0])
            let value = parts.count > 1 ? (RequestShapeMiddleware.percentDecoded(String(parts[1])) ?? String(parts[1])) : ""
            if items[name] == nil { items[name] = value }
        }
        return items
    }
}

/// The API's messages for query values it refuses, shared by the handlers (values that decode
/// but are out of range) and ``RequestDiagnosis`` (values that do not decode).
enum Messages {
    static func unknownStatus(_ text: String) -> DeerFlowError {
        DeerFlowError(.badRequest, "unknown status '\(text)'; use one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
    }

    static func limit(_ text: String) -> DeerFlowError {
        DeerFlowError(.badRequest, "limit must be an integer from 1 to 1000, got '\(text)'")
    }

    static func attempt(_ text: String) -> DeerFlowError {
        DeerFlowError(.badRequest, "attempt must be a positive integer, got '\(text)'")
    }
}
