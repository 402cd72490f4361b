import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Scheduler leadership across `deerflow server` processes, with a real cron schedule.
///
/// Cron has minute resolution, so this test waits for real minute boundaries: one fire by the
/// first leader, then (after it is killed) one by its successor — 60 to 120 s, mostly idle. It is
/// its own suite so that it overlaps with the (serialized) cluster suite instead of adding to it.
@Suite("PostgreSQL cluster: scheduler leadership")
struct PostgresLeadershipTests {
    @Test("SIGKILL of the scheduler leader: the other server takes over within the lease, the cron keeps firing once per due time")
    func leaderFailover() async throws {
        try await withTestDatabase("leader") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/tick.yaml", """
                name: tick
                schedule:
                  cron: "* * * * *"
                tasks:
                  - {id: only, type: noop}
                """)
            let workflows = directory.file("workflows")
            // Both servers run workers too, so the fired runs execute.
            let servers = try (0..<2).map { _ in try ServerProcess.server(database: database.url, workflows: workflows, workers: true) }
            defer { for server in servers { server.stop() } }
            let apis = [try await servers[0].apiPort(), try await servers[1].apiPort()]
            let metrics = [try await servers[0].metricsPort(), try await servers[1].metricsPort()]

            // Exactly one leads.
            var leader = -1
            let deadline = ContinuousClock.now + .seconds(60)
            while leader < 0 {
                let leading = servers.indices.filter { servers[$0].count("became scheduler leader") > 0 }
                #expect(leading.count <= 1, "two leaders at once")
                if leading.count == 1 { leader = leading[0] }
                guard ContinuousClock.now < deadline else { throw ProcessFailure("no scheduler leader") }
                try await Task.sleep(for: .milliseconds(100))
            }
            let follower = 1 - leader
            #expect(await ClusterAPI.metric(port: metrics[leader], "deerflow_scheduler_leader") == 1)
            #expect(await ClusterAPI.metric(port: metrics[follower], "deerflow_scheduler_leader") == 0)

            // The first fire, by the leader.
            let first = try await scheduledRuns(api: apis[follower], atLeast: 1, timeout: .seconds(75))
            guard let firstDue = first.keys.min() else { return }
            servers[leader].signal(SIGKILL)
            // The lease is 15 s: 60 s leaves a loaded machine room; a follower that never takes
            // over still fails here.
            _ = try await servers[follower].waitFor("became scheduler leader", timeout: .seconds(60))
            #expect(await ClusterAPI.metric(port: metrics[follower], "deerflow_scheduler_leader") == 1)

            // The next due time fires once, by the new leader.
            let both = try await scheduledRuns(api: apis[follower], atLeast: 2, timeout: .seconds(80))
            let dues = both.keys.sorted()
            #expect(dues.first == firstDue)
            #expect(dues.count == 2, "one run per due time: \(dues)")
            if dues.count >= 2 { #expect(abs(dues[1].timeIntervalSince(dues[0]) - 60) < 0.5, "\(dues)") }
            #expect(both.values.allSatisfy { $0 == 1 }, "each due time fired once: \(both)")
            let runs = try await runIDs(api: apis[follower])
            let finished = try await ClusterAPI.waitForRuns(api: apis[follower], ids: runs, timeout: .seconds(30))
            #expect(finished.values.allSatisfy { $0["status"]?.stringValue == "success" }, "\(finished)")
        }
    }

    /// Runs of `tick` by due time (count per due time), once there are at least `atLeast` due times.
    func scheduledRuns(api: Int, atLeast count: Int, timeout: Duration) async throws -> [Date: Int] {
        let deadline = ContinuousClock.now + timeout
        while true {
            var dues: [Date: Int] = [:]
            let (_, json) = try await ClusterAPI.get("http://127.0.0.1:\(api)/api/v1/runs?workflow=tick&limit=100")
            if case .object(let body)? = json, case .array(let runs)? = body["runs"] {
                for case .object(let run) in runs {
                    guard let text = run["scheduled_for"]?.stringValue, let due = Self.parse(text) else { continue }
                    dues[due, default: 0] += 1
                }
            }
            if dues.count >= count { return dues }
            guard ContinuousClock.now < deadline else { throw ProcessFailure("only \(dues.count) scheduled runs within \(timeout)") }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    func runIDs(api: Int) async throws -> [String] {
        let (_, json) = try await ClusterAPI.get("http://127.0.0.1:\(api)/api/v1/runs?workflow=tick&limit=100")
        guard case .object(let body)? = json, case .array(let runs)? = body["runs"] else { return [] }
        return runs.compactMap { if case .object(let run) = $0 { return run["id"]?.stringValue } else { return nil } }
    }

    static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
