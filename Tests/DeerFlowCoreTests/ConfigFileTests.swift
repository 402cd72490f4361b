import Foundation
import Testing
@testable import DeerFlowCore

@Suite("metrics.yaml and deerflow.yaml")
struct ConfigFileTests {
    static let chapter = """
        # config/metrics.yaml
        metrics:
          enabled: true
          port: 9090
          path: /metrics

          prometheus:
            scrape_interval: 15s
            labels:
              environment: production
              service: deerflow

          custom_metrics:
            - name: data_processed_bytes
              type: counter
              description: "Total bytes processed"
              labels: [workflow, task]

            - name: processing_latency
              type: histogram
              description: "Processing latency distribution"
              buckets: [0.1, 0.5, 1, 5, 10, 30, 60]
        """

    @Test("the chapter's metrics.yaml loads as is")
    func chapterFile() throws {
        let config = try MetricsConfigFile.parse(yaml: Self.chapter, file: "metrics.yaml", environment: [:])
        #expect(config.enabled)
        #expect(config.port == 9090)
        #expect(config.path == "/metrics")
        #expect(config.scrapeInterval == .seconds(15))
        #expect(config.labels.map { "\($0.0)=\($0.1)" } == ["environment=production", "service=deerflow"])
        #expect(config.customMetrics.map(\.name) == ["data_processed_bytes", "processing_latency"])
        #expect(config.customMetrics[0].kind == .counter)
        #expect(config.customMetrics[0].labels == ["workflow", "task"])
        #expect(config.customMetrics[1].buckets == [0.1, 0.5, 1, 5, 10, 30, 60])
        #expect(config.customMetrics[1].location == "metrics.yaml:19")
    }

    static func error(_ yaml: String, environment: [String: String] = [:]) -> FileError? {
        do {
            _ = try MetricsConfigFile.parse(yaml: yaml, file: "metrics.yaml", environment: environment)
            return nil
        } catch {
            return error.errors.first
        }
    }

    @Test("a wrong type names file, line and key")
    func wrongType() {
        let error = Self.error("metrics:\n  enabled: yes please\n")
        #expect(error?.line == 2)
        #expect(error?.key == "metrics.enabled")
        #expect(error?.description.hasPrefix("metrics.yaml:2:") == true)
    }

    @Test("an unknown metric type is an error")
    func unknownType() {
        let error = Self.error("metrics:\n  custom_metrics:\n    - name: x\n      type: summary\n")
        #expect(error?.line == 4)
        #expect(error?.message.contains("summary") == true)
    }

    @Test("buckets that do not increase are an error")
    func buckets() {
        let error = Self.error("metrics:\n  custom_metrics:\n    - name: x\n      type: histogram\n      buckets: [1, 5, 5]\n")
        #expect(error?.line == 5)
        #expect(error?.message == "buckets must be strictly increasing, but 5.0 follows 5.0")
    }

    @Test("a duplicate name is an error naming the first declaration")
    func duplicate() {
        let error = Self.error("metrics:\n  custom_metrics:\n    - name: x_total\n      type: counter\n    - name: x\n      type: counter\n")
        #expect(error?.line == 5)
        #expect(error?.message == "duplicate metric 'x' (first declared at line 3)")
    }

    @Test("a name that is not a valid Prometheus name is an error")
    func invalidName() {
        let error = Self.error("metrics:\n  custom_metrics:\n    - name: 9lives\n      type: gauge\n")
        #expect(error?.line == 3)
        #expect(error?.message.contains("not a valid Prometheus metric name") == true)
    }

    @Test("unknown keys, bad durations and a missing ${VAR} are errors")
    func otherErrors() {
        #expect(Self.error("metrics:\n  portt: 1\n")?.message == "unknown key 'portt' (did you mean 'port'?)")
        #expect(Self.error("metrics:\n  prometheus:\n    scrape_interval: 15x\n")?.line == 3)
        let missing = Self.error("metrics:\n  prometheus:\n    labels: {env: \"${DEPLOY_ENV}\"}\n")
        #expect(missing?.message.contains("DEPLOY_ENV") == true)
        let substituted = try? MetricsConfigFile.parse(yaml: "metrics:\n  prometheus:\n    labels: {env: \"${DEPLOY_ENV}\"}\n", file: "m", environment: ["DEPLOY_ENV": "staging"])
        #expect(substituted?.labels.first?.1 == "staging")
        #expect(Self.error("metrics:\n  prometheus:\n    labels: {le: x}\n")?.line == 3)
        #expect(Self.error("metrics:\n  port: 70000\n")?.message == "must be a port number from 0 to 65535, got 70000")
    }

