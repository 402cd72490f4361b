import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

/// `health_checks:` of deerflow.yaml on a real server: shown in /health and the metric, and a
/// critical one failing /health/ready.
@Suite("Health checks in config")
struct ConfiguredHealthCheckTests {
    @Test("an http check flips /health and its gauge when its target goes away; critical, it fails /health/ready; tcp and command checks report too")
    func checksFollowTheirTargets() async throws {
        let healthy = Atomic<Bool>(true)
        let target = try await TestHTTPServer.start { _ in
            healthy.load(ordering: .relaxed) ? .respond(status: 200, body: "pong") : .respond(status: 503, body: "down")
        }
        defer { Task { await target.stop() } }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/noop.yaml", "name: noop\ntasks:\n  - {id: a, type: noop}\n")
        try directory.write("config/deerflow.yaml", """
            health_checks:
              - name: warehouse
                http: {url: "\(target.url("/ping"))"}
                interval: 1s
                critical: true
              - name: listener
                tcp: 127.0.0.1:\(target.port)
              - name: nothing-listens
                tcp: 127.0.0.1:1
              - name: scratch
                command: [test, -d, "\(directory.path)"]
              - name: missing-dir
                command: [test, -d, "\(directory.file("nope"))"]
            """)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let metrics = try await server.metricsPort()

        func checks() async throws -> (status: Int, checks: [String: [String: JSONValue]]) {
            let answer = try await TestServer.send("GET", "http://127.0.0.1:\(api)/health", body: nil, headers: [:])
            guard case .object(let body)? = answer.json, case .object(let checks)? = body["checks"] else { throw ProcessFailure("/health: \(answer.text)") }
            var result: [String: [String: JSONValue]] = [:]
            for (name, value) in checks { if case .object(let object) = value { result[name] = object } }
            return (answer.status, result)
        }
        let first = try await checks()
        #expect(first.checks["warehouse"]?["status"] == "healthy", "\(first)")
        #expect(first.checks["warehouse"]?["status_code"] == 200)
        #expect(first.checks["listener"]?["status"] == "healthy")
        #expect(first.checks["nothing-listens"]?["status"] == "unhealthy")
        #expect(first.checks["scratch"]?["status"] == "healthy")
        #expect(first.checks["missing-dir"]?["status"] == "unhealthy" && first.checks["missing-dir"]?["exit_code"] == 1, "\(first)")
        #expect(first.checks["database"]?["status"] == "healthy", "the built-in checks are still there")
        #expect(first.status == 503, "an unhealthy check makes /health 503")
        #expect(await ClusterAPI.readiness(api: api) == 200, "only critical checks count for readiness")
        #expect(await ClusterAPI.metric(port: metrics, #"deerflow_health_check_status{check="warehouse"}"#) == 1)

        healthy.store(false, ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(1100))  // the interval: the last result is reused until then
        let second = try await checks()
        #expect(second.checks["warehouse"]?["status"] == "unhealthy", "\(second)")
        #expect(second.checks["warehouse"]?["error"]?.stringValue?.contains("answered 503, expected 2xx") == true, "\(second)")
        let ready = try await TestServer.send("GET", "http://127.0.0.1:\(api)/health/ready", body: nil, headers: [:])
        #expect(ready.status == 503 && ready.text.contains("the critical health check 'warehouse' is unhealthy"), "\(ready.text)")
        #expect(await ClusterAPI.metric(port: metrics, #"deerflow_health_check_status{check="warehouse"}"#) == 0)

        healthy.store(true, ordering: .relaxed)
        try await ClusterAPI.waitForReadiness(api: api, status: 200)
    }

    @Test("health_checks problems are located errors: no probe, two probes, a bad URL or address, a built-in name, a duplicate")
    func configErrors() {
        do {
            _ = try ServerConfigFile.parse(yaml: """
                health_checks:
                  - name: a
                  - {name: b, tcp: "x:1", command: [true]}
                  - {name: c, http: {url: "ftp://x"}}
                  - {name: d, tcp: "nohost"}
                  - {name: database, tcp: "x:1"}
                  - {name: e, tcp: "x:1"}
                  - {name: e, tcp: "x:2"}
                """, file: "deerflow.yaml", environment: [:])
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.count == 6, "\(messages)")
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:2:") && $0.contains("needs one of http, tcp or command") })
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:3:") && $0.contains("not tcp and command") })
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:4:") && $0.contains("not an http(s) URL") })
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:5:") && $0.contains("not host:port") })
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:6:") && $0.contains("built-in check") })
            #expect(messages.contains { $0.hasPrefix("deerflow.yaml:8:") && $0.contains("already configured") })
        }
    }
}
