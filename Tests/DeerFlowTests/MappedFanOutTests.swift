import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `for_each` through a real `deerflow server` on SQLite (the PostgreSQL suite runs the same scenario).
@Suite("Dynamic fan-out on SQLite")
struct MappedFanOutTests {
    @Test("1,000 mapped instances reach the downstream in order; max_parallel, a retried instance, the limit and an empty list")
    func mappedFanOut() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try MapScenario.write(into: directory)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"),
            workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        let id = try await MapScenario.check(api: api)
        // The CLI: the mapped task's counts under the table, and an instance's log by its id.
        let status = try ServerProcess(["status", id, "--api", "http://127.0.0.1:\(api)"])
        #expect(try await status.waitForExit() == 0)
        #expect(status.log.contains("process: 1000 instances, 1000 succeeded, 0 failed, 0 running, 0 queued, 0 waiting"), "\(status.log.suffix(400))")
        let logs = try ServerProcess(["logs", id, "process[7]", "--api", "http://127.0.0.1:\(api)"])
        #expect(try await logs.waitForExit() == 0)
        #expect(logs.log.contains("instance 7 fails once"), "\(logs.log.suffix(400))")
    }
}
