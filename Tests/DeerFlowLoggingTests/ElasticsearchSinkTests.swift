import AsyncHTTPClient
import DeerFlowCore
import DeerFlowTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

@testable import DeerFlowLogging

@Suite("Elasticsearch sink")
struct ElasticsearchSinkTests {
    /// Backoff for tests that go through many failures.
    static let fastBackoff = Backoff(initial: .milliseconds(10), maximum: .milliseconds(100))

    func configuration(
        hosts: [URL], index: String = "deerflow-logs-{date}", batchSize: Int = 500, bufferSize: Int = 10_000,
        flushInterval: Duration = .seconds(3600)
    ) -> LoggingConfigFile.Elasticsearch {
        var configuration = LoggingConfigFile.Elasticsearch(hosts: hosts, index: index)
        configuration.batchSize = batchSize
        configuration.bufferSize = bufferSize
        configuration.flushInterval = flushInterval
        return configuration
    }

    /// The shutdown deadline is a minute unless a test is about it: with every suite running at
    /// once on two cores, the tasks of a test can wait seconds for a thread (some tests wait for
    /// processes to exit on theirs), and a 5 s deadline then dropped the last lines of a flush that
    /// was on its way. The request timeout stays 5 s: a request to a stopped Elasticsearch must
    /// give up in time for the sink to find it back.
    func makeSink(
        _ configuration: LoggingConfigFile.Elasticsearch, client: HTTPClient, recorder: Recorder, backoff: Backoff = fastBackoff,
        requestTimeout: Duration = .seconds(5), shutdownDeadline: Duration = .seconds(60)
    ) -> ElasticsearchSink {
        ElasticsearchSink(
            configuration: configuration, httpClient: client, requestTimeout: requestTimeout, shutdownDeadline: shutdownDeadline,
            backoff: backoff, onDropped: { recorder.dropped($0, $1) }, report: { recorder.report($0) })
    }

    /// Writes `line-<n>` for every `n`, as JSON lines; returns the lines.
    @discardableResult
    func write(_ sink: ElasticsearchSink, _ numbers: Range<Int>, at time: String = "2024-06-01T12:00:00.000Z") -> [String] {
        let entries = records(numbers, at: time)
        for (line, entry) in entries { sink.write(line, record: entry) }
        return entries.map(\.line)
    }

    /// Records `line-<n>` and their JSON lines.
    func records(_ numbers: Range<Int>, at time: String = "2024-06-01T12:00:00.000Z") -> [(line: String, record: LogRecord)] {
        let date = Timestamp.parse(time)!
        return numbers.map { number in
            let entry = LogRecord(timestamp: date, level: .info, label: "deerflow.test", message: "line-\(number)")
            return (LogLineFormatter.json(entry), entry)
        }
    }

    func withClient<T>(_ body: (HTTPClient) async throws -> T) async throws -> T {
        try await HTTPClient.withHTTPClient(
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: ElasticsearchSink.httpClientConfiguration, body)
    }

