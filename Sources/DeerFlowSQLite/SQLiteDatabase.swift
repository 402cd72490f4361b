import DeerFlow
import DeerFlowCore
import Foundation
import NIOCore
import NIOPosix
import SQLiteNIO
import Synchronization
// sqlite-nio's build of SQLite (its `sqlite_nio_`-prefixed C API), a C target that the SQLiteNIO
// product builds and links into the binary (not a product of its own: scripts/check-architecture
// lists it with SQLiteNIO). DeerFlow calls it directly, through ``DatabaseConnection``, to keep
// compiled statements (see there).
import VaporCSQLite

/// One SQLite connection used by one caller at a time (statements of a transaction must not
/// interleave with another caller's), with a thread of its own.
///
/// The code holding the connection prefers that thread as its task executor: a transaction's
/// statements run on it one after another (``DatabaseConnection/rows(_:_:)`` never suspends), and
/// only entering and leaving the transaction wake a thread. The thread keeps SQLite's work, and
/// its waits for another process's write lock (`busy_timeout`), off Swift's shared pool.
///
/// A write transaction asked for on an event loop (an HTTP request's handler: DeerFlow's
/// listeners run them there) runs on that loop instead, when no other process holds the write
/// lock: handing it to the connection's thread and back cost a trigger two thread wake-ups, about
/// 70 µs of its ~440 µs of CPU and 80 µs of its round trip. Its `BEGIN IMMEDIATE` does not wait:
/// when another process (a `deerflow` command on the same file) holds the lock, the transaction
/// goes to the connection's thread and waits there, so an event loop never sleeps in SQLite's busy
/// handler. In WAL mode nothing after `BEGIN IMMEDIATE` waits for a lock; the loop is held for the
/// transaction's own work (a trigger's ~50 µs; a 1,000-run batch's few milliseconds).
///
/// A read-only connection (the store's reader, `PRAGMA query_only`) runs every read asked for on
/// an event loop there (a run's status, a page of runs, the UI's pages) with the same rule: a read
/// that finds a lock it would wait for (in WAL mode only while another process recovers the log)
/// is given up and run again on the connection's thread. Reads change nothing, so running one
/// again is safe.
final class SerializedConnection: Sendable {
    private let connection: DatabaseConnection
    private let lock = AsyncLock()
    private let executor: ThreadPoolExecutor
    /// Called after each `COMMIT` of ``transaction(immediate:onEventLoop:_:)``.
    private let committed: @Sendable () -> Void
    /// Whether the connection only reads (`PRAGMA query_only`): its reads run on an event loop too.
    private let readOnly: Bool
    /// Transactions and reads asked for on an event loop that found another process holding a
    /// lock, and went to wait on the connection's thread (for tests).
    let lockTakenOnEventLoop = Atomic<Int>(0)

    /// Opens a connection on a thread of its own; `committed` is called after each transaction
    /// it commits. A `readOnly` connection refuses to change the database (`PRAGMA query_only`).
    static func open(path: String, readOnly: Bool = false, committed: @escaping @Sendable () -> Void = {}) async throws -> SerializedConnection {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            let connection = try await pool.runIfActive {
                let connection = try DatabaseConnection(path: path)
                if readOnly { try connection.execute("PRAGMA query_only = ON") }
                return connection
            }
            return SerializedConnection(connection: connection, readOnly: readOnly, executor: ThreadPoolExecutor(pool: pool), committed: committed)
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
    }

    private init(connection: DatabaseConnection, readOnly: Bool, executor: ThreadPoolExecutor, committed: @escaping @Sendable () -> Void) {
        self.connection = connection
        self.readOnly = readOnly
        self.executor = executor
        self.committed = committed
    }

