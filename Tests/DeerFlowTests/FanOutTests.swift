import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// A real `deerflow server` with 2 slots and a 1 h poll interval runs a 1 → 12 → 1 fan-out:
/// every wave starts as a slot frees, none waits for a poll.
@Suite("Fan-out wider than the slots")
struct FanOutTests {
    @Test("a server with fewer slots than the fan-out claims queued work as slots free, not at the next poll")
    func fanOutDoesNotWaitForPolls() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/fan.yaml", FanOutScenario.workflow(width: 12))
        try directory.write("config/deerflow.yaml", FanOutScenario.config)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"),
            workers: true)
        defer { server.stop() }
        let api = try await server.apiPort()
        try await FanOutScenario.check(api: api)
    }
}
