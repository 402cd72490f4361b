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
        try await MapScenario.check(api: api)
    }
}
