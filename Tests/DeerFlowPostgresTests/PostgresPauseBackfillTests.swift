import DeerFlow
import DeerFlowCore
import DeerFlowPostgres
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import Testing

/// Pause and backfill across two `deerflow server` processes sharing one PostgreSQL database:
/// a pause made through one server holds for the other (whichever leads), and a backfill created
/// through one is driven by the leader to the end, each fire time once.
@Suite("PostgreSQL cluster: pause and backfill", .serialized)
struct PostgresPauseBackfillTests {
    static let workflows = [
        "minutely.yaml": """
            name: minutely
            schedule: "* * * * *"
            tasks:
              - id: tick
                type: noop
            """,
        "daily.yaml": """
            name: daily
            schedule: "0 2 * * *"
            tasks:
              - id: show
                type: shell
                script: echo "logical=$DEERFLOW_LOGICAL_TIME"
            """,
    ]

    static func post(_ api: Int, _ path: String, _ body: String? = nil) async throws -> TestServer.Answer {
        try await TestServer.send("POST", "http://127.0.0.1:\(api)\(path)", body: body, headers: ["Content-Type": "application/json"])
    }

    static func runs(_ api: Int, _ workflow: String) async throws -> [[String: JSONValue]] {
        guard case .object(let page)? = try await ClusterAPI.get("http://127.0.0.1:\(api)/api/v1/runs?workflow=\(workflow)&limit=1000").json,
              case .array(let runs)? = page["runs"] else { return [] }
        return runs.compactMap { if case .object(let run) = $0 { return run } else { return nil } }
    }

    @Test("a pause through one server holds on the other; a backfill through one finishes once on the leader; unpause with catch-up fires once")
    func pauseAndBackfillAcrossServers() async throws {
        try await withTestDatabase("pausebf") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for (name, text) in Self.workflows { try directory.write("workflows/\(name)", text) }
            let workflows = directory.file("workflows")
            let servers = try (0..<2).map { _ in try ServerProcess.server(database: database.url, workflows: workflows, workers: true) }
            defer { for process in servers { process.stop() } }
            let apis = [try await servers[0].apiPort(), try await servers[1].apiPort()]

            #expect(try await Self.post(apis[0], "/api/v1/workflows/minutely/pause").status == 200)
            let seen = try await ClusterAPI.get("http://127.0.0.1:\(apis[1])/api/v1/workflows/minutely").json
            if case .object(let workflow)? = seen { #expect(workflow["paused"] == .bool(true), "\(workflow)") }

            // Make the paused schedule due in the database: no server may fire it.
            let store = try PostgresWorkflowStore(url: database.url, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            try await store.prepare()
            let missed = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 120)
            try await store.withRunning { store in
                var due = try #require(try await store.schedules().first { $0.workflow == "minutely" })
                due.nextFireAt = missed
                _ = try await store.setSchedulePaused(due, resetNextFire: true)
            }
            let before = try await Self.runs(apis[0], "minutely").count

            // A backfill through the other server: 3 fire times, 2 at a time.
            let created = try await Self.post(apis[1], "/api/v1/workflows/daily/backfills", #"{"from": "2024-06-01", "to": "2024-06-04", "max_active": 2}"#)
            #expect(created.status == 201, "\(created.text)")
            guard case .object(let backfill)? = created.json, case .string(let id)? = backfill["id"] else { throw ProcessFailure(created.text) }
            let deadline = ContinuousClock.now + .seconds(60)
            var status: JSONValue?
            while ContinuousClock.now < deadline {
                if case .object(let current)? = try await ClusterAPI.get("http://127.0.0.1:\(apis[0])/api/v1/backfills/\(id)").json {
                    status = current["status"]
                    if status != .string("running") { break }
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(status == .string("succeeded"))
            let daily = try await Self.runs(apis[0], "daily")
            #expect(daily.count == 3)
            #expect(Set(daily.compactMap { $0["logical_time"]?.stringValue }) == ["2024-06-01T02:00:00.000Z", "2024-06-02T02:00:00.000Z", "2024-06-03T02:00:00.000Z"])
            #expect(daily.allSatisfy { $0["status"] == .string("success") })
            #expect(try await Self.runs(apis[0], "minutely").count == before, "a paused schedule fired")

            // Unpause through the other server with catch-up: the missed time fires once.
            #expect(try await Self.post(apis[1], "/api/v1/workflows/minutely/unpause", #"{"catch_up": true}"#).status == 200)
            let fireDeadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < fireDeadline, try await Self.runs(apis[0], "minutely").count == before {
                try await Task.sleep(for: .milliseconds(200))
            }
            let after = try await Self.runs(apis[0], "minutely")
            // (A later minute may fire too if the test crossed a minute boundary meanwhile.)
            #expect(after.count >= before + 1, "\(after)")
        }
    }
}
