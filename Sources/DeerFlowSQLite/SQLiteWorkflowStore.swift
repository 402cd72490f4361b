public import DeerFlow
import DeerFlowCore
import ServiceLifecycle
import Foundation
public import Logging
import SQLiteNIO
import Synchronization

/// The embedded store: one SQLite file in WAL mode, shared by the processes of one machine.
///
/// Writes go through one connection, one transaction at a time (`BEGIN IMMEDIATE`); reads use a
/// second connection and never wait for writes. Each connection has a thread of its own, on
/// which a transaction runs from `BEGIN` to `COMMIT`. `synchronous=NORMAL`: a committed
/// transaction survives the process being killed at any point (a power loss may lose the last
/// commits, never consistency).
///
/// ```swift
/// let store = SQLiteWorkflowStore(path: ".deerflow/deerflow.sqlite")
/// try await store.prepare()
/// // ...
/// try await store.close()   // closes both connections and stops their threads
/// ```
public final class SQLiteWorkflowStore: WorkflowStore, OutboxStore, StateStore, RetentionStore, Sendable {
    /// Path of the database file.
    public let path: String
    let logger: Logger
    private let connections = AsyncOnce<(writer: SerializedConnection, reader: SerializedConnection)>()
    private let closed = Mutex(false)
    /// Concurrent triggers are inserted together, one transaction per batch.
    let runInserts: GroupCommit<RunInsert, CreatedRun?>
    /// The stored concurrency limits, as last read (``LimitSnapshot``).
    package let limitCache = LimitCache()
    /// Syncs the WAL after commits while the store runs as a service (``run()``).
    package let walFlusher: WALFlusher

    /// Creates a store for a file; `prepare()` opens it, creating the directory and schema.
    public init(path: String, logger: Logger = Logger(label: "deerflow.sqlite")) {
        self.path = path
        self.logger = logger
        walFlusher = WALFlusher(databasePath: path)
        let inserter = WeakReference<SQLiteWorkflowStore>()
        runInserts = GroupCommit { runs in
            guard let store = inserter.value else { throw DeerFlowError(.unavailable, "the SQLite store was closed") }
            return try await store.insertBatch(runs)
        }
        inserter.value = self
    }

    var writer: SerializedConnection {
        get throws { try connections.value.writer }
    }

    var reader: SerializedConnection {
        get throws { try connections.value.reader }
    }

