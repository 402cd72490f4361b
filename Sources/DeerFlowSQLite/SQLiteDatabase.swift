import DeerFlow
import DeerFlowCore
import Foundation
import Logging
import SQLiteNIO
import Synchronization

/// One SQLite connection used by one caller at a time (statements of a transaction must not
/// interleave with another caller's), with a thread of its own.
///
/// sqlite-nio runs each statement on a thread pool and resumes the caller on Swift's cooperative
/// pool: two thread wake-ups per statement (about 65 µs here), which would dominate a transaction
/// of eight statements. So each connection gets a one-thread pool, and the code holding the
/// connection prefers that same thread as its task executor: a statement and the code around it
/// then follow each other on one thread as queued work items, without waking another thread.
final class SerializedConnection: Sendable {
    let connection: SQLiteConnection
    private let lock = AsyncLock()
    private let executor: ThreadPoolExecutor
    /// Called after each `COMMIT` of ``transaction(immediate:_:)``.
    private let committed: @Sendable () -> Void

    /// Opens a connection on a thread of its own; `committed` is called after each transaction
    /// it commits.
    static func open(path: String, logger: Logger, committed: @escaping @Sendable () -> Void = {}) async throws -> SerializedConnection {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            let connection = try await SQLiteConnection.open(storage: .file(path: path), threadPool: pool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any())
            return SerializedConnection(connection: connection, executor: ThreadPoolExecutor(pool: pool), committed: committed)
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
    }

    private init(connection: SQLiteConnection, executor: ThreadPoolExecutor, committed: @escaping @Sendable () -> Void) {
        self.connection = connection
        self.executor = executor
        self.committed = committed
    }