    /// Runs `body` with exclusive use of the connection, inside `BEGIN IMMEDIATE`/`COMMIT`
    /// (write transactions take the write lock up front, so two processes never deadlock on an
    /// upgrade).
    ///
    /// - Parameter onEventLoop: Whether a write transaction asked for on an event loop may run
    ///   there (see above). False for work done for many callers at once, which then keeps the
    ///   loop free for their requests.
    func transaction<T: Sendable>(
        immediate: Bool = true, onEventLoop: Bool = true, _ body: (DatabaseConnection) async throws -> T
    ) async throws -> T {
        if immediate, onEventLoop, MultiThreadedEventLoopGroup.currentEventLoop != nil {
            let inline: Inline<T> = try await onCallersThread { connection in
                guard try await connection.unlessBusy({ _ = try await $0.rows("BEGIN IMMEDIATE") }) != nil else { return .busy }
                return .done(try await commit(body, on: connection))
            }
            if case .done(let result) = inline { return result }
            // Another process holds the write lock: wait for it on the connection's thread.
        }
        return try await exclusive { connection in
            _ = try await connection.rows(immediate ? "BEGIN IMMEDIATE" : "BEGIN")
            return try await commit(body, on: connection)
        }
    }

    /// Work tried on an event loop: done, or given up because another process holds a lock.
    private enum Inline<T: Sendable>: Sendable {
        case done(T)
        case busy
    }

    /// Runs `attempt` with exclusive use of the connection on the caller's thread (an event loop),
    /// counting the attempts given up in ``lockTakenOnEventLoop``.
    private func onCallersThread<T: Sendable>(_ attempt: (DatabaseConnection) async throws -> Inline<T>) async throws -> Inline<T> {
        let outcome = try await lock.withLock { try await attempt(connection) }
        if case .busy = outcome { lockTakenOnEventLoop.add(1, ordering: .relaxed) }
        return outcome
    }

