import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

@Suite("Data between tasks on a real server")
struct DataPassingTests {
    @Test("outputs, templates and secrets on SQLite: a task's $DEERFLOW_OUTPUT reaches the next through argv, env and an http URL; errors are clear")
    func dataBetweenTasks() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/data.yaml", DataPassingScenario.workflow)
        try directory.write("config/deerflow.yaml", DataPassingScenario.config)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"),
            workers: true, environment: DataPassingScenario.environment)
        defer { server.stop() }
        try await DataPassingScenario.check(api: try await server.apiPort())
        #expect(!server.log.contains(DataPassingScenario.secretValue))
    }

    @Test("a template reading a secret deerflow.yaml does not declare stops the server with a message naming it")
    func undeclaredSecret() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/data.yaml", DataPassingScenario.workflow)
        try directory.write("config/deerflow.yaml", "worker:\n  slots: 2\n")
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        #expect(try await server.waitForExit(timeout: .seconds(30)) != 0)
        #expect(server.log.contains("workflow 'data' reads {{ secrets.API_TOKEN }}, but deerflow.yaml declares no secrets"), "\(server.log)")
    }

    @Test("a secret whose variable is not set stops the server with a message naming the file, the secret and the variable")
    func unsetSecret() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/data.yaml", DataPassingScenario.workflow)
        try directory.write("config/deerflow.yaml", DataPassingScenario.config)
        let server = try ServerProcess.server(
            database: "sqlite://" + directory.file("db.sqlite"), workflows: directory.file("workflows"), config: directory.file("config"), workers: true)
        defer { server.stop() }
        #expect(try await server.waitForExit(timeout: .seconds(30)) != 0)
        #expect(server.log.contains("deerflow.yaml:2: secret 'API_TOKEN': environment variable DATA_TEST_TOKEN is not set"), "\(server.log)")
    }
}
