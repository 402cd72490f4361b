import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `for_each` through a real `deerflow server` on PostgreSQL (the SQLite suite runs the same scenario).
@Suite("Dynamic fan-out on PostgreSQL")
struct PostgresMappedFanOutTests {
    @Test("1,000 mapped instances reach the downstream in order; max_parallel, a retried instance, the limit and an empty list")
    func mappedFanOut() async throws {
        try await withTestDatabase("mapped") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try MapScenario.write(into: directory)
            let server = try ServerProcess.server(
                database: database.url, workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
            defer { server.stop() }
            let api = try await server.apiPort()
            try await MapScenario.check(api: api)
        }
    }
}