    /// Runs `body` in the transaction just begun and commits it, or rolls it back when `body` throws.
    private func commit<T>(_ body: (DatabaseConnection) async throws -> T, on connection: DatabaseConnection) async throws -> T {
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

    /// Runs `body` with exclusive use of the connection, without a transaction.
    func exclusive<T: Sendable>(_ body: (DatabaseConnection) async throws -> T) async throws -> T {
        if readOnly, MultiThreadedEventLoopGroup.currentEventLoop != nil {
            let inline: Inline<T> = try await onCallersThread { connection in
                guard let result = try await connection.unlessBusy(body) else { return .busy }
                return .done(result)
            }
            if case .done(let result) = inline { return result }
            // A lock another process holds: read again on the connection's thread, waiting for it there.
        }
        return try await withTaskExecutorPreference(executor) {
            try await lock.withLock { try await body(connection) }
        }
    }

    /// Closes the connection and stops its thread.
    func close() async throws {
        try await exclusive { $0.close() }
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

/// A SQLite database connection that keeps its compiled statements.
///
/// sqlite-nio compiles every statement anew, and has no statement cache nor a way to keep one
/// outside it: compiling was a quarter of the CPU of a chain of no-op tasks, and ~100 µs of a
/// trigger's ~700 µs. Here the statements that run again and again (DML and transaction control
/// up to ``longestCached`` bytes long, up to ``cacheLimit`` of them, least recently used out
/// first) are compiled once and reset after each use; sqlite-nio's values (`SQLiteData`) are kept
/// for binds and columns.
///
/// A kept statement is only worth keeping if SQLite does not compile it again on its own. Its
/// planner reads some bound values (a `LIMIT ?`; whether a `column = ?` holds 0 or 1) and marks
/// the statement to be compiled again when such a value changes, and on every
/// `sqlite3_clear_bindings`: so the bindings are not cleared (each use binds every value anew),
/// and the store writes `LIMIT CAST(? AS INTEGER)`, planned the same way (`EXPLAIN QUERY PLAN`)
/// without reading the value. (SQLite's query-planner stability option would stop all of it, but
/// its setter is variadic and cannot be called from Swift.) The claim, run every few
/// milliseconds, and the run page's reads were compiled again on every call before.
/// ``repreparations`` shows what SQLite compiled again.
///
/// Not thread-safe by itself: ``SerializedConnection`` hands it to one caller at a time, on the
/// connection's own thread. (Opened in SQLite's serialized mode all the same.)
final class DatabaseConnection: @unchecked Sendable {
    /// Most statements kept compiled.
    static let cacheLimit = 128
    /// Longer statements (long `IN` lists, a batch's rows past ``largestKeptBatch``) are compiled
    /// for one use. 8 KB keeps the largest form of every batch statement of the store (128 rows
    /// of the runs insert, its widest, are 7.6 KB): the 512-row forms of a 1,000-run
    /// `runs:batch`, compiled for each request, were a fifth of the writer's time in it. Shorter
    /// multi-row forms are kept too: under 16 concurrent clients the same small batch sizes recur,
    /// and keeping them was worth 6 % of W1 over 16 connections.
    static let longestCached = 8192
    /// Most rows (or listed values) in one batch statement (``Swift/Array/statementChunks(limit:)``):
    /// a larger batch runs as several executions of kept forms.
    static let largestKeptBatch = 128

    private var handle: OpaquePointer?
    private var statements: [String: Statement] = [:]
    private var uses = 0
    /// Statements compiled by this connection, kept or not (for tests).
    private(set) var compilations = 0

    /// Opens (creating) the database file, waiting up to 10 s for another process's write lock.
    init(path: String) throws {
        Self.initialized.withLock { initialized in
            // As sqlite-nio does: sqlite3_initialize() once, before any open, against races on
            // SQLite's global configuration.
            if !initialized { sqlite_nio_sqlite3_initialize() }
            initialized = true
        }
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_EXRESCODE
        let opened = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard opened == SQLITE_OK, let handle else {
            let failure = SQLiteFailure(code: opened, message: handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory")
            sqlite_nio_sqlite3_close_v2(handle)
            throw failure
        }
        self.handle = handle
        sqlite_nio_sqlite3_busy_timeout(handle, Self.busyTimeout)
    }

    /// Milliseconds a statement waits for another process's lock before failing with `SQLITE_BUSY`.
    static let busyTimeout: Int32 = 10_000

    /// Runs `body` without waiting for another process's lock: nil when a statement found one
    /// taken (whatever `body` made of that failure).
    func unlessBusy<T>(_ body: (DatabaseConnection) async throws -> T) async throws -> T? {
        guard let handle else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        sqlite_nio_sqlite3_busy_timeout(handle, 0)
        defer { sqlite_nio_sqlite3_busy_timeout(handle, Self.busyTimeout) }
        let before = busyFailures
        do {
            return try await body(self)
        } catch where busyFailures != before {
            return nil
        }
    }

    /// Statements that failed because another process held a lock (`SQLITE_BUSY`).
    private var busyFailures = 0

    /// Runs SQL that returns no rows, synchronously on the caller's thread (while opening the connection).
    func execute(_ sql: String) throws {
        guard let handle else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        try check(sqlite_nio_sqlite3_exec(handle, sql, nil, nil, nil), handle)
    }

    private static let initialized = Mutex(false)

    /// Runs a statement and returns its rows. Never suspends: the caller's thread runs it.
    func rows(_ sql: String, _ binds: [SQLiteData] = []) async throws -> [ResultRow] {
        guard let handle else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the connection is closed") }
        let statement = try prepared(sql, handle: handle)
        // Last, after this statement is finalized: a schema change may change kept statements' columns.
        defer { if statement.changesSchema { clearStatements() } }
        let raw = statement.raw
        defer {
            // A kept statement keeps its values until its next use binds all of them anew: SQLite's
            // `clear_bindings` would mark it to be compiled again whenever its planner had read a
            // bound value (see above).
            sqlite_nio_sqlite3_reset(raw)
            if !statement.cached { sqlite_nio_sqlite3_finalize(raw) }
        }
        let parameters = Int(sqlite_nio_sqlite3_bind_parameter_count(raw))
        guard binds.count == parameters else {
            // SQLite would run it with NULL for what is missing.
            throw SQLiteFailure(code: SQLITE_RANGE, message: "the statement takes \(parameters) values, \(binds.count) were given: \(sql.prefix(80))")
        }
        for (index, value) in binds.enumerated() {
            try check(Self.bind(value, at: Int32(index + 1), of: raw), handle)
        }
        var rows: [ResultRow] = []
        while true {
            let step = sqlite_nio_sqlite3_step(raw)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else { throw failure(step, handle) }
            let columns = statement.columns
            var values: [SQLiteData] = []
            values.reserveCapacity(columns.names.count)
            for index in columns.names.indices { values.append(Self.value(at: Int32(index), of: raw)) }
            rows.append(ResultRow(columns: columns, values: values))
        }
        return rows
    }

    /// The statement for `sql`: kept, or compiled (and kept if it qualifies).
    private func prepared(_ sql: String, handle: OpaquePointer) throws -> Statement {
        uses += 1
        if let statement = statements[sql] {
            statement.lastUse = uses
            return statement
        }
        let keep = Statement.isRepeated(sql) && sql.utf8.count <= Self.longestCached
        var raw: OpaquePointer?
        compilations += 1
        let result = sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, keep ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &raw, nil)
        guard result == SQLITE_OK, let raw else {
            sqlite_nio_sqlite3_finalize(raw)
            throw failure(result == SQLITE_OK ? SQLITE_MISUSE : result, handle, empty: raw == nil && result == SQLITE_OK)
        }
        let statement = Statement(raw: raw, cached: keep, changesSchema: Statement.changesSchema(sql), lastUse: uses)
        if keep {
            if statements.count >= Self.cacheLimit, let oldest = statements.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                sqlite_nio_sqlite3_finalize(oldest.value.raw)
                statements[oldest.key] = nil
            }
            statements[sql] = statement
        }
        return statement
    }

    /// The statements kept compiled (for tests).
    var keptStatements: Set<String> { Set(statements.keys) }

    /// How often SQLite compiled each kept statement again (after a schema change or, for some
    /// statements, a new bound value), for those it did (for tests).
    var repreparations: [String: Int] {
        statements.compactMapValues { statement in
            let count = Int(sqlite_nio_sqlite3_stmt_status(statement.raw, SQLITE_STMTSTATUS_REPREPARE, 0))
            return count > 0 ? count : nil
        }
    }

    /// Finalizes the kept statements (after a schema change their columns may differ).
    private func clearStatements() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement.raw) }
        statements = [:]
    }

    /// Finalizes the kept statements and closes the connection.
    func close() {
        clearStatements()
        sqlite_nio_sqlite3_close_v2(handle)
        handle = nil
    }

    deinit {
        if handle != nil { close() }
    }

    private func check(_ result: Int32, _ handle: OpaquePointer) throws {
        guard result == SQLITE_OK else { throw failure(result, handle) }
    }

    private func failure(_ code: Int32, _ handle: OpaquePointer, empty: Bool = false) -> SQLiteFailure {
        if code & 0xFF == SQLITE_BUSY { busyFailures += 1 }
        if empty { return SQLiteFailure(code: code, message: "the SQL holds no statement") }
        return SQLiteFailure(code: code, message: String(cString: sqlite_nio_sqlite3_errmsg(handle)))
    }

    private static func bind(_ value: SQLiteData, at index: Int32, of statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let integer):
            return sqlite_nio_sqlite3_bind_int64(statement, index, Int64(integer))
        case .float(let double):
            return sqlite_nio_sqlite3_bind_double(statement, index, double)
        case .text(let text):
            return sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), transient, UInt8(SQLITE_UTF8))
        case .blob(let buffer):
            return buffer.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), transient)
            }
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    private static func value(at index: Int32, of statement: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT:
            return .float(sqlite_nio_sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            guard let text = sqlite_nio_sqlite3_column_text(statement, index) else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes = sqlite_nio_sqlite3_column_blob(statement, index) {
                buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count))
            }
            return .blob(buffer)
        default:
            return .null
        }
    }

    /// SQLite's `SQLITE_TRANSIENT`: it copies the bound bytes.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// A compiled statement and the names of its columns.
    private final class Statement {
        let raw: OpaquePointer
        let cached: Bool
        let changesSchema: Bool
        var lastUse: Int
        private(set) lazy var columns = ResultColumns(statement: raw)

        init(raw: OpaquePointer, cached: Bool, changesSchema: Bool, lastUse: Int) {
            self.raw = raw
            self.cached = cached
            self.changesSchema = changesSchema
            self.lastUse = lastUse
        }

        /// Statements worth keeping: reads, writes and transaction control, which the store
        /// repeats; not schema changes or pragmas, which run once.
        static func isRepeated(_ sql: String) -> Bool {
            switch firstWord(sql) {
            case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "REPLACE", "BEGIN", "COMMIT", "ROLLBACK": true
            default: false
            }
        }

        static func changesSchema(_ sql: String) -> Bool {
            switch firstWord(sql) {
            case "CREATE", "ALTER", "DROP": true
            default: false
            }
        }

        private static func firstWord(_ sql: String) -> Substring {
            let trimmed = sql.drop { $0.isWhitespace }
            return trimmed.prefix { $0.isLetter }.uppercased()[...]
        }
    }
}

