import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// What a real `deerflow server` answers to requests no client library sends: oversized and
/// malformed ones, slow clients, methods a path does not have, paths that try to escape. Each is
/// answered with a 4xx and the JSON error (or its connection closed), and the server stays ready.
@Suite("HTTP edge cases against a real server", .serialized)
struct HTTPEdgeCaseTests {
    static let workflow = """
        name: nightly-etl
        params:
          day: {type: string, default: "2024-06-01"}
          full_reload: {type: bool, default: false}
        tasks:
          - id: extract
            type: noop
          - id: wait
            type: sleep
            duration: 5s
            depends_on: [extract]
        """

    /// A server on free ports with `deerflow.yaml` holding `config`.
    static func start(config: String = "") async throws -> (server: ServerProcess, port: Int, directory: TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/nightly-etl.yaml", workflow)
        try directory.write("config/deerflow.yaml", config.isEmpty ? "{}\n" : config)
        let server = try ServerProcess([
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ], environment: ["DEERFLOW_DATABASE_URL": "", "DEERFLOW_API_TOKENS": ""])
        return (server, try await server.apiPort(), directory)
    }

    static func expectReady(_ port: Int, _ server: ServerProcess, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let ready = try await RawHTTP.send(port: port, method: "GET", target: "/health/ready")
        #expect(ready.status == 200, "\(ready) \(server.log.suffix(2000))", sourceLocation: sourceLocation)
        #expect(server.isRunning, sourceLocation: sourceLocation)
    }

    static func request(_ method: String, _ target: String, body: [UInt8] = [], headers: String = "") -> [UInt8] {
        Array("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\(headers)\r\n".utf8) + body
    }

