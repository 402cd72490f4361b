import DeerFlow
@testable import DeerFlowPostgres
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Logging
import PostgresNIO

/// A database of its own for one test, on the server of `DEERFLOW_TEST_POSTGRES_URL` (which
/// `scripts/test` starts), so suites run in parallel without seeing each other's rows.
struct TestDatabase: Sendable {
    let name: String
    let url: String
    let admin: PostgresWorkflowStore.Configuration

    static let variable = "DEERFLOW_TEST_POSTGRES_URL"

    /// The server URL, or an error that says how to get one (tests fail rather than skip).
    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw ProcessFailure("""
                \(variable) is not set. The PostgreSQL suites need a server: run scripts/test (it installs PostgreSQL \
                when missing and starts a throwaway cluster), or export \(variable)=postgres://USER:PASSWORD@HOST:PORT/postgres \
                for a server where USER may CREATE DATABASE.
                """)
        }
        return url
    }

    /// Creates an empty database named after the test.
    static func create(_ label: String = "t") async throws -> TestDatabase {
        let admin = try PostgresWorkflowStore.Configuration(url: try serverURL())
        let name = "deerflow_\(label.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(20))_\(UUID().uuidString.prefix(8).lowercased())"
        try await execute(on: admin, "CREATE DATABASE \(name)")
        guard var components = URLComponents(string: try serverURL()) else { throw ProcessFailure("\(variable) is not a URL") }
        components.path = "/" + name
        return TestDatabase(name: name, url: components.string ?? "", admin: admin)
    }

    /// Drops the database (with any sessions still connected to it).
    func drop() async {
        try? await Self.execute(on: admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Runs one statement on the server's admin database.
    static func execute(on configuration: PostgresWorkflowStore.Configuration, _ sql: String) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: try configuration.connectionConfiguration(purpose: "-test"), id: 1, logger: Logger(label: "deerflow.test.postgres"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "deerflow.test.postgres"))
            try await connection.close()
        } catch {
            try? await connection.close()
            throw ProcessFailure("\(sql): \(String(reflecting: error))")
        }
    }

    /// Rows of a query on this database (columns cast to text), for assertions.
    func rows(_ sql: String) async throws -> [[String?]] {
        try await rows(PostgresQuery(unsafeSQL: sql))
    }

    /// Runs a statement with its bind values on a connection of its own; answers its rows as text.
    func rows(_ query: PostgresQuery) async throws -> [[String?]] {
        let sql = query.sql
        let configuration = try PostgresWorkflowStore.Configuration(url: url)
        let logger = Logger(label: "deerflow.test.postgres")
        let connection = try await PostgresConnection.connect(configuration: try configuration.connectionConfiguration(purpose: "-test"), id: 2, logger: logger)
        do {
            var result: [[String?]] = []
            for try await row in try await connection.query(query, logger: logger) {
                result.append(try row.map { cell in try cell.decode(String?.self) })
            }
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw ProcessFailure("\(sql): \(String(reflecting: error))")
        }
    }
}

/// Runs `body` with a fresh database, dropped afterwards.
func withTestDatabase<T: Sendable>(_ label: String = "t", _ body: (TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create(label)
    do {
        let result = try await body(database)
        await database.drop()
        return result
    } catch {
        await database.drop()
        throw error
    }
}

/// Runs `body` with a prepared, running store on a fresh database; stops it and drops the
/// database afterwards.
func withPostgresStore<T: Sendable>(_ label: String = "t", _ body: @Sendable (PostgresWorkflowStore, TestDatabase) async throws -> T) async throws -> T {
    try await withTestDatabase(label) { database in
        let store = try PostgresWorkflowStore(url: database.url, logger: Logger(label: "deerflow.test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await store.prepare()
        return try await store.withRunning { store in try await body(store, database) }
    }
}