    /// Runs the sink in a service group while `body` runs, then shuts the group down gracefully
    /// and waits for the sink's final flush.
    func running<T>(_ sink: ElasticsearchSink, _ body: () async throws -> T) async throws -> T {
        let group = ServiceGroup(services: [sink], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let value = try await body()
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return value
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// Polls `condition` until it holds. The timeout only bounds a failing test: on a machine busy
    /// with the other suites a batch has taken more than 10 s to reach the loopback server.
    func eventually(timeout: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return condition()
    }

    func messages(_ recorder: Recorder, containing text: String) -> [String] {
        recorder.messages.filter { $0.contains(text) }
    }

    /// Every request is a valid `_bulk` request: method, path, content type, body.
    func expectWireFormat(_ requests: [ElasticsearchTestServer.Request], authorization: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        for request in requests {
            #expect(request.method == "POST", sourceLocation: sourceLocation)
            #expect(request.uri == "/_bulk", sourceLocation: sourceLocation)
            #expect(request.header("Content-Type") == "application/x-ndjson", sourceLocation: sourceLocation)
            #expect(request.header("Authorization") == authorization, sourceLocation: sourceLocation)
            #expect(request.body.hasSuffix("\n"), sourceLocation: sourceLocation)
            #expect(throws: Never.self, sourceLocation: sourceLocation) { try request.pairs.get() }
        }
    }

    // MARK: Wire format

    @Test("POST /_bulk: NDJSON action and document lines, the index of each record's UTC day, a trailing newline, basic auth; JSON lines whatever the other sinks' format")
    func wireFormat() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            var config = configuration(hosts: [server.url], flushInterval: .milliseconds(50))
            config.username = "deerflow"
            config.password = "s3cret:with colon"
            let recorder = Recorder()
            let sink = makeSink(config, client: client, recorder: recorder)
            let console = MemorySink(name: "console", format: .text)
            let clock = ManualClock("2024-06-01T23:59:59.900Z")
            let backend = LoggingBackend(level: .info, sinks: [console, sink], clock: { clock.now })
            let logger = Logger(label: "deerflow.test", factory: { backend.makeHandler(label: $0) })
            try await running(sink) {
                logger.info("before midnight", metadata: ["run_id": "r1", "nested": ["a": "b", "list": ["1", "2"]]])
                clock.set("2024-06-02T00:00:00.100Z")
                logger.warning("after \"midnight\"\nsecond line\u{2028}")
                #expect(await eventually { server.acceptedDocuments.count == 2 })
            }
            let requests = server.requests
            let basic = "Basic " + Data("deerflow:s3cret:with colon".utf8).base64EncodedString()
            expectWireFormat(requests, authorization: basic)
            let pairs = requests.flatMap(\.validPairs)
            #expect(pairs.map(\.index) == ["deerflow-logs-2024.06.01", "deerflow-logs-2024.06.02"])
            #expect(requests.allSatisfy { $0.body.hasPrefix(#"{"index":{"_index":"deerflow-logs-2024.06."#) })
            let documents = try pairs.map { try parseJSON($0.document) }
            #expect(documents[0]["message"] as? String == "before midnight")
            #expect(documents[0]["timestamp"] as? String == "2024-06-01T23:59:59.900Z")
            #expect(documents[0]["level"] as? String == "info")
            #expect(documents[0]["run_id"] as? String == "r1")
            #expect((documents[0]["nested"] as? [String: Any])?["list"] as? [String] == ["1", "2"])
            #expect(documents[1]["message"] as? String == "after \"midnight\"\nsecond line\u{2028}")
            #expect(documents[1]["timestamp"] as? String == "2024-06-02T00:00:00.100Z")
            // The other sink took text lines; Elasticsearch got JSON.
            #expect(console.lines.first?.hasPrefix("2024-06-01T23:59:59.900Z INFO [deerflow.test] before midnight") == true)
            #expect(sink.format == .json)
            #expect(sink.shippedLines == 2)
            #expect(sink.droppedLines == 0)
            #expect(recorder.messages.isEmpty)
        }
        await server.stop()
    }

    @Test("logging.yaml's elasticsearch handler, end to end: redacted JSON records, credentials from the environment")
    func fromConfigFile() async throws {
        let server = try await ElasticsearchTestServer.start()
        let yaml = """
            logging:
              level: INFO
              format: text
              handlers:
                elasticsearch:
                  hosts: [\(server.url.absoluteString)/]
                  index: deerflow-logs-{date}
                  batch_size: 2
                  flush_interval: 1h
                  username: deerflow
                  password: ${ES_PASSWORD}
              filters:
                - name: sensitive_data
                  action: redact
                  patterns: ["password"]
            """
        let config = try LoggingConfigFile.parse(yaml: yaml, file: "logging.yaml", environment: ["ES_PASSWORD": "pw"])
        let settings = try #require(config.elasticsearch)
        try await withClient { client in
            let recorder = Recorder()
            let sink = ElasticsearchSink(configuration: settings, httpClient: client, onDropped: { recorder.dropped($0, $1) })
            let backend = try LoggingBackend(configuration: config, extraSinks: [sink], onDropped: { recorder.dropped($0, $1) })
            #expect(backend.sinks.count == 1)
            let logger = Logger(label: "deerflow.worker", factory: { backend.makeHandler(label: $0) })
            try await running(sink) {
                logger.info("connecting", metadata: ["password": "hunter2", "task_id": "extract"])
                logger.debug("not shipped: below the level")
                logger.error("failed", metadata: ["url": "postgres://u:secret@db/x"])
                #expect(await eventually { server.acceptedDocuments.count == 2 })
            }
            expectWireFormat(server.requests, authorization: "Basic " + Data("deerflow:pw".utf8).base64EncodedString())
            let documents = try server.acceptedDocuments.map(parseJSON)
            #expect(documents.map { $0["message"] as? String } == ["connecting", "failed"])
            #expect(documents[0]["password"] as? String == "[REDACTED]")
            #expect(documents[0]["task_id"] as? String == "extract")
            #expect((documents[1]["url"] as? String)?.contains("secret") == false)
            #expect(server.requests.first?.uri == "/_bulk")
            #expect(recorder.droppedTotal == 0)
        }
        await server.stop()
    }

