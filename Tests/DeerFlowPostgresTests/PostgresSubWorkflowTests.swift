import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `type: workflow` tasks through a real `deerflow server` on PostgreSQL.
@Suite("Sub-workflows end to end (PostgreSQL)", .serialized)
struct PostgresSubWorkflowTests {
    @Test("a 3-level chain passes templated params down and outputs up, linked both ways; a failing or cancelled child fails its parent; cancelling the parent, its run timeout or its task timeout cancels the child; wait: false fires and forgets")
    func scenario() async throws {
        try await withTestDatabase("subflows") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for (name, text) in SubWorkflowScenario.workflows { try directory.write("workflows/\(name)", text) }
            let server = try ServerProcess.server(database: database.url, workflows: directory.file("workflows"), workers: true)
            defer { server.stop() }
            try await SubWorkflowScenario.check(api: try await server.apiPort())
        }
    }
}
