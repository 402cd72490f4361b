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
            // One delivery sent to both servers at once, five times each: one run.
            let apis = [try await first.apiPort(), try await second.apiPort()]
            let before = try await WebhookScenario.runs(api: apis[0]).count
            let answers = try await withThrowingTaskGroup(of: TestServer.Answer.self) { group in
                for index in 0..<10 {
                    group.addTask { try await WebhookScenario.post(api: apis[index % 2], body: WebhookScenario.push, delivery: "both-servers") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == 202 }, "\(answers.map(\.text))")
            #expect(Set(answers.map(\.text).map { $0.replacingOccurrences(of: "\"duplicate\":true", with: "").replacingOccurrences(of: "\"duplicate\":false", with: "") }).count == 1, "\(answers.map(\.text))")
            #expect(try await WebhookScenario.runs(api: apis[0]).count == before + 1)
        }
    }
}
