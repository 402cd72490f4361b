import AsyncHTTPClient
public import DeerFlow
import DeerFlowAlerting
public import DeerFlowServer
public import DeerFlowCore
import Foundation
public import DeerFlowTesting
public import Logging
import NIOCore
import NIOHTTP1

/// A DeerFlow server (API, scheduler, workers, metrics) running in this process on free ports
/// with a fresh SQLite file, for end-to-end tests.
public struct TestServer: Sendable {
    public let runtime: DeerFlowRuntime
    public let apiPort: Int
    public let metricsPort: Int
    public let directory: TemporaryDirectory

    public var engine: DeerFlowEngine { runtime.engine }
    public var apiURL: String { "http://127.0.0.1:\(apiPort)" }
    public var metricsURL: String { "http://127.0.0.1:\(metricsPort)/metrics" }

    /// An HTTP answer.
    public struct Answer: Sendable {
        public let status: Int
        public let contentType: String?
        public let headers: [(String, String)]
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        public var json: JSONValue? { try? JSONValue(parsing: text) }

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Sends a request to the API.
    public func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
        try await Self.send(method, apiURL + path, body: body, headers: headers)
    }

    /// Scrapes `/metrics` and returns every sample keyed as `name{label="value",...}` (labels sorted).
    public func metrics() async throws -> [String: Double] {
        let answer = try await Self.send("GET", metricsURL, body: nil, headers: [:])
        return try MetricSamples.parse(answer.text)
    }

    /// The raw `/metrics` text.
    public func metricsText() async throws -> String {
        try await Self.send("GET", metricsURL, body: nil, headers: [:]).text
    }

    /// GETs a streamed answer, handing each chunk to `chunk` as it arrives, until the server ends it.
    public static func stream(_ url: String, _ chunk: @Sendable (String) -> Void) async throws {
        let request = HTTPClientRequest(url: url)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        for try await buffer in response.body { chunk(String(buffer: buffer)) }
    }

    /// A client that answers a redirect itself instead of following it (a login's 303 and its
    /// cookies), and leaves a compressed body as sent (the shared client inflates gzip).
    static let unredirected: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.decompression = .disabled
        return HTTPClient(configuration: configuration)
    }()

    public static func send(_ method: String, _ url: String, body: String?, headers: [String: String], followRedirects: Bool = true) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await (followRedirects ? HTTPClient.shared : unredirected).execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(
            status: Int(response.status.code), contentType: response.headers.first(name: "content-type"),
            headers: response.headers.map { ($0.name, $0.value) }, body: Array(buffer.readableBytesView))
    }
}

/// Starts a ``TestServer``, runs `body`, then shuts it down gracefully and removes its files.
///
/// - Parameters:
///   - workflows: Swift workflows to register.
///   - yamlWorkflows: YAML workflow files by file name, written to a `workflows` directory.
///   - configFiles: config files by name (`deerflow.yaml`, `metrics.yaml`), written to a `config` directory.
///   - configure: changes to the runtime options (ports are 0, the database a temp file).
public func withTestServer<T: Sendable>(
    workflows: [Workflow] = [],
    yamlWorkflows: [String: String] = [:],
    configFiles: [String: String] = [:],
    logger: Logger = Logger(label: "deerflow.test", factory: { _ in SwiftLogNoOpLogHandler() }),
    configure: (inout RuntimeOptions) -> Void = { _ in },
    _ body: @Sendable (TestServer) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    var options = RuntimeOptions()
    if !configFiles.isEmpty {
        for (name, text) in configFiles { try directory.write("config/\(name)", text) }
        options.configDirectory = directory.file("config")
        try options.applyConfigFiles(environment: ProcessInfo.processInfo.environment)
    }
    if !yamlWorkflows.isEmpty {
        for (name, text) in yamlWorkflows { try directory.write("workflows/\(name)", text) }
        options.workflowsDirectory = directory.file("workflows")
    }
    options.databaseURL = "sqlite://" + directory.file("deerflow.sqlite")
    options.api.port = 0
    options.metricsPort = 0
    options.worker = .testing
    configure(&options)
    let runtime = try await DeerFlowRuntime.make(options: options, workflows: workflows, logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await runtime.run()
            return nil
        }
        let apiPort = options.runAPI ? await runtime.ports.api() : 0
        let metricsPort = options.metrics.enabled ? await runtime.ports.metrics() : 0
        let server = TestServer(runtime: runtime, apiPort: apiPort, metricsPort: metricsPort, directory: directory)
        let result: T
        do {
            result = try await body(server)
        } catch {
            await runtime.shutdown()
            while let _ = try? await group.next() {}
            throw error
        }
        await runtime.shutdown()
        while let _ = try await group.next() {}
        return result
    }
}

/// Prometheus samples keyed `name{label="value",...}` with labels sorted, for exact assertions.
public enum MetricSamples {
    public static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        for sample in try ExpositionParser.parse(text) {
            samples[key(sample.name, sample.labels)] = sample.value
        }
        return samples
    }

    /// The key of a sample: `deerflow_tasks_total{status="success",type="shell"}`.
    public static func key(_ name: String, _ labels: [String: String]) -> String {
        guard !labels.isEmpty else { return name }
        return name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",") + "}"
    }
}