    @Test("a 2 MiB body, 10,000-deep JSON, invalid UTF-8 and a NUL in a parameter answer 413, 400, 400 and 422 with the JSON error")
    func bodies() async throws {
        let (server, port, directory) = try await Self.start()
        defer { server.stop(); directory.remove() }
        let trigger = "/api/v1/workflows/nightly-etl/runs"

        let large = try await RawHTTP.exchange(port: port, bytes: Self.request("POST", trigger, body: Array(#"{"params": {"day": ""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 2 << 20) + Array(#""}}"#.utf8)))
        #expect(large.status == 413, "\(large)")
        #expect(large.body.contains(#""code":"payload_too_large""#), "\(large)")

        let deep = try await RawHTTP.exchange(port: port, bytes: Self.request("POST", trigger, body: Array(#"{"params": {"day": "#.utf8) + Array(repeating: UInt8(ascii: "["), count: 10_000) + Array(repeating: UInt8(ascii: "]"), count: 10_000) + Array("}}".utf8)))
        #expect(deep.status == 400, "\(deep)")
        #expect(deep.body.contains(#""code":"bad_request""#), "\(deep)")

        for bad: [UInt8] in [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0x80]] {
            let body = Array(#"{"params": {"day": "a"#.utf8) + bad + Array(#"b"}}"#.utf8)
            let answer = try await RawHTTP.exchange(port: port, bytes: Self.request("POST", trigger, body: body))
            #expect(answer.status == 400, "\(bad): \(answer)")
            #expect(answer.body.contains("not valid UTF-8") && answer.body.contains("offset 21"), "\(bad): \(answer)")
        }

        let nul = try await RawHTTP.send(port: port, method: "POST", target: trigger, body: #"{"params": {"day": "a\u0000b"}}"#)
        #expect(nul.status == 422, "\(nul)")
        #expect(nul.body.contains("parameter 'day' contains a NUL character"), "\(nul)")

        let runs = try await RawHTTP.send(port: port, method: "GET", target: "/api/v1/runs")
        #expect(runs.body.contains(#""runs":[]"#), "nothing was created: \(runs)")
        try await Self.expectReady(port, server)
    }

    @Test("requests the HTTP parser refuses answer 400 (headers over 80 KiB 431) with the JSON error")
    func parserErrors() async throws {
        let (server, port, directory) = try await Self.start()
        defer { server.stop(); directory.remove() }
        let cases: [(String, [UInt8], Int)] = [
            ("100 KB header", Array("GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 100_000))\r\n\r\n".utf8), 431),
            ("bad header line", Array("GET /health/live HTTP/1.1\r\nHost: x\r\nNot a header\r\n\r\n".utf8), 400),
            ("spaces in the target", Array("GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n".utf8), 400),
            ("malformed request line", Array("GARBAGE\r\n\r\n".utf8), 400),
            ("control character in the target", Array("GET /api/v1/\u{01}runs HTTP/1.1\r\nHost: x\r\n\r\n".utf8), 400),
        ]
        for (name, bytes, status) in cases {
            let answer = try await RawHTTP.exchange(port: port, bytes: bytes)
            #expect(answer.status == status, "\(name): \(answer)")
            #expect(answer.head.lowercased().contains("content-type: application/json"), "\(name): \(answer)")
            #expect(answer.body.hasPrefix(#"{"error":{"code":""#), "\(name): \(answer)")
        }
        try await Self.expectReady(port, server)
    }

    @Test("a method a path does not have answers 405 with Allow; empty and huge query values as openapi.yaml says")
    func contract() async throws {
        let (server, port, directory) = try await Self.start()
        defer { server.stop(); directory.remove() }
        for (method, target, allow) in [("TRACE", "/api/v1/runs", "GET"), ("PUT", "/api/v1/runs", "GET"), ("GET", "/api/v1/workflows/nightly-etl/runs", "POST"), ("DELETE", "/health/live", "GET")] {
            let answer = try await RawHTTP.exchange(port: port, bytes: Self.request(method, target))
            #expect(answer.status == 405, "\(method) \(target): \(answer)")
            #expect(answer.head.lowercased().contains("allow: \(allow.lowercased())"), "\(method) \(target): \(answer)")
            #expect(answer.body.contains(#""code":"method_not_allowed""#), "\(method) \(target): \(answer)")
        }
        let unknown = try await RawHTTP.send(port: port, method: "TRACE", target: "/api/v1/nothing")
        #expect(unknown.status == 404 && unknown.body.contains(#""code":"not_found""#), "\(unknown)")

        // openapi.yaml's trigger example, against the workflow it names.
        let created = try await RawHTTP.send(port: port, method: "POST", target: "/api/v1/workflows/nightly-etl/runs", body: #"{"params": {"day": "2024-06-01", "full_reload": true}}"#)
        #expect(created.status == 201, "\(created)")
        let id = try #require(created.body.split(separator: "\"").drop { $0 != "id" }.dropFirst(2).first.map(String.init))
        for target in ["/api/v1/runs?cursor=", "/api/v1/runs?status=", "/api/v1/runs?limit=", "/api/v1/runs/\(id)/tasks/extract/log?attempt=&format="] {
            let answer = try await RawHTTP.send(port: port, method: "GET", target: target)
            #expect(answer.status == 400 && answer.body.contains(#""code":"bad_request""#), "\(target): \(answer)")
        }
        for attempt in ["99999999999", "99999999999999999999"] {
            let answer = try await RawHTTP.send(port: port, method: "GET", target: "/api/v1/runs/\(id)/tasks/extract/log?attempt=\(attempt)")
            #expect(answer.status == 404 && answer.body.contains(#""code":"not_found""#), "\(attempt): \(answer)")
        }
        try await Self.expectReady(port, server)
    }

    @Test("HEAD answers as GET would, with its status and headers and without the body, on the API and the UI; 405 lists HEAD beside GET")
    func head() async throws {
        let (server, port, directory) = try await Self.start()
        defer { server.stop(); directory.remove() }
        let created = try await RawHTTP.send(port: port, method: "POST", target: "/api/v1/workflows/nightly-etl/runs", body: "{}")
        let id = try #require(created.body.split(separator: "\"").drop { $0 != "id" }.dropFirst(2).first.map(String.init))
        for target in ["/health/live", "/health/ready", "/api/v1/workflows", "/api/v1/runs/\(id)", "/", "/runs"] {
            let get = try await RawHTTP.exchange(port: port, bytes: Self.request("GET", target))
            let head = try await RawHTTP.exchange(port: port, bytes: Self.request("HEAD", target))
            #expect(get.status == 200 && head.status == 200, "\(target): \(head)")
            #expect(head.body.isEmpty, "\(target): \(head)")
            func contentLength(_ head: String) -> String? {
                head.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }.map(String.init)
            }
            // The GET's length; a run's or a page's answer may change between the two requests.
            #expect(contentLength(head.head) != nil && head.head.lowercased().contains("content-type:"), "\(target): \(head.head)")
            if target == "/health/live" || target == "/api/v1/workflows" {
                #expect(contentLength(head.head) == contentLength(get.head), "\(target): GET \(get.head) HEAD \(head.head)")
            }
        }
        let missing = try await RawHTTP.exchange(port: port, bytes: Self.request("HEAD", "/api/v1/runs/nope"))
        #expect(missing.status == 404 && missing.body.isEmpty, "\(missing)")
        let wrong = try await RawHTTP.exchange(port: port, bytes: Self.request("DELETE", "/api/v1/workflows"))
        #expect(wrong.status == 405 && wrong.head.lowercased().contains("allow: get, head"), "\(wrong)")
        try await Self.expectReady(port, server)
    }

    @Test("HEAD needs the token GET needs")
    func headWithTokens() async throws {
        let (server, port, directory) = try await Self.start(config: "api:\n  tokens:\n    - {token: \"s3cret-token-value\", role: viewer}\n")
        defer { server.stop(); directory.remove() }
        let anonymous = try await RawHTTP.exchange(port: port, bytes: Self.request("HEAD", "/api/v1/workflows"))
        #expect(anonymous.status == 401 && anonymous.body.isEmpty, "\(anonymous)")
        let allowed = try await RawHTTP.exchange(port: port, bytes: Self.request("HEAD", "/api/v1/workflows", headers: "Authorization: Bearer s3cret-token-value\r\n"))
        #expect(allowed.status == 200 && allowed.body.isEmpty, "\(allowed)")
        let live = try await RawHTTP.exchange(port: port, bytes: Self.request("HEAD", "/health/live"))
        #expect(live.status == 200, "\(live)")
    }

    @Test("'..' and encoded slashes in paths reach no file and no other route")
    func paths() async throws {
        let (server, port, directory) = try await Self.start()
        defer { server.stop(); directory.remove() }
        try directory.write("secret.txt", "do not serve")
        for target in [
            "/api/v1/../health/live", "/api/v1/%2e%2e/%2e%2e/health/live", "/api/v1%2Fruns", "/api/v1/runs/..%2F..%2Fsecret.txt",
            "/api/v1/workflows/..", "/api/v1/workflows/..%2F..%2Fworkflows%2Fnightly-etl", "/static/../../secret.txt", "/..%2F..%2Fsecret.txt",
            "/%2e%2e/%2e%2e/etc/passwd", "/api/v1/workflows/nightly-etl%2Fruns",
        ] {
            let answer = try await RawHTTP.send(port: port, method: "GET", target: target)
            #expect([400, 404].contains(answer.status), "\(target): \(answer)")
            #expect(answer.body.hasPrefix(#"{"error":"#), "\(target): \(answer)")
            #expect(!answer.body.contains("do not serve") && !answer.body.contains("root:"), "\(target): \(answer)")
        }
        try await Self.expectReady(port, server)
    }

    @Test("200 slow connections are closed by the header and body timeouts while /health/live answers")
    func slowConnections() async throws {
        let (server, port, directory) = try await Self.start(config: "api:\n  header_timeout: 1s\n  body_timeout: 2s\n  idle_timeout: 1s\n")
        defer { server.stop(); directory.remove() }
        var connections: [RawConnection] = []
        for index in 0..<200 {
            let connection = try await RawConnection.open(port: port)
            if index.isMultiple(of: 2) {
                await connection.send("GET /health/live HTTP/1.1\r\nHost: x\r\n")
            } else {
                await connection.send("POST /api/v1/workflows/nightly-etl/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            }
            connections.append(connection)
        }
        defer { connections.forEach { $0.close() } }
        let start = ContinuousClock.now
        var healthy = 0
        while ContinuousClock.now - start < .seconds(8), connections.contains(where: { !$0.isClosed }) {
            // A header line or a body byte every 300 ms: never idle, never done.
            for (index, connection) in connections.enumerated() where !connection.isClosed {
                await connection.send(index.isMultiple(of: 2) ? "X-Slow: 1\r\n" : " ")
            }
            if try await RawHTTP.send(port: port, method: "GET", target: "/health/live").status == 200 { healthy += 1 }
            try await Task.sleep(for: .milliseconds(300))
        }
        let open = connections.filter { !$0.isClosed }.count
        #expect(open == 0, "\(open) of 200 slow connections still open after \(ContinuousClock.now - start)")
        #expect(ContinuousClock.now - start < .seconds(6), "closed only after \(ContinuousClock.now - start)")
        #expect(healthy > 0)

        // A kept-alive connection that sends nothing more is closed after the idle timeout.
        let idle = try await RawConnection.open(port: port)
        await idle.send("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try await Task.sleep(for: .milliseconds(400))
        #expect(!idle.isClosed, "the response does not close a kept-alive connection")
        try await Task.sleep(for: .seconds(2))
        #expect(idle.isClosed, "idle past api.idle_timeout")
        try await Self.expectReady(port, server)
    }

    @Test("no deadline runs while a request is answered: a followed log streams past every timeout")
    func longAnswer() async throws {
        // Timeouts well below the answer's 5 s, but not so short that a client slowed down by a
        // busy machine misses the header deadline before sending its request.
        let (server, port, directory) = try await Self.start(config: "api:\n  header_timeout: 2s\n  body_timeout: 2s\n  idle_timeout: 2s\n")
        defer { server.stop(); directory.remove() }
        let created = try await RawHTTP.send(port: port, method: "POST", target: "/api/v1/workflows/nightly-etl/runs", body: #"{"params": {"day": "2024-06-02"}}"#)
        let id = try #require(created.body.split(separator: "\"").drop { $0 != "id" }.dropFirst(2).first.map(String.init), "\(created)")
        // The run's second task sleeps 5 s; following its log holds the request open that long.
        let start = ContinuousClock.now
        let followed = try await RawHTTP.send(port: port, method: "GET", target: "/api/v1/runs/\(id)/tasks/wait/log?follow=true")
        #expect(followed.status == 200, "\(followed)")
        #expect(ContinuousClock.now - start > .seconds(4), "the answer ended after \(ContinuousClock.now - start): \(followed)")
        #expect(followed.body.contains("=== attempt 1"), "\(followed)")
    }

    @Test("past api.max_connections a new connection waits until a timeout frees a slot")
    func connectionLimit() async throws {
        let (server, port, directory) = try await Self.start(config: "api:\n  max_connections: 5\n  header_timeout: 1500ms\n")
        defer { server.stop(); directory.remove() }
        var holders: [RawConnection] = []
        for _ in 0..<5 { holders.append(try await RawConnection.open(port: port)) }
        defer { holders.forEach { $0.close() } }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        let answer = try await RawHTTP.send(port: port, method: "GET", target: "/health/live")
        let waited = ContinuousClock.now - start
        #expect(answer.status == 200, "\(answer)")
        // It was answered only once the header timeout had closed a connection holding a slot
        // (that close reaches this side's channel on its own event loop: give it a moment).
        for _ in 0..<40 where !holders.contains(where: \.isClosed) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(holders.contains { $0.isClosed }, "answered after \(waited) while 5 connections held every slot")
        try await Self.expectReady(port, server)
    }

    @Test("a limit of open files below api.max_connections is warned about at start, with what to change")
    func fileLimitWarning() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/nightly-etl.yaml", Self.workflow)
        let server = try ServerProcess(
            ["-c", "ulimit -n 600 && exec \"$0\" \"$@\"", ServerProcess.executable, "server", "--workflows", directory.file("workflows"),
             "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0"],
            executable: "/bin/sh", environment: ["DEERFLOW_DATABASE_URL": ""])
        defer { server.stop() }
        _ = try await server.apiPort()
        #expect(server.log.contains("this process may open 600 files (ulimit -n) but api.max_connections is 1024"), "\(server.log)")
        #expect(server.log.contains("LimitNOFILE"), "\(server.log)")
    }

    @Test("connection settings out of range are refused with their file and line")
    func configErrors() throws {
        let yaml = "api:\n  port: 8080\n  header_timeout: 0s\n  body_timeout: soon\n  max_connections: 0\n"
        #expect {
            _ = try ServerConfigFile.parse(yaml: yaml, file: "deerflow.yaml", environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("deerflow.yaml:3") && text.contains("deerflow.yaml:4") && text.contains("deerflow.yaml:5")
                && text.contains("must be between 100ms and") && text.contains("'soon' is not a duration") && text.contains("must be between 1 and 1000000")
        }
        let file = try ServerConfigFile.parse(yaml: "api:\n  idle_timeout: 2m\n", file: "deerflow.yaml", environment: [:])
        var expected = ConnectionLimits()
        expected.idleTimeout = .seconds(120)
        #expect(file.apiConnections == expected)
        #expect(try ServerConfigFile.parse(yaml: "api:\n  port: 1\n", file: "deerflow.yaml", environment: [:]).apiConnections == nil)
    }
}