    /// Runs `body` with exclusive use of the connection, inside `BEGIN IMMEDIATE`/`COMMIT`
    /// (write transactions take the write lock up front, so two processes never deadlock on an
    /// upgrade).
    func transaction<T: Sendable>(immediate: Bool = true, _ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await exclusive { connection in
            _ = try await connection.rows(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
            do {
                let result = try await body(connection)
                _ = try await connection.rows("COMMIT")
                committed()
                return result
            } catch {
                _ = try? await connection.rows("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs `body` with exclusive use of the connection, without a transaction.
    func exclusive<T: Sendable>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(executor) {
            try await lock.withLock { try await body(connection) }
        }
    }

    /// Closes the connection and stops its thread (also when closing the connection fails).
    func close() async throws {
        do {
            try await exclusive { try await $0.close() }
        } catch {
            try? await executor.pool.shutdownGracefully()
            throw error
        }
        try await executor.pool.shutdownGracefully()
    }
}

/// Runs tasks' jobs as work items of a thread pool (here: the one thread of a SQLite connection).
final class ThreadPoolExecutor: TaskExecutor {
    let pool: NIOThreadPool

    init(pool: NIOThreadPool) {
        self.pool = pool
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pool.submit { state in
            switch state {
            case .active:
                job.runSynchronously(on: self.asUnownedTaskExecutor())
            case .cancelled:
                // The pool was shut down: the job still has to run, on the shared pool.
                globalConcurrentExecutor.enqueue(job)
            }
        }
    }
}

extension SQLiteConnection {
    /// Runs a statement and collects its rows (on the connection's thread, without hopping per row).
    func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [SQLiteRow] {
        let collected = Mutex<[SQLiteRow]>([])
        try await query(sql, binds) { row in
            collected.withLock { $0.append(row) }
        }
        return collected.withLock { $0 }
    }
}

/// A FIFO async mutex.
final class AsyncLock: Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        let acquired = state.withLock { state -> Bool in
            if state.locked { return false }
            state.locked = true
            return true
        }
        if acquired { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if !state.locked {
                    state.locked = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            // Ownership passes directly to the next waiter; `locked` stays true.
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Conversions between DeerFlow values and SQLite columns.
enum Column {
    /// Timestamps are stored as integer microseconds since 1970.
    static func time(_ date: Date) -> SQLiteData { .integer(micros(date)) }
    static func time(_ date: Date?) -> SQLiteData { date.map(time) ?? .null }
    /// Clamped to the storable range first, so no date (a poisoned row's, read and written back)
    /// can overflow the integer.
    static func micros(_ date: Date) -> Int { Int((date.storable.timeIntervalSince1970 * 1_000_000).rounded()) }
    static func date(_ value: SQLiteData?) -> Date? {
        guard let value, let micros = integer(value) else { return nil }
        return Date(timeIntervalSince1970: Double(micros) / 1_000_000).storable
    }
    /// The integer in a column. Unlike `SQLiteData.integer`, a REAL too large for an integer (a
    /// corrupted or hand-written row) gives nil instead of trapping.
    static func integer(_ value: SQLiteData) -> Int? {
        switch value {
        case .integer(let integer): return integer
        case .float(let double): return Int(exactly: double.rounded(.towardZero))
        case .text(let text): return Int(text)
        case .blob, .null: return nil
        }
    }
    static func text(_ value: String?) -> SQLiteData { value.map(SQLiteData.text) ?? .null }
    static func int(_ value: Int?) -> SQLiteData { value.map { .integer($0) } ?? .null }
}

extension SQLiteRow {
    func string(_ name: String) -> String { column(name)?.string ?? "" }
    func optionalString(_ name: String) -> String? {
        guard let value = column(name), value != .null else { return nil }
        return value.string
    }
    func int(_ name: String) -> Int { column(name).flatMap(Column.integer) ?? 0 }
    func optionalInt(_ name: String) -> Int? {
        guard let value = column(name), value != .null else { return nil }
        return Column.integer(value)
    }
    func double(_ name: String) -> Double { column(name)?.double ?? 0 }
    func date(_ name: String) -> Date? { Column.date(column(name)) }
}

/// A statement over rows of bound values: the template names them `v.column1`, `v.column2`, …
/// and has `{values}` where the table of rows goes (`FROM (VALUES (?, ?), (?, ?)) AS v`). For a
/// single row the table is left out and `v.columnN` becomes `?N`: SQLite compiles and runs that
/// form about twice as fast, and one row is the common case (a worker handing back one attempt).
/// (A byte scan: `String.replacing` takes about ten times as long, as much as SQLite saves.)
func valuesStatement(_ template: String, rows: Int, columns: Int) -> String {
    let table = rows == 1 ? "" : "FROM (VALUES \(placeholders(rows: rows, columns: columns))) AS v"
    let marker = Array("{values}".utf8)
    let column = Array("v.column".utf8)
    var sql: [UInt8] = []
    sql.reserveCapacity(template.utf8.count + table.utf8.count)
    var template = template
    template.withUTF8 { bytes in
        func starts(_ word: [UInt8], at index: Int) -> Bool {
            index + word.count <= bytes.count && word.indices.allSatisfy { bytes[index + $0] == word[$0] }
        }
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "{"), starts(marker, at: index) {
                sql += table.utf8
                index += marker.count
            } else if rows == 1, bytes[index] == UInt8(ascii: "v"), starts(column, at: index) {
                sql.append(UInt8(ascii: "?"))
                index += column.count
            } else {
                sql.append(bytes[index])
                index += 1
            }
        }
    }
    return String(decoding: sql, as: UTF8.self)
}

/// An `INSERT` of rows of bound values: `head` is `INSERT INTO table (columns)`, `select` the
/// inserted values in terms of `v.column1`, `v.column2`, … (as in ``valuesStatement(_:rows:columns:)``),
/// `tail` what follows (`ON CONFLICT …`, `RETURNING …`). Several rows are inserted as `SELECT
/// select FROM (VALUES …) AS v WHERE true tail` (the `WHERE` keeps SQLite from reading `ON` as a
/// join constraint); a single row as `VALUES (select) tail`, which SQLite compiles 1–2.5 µs faster
/// than the `SELECT` form (a run's insert: 13.7 instead of 16.1 µs), on every trigger and hop.
func valuesInsert(_ head: String, select: String, tail: String = "", rows: Int, columns: Int) -> String {
    if rows == 1 {
        return valuesStatement("\(head) VALUES (\(select)) \(tail)", rows: 1, columns: columns)
    }
    return valuesStatement("\(head) SELECT \(select) {values} WHERE true \(tail)", rows: rows, columns: columns)
}

/// `(?, ?, ?), (?, ?, ?)` for `rows` rows of `columns` values.
func placeholders(rows: Int, columns: Int) -> String {
    let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
    return Array(repeating: row, count: rows).joined(separator: ", ")
}

/// `?, ?, ?` for a list.
func placeholders(_ count: Int) -> String {
    Array(repeating: "?", count: count).joined(separator: ", ")
}
