import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Webhooks end to end through real `deerflow server` processes on PostgreSQL: the scenario of
/// the SQLite test, and a second server of the same database answering a repeat with the run
/// the first created.
@Suite("PostgreSQL webhooks", .serialized)
struct PostgresWebhookTests {
    @Test("a signed delivery starts one run with the mapped params; repeats at another server of the same database start none")
    func endToEnd() async throws {
        try await withTestDatabase("webhooks") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            for (name, text) in WebhookScenario.workflows { try directory.write("workflows/\(name)", text) }
            let workflows = directory.file("workflows")
            let first = try ServerProcess.server(database: database.url, workflows: workflows, workers: true, environment: WebhookScenario.environment)
            let second = try ServerProcess.server(database: database.url, workflows: workflows, environment: WebhookScenario.environment)
            defer { for server in [first, second] { server.stop() } }
            let id = try await WebhookScenario.check(api: try await first.apiPort(), metrics: try await first.metricsPort(), server: first)
            try await WebhookScenario.checkRepeatAnswersTheSameRun(api: try await second.apiPort(), id: id)
        }
    }
}