    public func prepare() async throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw DeerFlowError(.unavailable, "cannot create the database directory '\(directory)': \(error.localizedDescription)")
            }
        }
        let writer: SerializedConnection
        let reader: SerializedConnection
        do {
            writer = try await SerializedConnection.open(path: path, committed: { [walFlusher] in walFlusher.committed() })
        } catch {
            throw DeerFlowError(.unavailable, "cannot open the SQLite database '\(path)': \(error)")
        }
        do {
            reader = try await SerializedConnection.open(path: path, readOnly: true)
        } catch {
            try? await writer.close()
            throw DeerFlowError(.unavailable, "cannot open the SQLite database '\(path)': \(error)")
        }
        do {
            try await configure(writer: writer, reader: reader)
            try await migrate(writer)
        } catch {
            try? await writer.close()
            try? await reader.close()
            if error is DeerFlowError { throw error }
            throw DeerFlowError(.unavailable, "cannot use the SQLite database '\(path)': \(error)")
        }
        connections.set((writer, reader))
    }

    private func configure(writer: SerializedConnection, reader: SerializedConnection) async throws {
        try await writer.exclusive { writer in
            // Takes effect on a new database only (before its first table): freed pages can then be
            // given back by `PRAGMA incremental_vacuum` after purges. An older database gets it from
            // `reclaimSpace(full: true)` (`deerflow purge --vacuum`).
            _ = try await writer.rows("PRAGMA auto_vacuum = INCREMENTAL")
            _ = try await writer.rows("PRAGMA journal_mode = WAL")
            // The committing connection copies the WAL into the database every 4,000 pages (16 MB)
            // instead of SQLite's 1,000: a quarter of the checkpoints, each held short by the
            // background sync (``WALFlusher``), so they leave a sequential client's p99.
            _ = try await writer.rows("PRAGMA wal_autocheckpoint = 4000")
        }
        for connection in [writer, reader] {
            // (Both wait up to 10 s for another process's write lock: ``DatabaseConnection``.)
            try await connection.exclusive { connection in
                _ = try await connection.rows("PRAGMA synchronous = NORMAL")
                _ = try await connection.rows("PRAGMA temp_store = MEMORY")
            }
        }
    }

    private func migrate(_ writer: SerializedConnection) async throws {
        let latest = SQLiteSchema.migrations.count
        try await writer.transaction { db in
            _ = try await db.rows("CREATE TABLE IF NOT EXISTS deerflow_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            let current = try await db.rows("SELECT value FROM deerflow_meta WHERE key = 'schema_version'").first.flatMap { Int($0.string("value")) } ?? 0
            guard current <= latest else {
                throw DeerFlowError(.unavailable, "the database '\(path)' has schema version \(current), newer than this DeerFlow \(DeerFlowVersion.current) knows (\(latest)); run a newer DeerFlow or use another database")
            }
            for version in current..<latest {
                for statement in SQLiteSchema.migrations[version] {
                    _ = try await db.rows(statement)
                }
            }
            if current != latest {
                _ = try await db.rows(
                    "INSERT INTO deerflow_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [.text(String(latest))])
                logger.info("database migrated", metadata: ["path": "\(path)", "from": "\(current)", "to": "\(latest)"])
            }
        }
    }

    /// Syncs the write-ahead log to disk shortly after commits (``WALFlusher``: it keeps
    /// SQLite's periodic checkpoint, which runs inside a committing request, short) until graceful
    /// shutdown or cancellation; then the store closes.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [walFlusher, logger] in
            await walFlusher.run(logger: logger)
        }
        try await close()
    }

    public func close() async throws {
        guard let (writer, reader) = try? connections.value else { return }
        guard !closed.withLock({ closed in defer { closed = true }; return closed }) else { return }
        // Closing must finish even when the caller was cancelled (a cancelled service group):
        // sqlite-nio gives up on a cancelled task, and a connection left open traps at deinit. A
        // task of its own does not inherit the cancellation; it is awaited here.
        try await Task {
            // Both are closed (and their threads stopped) even when closing the first fails.
            var failure: (any Error)?
            for connection in [writer, reader] {
                do {
                    try await connection.close()
                } catch {
                    failure = failure ?? error
                }
            }
            if let failure { throw failure }
        }.value
    }

    public func ping() async throws {
        _ = try await reader.exclusive { try await $0.rows("SELECT 1") }
    }

    /// SQLite's plan for one of the store's statements over `rows` rows of values (tests check
    /// that hot statements use the intended indexes).
    package func queryPlan(ofValuesStatement template: String, rows: Int, columns: Int) async throws -> [String] {
        try await queryPlan(of: valuesStatement(template, rows: rows, columns: columns), parameters: rows * columns)
    }

    /// SQLite's plan for a statement with `parameters` parameters.
    package func queryPlan(of sql: String, parameters: Int) async throws -> [String] {
        try await reader.exclusive { db in
            try await db.rows("EXPLAIN QUERY PLAN " + sql, Array(repeating: .null, count: parameters)).map { $0.string("detail") }
        }
    }
}

/// A value set once (by `prepare()`) and read many times.
final class AsyncOnce<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)

    func set(_ value: Value) { storage.withLock { $0 = value } }

    var value: Value {
        get throws {
            guard let value = storage.withLock({ $0 }) else {
                throw DeerFlowError(.unavailable, "the SQLite store is not open; call prepare() first")
            }
            return value
        }
    }
}

/// A weak reference that can be shared with closures created before `self` exists.
final class WeakReference<Object: AnyObject & Sendable>: Sendable {
    private let weakBox = Mutex<WeakBox>(WeakBox())

    private struct WeakBox: @unchecked Sendable {
        weak var object: Object?
    }

    var value: Object? {
        get { weakBox.withLock { $0.object } }
        set { weakBox.withLock { $0.object = newValue } }
    }
}