    @Test("the body, byte for byte")
    func bodyBytes() {
        let entries = [
            BulkEntry(action: BulkRequest.actionLine(index: "deerflow-logs-2024.06.01"), document: #"{"message":"a"}"#),
            BulkEntry(action: BulkRequest.actionLine(index: "odd\"name\\"), document: #"{"message":"b"}"#),
        ]
        #expect(String(buffer: BulkRequest.body(entries)) == """
            {"index":{"_index":"deerflow-logs-2024.06.01"}}
            {"message":"a"}
            {"index":{"_index":"odd\\"name\\\\"}}
            {"message":"b"}

            """)
        #expect(BulkRequest.singleLine("{\"a\":\n1}\r\n") == "{\"a\": 1} ")
        #expect(BulkRequest.singleLine(#"{"a":"x\ny"}"#) == #"{"a":"x\ny"}"#)
    }

    @Test("batch_size lines go as soon as they are buffered, the rest at flush_interval or shutdown; ApiKey auth; an index without {date}")
    func batching() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            var config = configuration(hosts: [server.url], index: "app-logs", batchSize: 10, flushInterval: .seconds(3600))
            config.apiKey = "a2V5OnNlY3JldA=="
            let recorder = Recorder()
            let sink = makeSink(config, client: client, recorder: recorder)
            let lines = try await running(sink) {
                let lines = write(sink, 0..<25)
                #expect(await eventually { server.acceptedDocuments.count == 20 })
                try await Task.sleep(for: .milliseconds(200))
                #expect(server.requests.map(\.validPairs.count) == [10, 10])
                #expect(sink.bufferedLines == 5)
                return lines
            }
            // Shut down: the final flush sent the rest.
            #expect(server.requests.map(\.validPairs.count) == [10, 10, 5])
            #expect(server.acceptedDocuments == lines)
            #expect(server.accepted.allSatisfy { $0.index == "app-logs" })
            expectWireFormat(server.requests, authorization: "ApiKey a2V5OnNlY3JldA==")
            #expect(sink.shippedLines == 25)
        }
        await server.stop()
    }

    @Test("a line waits at most flush_interval")
    func flushInterval() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            let sink = makeSink(configuration(hosts: [server.url], flushInterval: .milliseconds(200)), client: client, recorder: Recorder())
            try await running(sink) {
                let first = write(sink, 0..<3)
                // Shipped while running, with the batch far from full: the interval sent it.
                #expect(await eventually { server.acceptedDocuments.count == 3 })
                #expect(server.acceptedDocuments == first)
                let second = write(sink, 3..<4)
                #expect(await eventually { server.acceptedDocuments.count == 4 })
                #expect(server.requests.map(\.documents) == [first, second])
            }
        }
        await server.stop()
    }

    // MARK: Retries

    @Test("429 and 503 retry the batch with backoff from 100 ms; errors: true retries 429/5xx items and drops the others, reporting each kind once")
    func retries() async throws {
        let server = try await ElasticsearchTestServer.start()
        server.enqueue(.status(429), .status(503), .items([201, 429, 400, 201, 503, 400]))
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 6), client: client, recorder: recorder, backoff: Backoff())
            let lines = try await running(sink) {
                let lines = write(sink, 0..<6)
                #expect(await eventually { sink.shippedLines == 4 && sink.droppedLines == 2 })
                return lines
            }
            let requests = server.requests
            expectWireFormat(requests)
            #expect(requests.map(\.documents) == [lines, lines, lines, [lines[1], lines[4]]])
            // Backoff: 100 ms doubling, each delay between half of it and all of it.
            #expect(requests[1].arrival - requests[0].arrival >= .milliseconds(50))
            #expect(requests[2].arrival - requests[1].arrival >= .milliseconds(100))
            #expect(requests[3].arrival - requests[2].arrival >= .milliseconds(200))
            // Every line that could go arrived exactly once; the two rejected ones were dropped and counted.
            #expect(server.acceptedDocuments.sorted() == [lines[0], lines[1], lines[3], lines[4]].sorted())
            #expect(Set(server.acceptedDocuments).count == server.acceptedDocuments.count)
            #expect(sink.shippedLines == 4)
            #expect(sink.droppedLines == 2)
            #expect(recorder.droppedTotal == 2)
            #expect(recorder.droppedNames == ["elasticsearch"])
            #expect(messages(recorder, containing: "rejected 2 log line(s): mapper_parsing_exception").count == 1)
            #expect(messages(recorder, containing: "mapper_parsing_exception").count == 1)
            #expect(messages(recorder, containing: "cannot ship").count == 1)
            #expect(messages(recorder, containing: "HTTP 429").count == 1)
            #expect(messages(recorder, containing: "again; 0 line(s) dropped meanwhile").count == 1)
            #expect(messages(recorder, containing: "could not take 1 log line(s) now: es_rejected_execution_exception").count == 1)
            #expect(messages(recorder, containing: "could not take 1 log line(s) now: unavailable_shards_exception").count == 1)
        }
        await server.stop()
    }

    @Test("under 429, 503 and partial failures every line arrives exactly once")
    func exactlyOnceUnderFailures() async throws {
        let server = try await ElasticsearchTestServer.start()
        for request in 0..<80 {
            switch request % 6 {
            case 1: server.enqueue(.status(503))
            case 3: server.enqueue(.items((0..<50).map { $0 % 7 == 0 ? 429 : ($0 % 11 == 0 ? 502 : 201) }))
            case 4: server.enqueue(.status(429))
            default: server.enqueue(.accept)
            }
        }
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 50, flushInterval: .milliseconds(20)), client: client, recorder: recorder)
            var lines: [String] = []
            try await running(sink) {
                for chunk in 0..<20 {
                    lines += write(sink, chunk * 50..<chunk * 50 + 50)
                    try await Task.sleep(for: .milliseconds(3))
                }
                #expect(await eventually(timeout: .seconds(20)) { sink.shippedLines == 1000 })
            }
            expectWireFormat(server.requests)
            #expect(server.requests.count > 20)
            #expect(server.acceptedDocuments.count == 1000)
            #expect(Set(server.acceptedDocuments) == Set(lines))
            #expect(sink.droppedLines == 0)
            #expect(recorder.droppedTotal == 0)
        }
        await server.stop()
    }

    @Test("a host that refuses connections: the lines go to the next host, which is kept")
    func failover() async throws {
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            let recorder = Recorder()
            let hosts = [URL(string: "http://127.0.0.1:\(refused.port)")!, server.url]
            let sink = makeSink(configuration(hosts: hosts, flushInterval: .milliseconds(20)), client: client, recorder: recorder)
            try await running(sink) {
                let first = write(sink, 0..<5)
                #expect(await eventually { server.acceptedDocuments.count == 5 })
                #expect(server.acceptedDocuments == first)
                let second = write(sink, 5..<10)
                #expect(await eventually { server.acceptedDocuments.count == 10 })
                #expect(Array(server.acceptedDocuments.suffix(5)) == second)
            }
            expectWireFormat(server.requests)
            #expect(sink.shippedLines == 10)
            #expect(sink.droppedLines == 0)
            let failures = messages(recorder, containing: "cannot ship")
            #expect(failures.count == 1)
            #expect(failures.first?.contains("127.0.0.1:\(refused.port)/_bulk") == true)
            #expect(messages(recorder, containing: "127.0.0.1:\(server.port)/_bulk again").count == 1)
        }
        await server.stop()
    }

    // MARK: Outage

    @Test("Elasticsearch stopped: logging goes on, the buffer keeps the newest buffer_size lines, the oldest are dropped and counted; shipping resumes")
    func outage() async throws {
        let server = try await ElasticsearchTestServer.start()
        let port = server.port
        try await withClient { client in
            let recorder = Recorder()
            let config = configuration(hosts: [server.url], batchSize: 5, bufferSize: 20, flushInterval: .milliseconds(20))
            let sink = makeSink(config, client: client, recorder: recorder)
            try await running(sink) {
                write(sink, 0..<5)
                #expect(await eventually { sink.shippedLines == 5 })
                await server.stop()
                let lines = write(sink, 5..<105)
                #expect(await eventually { sink.droppedLines == 80 && sink.bufferedLines == 20 })
                // The first failed shipment is reported (on a loaded machine it may take a while);
                // retried for a while after it: still one report, the counts hold.
                #expect(await eventually { !messages(recorder, containing: "cannot ship").isEmpty }, "\(recorder.messages)")
                try await Task.sleep(for: .milliseconds(300))
                #expect(sink.droppedLines == 80)
                #expect(recorder.droppedTotal == 80)
                #expect(recorder.droppedNames == ["elasticsearch"])
                #expect(messages(recorder, containing: "cannot ship").count == 1)
                #expect(messages(recorder, containing: "buffer is full").count == 1)
                // Back on the same port: the newest 20 lines arrive, in order.
                let again = try await ElasticsearchTestServer.start(port: port)
                #expect(await eventually { again.acceptedDocuments.count == 20 })
                #expect(again.acceptedDocuments == Array(lines.suffix(20)))
                expectWireFormat(again.requests)
                #expect(await eventually { messages(recorder, containing: "again; 80 line(s) dropped meanwhile").count == 1 }, "\(recorder.messages)")
                await again.stop()
            }
            #expect(sink.shippedLines == 25)
            #expect(sink.droppedLines == 80)
        }
    }

    @Test("write never waits for the network: Elasticsearch that never answers")
    func writeDoesNotBlock() async throws {
        let server = try await ElasticsearchTestServer.start(fallback: .silence)
        try await withClient { client in
            let recorder = Recorder()
            let config = configuration(hosts: [server.url], batchSize: 100, bufferSize: 1000, flushInterval: .milliseconds(10))
            // A write waiting for the network would wait for the request timeout, 30 s.
            let sink = makeSink(config, client: client, recorder: recorder, requestTimeout: .seconds(30), shutdownDeadline: .milliseconds(100))
            let entries = records(0..<10_000)
            try await running(sink) {
                let start = ContinuousClock.now
                for (line, entry) in entries { sink.write(line, record: entry) }
                // Generous for a loaded machine; a write that waited for the network would take 30 s each.
                #expect(ContinuousClock.now - start < .seconds(20))
                #expect(sink.bufferedLines == 1000)
            }
            #expect(sink.shippedLines == 0)
            #expect(sink.droppedLines == 10_000)
            #expect(recorder.droppedTotal == 10_000)
        }
        await server.stop()
    }

    @Test("without the service the buffer still holds only buffer_size lines, the newest")
    func boundedWithoutShipping() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 5, bufferSize: 10), client: client, recorder: recorder)
            let lines = write(sink, 0..<25)
            #expect(sink.droppedLines == 15)
            #expect(sink.bufferedLines == 10)
            #expect(recorder.droppedTotal == 15)
            #expect(messages(recorder, containing: "buffer is full").count == 1)
            // Returns once both batches are shipped; the deadline only bounds a machine too busy to answer.
            await sink.flush(deadline: .seconds(30))
            #expect(server.requests.map(\.documents) == [Array(lines[15..<20]), Array(lines[20..<25])])
            #expect(sink.shippedLines == 10)
            #expect(sink.bufferedLines == 0)
        }
        await server.stop()
    }

    @Test("401: the batch is dropped and counted, reported once, not retried")
    func permanentFailure() async throws {
        let server = try await ElasticsearchTestServer.start(fallback: .status(401))
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 5, flushInterval: .milliseconds(20)), client: client, recorder: recorder)
            try await running(sink) {
                write(sink, 0..<5)
                #expect(await eventually { sink.droppedLines == 5 })
                write(sink, 5..<10)
                #expect(await eventually { sink.droppedLines == 10 })
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(server.requests.count == 2)
            #expect(recorder.droppedTotal == 10)
            let reports = messages(recorder, containing: "HTTP 401")
            #expect(reports.count == 1)
            #expect(reports.first?.contains("check username and password, or api_key") == true)
        }
        await server.stop()
    }

    // MARK: Shutdown

    @Test("graceful shutdown of the service group: run() flushes what is buffered and returns")
    func gracefulShutdown() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            let sink = makeSink(configuration(hosts: [server.url], flushInterval: .seconds(3600)), client: client, recorder: Recorder())
            let group = ServiceGroup(services: [sink], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let lines = try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let lines = write(sink, 0..<7)
                try await Task.sleep(for: .milliseconds(100))
                #expect(server.requests.isEmpty)
                let start = ContinuousClock.now
                await group.triggerGracefulShutdown()
                try await tasks.next()
                // Generous for a loaded machine; the flush interval is an hour.
                #expect(ContinuousClock.now - start < .seconds(30))
                return lines
            }
            #expect(server.acceptedDocuments == lines)
            #expect(sink.shippedLines == 7)
        }
        await server.stop()
    }

    @Test("graceful shutdown lets the request in flight be answered: no line is sent twice")
    func gracefulShutdownWaitsForRequest() async throws {
        let server = try await ElasticsearchTestServer.start(fallback: .slow(milliseconds: 300))
        try await withClient { client in
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 5), client: client, recorder: Recorder())
            let lines = try await running(sink) {
                let lines = write(sink, 0..<5)
                #expect(await eventually { server.requests.count == 1 })
                return lines
            }
            #expect(server.requests.count == 1)
            #expect(server.acceptedDocuments == lines)
            #expect(sink.shippedLines == 5)
            #expect(sink.droppedLines == 0)
        }
        await server.stop()
    }

    @Test("cancelled instead of shut down gracefully, run() still flushes what is buffered")
    func cancellationFlushes() async throws {
        let server = try await ElasticsearchTestServer.start()
        try await withClient { client in
            let sink = makeSink(configuration(hosts: [server.url]), client: client, recorder: Recorder())
            let lines = await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask { await sink.run() }
                let lines = write(sink, 0..<3)
                try? await Task.sleep(for: .milliseconds(50))
                #expect(server.requests.isEmpty)
                tasks.cancelAll()
                await tasks.waitForAll()
                return lines
            }
            #expect(server.acceptedDocuments == lines)
            #expect(sink.shippedLines == 3)
        }
        await server.stop()
    }

    @Test("flush(deadline:) gives up at the deadline when Elasticsearch keeps failing, dropping and counting the rest")
    func flushDeadline() async throws {
        let server = try await ElasticsearchTestServer.start(fallback: .status(503))
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url]), client: client, recorder: recorder, backoff: Backoff())
            write(sink, 0..<10)
            let start = ContinuousClock.now
            await sink.flush(deadline: .milliseconds(500))
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(450))
            // Generous for a loaded machine; without the deadline the retries would go on.
            #expect(elapsed < .seconds(20))
            #expect(server.requests.count >= 1)
            #expect(sink.droppedLines == 10)
            #expect(recorder.droppedTotal == 10)
            #expect(messages(recorder, containing: "could not be shipped to Elasticsearch within 500ms").count == 1)
        }
        await server.stop()
    }

    @Test("flush(deadline:) retries with backoff within the deadline")
    func flushRetries() async throws {
        let server = try await ElasticsearchTestServer.start()
        server.enqueue(.status(503), .status(429))
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(configuration(hosts: [server.url], batchSize: 4), client: client, recorder: recorder, backoff: Backoff())
            let lines = write(sink, 0..<10)
            // A minute, for a loaded machine (see makeSink); the retries take a few hundred ms.
            await sink.flush(deadline: .seconds(60))
            #expect(server.requests.map(\.validPairs.count) == [4, 4, 4, 4, 2])
            #expect(server.acceptedDocuments == lines)
            #expect(sink.shippedLines == 10)
            #expect(sink.droppedLines == 0)
            #expect(sink.bufferedLines == 0)
        }
        await server.stop()
    }

    @Test("shutdown with Elasticsearch hanging returns within the deadline")
    func shutdownWithHangingServer() async throws {
        let server = try await ElasticsearchTestServer.start(fallback: .silence)
        try await withClient { client in
            let recorder = Recorder()
            let sink = makeSink(
                configuration(hosts: [server.url], flushInterval: .milliseconds(20)), client: client, recorder: recorder,
                requestTimeout: .seconds(30), shutdownDeadline: .milliseconds(300))
            let group = ServiceGroup(services: [sink], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                write(sink, 0..<4)
                // Shut down while the request hangs: once the server has it.
                let arrival = ContinuousClock.now + .seconds(20)
                while server.requests.isEmpty && ContinuousClock.now < arrival { try await Task.sleep(for: .milliseconds(10)) }
                let start = ContinuousClock.now
                await group.triggerGracefulShutdown()
                try await tasks.next()
                // Not the request timeout (30 s): the shutdown deadline (300 ms), with room for a slow machine.
                #expect(ContinuousClock.now - start < .seconds(20))
            }
            #expect(server.requests.count == 1)
            #expect(sink.droppedLines == 4)
            #expect(recorder.droppedTotal == 4)
        }
        await server.stop()
    }

    // MARK: Pieces

    @Test("backoff: 100 ms doubling to 30 s, with jitter between half and all of it")
    func backoff() {
        let backoff = Backoff()
        func milliseconds(_ duration: Duration) -> Double { Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15 }
        #expect(abs(milliseconds(backoff.delay(afterFailures: 1, random: 0)) - 50) < 0.001)
        #expect(abs(milliseconds(backoff.delay(afterFailures: 1, random: 1)) - 100) < 0.001)
        #expect(abs(milliseconds(backoff.delay(afterFailures: 3, random: 1)) - 400) < 0.001)
        #expect(abs(milliseconds(backoff.delay(afterFailures: 20, random: 1)) - 30_000) < 0.001)
        #expect(abs(milliseconds(backoff.delay(afterFailures: 1000, random: 0)) - 15_000) < 0.001)
        for failures in 1...100 {
            let delay = backoff.delay(afterFailures: failures)
            #expect(delay >= .milliseconds(50) && delay <= .seconds(30))
        }
    }

    @Test("_bulk answers: clean, with item errors, unreadable")
    func responses() {
        #expect(BulkResponse.parse(ByteBuffer(string: #"{"took":3,"errors":false,"items":[{"index":{"status":201}}]}"#)) == .allShipped)
        #expect(BulkResponse.parse(ByteBuffer(string: "{\n  \"took\" : 3,\n  \"errors\" : false,\n  \"items\" : [ ]\n}")) == .allShipped)
        let mixed = #"""
            {"took":3,"errors":true,"items":[
              {"index":{"_index":"i","status":201}},
              {"create":{"_index":"i","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
              {"index":{"_index":"i","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}}},
              {"index":{"_index":"i","status":503,"error":"old style"}}
            ]}
            """#
        #expect(BulkResponse.parse(ByteBuffer(string: mixed)) == .items([
            .shipped,
            .retry(kind: "es_rejected_execution_exception", reason: "queue full"),
            .rejected(kind: "mapper_parsing_exception", reason: "failed to parse"),
            .retry(kind: "HTTP 503", reason: "old style"),
        ]))
        guard case .unreadable = BulkResponse.parse(ByteBuffer(string: "<html>proxy</html>")) else {
            Issue.record("HTML taken as a _bulk answer")
            return
        }
        guard case .unreadable = BulkResponse.parse(ByteBuffer()) else {
            Issue.record("an empty body taken as a _bulk answer")
            return
        }
    }

    @Test("the test server's wire check rejects what Elasticsearch would")
    func wireCheck() {
        #expect(throws: (any Error).self) { try ElasticsearchTestServer.parse("{\"index\":{\"_index\":\"a\"}}\n{\"m\":1}").get() }
        #expect(throws: (any Error).self) { try ElasticsearchTestServer.parse("{\"index\":{\"_index\":\"a\"}}\n").get() }
        #expect(throws: (any Error).self) { try ElasticsearchTestServer.parse("{\"index\":{}}\n{\"m\":1}\n").get() }
        #expect(throws: (any Error).self) { try ElasticsearchTestServer.parse("{\"index\":{\"_index\":\"a\"}}\nnot json\n").get() }
        #expect(throws: Never.self) { try ElasticsearchTestServer.parse("{\"index\":{\"_index\":\"a\"}}\n{\"m\":1}\n").get() }
    }
}
