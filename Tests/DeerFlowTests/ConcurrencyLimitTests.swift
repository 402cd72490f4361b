import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Concurrency limits end to end on the embedded store: `deerflow server` with workers, the
/// limits from its YAML files, checked from the API's times, and shown by the gauges.
@Suite("Concurrency limits", .serialized)
struct ConcurrencyLimitTests {
    @Test("a server on SQLite keeps a queue with concurrency 2 at 2 running attempts and runs a max_active_runs 1 workflow one run at a time, in order; the gauges show the limits")
    func limitsOnSQLite() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try ConcurrencyScenario.write(into: directory)
        let server = try ServerProcess.server(
            database: "sqlite://\(directory.file("deerflow.sqlite"))", workflows: directory.file("workflows"), config: directory.file("config"),
            workers: true, extra: ["--slots", "8"])
        defer { server.stop() }
        let api = try await server.apiPort()
        let metrics = try await server.metricsPort()
        try await ConcurrencyScenario.check(apis: [api], directory: directory)
        #expect(await ClusterAPI.metric(port: metrics, #"deerflow_queue_concurrency_limit{queue="reports"}"#) == 2)
        #expect(await ClusterAPI.metric(port: metrics, #"deerflow_queue_running{queue="reports"}"#) == 0)
        #expect(await ClusterAPI.metric(port: metrics, #"deerflow_runs_waiting_for_limit{workflow="serial"}"#) == 0)
    }
}
