import Foundation
public import DeerFlowTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback OTLP/HTTP trace receiver for end-to-end tracing tests: `scripts/otlp_receiver.py`
/// run with the project's Python venv, on a free port, writing every span it receives to a JSON
/// lines file in a temporary directory. It accepts protobuf and JSON export requests, gzip or not,
/// and writes the spans of a request before answering it, so once an exporter has its 200 the
/// spans are visible to `spans()`.
///
///     let receiver = try await OTLPReceiver()
///     defer { receiver.stop() }
///     // point the exporter at receiver.endpoint (OTEL_EXPORTER_OTLP_ENDPOINT=receiver.baseURL) …
///     let spans = try await receiver.waitForSpans(count: 3, timeout: .seconds(30))
///
/// The venv is `DEERFLOW_PYTHON` (a python executable), else `<repo>/.build/python-venv/bin/python`,
/// which `scripts/test` creates through `scripts/ensure-python-venv`.
public final class OTLPReceiver: Sendable {
    /// The port the receiver listens on (127.0.0.1).
    public var port: Int { script.port }
    /// Where its files are: `spans.jsonl`, `requests.jsonl`, `stdout.txt`, `stderr.txt`.
    public var directory: TemporaryDirectory { script.directory }
    private let script: LoopbackScript

    /// Starts the receiver. `failFirst`: answer the first N export requests with 503 (to test the
    /// exporter's retries and drops); `delay`: seconds to sleep before answering each request (a
    /// slow collector).
    public init(failFirst: Int = 0, delay: Double = 0, startupTimeout: Duration = .seconds(30)) async throws {
        script = try await LoopbackScript(name: "OTLP receiver", script: "scripts/otlp_receiver.py", startupTimeout: startupTimeout) { directory in
            [
                "--output", directory.file("spans.jsonl"),
                "--requests", directory.file("requests.jsonl"),
                "--host", "127.0.0.1", "--port", "0",
                "--fail-first", String(failFirst),
                "--delay", String(delay),
            ]
        }
    }

    // MARK: Addresses

    /// The traces endpoint, `http://127.0.0.1:PORT/v1/traces` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    public var endpoint: String { "\(baseURL)/v1/traces" }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`, to which exporters append `/v1/traces`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public var pid: Int32 { script.pid }
    public var isRunning: Bool { script.isRunning }

    /// What the receiver wrote to stderr (decode errors, tracebacks).
    public var log: String { script.log }

    // MARK: Reading

    /// Every span received so far, in the order received.
    public func spans() throws -> [ReceivedSpan] {
        try LoopbackScript.decodeLines(ReceivedSpan.self, path: directory.file("spans.jsonl"))
    }

    /// Every export request so far (including those answered 503 by `failFirst`, and bad ones).
    public func requests() throws -> [ReceivedRequest] {
        try LoopbackScript.decodeLines(ReceivedRequest.self, path: directory.file("requests.jsonl"))
    }

    /// Waits until at least `count` spans arrived; returns all spans received.
    public func waitForSpans(count: Int, timeout: Duration = .seconds(30)) async throws -> [ReceivedSpan] {
        try await waitForSpans(timeout: timeout, description: "\(count) spans") { $0.count >= count }
    }

