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

    /// `body`'s answer on a store prepared in a temporary directory, closed afterwards.
    static func onFreshStore<T: Sendable>(_ body: (SQLiteWorkflowStore) async throws -> T) async throws -> T {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = SQLiteWorkflowStore(path: directory.file("store.sqlite"))
        try await store.prepare()
        do {
            let result = try await body(store)
            try await store.close()
            return result
        } catch {
            try? await store.close()
            throw error
        }
    }

    @Test("completions look their runs up by id, not by visiting every active run", arguments: [1, 40])
    func runProgressPlan(rows: Int) async throws {
        let plan = try await Self.onFreshStore { try await $0.queryPlan(ofValuesStatement: SQLiteWorkflowStore.runProgressUpdate, rows: rows, columns: 5) }
        #expect(plan.contains { $0.contains("SEARCH runs USING INDEX sqlite_autoindex_runs_1 (id=?)") }, "\(plan)")
        #expect(!plan.contains { $0.contains("runs_by_status") }, "\(plan)")
    }

    /// These run at every creation and finish of a run with `max_active_runs`, and at every timeout
    /// sweep: a plan through runs_by_workflow visits every run the workflow ever had.
    @Test("limits and run timeouts find active runs by status or deadline, not by visiting a workflow's history", arguments: [
        (SQLiteWorkflowStore.activeRunCount, 1, "SEARCH runs USING INDEX runs_by_status (status=?)"),
        (SQLiteWorkflowStore.waitingReasonUpdate, 3, "SEARCH runs USING INDEX runs_by_status (status=?)"),
        (SQLiteWorkflowStore.oldestWaitingRuns, 2, "SEARCH runs USING INDEX runs_by_status (status=?)"),
        (SQLiteWorkflowStore.dueDeadlines, 2, "SEARCH runs USING INDEX runs_deadline (deadline_at>? AND deadline_at<?)"),
    ])
    func activeRunPlans(statement: String, parameters: Int, expected: String) async throws {
        let plan = try await Self.onFreshStore { try await $0.queryPlan(of: statement, parameters: parameters) }
        #expect(plan.contains { $0.contains(expected) }, "\(plan)")
        #expect(!plan.contains { $0.contains("runs_by_workflow") || $0.hasPrefix("SCAN") }, "\(plan)")
    }

    @Test("a database from before migration 10 loses runs_active and keeps its runs")
    func dropsRunsActive() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.sqlite")
        let store = SQLiteWorkflowStore(path: path)
        try await store.prepare()
        try await store.close()
        // Back to version 9 as an older DeerFlow left it: with the index, and a run.
        try Self.sqlite(path, """
            CREATE INDEX runs_active ON runs (status) WHERE status IN ('pending', 'running');
            UPDATE deerflow_meta SET value = '9' WHERE key = 'schema_version';
            INSERT INTO runs (id, workflow, version, status, params, trigger, created_at, tasks_total)
            VALUES ('r1', 'w', 'v', 'success', '{}', 'api', 0, 0);
            """)
        let reopened = SQLiteWorkflowStore(path: path)
        try await reopened.prepare()
        // Read first: EXPLAIN does not check the schema's version, so it would show the reading
        // connection's schema from before the migration.
        let run = try await reopened.run(RunID(rawValue: "r1"))
        let plan = try await reopened.queryPlan(of: "SELECT count(*) FROM runs WHERE status IN ('pending', 'running')", parameters: 0)
        try await reopened.close()
        #expect(!plan.contains { $0.contains("runs_active") }, "\(plan)")
        #expect(run?.run.status == .success)
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
