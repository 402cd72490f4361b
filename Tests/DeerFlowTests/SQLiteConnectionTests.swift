import DeerFlow
import DeerFlowCore
@testable import DeerFlowHTTP
@testable import DeerFlowSQLite
import DeerFlowTesting
import Foundation
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization
import Testing

/// DeerFlow's SQLite connection (``DatabaseConnection``), which keeps compiled statements.
@Suite("SQLite connection")
struct SQLiteConnectionTests {
    static func withConnection(_ body: (SerializedConnection) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connection = try await SerializedConnection.open(path: directory.file("test.sqlite"))
        do {
            try await connection.exclusive { db in
                _ = try await db.rows("PRAGMA journal_mode = WAL")
                _ = try await db.rows("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)")
            }
            try await body(connection)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    @Test("a kept statement gives each use its own binds and rows, with every kind of value")
    func reuse() async throws {
        try await Self.withConnection { connection in
            let insert = "INSERT INTO t (id, name, score, data) VALUES (?, ?, ?, ?)"
            let select = "SELECT id, name, score, data FROM t WHERE id = ?"
            let values: [[SQLiteData]] = [
                [.integer(1), .text("plain"), .float(1.5), .blob(ByteBuffer(bytes: [0, 1, 2, 255]))],
                [.integer(2), .text("ünïcødé ✓ and a NUL: a\u{0}b"), .float(-0.25), .null],
                [.integer(3), .null, .null, .blob(ByteBuffer())],
            ]
            try await connection.transaction { db in
                for row in values { _ = try await db.rows(insert, row) }
            }
            try await connection.exclusive { db in
                #expect(db.keptStatements.contains(insert))
                for row in values {
                    let found = try await db.rows(select, [row[0]])
                    #expect(found.count == 1)
                    #expect(found.first?.values == row)
                    #expect(found.first?.column("name") == row[1])
                    #expect(found.first?.column("missing") == nil)
                }
                #expect(db.keptStatements.contains(select))
                #expect(try await db.rows(select, [.integer(4)]).isEmpty)
                let all = try await db.rows("SELECT id FROM t ORDER BY id")
                #expect(all.map { $0.column("id") } == [.integer(1), .integer(2), .integer(3)])
            }
        }
    }

    @Test("a failed statement throws SQLite's message and stays usable; a failed transaction rolls back")
    func failures() async throws {
        try await Self.withConnection { connection in
            let insert = "INSERT INTO t (id, name) VALUES (?, ?)"
            try await connection.exclusive { db in
                _ = try await db.rows(insert, [.integer(1), .text("first")])
                do {
                    _ = try await db.rows(insert, [.integer(1), .text("again")])
                    Issue.record("a duplicate id was inserted")
                } catch let failure as SQLiteFailure {
                    #expect(failure.description.contains("UNIQUE constraint failed: t.id"))
                }
                _ = try await db.rows(insert, [.integer(2), .text("second")])
                await #expect(throws: SQLiteFailure.self) { _ = try await db.rows("SELECT nonsense FROM nowhere") }
                await #expect(throws: SQLiteFailure.self) { _ = try await db.rows(insert, [.integer(3)]) }
            }
            await #expect(throws: SQLiteFailure.self) {
                try await connection.transaction { db in
                    _ = try await db.rows(insert, [.integer(3), .text("rolled back")])
                    _ = try await db.rows(insert, [.integer(1), .text("duplicate")])
                }
            }
            try await connection.exclusive { db in
                let names = try await db.rows("SELECT name FROM t ORDER BY id").map { $0.column("name") }
                #expect(names == [.text("first"), .text("second")])
            }
        }
    }

    @Test("after a schema change, kept statements see the new columns")
    func schemaChange() async throws {
        try await Self.withConnection { connection in
            try await connection.exclusive { db in
                _ = try await db.rows("INSERT INTO t (id, name) VALUES (1, 'one')")
                let select = "SELECT * FROM t WHERE id = ?"
                #expect(try await db.rows(select, [.integer(1)]).first?.column("extra") == nil)
                _ = try await db.rows("ALTER TABLE t ADD COLUMN extra TEXT NOT NULL DEFAULT 'added'")
                #expect(try await db.rows(select, [.integer(1)]).first?.column("extra") == .text("added"))
            }
        }
    }

    @Test("at most 128 statements are kept, the least recently used leave first; long statements and pragmas are not kept")
    func cacheBounds() async throws {
        try await Self.withConnection { connection in
            try await connection.exclusive { db in
                let hot = "SELECT count(*) AS n FROM t"
                for index in 0..<300 {
                    _ = try await db.rows("SELECT \(index) AS value")
                    if index % 10 == 0 { _ = try await db.rows(hot) }
                }
                #expect(db.keptStatements.count == DatabaseConnection.cacheLimit)
                #expect(db.keptStatements.contains(hot))
                #expect(db.keptStatements.contains("SELECT 299 AS value"))
                #expect(!db.keptStatements.contains("SELECT 0 AS value"))

                let long = "SELECT " + (0..<1_000).map { "\($0) AS c\($0)" }.joined(separator: ", ")
                #expect(long.utf8.count > DatabaseConnection.longestCached)
                let row = try await db.rows(long).first
                #expect(row?.column("c999") == .integer(999))
                #expect(!db.keptStatements.contains(long))
                _ = try await db.rows("PRAGMA user_version")
                #expect(!db.keptStatements.contains("PRAGMA user_version"))
            }
        }
    }
}

extension SQLiteConnectionTests {
    @Test("the store's statements stay compiled while runs are created, claimed, completed, listed and read (SQLite compiles none again)")
    func storeStatementsStayCompiled() async throws {
        try await SQLiteStoreTests.withStore { store in
            for round in 0..<20 {
                let runs = (0..<(round % 3 + 1)).map { _ in WorkflowStoreConformance.newRun(tasks: [("a", []), ("b", ["a"])]) }
                for run in runs { _ = try await store.createRun(run) }
                // Claim limits that differ from one call to the next, as free slots do.
                for limit in [round % 4 + 1, 64, 1] {
                    let claimed = try await store.exchange(ExchangeRequest(
                        completions: [], claim: ClaimRequest(worker: "w", queues: ["default"], limit: limit, leaseDuration: .seconds(60)), now: Date())).claimed
                    let completions = claimed.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0) }
                    _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: Date()))
                }
                var query = RunQuery()
                query.limit = round % 5 + 1
                _ = try await store.runs(query)
                query.workflow = runs[0].workflow
                _ = try await store.runs(query)
                for run in runs { _ = try await store.run(run.id) }
            }
            let writer = try await store.writer.exclusive { $0.repreparations }
            let reader = try await store.reader.exclusive { $0.repreparations }
            #expect(writer.isEmpty, "compiled again: \(writer)")
            #expect(reader.isEmpty, "compiled again: \(reader)")
        }
    }
}

