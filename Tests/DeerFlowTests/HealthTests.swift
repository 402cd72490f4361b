@testable import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

/// `/health`, `/health/live`, `/health/ready` and `deerflow_health_check_status` of an in-process
/// server.
@Suite("Health")
struct HealthTests {
    /// The `checks` object of a `/health` answer, and its overall status.
    static func report(_ answer: TestServer.Answer) throws -> (status: String?, checks: [String: [String: JSONValue]]) {
        guard case .object(let body)? = answer.json, case .object(let checks)? = body["checks"] else {
            throw TestFailure("not a health report (HTTP \(answer.status)): \(answer.text)")
        }
        var result: [String: [String: JSONValue]] = [:]
        for (name, value) in checks {
            guard case .object(let check) = value else { throw TestFailure("check \(name) is not an object: \(answer.text)") }
            result[name] = check
        }
        return (body["status"]?.stringValue, result)
    }

    static let builtinChecks = ["database", "queue", "scheduler"]

    /// `/health`, asked again (for up to 20 s) while a built-in check is not healthy: on a loaded
    /// machine (other tests run shell tasks in parallel) a check can exceed its 2 s timeout.
    static func health(_ server: TestServer) async throws -> TestServer.Answer {
        var answer = try await server.request("GET", "/health")
        try? await eventually("the built-in checks are healthy", timeout: .seconds(60)) {
            if let checks = try? report(answer).checks, builtinChecks.allSatisfy({ checks[$0]?["status"] == "healthy" }) { return true }
            answer = try await server.request("GET", "/health")
            return false
        }
        return answer
    }

    /// `/health/ready`, asked again (for up to 20 s) while it is not 200, for the same reason.
    static func ready(_ server: TestServer) async throws -> TestServer.Answer {
        var answer = try await server.request("GET", "/health/ready")
        try? await eventually("the process is ready", timeout: .seconds(60)) {
            if answer.status == 200 { return true }
            answer = try await server.request("GET", "/health/ready")
            return false
        }
        return answer
    }

    @Test("/health lists the built-in database, queue and scheduler checks with their status and details")
    func builtinChecks() async throws {
        try await withTestServer { server in
            let answer = try await Self.health(server)
            #expect(answer.status == 200, "\(answer.text)")
            #expect(answer.contentType?.hasPrefix("application/json") == true)
            let (status, checks) = try Self.report(answer)
            #expect(status == "healthy")
            #expect(Set(checks.keys) == ["database", "queue", "scheduler"])
            for name in ["database", "queue", "scheduler"] {
                #expect(checks[name]?["status"] == "healthy", "\(name): \(answer.text)")
                #expect(checks[name]?["latency_ms"]?.doubleValue != nil, "\(name) has no latency_ms: \(answer.text)")
            }
            #expect(checks["queue"]?["queue_depth"] == 0)
            #expect(checks["queue"]?["threshold_depth"] == 10_000)
            #expect(checks["scheduler"]?["lag_seconds"]?.doubleValue == 0)
            #expect(checks["scheduler"]?["threshold_seconds"]?.doubleValue == 30)
        }
    }

    @Test("a custom check over its timeout makes /health answer 503 unhealthy quickly, naming the timeout")
    func slowCheckTimesOut() async throws {
        try await withTestServer { server in
            server.engine.health.register("slow", timeout: .milliseconds(200)) {
                try await Task.sleep(for: .seconds(30))
                return HealthCheckResult(.healthy)
            }
            let started = ContinuousClock.now
            let answer = try await server.request("GET", "/health")
            let took = ContinuousClock.now - started
            // The check sleeps 30 s; anything clearly below that shows the endpoint did not wait for it.
            #expect(took < .seconds(25), "/health took \(took) although the check's timeout is 200ms")
            #expect(answer.status == 503)
            let (status, checks) = try Self.report(answer)
            #expect(status == "unhealthy")
            #expect(checks["slow"]?["status"] == "unhealthy")
            #expect(checks["slow"]?["error"] == "check timed out after 200ms", "\(answer.text)")
            #expect(Set(checks.keys) == ["database", "queue", "scheduler", "slow"], "the other checks are still reported")
        }
    }

    @Test("a check that never returns and ignores cancellation does not hang /health")
    func stuckCheckDoesNotHang() async throws {
        let gate = Gate()
        defer { gate.open() }
        try await withTestServer { server in
            server.engine.health.register("stuck", timeout: .milliseconds(200)) {
                await gate.wait()
                return HealthCheckResult(.healthy)
            }
            for round in 1...2 {
                let started = ContinuousClock.now
                let answer = try await server.request("GET", "/health")
                let took = ContinuousClock.now - started
                #expect(took < .seconds(25), "round \(round): /health took \(took)")
                #expect(answer.status == 503)
                let (status, checks) = try Self.report(answer)
                #expect(status == "unhealthy")
                #expect(checks["stuck"]?["error"] == "check timed out after 200ms", "\(answer.text)")
            }
            // Readiness only asks the database: it is not held up either.
            let ready = try await Self.ready(server)
            #expect(ready.status == 200, "\(ready.text)")
            #expect(gate.waiting >= 2, "the stuck check was really called")
        }
    }