    @Test("deerflow.yaml sets API, database, worker and scheduler settings")
    func serverFile() throws {
        let config = try ServerConfigFile.parse(yaml: """
            api:
              host: 0.0.0.0
              port: 8081
              tokens: ["${TOKEN}", second]
            database:
              url: sqlite:///var/lib/deerflow/db.sqlite
            worker:
              slots: 8
              queues: [default, reports]
              lease: 45s
              drain_timeout: 1m
            scheduler:
              worker_timeout: 2m
            """, file: "deerflow.yaml", environment: ["TOKEN": "t0ken"])
        #expect(config.apiHost == "0.0.0.0")
        #expect(config.apiPort == 8081)
        #expect(config.apiTokens == ["t0ken", "second"])
        #expect(config.databaseURL == "sqlite:///var/lib/deerflow/db.sqlite")
        #expect(config.workerSlots == 8)
        #expect(config.workerQueues == ["default", "reports"])
        #expect(config.lease == .seconds(45))
        #expect(config.drainTimeout == .seconds(60))
        #expect(config.workerTimeout == .seconds(120))
        do {
            _ = try ServerConfigFile.parse(yaml: "worker:\n  slots: 0\n", file: "deerflow.yaml", environment: [:])
            Issue.record("slots 0 accepted")
        } catch {
            #expect(error.description == "deerflow.yaml:2:10: worker.slots: must be between 1 and 10000, got 0")
        }
    }

    @Test("OTLP http/json is refused, naming why (base64 ids where the spec wants hex) and the protocol that works")
    func httpJSONRefused() throws {
        do {
            _ = try TracingConfigFile.parse(yaml: "tracing:\n  protocol: http/json\n", file: "tracing.yaml", environment: [:])
            Issue.record("http/json accepted")
        } catch {
            #expect(error.description.hasPrefix("tracing.yaml:2:13: tracing.protocol: OTLP http/json is not supported"), "\(error)")
            #expect(error.description.contains("base64") && error.description.contains("hex") && error.description.contains("use protocol http/protobuf"), "\(error)")
        }
        let problems = TracingConfigFile.environmentProblems(["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"])
        #expect(problems.count == 1 && problems[0].hasPrefix("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json: OTLP http/json is not supported"), "\(problems)")
        #expect(try TracingConfigFile.parse(yaml: "tracing:\n  protocol: http/protobuf\n", file: "tracing.yaml", environment: [:]).protocolName == "http/protobuf")
    }

    @Test("an endpoint on port 4317 (OTLP/gRPC) loads with a warning suggesting port 4318")
    func grpcPortWarning() throws {
        let grpc = try TracingConfigFile.parse(yaml: "tracing:\n  endpoint: http://collector:4317\n", file: "tracing.yaml", environment: [:])
        #expect(grpc.warnings.count == 1)
        #expect(grpc.warnings.first?.contains("endpoint http://collector:4317 is on port 4317, where collectors serve OTLP over gRPC") == true, "\(grpc.warnings)")
        #expect(grpc.warnings.first?.contains("(http://collector:4318/v1/traces)") == true, "\(grpc.warnings)")
        #expect(TracingConfigFile.endpointWarning("https://collector:4317/v1/traces")?.contains("(https://collector:4318/v1/traces)") == true)
        let http = try TracingConfigFile.parse(yaml: "tracing:\n  endpoint: http://collector:4318/v1/traces\n", file: "tracing.yaml", environment: [:])
        #expect(http.warnings.isEmpty)
    }

    @Test("deerflow.yaml's tracing: section reads and checks the keys of tracing.yaml")
    func serverFileTracingSection() throws {
        #expect(try ServerConfigFile.parse(yaml: "worker:\n  slots: 2\n", file: "deerflow.yaml", environment: [:]).tracing == nil)
        let config = try ServerConfigFile.parse(yaml: """
            worker:
              slots: 2
            tracing:
              endpoint: http://collector:4318/v1/traces
              sampler: ratio
              ratio: 0.25
              headers: {authorization: "Bearer ${TOKEN}"}
            """, file: "deerflow.yaml", environment: ["TOKEN": "t0ken"])
        let tracing = try #require(config.tracing)
        #expect(tracing.enabled)
        #expect(tracing.endpoint == "http://collector:4318/v1/traces")
        #expect(tracing.sampler == .ratio && tracing.ratio == 0.25)
        #expect(tracing.headers == ["authorization": "Bearer t0ken"])
        #expect(config.workerSlots == 2)
        do {
            _ = try ServerConfigFile.parse(yaml: "tracing:\n  protocol: grpc\n  colour: blue\n", file: "deerflow.yaml", environment: [:])
            Issue.record("a bad tracing section accepted")
        } catch {
            #expect(error.description.contains("deerflow.yaml:2:13: tracing.protocol: OTLP over gRPC is not supported"), "\(error)")
            #expect(error.description.contains("deerflow.yaml:3:3: tracing.colour: unknown key 'colour'"), "\(error)")
        }
    }
}

@Suite("Secret files")
struct SecretFileTests {
    @Test("a secret or token file loses the one newline it ends with, \\n or \\r\\n, and nothing else")
    func finalNewline() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, text, expected) in [("lf", "s3cret\n", "s3cret"), ("crlf", "s3cret\r\n", "s3cret"), ("none", "s3cret", "s3cret"), ("two", "s3cret\n\n", "s3cret\n")] {
            let path = directory.appendingPathComponent(name).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let secret = SecretSource(.file(path), location: "deerflow.yaml:2")
            #expect(try secret.read(name: "S", environment: [:]) == expected, "\(name)")
            let config = try ServerConfigFile.parse(yaml: "api:\n  tokens:\n    - {token_file: \(path), role: viewer}\n", file: "deerflow.yaml", environment: [:])
            #expect(config.apiTokens == [APIToken(expected, role: .viewer)], "\(name)")
        }
    }
}
