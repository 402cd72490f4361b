import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

@Suite("SQLite store")
struct SQLiteStoreTests {
    @Test("conformance", arguments: WorkflowStoreConformance.all)
    func conformance(_ check: WorkflowStoreConformance.Check<any WorkflowStore>) async throws {
        try await Self.withStore { try await check.run($0) }
    }

    @Test("conformance: direct start", arguments: WorkflowStoreConformance.directStartChecks)
    func directStart(_ check: WorkflowStoreConformance.Check<any WorkflowStore>) async throws {
        try await Self.withStore { try await check.run($0) }
    }

    @Test("conformance of the server capabilities", arguments: WorkflowStoreConformance.serverCapabilities)
    func serverCapabilities(_ check: WorkflowStoreConformance.Check<any ServerStore>) async throws {
        try await Self.withStore { try await check.run($0) }
    }

    @Test("a paused schedule and a backfill under way survive reopening the store")
    func pauseAndBackfillSurviveReopening() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.sqlite")
        try await WorkflowStoreConformance.pauseAndBackfillSurviveReopening { body in
            let store = SQLiteWorkflowStore(path: path)
            try await store.prepare()
            try await store.withRunning(body)
        }
    }

    /// A prepared store in a temporary directory, running while `body` uses it.
    static func withStore(_ body: @Sendable (SQLiteWorkflowStore) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = SQLiteWorkflowStore(path: directory.file("store.sqlite"))
        try await store.prepare()
        try await store.withRunning(body)
    }

    @Test("poisoned rows fail what cannot be processed, with a message, and the store keeps serving")
    func poisonedRows() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.sqlite")
        let store = SQLiteWorkflowStore(path: path)
        try await store.prepare()
        let largest = Int64.max
        do {
            try await WorkflowStoreConformance.poisonedRows(store) { corruption in
                let sql: String
                switch corruption {
                case .params(let id): sql = "UPDATE runs SET params = 'not json' WHERE id = '\(id)'"
                case .createdAt(let id): sql = "UPDATE runs SET created_at = \(largest) WHERE id = '\(id)'"
                case .attemptNumber(let id):
                    sql = "UPDATE attempts SET number = \(largest) WHERE run_id = '\(id)'; UPDATE tasks SET attempts = \(largest) WHERE run_id = '\(id)'"
                case .retryDelay(let id):
                    sql = "UPDATE tasks SET retry_delay_ms = \(largest), max_retry_delay_ms = \(largest) WHERE run_id = '\(id)'"
                }
                try Self.sqlite(path, sql)
            }
        } catch {
            try await store.close()
            throw error
        }
        try await store.close()
    }

    /// Runs SQL on the database file through Python's sqlite3, as a second connection.
    static func sqlite(_ path: String, _ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], timeout=30); c.executescript(sys.argv[2]); c.commit()", path, sql]
        try process.run()
        try #require(process.waitForExit(upTo: .seconds(60)), "python3 did not finish")
        #expect(process.terminationStatus == 0, "\(sql)")
    }

    @Test("completions look their runs up by id, not by visiting every active run", arguments: [1, 40])
    func runProgressPlan(rows: Int) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = SQLiteWorkflowStore(path: directory.file("store.sqlite"))
        try await store.prepare()
        let plan = try await store.queryPlan(ofValuesStatement: SQLiteWorkflowStore.runProgressUpdate, rows: rows, columns: 5)
        try await store.close()
        #expect(plan.contains { $0.contains("SEARCH runs USING INDEX sqlite_autoindex_runs_1 (id=?)") }, "\(plan)")
        #expect(!plan.contains { $0.contains("runs_active") }, "\(plan)")
    }

    @Test("a database written by a newer DeerFlow is refused with a clear error")
    func newerSchema() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.sqlite")
        let store = SQLiteWorkflowStore(path: path)
        try await store.prepare()
        try await store.close()
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        sqlite.arguments = ["python3", "-c", "import sqlite3; c = sqlite3.connect('\(path)'); c.execute(\"UPDATE deerflow_meta SET value = '99' WHERE key = 'schema_version'\"); c.commit()"]
        try sqlite.run()
        try #require(sqlite.waitForExit(upTo: .seconds(60)), "python3 did not finish")
        #expect(sqlite.terminationStatus == 0)
        let reopened = SQLiteWorkflowStore(path: path)
        await #expect {
            try await reopened.prepare()
        } throws: { error in
            "\(error)".contains("schema version 99, newer than this DeerFlow")
        }
    }

    @Test("a process killed in the middle of a transaction leaves a consistent database")
    func killedMidTransaction() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.sqlite")
        let store = SQLiteWorkflowStore(path: path)
        try await store.prepare()
        let committed = WorkflowStoreConformance.newRun(tasks: [("a", [])])
        _ = try await store.createRun(committed)
        try await store.close()
        // Another process starts a write transaction (a run row without its tasks) and is killed
        // before committing.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writer.arguments = ["python3", "-u", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect('\(path)', isolation_level=None)
            c.execute('BEGIN IMMEDIATE')
            c.execute("INSERT INTO runs (id, workflow, version, status, params, trigger, created_at, tasks_total) VALUES ('HALFWRITTEN', 'flow', 'v', 'pending', '{}', 'api', 0, 1)")
            c.execute("UPDATE tasks SET status = 'success'")
            print('inside', flush=True)
            time.sleep(60)
            """]
        let output = Pipe()
        writer.standardOutput = output
        try writer.run()
        let line = output.fileHandleForReading.availableData
        #expect(String(decoding: line, as: UTF8.self).contains("inside"))
        writer.stop()
        let reopened = SQLiteWorkflowStore(path: path)
        try await reopened.prepare()
        #expect(try await reopened.run(RunID(rawValue: "HALFWRITTEN")) == nil)
        let detail = try await reopened.run(committed.id)
        #expect(detail?.tasks.first?.status == .queued)
        // The store keeps working: the committed run can be claimed and finished.
        try await WorkflowStoreConformance.finishAll(reopened)
        #expect(try await reopened.run(committed.id)?.run.status == .success)
        try await reopened.close()
    }
}