/// The column names of a statement's rows, shared by its rows.
final class ResultColumns: Sendable {
    let names: [String]
    /// Name to position; the first of two columns with one name wins (as in sqlite-nio).
    private let positions: [String: Int]

    fileprivate init(statement: OpaquePointer) {
        let count = Int(sqlite_nio_sqlite3_column_count(statement))
        names = (0..<count).map { index in
            sqlite_nio_sqlite3_column_name(statement, Int32(index)).map { String(cString: $0) } ?? ""
        }
        positions = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func position(of name: String) -> Int? { positions[name] }
}

/// A row a statement returned.
struct ResultRow: Sendable {
    let columns: ResultColumns
    let values: [SQLiteData]

    /// The value of the column `name`; nil when the statement has no such column.
    func column(_ name: String) -> SQLiteData? {
        columns.position(of: name).map { values[$0] }
    }
}

/// An error SQLite reported: its result code and message.
struct SQLiteFailure: Error, CustomStringConvertible {
    let code: Int32
    let message: String

    var description: String {
        "SQLite error \(code) (\(String(cString: sqlite_nio_sqlite3_errstr(code)))): \(message)"
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

extension ResultRow {
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

extension Array {
    /// The elements in consecutive chunks for statements over a row (or a `?`) per element: at
    /// most `limit` each, every chunk cut by the binary digits of its size (13 → 8, 4, 1).
    ///
    /// A statement's SQL depends on its number of rows, and the connection keeps at most
    /// ``DatabaseConnection/cacheLimit`` statements compiled. With one form per batch size, a
    /// busy server made hundreds of forms (643 in a 20,000-run W1 in one process, over a dozen
    /// statements) and SQLite compiled a statement again for about every tenth run, 5 % of the
    /// CPU. Cut this way, batches of up to 128 rows make at most eight forms of a statement; a few
    /// more executions of compiled statements cost less than compiling one.
    func statementChunks(limit: Int = DatabaseConnection.largestKeptBatch) -> [ArraySlice<Element>] {
        var chunks: [ArraySlice<Element>] = []
        var start = startIndex
        while start < endIndex {
            var rest = Swift.min(limit, endIndex - start)
            while rest > 0 {
                // The largest power of two not above what is left of the chunk.
                let part = 1 << (Int.bitWidth - 1 - rest.leadingZeroBitCount)
                chunks.append(self[start..<(start + part)])
                start += part
                rest -= part
            }
        }
        return chunks
    }
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
