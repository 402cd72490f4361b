import DeerFlow
import DeerFlowCore
import DeerFlowTesting
import Foundation
import Testing

/// Structured logs and task logs, end to end through real `deerflow` processes.
@Suite("Logging end to end")
struct LoggingTests {
    static let chatty = """
        name: chatty
        params:
          api_key: {type: string, default: "k-123", secret: true}
        tasks:
          - id: talk
            type: shell
            script: |
              echo "line one"
              echo "connecting with password=hunter2 to postgres://app:s3cret@db:5432/app"
              sleep 1.5
              echo "line three"
        """

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
        try directory.write("workflows/chatty.yaml", Self.chatty)
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

        // Follow: the first lines arrive while the task still runs.
        let followed = Collected()
        let started = ContinuousClock.now
        try await TestServer.stream("http://127.0.0.1:\(port)/api/v1/runs/\(id)/tasks/talk/log?follow=true") { chunk in
            followed.append(chunk, at: ContinuousClock.now - started)
        }
        let text = followed.text
        #expect(text.contains("line one"))
        #expect(text.contains("line three"))
        #expect(text.contains("password=[REDACTED]"))
        #expect(text.contains("postgres://app:[REDACTED]@db:5432/app"))
        #expect(!text.contains("hunter2") && !text.contains("s3cret"))
        let firstLineAt = try #require(followed.firstArrival(containing: "line one"))
        let lastLineAt = try #require(followed.firstArrival(containing: "line three"))
        #expect(lastLineAt - firstLineAt >= .milliseconds(700), "line one was streamed before the task ended")

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
        try directory.write("workflows/chatty.yaml", Self.chatty)
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
        let deadline = ContinuousClock.now + .seconds(20)
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