    /// Waits until the spans received satisfy `condition`; returns all spans received.
    public func waitForSpans(
        timeout: Duration = .seconds(30), description: String = "the expected spans",
        until condition: ([ReceivedSpan]) throws -> Bool
    ) async throws -> [ReceivedSpan] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let received = try spans()
            if try condition(received) { return received }
            guard ContinuousClock.now < deadline else {
                throw ProcessFailure("timed out after \(timeout) waiting for \(description); \(summary(received))")
            }
            if !script.isRunning {
                throw ProcessFailure("the OTLP receiver exited (\(script.terminationStatus)) while waiting for \(description); \(summary(received))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the first span matching `predicate` and returns it.
    public func waitFor(
        timeout: Duration = .seconds(30), description: String = "a matching span",
        where predicate: (ReceivedSpan) throws -> Bool
    ) async throws -> ReceivedSpan {
        var match: ReceivedSpan?
        _ = try await waitForSpans(timeout: timeout, description: description) { spans in
            match = try spans.first(where: predicate)
            return match != nil
        }
        guard let match else { throw ProcessFailure("no span matched") }
        return match
    }

    /// Waits for a span named `name`.
    public func waitFor(name: String, timeout: Duration = .seconds(30)) async throws -> ReceivedSpan {
        try await waitFor(timeout: timeout, description: "a span named \(name)") { $0.name == name }
    }

    /// Stops the receiver (SIGTERM, then SIGKILL after 5 s) and waits for it. Its files stay
    /// readable until the receiver is released. Idempotent.
    public func stop() { script.stop() }

    private func summary(_ received: [ReceivedSpan]) -> String {
        let names = received.map { "\($0.name) (\($0.spanID) parent \($0.parentSpanID.isEmpty ? "-" : $0.parentSpanID))" }
        let statuses = ((try? requests()) ?? []).map { String($0.status) }
        var text = "received \(received.count) spans: \(names.joined(separator: ", ")); "
        text += "request statuses: [\(statuses.joined(separator: ", "))]"
        let log = self.log
        if !log.isEmpty { text += "\nreceiver stderr:\n\(log)" }
        return text
    }
}

/// One span as the OTLP receiver decoded it. IDs are lower-case hex; `parentSpanID` is "" for a root.
public struct ReceivedSpan: Sendable, Hashable, Decodable, CustomStringConvertible {
    public var traceID: String
    public var spanID: String
    public var parentSpanID: String
    public var traceState: String
    public var name: String
    /// The OTLP enum name: `SPAN_KIND_INTERNAL`, `SPAN_KIND_SERVER`, `SPAN_KIND_CLIENT`, `SPAN_KIND_PRODUCER`, `SPAN_KIND_CONSUMER`.
    public var kind: String
    public var startTimeUnixNano: UInt64
    public var endTimeUnixNano: UInt64
    /// `STATUS_CODE_UNSET`, `STATUS_CODE_OK` or `STATUS_CODE_ERROR`.
    public var statusCode: String
    public var statusMessage: String
    public var attributes: [String: AttributeValue]
    public var events: [Event]
    public var links: [Link]
    /// The resource's attributes (`service.name`, …).
    public var resource: [String: AttributeValue]
    /// The instrumentation scope's name.
    public var scope: String

    public struct Event: Sendable, Hashable, Decodable {
        public var name: String
        public var timeUnixNano: UInt64
        public var attributes: [String: AttributeValue]

        enum CodingKeys: String, CodingKey {
            case name, attributes
            case timeUnixNano = "time_unix_nano"
        }
    }

    public struct Link: Sendable, Hashable, Decodable {
        public var traceID: String
        public var spanID: String
        public var traceState: String
        public var attributes: [String: AttributeValue]

        enum CodingKeys: String, CodingKey {
            case attributes
            case traceID = "trace_id", spanID = "span_id", traceState = "trace_state"
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, attributes, events, links, resource, scope
        case traceID = "trace_id", spanID = "span_id", parentSpanID = "parent_span_id", traceState = "trace_state"
        case startTimeUnixNano = "start_time_unix_nano", endTimeUnixNano = "end_time_unix_nano"
        case statusCode = "status_code", statusMessage = "status_message"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        traceID = try container.decode(String.self, forKey: .traceID)
        spanID = try container.decode(String.self, forKey: .spanID)
        parentSpanID = try container.decodeIfPresent(String.self, forKey: .parentSpanID) ?? ""
        traceState = try container.decodeIfPresent(String.self, forKey: .traceState) ?? ""
        name = try container.decode(String.self, forKey: .name)
        kind = try container.decode(String.self, forKey: .kind)
        startTimeUnixNano = try container.decode(UInt64.self, forKey: .startTimeUnixNano)
        endTimeUnixNano = try container.decode(UInt64.self, forKey: .endTimeUnixNano)
        statusCode = try container.decode(String.self, forKey: .statusCode)
        statusMessage = try container.decodeIfPresent(String.self, forKey: .statusMessage) ?? ""
        attributes = try container.decodeIfPresent([String: AttributeValue].self, forKey: .attributes) ?? [:]
        events = try container.decodeIfPresent([Event].self, forKey: .events) ?? []
        links = try container.decodeIfPresent([Link].self, forKey: .links) ?? []
        resource = try container.decodeIfPresent([String: AttributeValue].self, forKey: .resource) ?? [:]
        scope = try container.decodeIfPresent(String.self, forKey: .scope) ?? ""
    }

    public var isRoot: Bool { parentSpanID.isEmpty }
    public var isError: Bool { statusCode == "STATUS_CODE_ERROR" }
    /// End minus start.
    public var duration: Duration { .nanoseconds(Int64(endTimeUnixNano) - Int64(startTimeUnixNano)) }
    /// The first event named `name`.
    public func event(_ name: String) -> Event? { events.first { $0.name == name } }

    public var description: String {
        "\(name) [\(kind)] trace \(traceID) span \(spanID) parent \(parentSpanID.isEmpty ? "-" : parentSpanID) \(statusCode)"
    }

    /// An attribute value as OTLP's `AnyValue` carries it. JSON cannot tell 2.0 from 2, so a
    /// double attribute with an integral value decodes as `intValue`; `double` reads both.
    public enum AttributeValue: Sendable, Hashable, Decodable, CustomStringConvertible,
        ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
        ExpressibleByArrayLiteral
    {
        case stringValue(String)
        case intValue(Int64)
        case doubleValue(Double)
        case boolValue(Bool)
        case arrayValue([AttributeValue])
        /// A key-value list (`kvlistValue`).
        case mapValue([String: AttributeValue])
        /// An empty `AnyValue`.
        case null

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let value = try? container.decode(Bool.self) {
                self = .boolValue(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .intValue(value)
            } else if let value = try? container.decode(Double.self) {
                self = .doubleValue(value)
            } else if let value = try? container.decode(String.self) {
                self = .stringValue(value)
            } else if let value = try? container.decode([AttributeValue].self) {
                self = .arrayValue(value)
            } else {
                self = .mapValue(try container.decode([String: AttributeValue].self))
            }
        }

        public init(stringLiteral value: String) { self = .stringValue(value) }
        public init(integerLiteral value: Int64) { self = .intValue(value) }
        public init(floatLiteral value: Double) { self = .doubleValue(value) }
        public init(booleanLiteral value: Bool) { self = .boolValue(value) }
        public init(arrayLiteral elements: AttributeValue...) { self = .arrayValue(elements) }

        public var string: String? {
            if case .stringValue(let value) = self { return value }
            return nil
        }

        public var int: Int? {
            if case .intValue(let value) = self { return Int(exactly: value) }
            return nil
        }

        /// A double, or an int as a double.
        public var double: Double? {
            switch self {
            case .doubleValue(let value): value
            case .intValue(let value): Double(value)
            default: nil
            }
        }

        public var bool: Bool? {
            if case .boolValue(let value) = self { return value }
            return nil
        }

        public var array: [AttributeValue]? {
            if case .arrayValue(let value) = self { return value }
            return nil
        }

        public var map: [String: AttributeValue]? {
            if case .mapValue(let value) = self { return value }
            return nil
        }

        public var description: String {
            switch self {
            case .stringValue(let value): value.debugDescription
            case .intValue(let value): String(value)
            case .doubleValue(let value): String(value)
            case .boolValue(let value): String(value)
            case .arrayValue(let values): "[" + values.map(\.description).joined(separator: ", ") + "]"
            case .mapValue(let values):
                "[" + values.sorted { $0.key < $1.key }.map { "\($0.key.debugDescription): \($0.value)" }.joined(separator: ", ") + "]"
            case .null: "null"
            }
        }
    }
}

/// One export request as the OTLP receiver saw it.
public struct ReceivedRequest: Sendable, Hashable, Decodable {
    /// The status it answered: 200, 503 (`failFirst`), 400 (undecodable), 404, 415.
    public var status: Int
    public var path: String
    public var contentType: String
    public var contentEncoding: String
    /// How many spans the request carried (0 unless answered 200).
    public var spans: Int
    /// The request's headers, names lower-cased.
    public var headers: [String: String]

    enum CodingKeys: String, CodingKey {
        case status, path, spans, headers
        case contentType = "content_type", contentEncoding = "content_encoding"
    }
}