extension SQLiteConnectionTests {
    @Test("statement chunks: at most the limit, each cut by the binary digits of its size, in order")
    func statementChunks() {
        #expect(Array(0..<13).statementChunks(limit: 900).map(\.count) == [8, 4, 1])
        #expect(Array(0..<64).statementChunks(limit: 900).map(\.count) == [64])
        #expect(Array(0..<63).statementChunks(limit: 900).map(\.count) == [32, 16, 8, 4, 2, 1])
        #expect(Array(0..<100).statementChunks(limit: 900).map(\.count) == [64, 32, 4])
        #expect(Array(0..<13).statementChunks(limit: 5).map(\.count) == [4, 1, 4, 1, 2, 1])
        #expect(Array(0..<1_901).statementChunks(limit: 900).map(\.count) == [512, 256, 128, 4, 512, 256, 128, 4, 64, 32, 4, 1])
        #expect([Int]().statementChunks(limit: 900).isEmpty)
        for count in 0..<200 {
            let elements = Array(0..<count)
            #expect(elements.statementChunks(limit: 90).flatMap { $0 } == elements)
        }
    }

    @Test("batches of every size from 1 to 64 runs (up to 128 tasks) leave at most eight forms of each statement compiled")
    func fewFormsPerStatement() async throws {
        try await SQLiteStoreTests.withStore { store in
            for size in 1...64 {
                let runs = (0..<size).map { _ in WorkflowStoreConformance.newRun(tasks: [("a", []), ("b", ["a"])]) }
                _ = try await store.createRuns(runs)
                // Claimed and completed in batches of the same size: the first tasks, then their dependents.
                for _ in 0..<2 {
                    let claimed = try await store.exchange(ExchangeRequest(
                        completions: [], claim: ClaimRequest(worker: "w", queues: ["default"], limit: size, leaseDuration: .seconds(60)), now: Date())).claimed
                    #expect(claimed.count == size)
                    let completions = claimed.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0) }
                    _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: Date()))
                }
            }
            let kept = try await store.writer.exclusive { $0.keptStatements }
            // A statement's forms differ only in their lists of rows or values.
            var forms: [String: Int] = [:]
            for sql in kept {
                let kind = sql.replacing(/\((\?(, )?)+\)(, )?/, with: "").replacing(/\?\d*/, with: "?")
                forms[kind, default: 0] += 1
            }
            let most = forms.values.max() ?? 0
            #expect(most <= 8, "\(forms.filter { $0.value > 8 }.map { "\($0.value) forms of \($0.key.prefix(60))" })")
            #expect(kept.count < DatabaseConnection.cacheLimit)
            let latest = try await store.runs(RunQuery()).runs
            #expect(!latest.isEmpty && latest.allSatisfy { $0.status == .success })
        }
    }

    @Test("a 1,000-run batch, claimed and completed 1,000 at a time, compiles no statement the second time")
    func largeBatchesUseKeptStatements() async throws {
        try await SQLiteStoreTests.withStore { store in
            func round() async throws {
                let runs = (0..<1_000).map { _ in WorkflowStoreConformance.newRun(tasks: [("a", []), ("b", ["a"])]) }
                #expect(try await store.createRuns(runs).count == 1_000)
                for _ in 0..<2 {
                    let claimed = try await store.exchange(ExchangeRequest(
                        completions: [], claim: ClaimRequest(worker: "w", queues: ["default"], limit: 1_000, leaseDuration: .seconds(60)), now: Date())).claimed
                    #expect(claimed.count == 1_000)
                    let completions = claimed.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0) }
                    _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: Date()))
                }
            }
            try await round()
            let before = try await store.writer.exclusive { $0.compilations }
            try await round()
            let after = try await store.writer.exclusive { $0.compilations }
            // Before batches ran in forms of up to 512 rows (and IN lists of up to 900 values), longer
            // than the connection keeps: every large batch compiled its statements again.
            #expect(after == before)
            let runs = try await store.runs(RunQuery(limit: 1_000)).runs
            #expect(runs.count == 1_000 && runs.allSatisfy { $0.status == .success })
        }
    }

    /// Two connections to a fresh file (the second as another process would have, read-only when
    /// asked) and an event loop with the executor DeerFlow's HTTP listeners run their handlers on;
    /// all closed after `body`.
    static func withTwoConnectionsAndLoop(
        secondReadOnly: Bool = false,
        _ body: (SerializedConnection, SerializedConnection, any EventLoop, EventLoopTaskExecutor) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("test.sqlite")
        let first = try await SerializedConnection.open(path: path)
        let second = try await SerializedConnection.open(path: path, readOnly: secondReadOnly)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let outcome: Result<Void, any Error>
        do {
            try await body(first, second, loop, EventLoopTaskExecutor(eventLoop: loop))
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try await second.close()
        try await first.close()
        try await group.shutdownGracefully()
        try outcome.get()
    }

    /// Holds `holder`'s lock (its transaction begun) until `waiter` has found it taken on the event loop
    /// and gone to wait on its thread, or for 2 s: work that waited for the lock on the loop
    /// (SQLite's busy handler, up to 10 s) would then get it there, and the test's last expectation
    /// fails.
    static func holdLock(of holder: SerializedConnection, until waiter: SerializedConnection) async throws {
        for _ in 0..<200 where waiter.lockTakenOnEventLoop.load(ordering: .relaxed) == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        try await holder.exclusive { db in _ = try await db.rows("COMMIT") }
    }

    @Test("a write transaction asked for on an event loop runs there; when another process holds the write lock, it waits on the connection's thread instead")
    func writeTransactionsOnEventLoops() async throws {
        try await Self.withTwoConnectionsAndLoop { connection, other, loop, executor in
            try await connection.exclusive { db in
                _ = try await db.rows("PRAGMA journal_mode = WAL")
                _ = try await db.rows("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
            }
            @Sendable func insert(_ name: String) async throws -> Bool {
                try await connection.transaction { db in
                    _ = try await db.rows("INSERT INTO t (name) VALUES (?)", [.text(name)])
                    return loop.inEventLoop
                }
            }
            let free = try await withTaskExecutorPreference(executor) { try await insert("free") }
            #expect(free, "with the write lock free, the transaction runs on the event loop")

            try await other.exclusive { db in _ = try await db.rows("BEGIN IMMEDIATE") }
            let taken = Task(executorPreference: executor) { try await insert("taken") }
            try await Self.holdLock(of: other, until: connection)
            #expect(try await taken.value == false, "it waited for the lock on the connection's thread, not on the loop")
            let names = try await connection.exclusive { db in try await db.rows("SELECT name FROM t ORDER BY id").map { $0.string("name") } }
            #expect(names == ["free", "taken"])
        }
    }

    @Test("a read on a read-only connection asked for on an event loop runs there; when another process holds a lock it would wait for, it runs again on the connection's thread")
    func readsOnEventLoops() async throws {
        try await Self.withTwoConnectionsAndLoop(secondReadOnly: true) { writer, reader, loop, executor in
            // A rollback journal, where a reader waits for a writer's exclusive lock (in WAL mode it
            // never does, outside a log recovery).
            try await writer.exclusive { db in
                _ = try await db.rows("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
                _ = try await db.rows("INSERT INTO t (name) VALUES ('a')")
            }
            @Sendable func read() async throws -> (count: Int?, onLoop: Bool) {
                try await reader.exclusive { db in
                    (try await db.rows("SELECT count(*) AS n FROM t").first?.int("n"), loop.inEventLoop)
                }
            }
            let free = try await withTaskExecutorPreference(executor) { try await read() }
            #expect(free.count == 1 && free.onLoop, "with no lock taken, the read runs on the event loop")
            await #expect(throws: SQLiteFailure.self, "the reader refuses to write") {
                try await reader.exclusive { _ = try await $0.rows("INSERT INTO t (name) VALUES ('b')") }
            }

            try await writer.exclusive { db in _ = try await db.rows("BEGIN EXCLUSIVE") }
            let taken = Task(executorPreference: executor) { try await read() }
            try await Self.holdLock(of: writer, until: reader)
            let result = try await taken.value
            #expect(result.count == 1)
            #expect(result.onLoop == false, "it waited for the lock on the connection's thread, not on the loop")
        }
    }
}
