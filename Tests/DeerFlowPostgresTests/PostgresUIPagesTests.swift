import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Every UI page through a real `deerflow server` on PostgreSQL (the SQLite suite runs the same scenario).
@Suite("UI pages on PostgreSQL")
struct PostgresUIPagesTests {
    @Test("every page answers 200 with its content; a 500-task run's page within 150 KB; the Metrics page draws the Grafana dashboard's panels")
    func pages() async throws {
        try await withTestDatabase("uipages") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try UIScenario.write(into: directory)
            let server = try ServerProcess.server(
                database: database.url, workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
            defer { server.stop() }
            try await UIScenario.check(api: try await server.apiPort())
        }
    }
}