    @Test("a degraded check gives 200 with status degraded; a throwing one 503 with the error")
    func degradedAndThrowing() async throws {
        try await withTestServer { server in
            server.engine.health.register("warehouse") {
                HealthCheckResult(.degraded, ["replication_lag_seconds": 42])
            }
            let degraded = try await Self.health(server)
            #expect(degraded.status == 200)
            let (status, checks) = try Self.report(degraded)
            #expect(status == "degraded")
            #expect(checks["warehouse"]?["status"] == "degraded")
            #expect(checks["warehouse"]?["replication_lag_seconds"] == 42)
            #expect(checks["warehouse"]?["latency_ms"] != nil)

            server.engine.health.register("broken") { throw TestFailure("connection refused") }
            let broken = try await Self.health(server)
            #expect(broken.status == 503)
            let (brokenStatus, brokenChecks) = try Self.report(broken)
            #expect(brokenStatus == "unhealthy")
            #expect(brokenChecks["broken"]?["status"] == "unhealthy")
            #expect(brokenChecks["broken"]?["error"] == "connection refused")
        }
    }

    @Test("/health/live answers 200; /health/ready answers 200, then 503 draining once the engine drains")
    func liveAndReady() async throws {
        try await withTestServer { server in
            let live = try await server.request("GET", "/health/live")
            #expect(live.status == 200)
            #expect(live.json == ["status": "alive"])
            let ready = try await Self.ready(server)
            #expect(ready.status == 200, "\(ready.text)")
            #expect(ready.json == ["status": "ready"])

            server.engine.setDraining()
            #expect(server.engine.isDraining)
            let draining = try await server.request("GET", "/health/ready")
            #expect(draining.status == 503)
            guard case .object(let body)? = draining.json else {
                Issue.record("not JSON: \(draining.text)")
                return
            }
            #expect(body["status"] == "draining")
            #expect(body["reason"]?.stringValue?.isEmpty == false)
            // Liveness is not readiness: the process still serves.
            #expect(try await server.request("GET", "/health/live").status == 200)
        }
    }

    @Test("ready tasks on a queue no live worker serves: the queue check is degraded naming it, deerflow_queue_consumers is 0 for it")
    func queueWithoutWorkers() async throws {
        let orphan = ["orphan.yaml": "name: orphan\ntasks:\n  - id: waits\n    type: noop\n    queue: nowhere\n"]
        try await withTestServer(yamlWorkflows: orphan) { server in
            var metrics: [String: Double] = [:]
            func consumers(_ queue: String) -> Double? { metrics[MetricSamples.key("deerflow_queue_consumers", ["queue": queue])] }
            // Both queues have a series before any task waits: the workflow names `nowhere`, the worker serves `default`.
            try await eventually("the scheduler leads and the worker registered", timeout: .seconds(60)) {
                metrics = try await server.metrics()
                return consumers("default") == 1
            }
            #expect(consumers("nowhere") == 0)

            _ = try await server.engine.trigger("orphan")
            var queue: [String: JSONValue] = [:]
            try await eventually("the queue check names the queue", timeout: .seconds(60)) {
                queue = (try? Self.report(try await server.request("GET", "/health")).checks["queue"]) ?? [:]
                return queue["queues_without_workers"] == ["nowhere"]
            }
            #expect(queue["status"] == "degraded", "\(queue)")
            metrics = try await server.metrics()
            #expect(consumers("nowhere") == 0 && consumers("default") == 1)
            #expect(metrics[MetricSamples.key("deerflow_health_check_status", ["check": "queue"])] == 0.5)
        }
    }

    @Test("deerflow_health_check_status holds 1 / 0.5 / 0 per check after a scrape")
    func healthCheckGauge() async throws {
        try await withTestServer { server in
            server.engine.health.register("warehouse") { HealthCheckResult(.degraded) }
            server.engine.health.register("broken") { throw TestFailure("down") }
            // A loaded machine can push a built-in check past its 2 s timeout (then it reads 0); scrape
            // again until every check reports.
            var metrics = try await server.metrics()
            func status(_ check: String) -> Double? {
                metrics[MetricSamples.key("deerflow_health_check_status", ["check": check])]
            }
            try? await eventually("the built-in checks report healthy", timeout: .seconds(60)) {
                if status("database") == 1 && status("queue") == 1 && status("scheduler") == 1 { return true }
                metrics = try await server.metrics()
                return false
            }
            #expect(status("database") == 1)
            #expect(status("queue") == 1)
            #expect(status("scheduler") == 1)
            #expect(status("warehouse") == 0.5)
            #expect(status("broken") == 0)

            // A check that recovers is updated at the next scrape.
            server.engine.health.register("broken") { HealthCheckResult(.healthy) }
            let again = try await server.metrics()
            #expect(again[MetricSamples.key("deerflow_health_check_status", ["check": "broken"])] == 1)
        }
    }
}

/// Suspends callers until `open()`; never honours cancellation (a check that truly hangs).
final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [UnsafeContinuation<Void, Never>], calls: Int)>((false, [], 0))

    func wait() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                state.calls += 1
                if state.isOpen { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// How many callers arrived so far.
    var waiting: Int { state.withLock { $0.calls } }

    func open() {
        let waiters = state.withLock { state -> [UnsafeContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
