import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Structured logs and task logs, end to end through real `deerflow` processes.
@Suite("Logging end to end")
struct LoggingTests {
    /// A task that logs two lines, then waits (at most 30 s) until `marker` exists before its last
    /// line: a test that creates the marker only after seeing the first lines proves they were
    /// streamed while the task ran, without timing anything.
    static func chatty(marker: String) -> String {
        """
        name: chatty
        params:
          api_key: {type: string, default: "k-123", secret: true}
        tasks:
          - id: talk
            type: shell
            script: |
              echo "line one"
              echo "connecting with password=hunter2 to postgres://app:s3cret@db:5432/app"
              i=0
              while [ ! -e '\(marker)' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
              echo "line three"
        """
    }

    static func loggingYAML(_ directory: TemporaryDirectory) -> String {
        """
        logging:
          level: INFO
          format: json
          handlers:
            console:
              enabled: true
              level: INFO
            file:
              enabled: true
              path: \(directory.file("logs/app.log"))
              rotation: daily
              retention: 30d
          filters:
            - name: sensitive_data
              action: redact
              patterns:
                - "password"
                - "api_key"
                - "secret"
        """
    }

    @Test("server lines are JSON with timestamp, level, logger and message; task logs are redacted and streamed while the task runs")
    func jsonLinesRedactionAndFollow() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let marker = directory.file("seen-line-one")
        try directory.write("workflows/chatty.yaml", Self.chatty(marker: marker))
        try directory.write("config/logging.yaml", Self.loggingYAML(directory))
        let server = try ServerProcess([
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ])
        defer { server.stop() }
        let port = try await server.apiPort()
        let created = try await TestServer.send("POST", "http://127.0.0.1:\(port)/api/v1/workflows/chatty/runs", body: "{}", headers: [:])
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run: \(created.text)")
            return
        }
        #expect(created.text.contains(#""api_key":"[REDACTED]""#))

        // Follow: the first lines arrive while the task still runs; the task ends only once the
        // test has seen them.
        let followed = Collected()
        let started = ContinuousClock.now
        try await TestServer.stream("http://127.0.0.1:\(port)/api/v1/runs/\(id)/tasks/talk/log?follow=true") { chunk in
            followed.append(chunk, at: ContinuousClock.now - started)
            if followed.text.contains("line one") && !FileManager.default.fileExists(atPath: marker) {
                _ = FileManager.default.createFile(atPath: marker, contents: nil)
            }
        }
        let text = followed.text
        #expect(text.contains("line one"))
        #expect(text.contains("line three"))
        #expect(text.contains("password=[REDACTED]"))
        #expect(text.contains("postgres://app:[REDACTED]@db:5432/app"))
        #expect(!text.contains("hunter2") && !text.contains("s3cret"))
        let firstLineAt = try #require(followed.firstArrival(containing: "line one"))
        let lastLineAt = try #require(followed.firstArrival(containing: "line three"))
        #expect(firstLineAt < lastLineAt, "line one was streamed before the task ended")

        // JSON lines on stdout and in the file, with the spec's fields.
        server.signal(SIGTERM)
        _ = try await server.waitForExit()
        let consoleLines = server.log.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!consoleLines.isEmpty)
        for line in consoleLines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            for field in ["timestamp", "level", "logger", "message"] { #expect(object[field] != nil, "\(field) missing in \(line)") }
            let timestamp = try #require(object["timestamp"] as? String)
            #expect(timestamp.count == 24 && timestamp.hasSuffix("Z"), "\(timestamp)")
        }
        let fileText = try String(contentsOfFile: directory.file("logs/app.log"), encoding: .utf8)
        #expect(fileText.contains(#""message":"API listening""#))
        #expect(!server.log.contains("hunter2"))
    }

    /// A stand-in Elasticsearch node: answers `POST /_bulk` like Elasticsearch does and appends
    /// each request (content type and body) as one JSON line to `requests.jsonl`.
    static let bulkReceiver = #"""
        import http.server, json, sys
        out = sys.argv[1]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with open(out, "a") as f:
                    f.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body}) + "\n")
                items = [{"index": {"status": 201}} for line in body.splitlines()[::2]]
                answer = json.dumps({"took": 1, "errors": False, "items": items}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """#

    /// Starts ``bulkReceiver`` writing to `requests.jsonl` in `directory`; returns it and its port.
    static func startBulkReceiver(in directory: TemporaryDirectory) async throws -> (ServerProcess, Int) {
        try directory.write("receiver.py", Self.bulkReceiver)
        let receiver = try ServerProcess(["python3", directory.file("receiver.py"), directory.file("requests.jsonl")], executable: "/usr/bin/env")
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            if let port = receiver.log.split(separator: "\n").first.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) { return (receiver, port) }
            guard ContinuousClock.now < deadline, receiver.isRunning else {
                receiver.stop()
                throw ProcessFailure("the _bulk receiver did not start: \(receiver.log)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The documents `bulkReceiver` received (every second line of each `_bulk` body).
    static func bulkDocuments(in directory: TemporaryDirectory) -> [[String: Any]] {
        let text = (try? String(contentsOfFile: directory.file("requests.jsonl"), encoding: .utf8)) ?? ""
        let requests = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return requests.flatMap { request -> [[String: Any]] in
            let lines = (request["body"] as? String ?? "").split(separator: "\n")
            return lines.enumerated().filter { $0.offset % 2 == 1 }.compactMap { try? JSONSerialization.jsonObject(with: Data($0.element.utf8)) as? [String: Any] }
        }
    }

    @Test("logging.yaml's elasticsearch handler ships the server's lines with _bulk; shutdown flushes the rest")
    func elasticsearchShipping() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (receiver, receiverPort) = try await Self.startBulkReceiver(in: directory)
        defer { receiver.stop() }
        try directory.write("config/logging.yaml", """
            logging:
              level: INFO
              format: json
              handlers:
                console:
                  enabled: true
                elasticsearch:
                  enabled: true
                  hosts: ["http://127.0.0.1:\(receiverPort)"]
                  index: "deerflow-logs-{date}"
                  flush_interval: 60s
              filters:
                - name: sensitive_data
                  action: redact
                  patterns: ["password"]
            """)
        let server = try ServerProcess([
            "server", "--config", directory.file("config"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ])
        defer { server.stop() }
        _ = try await server.apiPort()
        // flush_interval is a minute: what arrives now was flushed by the graceful shutdown.
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.log)")
        let text = (try? String(contentsOfFile: directory.file("requests.jsonl"), encoding: .utf8)) ?? ""
        let requests = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!requests.isEmpty, "nothing reached the _bulk endpoint: \(server.log)")
        var documents: [[String: Any]] = []
        for request in requests {
            #expect(request["path"] as? String == "/_bulk")
            #expect(request["content_type"] as? String == "application/x-ndjson")
            let body = request["body"] as? String ?? ""
            #expect(body.hasSuffix("\n"), "NDJSON ends with a newline")
            let lines = body.split(separator: "\n")
            #expect(lines.count % 2 == 0, "action and document lines alternate")
            for (index, line) in lines.enumerated() {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                if index % 2 == 0 {
                    let action = try #require(object["index"] as? [String: Any], "action line: \(line)")
                    #expect((action["_index"] as? String)?.hasPrefix("deerflow-logs-20") == true, "\(line)")
                } else {
                    documents.append(object)
                }
            }
        }
        let messages = documents.compactMap { $0["message"] as? String }
        #expect(messages.contains("API listening"), "\(messages)")
        #expect(documents.allSatisfy { $0["timestamp"] != nil && $0["level"] != nil })
    }

    @Test("a bad logging.yaml stops the server with file, line and key")
    func badConfig() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/logging.yaml", "logging:\n  level: LOUD\n  handlers:\n    syslog: {enabled: true}\n")
        let server = try ServerProcess(["server", "--config", directory.file("config"), "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0"])
        defer { server.stop() }
        #expect(try await server.waitForExit() != 0)
        #expect(server.log.contains("logging.yaml:2:"), "\(server.log)")
        #expect(server.log.contains("logging.yaml:4:"), "\(server.log)")
    }

    @Test("the log of a task whose worker process was killed is still served")
    func logOutlivesWorker() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Nobody creates the marker: the task keeps running until its worker is killed.
        try directory.write("workflows/chatty.yaml", Self.chatty(marker: directory.file("never")))
        let database = "sqlite://" + directory.file("db.sqlite")
        let server = try ServerProcess(["server", "--no-workers", "--workflows", directory.file("workflows"), "--database", database, "--api-port", "0", "--metrics-port", "0"])
        defer { server.stop() }
        let port = try await server.apiPort()
        let worker = try ServerProcess(["worker", "--workflows", directory.file("workflows"), "--database", database, "--metrics-port", "0"])
        defer { worker.stop() }
        _ = try await worker.metricsPort()
        let created = try await TestServer.send("POST", "http://127.0.0.1:\(port)/api/v1/workflows/chatty/runs", body: "{}", headers: [:])
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run: \(created.text)")
            return
        }
        let url = "http://127.0.0.1:\(port)/api/v1/runs/\(id)/tasks/talk/log"
        let deadline = ContinuousClock.now + .seconds(60)
        var text = ""
        while ContinuousClock.now < deadline, !text.contains("password=") {
            text = try await TestServer.send("GET", url, body: nil, headers: [:]).text
            try await Task.sleep(for: .milliseconds(100))
        }
        worker.signal(SIGKILL)
        _ = try await worker.waitForExit()
        let after = try await TestServer.send("GET", url + "?attempt=1", body: nil, headers: [:])
        #expect(after.status == 200)
        #expect(after.text.contains("line one"), "\(after.text)")
        #expect(after.text.contains("password="))
    }
}

/// Chunks of a streamed answer with their arrival times.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var chunks: [(String, Duration)] = []

    func append(_ chunk: String, at time: Duration) {
        lock.lock()
        chunks.append((chunk, time))
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return chunks.map(\.0).joined()
    }

    func firstArrival(containing needle: String) -> Duration? {
        lock.lock()
        defer { lock.unlock() }
        var seen = ""
        for (chunk, time) in chunks {
            seen += chunk
            if seen.contains(needle) { return time }
        }
        return nil
    }
}
