import DeerFlow
import DeerFlowCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Statements of one transaction (or one leased connection), run one after another.
final class PostgresSession {
    let connection: PostgresConnection
    let logger: Logger

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Runs a statement and collects its rows.
    @discardableResult
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await send(query).collect()
    }

    /// Runs a statement whose rows (if any) are not needed.
    func execute(_ query: PostgresQuery) async throws {
        _ = try await send(query).collect()
    }

    /// Sends a statement, failing it when the connection has closed.
    ///
    /// postgres-nio hands a statement to the connection's channel without a promise for the
    /// write: once the channel has closed (the server went away during the previous statement)
    /// the statement is dropped and its answer never comes, and the caller (the ROLLBACK after a
    /// failed statement, a worker's exchange) would wait forever. Found by stopping PostgreSQL
    /// (`-m immediate`) during a worker's exchange: the worker never exchanged or drained again.
    /// The check and the write run on the connection's event loop, where the channel closes, so
    /// it cannot close between them (checked from another thread, it sometimes did).
    private func send(_ query: PostgresQuery) async throws -> PostgresRowSequence {
        try await whileOpen { connection, logger in try await connection.query(query, logger: logger) }
    }

    /// Runs `send` (which hands a statement to postgres-nio) on the connection's event loop when
    /// the connection is open; throws `.unavailable` when it has closed (see ``send(_:)``).
    func whileOpen<T>(_ send: (PostgresConnection, Logger) async throws -> T) async throws -> T {
        // A session's statements usually run on the loop already (``PostgresConnection/onItsEventLoop(_:)``).
        guard connection.eventLoop.inEventLoop else {
            return try await connection.onItsEventLoop { try await sendIfOpen(send) }
        }
        return try await sendIfOpen(send)
    }

    private func sendIfOpen<T>(_ send: (PostgresConnection, Logger) async throws -> T) async throws -> T {
        guard !connection.isClosed else { throw DeerFlowError.postgresConnectionClosed }
        return try await send(connection, logger)
    }
}

extension DeerFlowError {
    /// A statement found its connection closed (``PostgresSession/whileOpen(_:)``).
    static let postgresConnectionClosed = DeerFlowError(
        .unavailable, "the connection to PostgreSQL closed (the database restarted or is unreachable); try again shortly")
}

extension PostgresConnection {
    /// Runs `body` with the connection's event loop as its task executor preference: its
    /// statements, the reading of their rows and the Swift work between them run where the
    /// connection's channel reads and writes. Otherwise every statement would hop from Swift's
    /// pool (or an HTTP event loop) to the connection's loop and back, waking two threads.
    func onItsEventLoop<T>(_ body: () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(EventLoopTaskExecutor(eventLoop: eventLoop)) { try await body() }
    }
}

extension PostgresWorkflowStore {
    /// The channel of `NOTIFY` / `LISTEN` wake-ups. The statements that make attempts claimable
    /// now call `pg_notify('deerflow_work', '')` (PostgreSQL delivers it at COMMIT, once per
    /// transaction however often it was called).
    static let workChannel = "deerflow_work"

    /// Runs `body` in one READ COMMITTED transaction. A transaction PostgreSQL aborted because of a
    /// deadlock or a serialization failure is run again (a few times) — nothing of it was
    /// committed. Other errors roll back and are thrown as ``DeerFlowError`` `.unavailable`.
    ///
    /// - Parameters:
    ///   - direct: on a connection of its own rather than the pool's, for what runs before the
    ///     store's `run()` started the pool (the migration, the limits saved at start). Such a
    ///     transaction that lost its connection (the server restarted or stopped meanwhile) is run
    ///     again on a new one until the connect timeout: a process starting during a restart of
    ///     PostgreSQL waits for it instead of exiting. (What they write is idempotent.)
    ///   - keptPlans: the transaction's statements run with their kept generic plans
    ///     (``UseKeptPlans``), for the worker's exchange.
    func transaction<T: Sendable>(direct: Bool = false, keptPlans: Bool = false, _ body: (PostgresSession) async throws -> T) async throws -> T {
        var retries = 0
        let deadline = ContinuousClock.now + configuration.connectTimeout
        while true {
            do {
                return try await withConnection(direct: direct) { connection in
                    let session = PostgresSession(connection: connection, logger: queryLogger)
                    try await session.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                    do {
                        if keptPlans { try await session.rows(UseKeptPlans()) }
                        let result = try await body(session)
                        try await session.execute("COMMIT")
                        return result
                    } catch {
                        try? await session.execute("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PSQLError where Self.isTransient(error) && retries < 8 {
                retries += 1
                logger.debug("transaction aborted by PostgreSQL; running it again", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "")", "retry": "\(retries)"])
                try await Sleep.for(.milliseconds(Int64.random(in: 1...(5 * Int64(retries)))))
            } catch where direct && Self.isConnectionLost(error) && ContinuousClock.now < deadline {
                logger.notice("the database went away during a transaction at start; trying again", metadata: ["database": "\(configuration.redactedURL)"])
                try await Sleep.for(.milliseconds(250))
            } catch {
                throw translate(error)
            }
        }
    }

    /// A connection of the pool, or (`direct`) one opened for `body` and closed after it.
    func withConnection<T: Sendable>(direct: Bool, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        guard direct else { return try await pooled(body) }
        let connection = try await connectDirectly()
        do {
            let result = try await connection.onItsEventLoop { try await body(connection) }
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs `body` on a connection of the pool, waiting at most `pool_timeout` for one.
    ///
    /// postgres-nio queues a lease until a connection is free or can be opened, for as long as
    /// that takes: during an outage it would wait for the whole outage, and a request with it.
    /// The pool has no deadline of its own, so a timer races the lease here (cancelling a lease
    /// withdraws it from the pool's queue). Once `body` has its connection the timer no longer
    /// matters: a long statement (a purge) runs to its end. A lease granted as the timer fired
    /// still runs and its result is returned, so no committed work is reported as failed.
    func pooled<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let leased = LeaseFlag()
        let wait = configuration.poolTimeout
        return try await withoutActuallyEscaping(body) { body in
            // The group's child runs `body` while this task only waits for the group: nothing
            // touches what `body` captured concurrently.
            let operation = UncheckedOperation(body: body)
            return try await withThrowingTaskGroup(of: PoolRace<T>.self) { group in
                group.addTask {
                    try await self.poolStarted.wait()
                    return .finished(try await self.client.withConnection { connection in
                        leased.set()
                        return try await connection.onItsEventLoop { try await operation.body(connection) }
                    })
                }
                group.addTask {
                    try await Self.sleep(for: wait)
                    return .timerFired
                }
                while let outcome = try await group.next() {
                    switch outcome {
                    case .finished(let value):
                        group.cancelAll()
                        return value
                    case .timerFired where leased.isSet:
                        continue
                    case .timerFired:
                        group.cancelAll()
                        if case .finished(let value)? = try? await group.next() { return value }
                        throw DeerFlowError(
                            .unavailable,
                            "no connection to PostgreSQL at \(configuration.endpoint) within \(wait.components.seconds) s (pool_timeout): "
                                + "the database is down or every connection is busy; try again shortly")
                    }
                }
                throw CancellationError()
            }
        }
    }

    /// Sleeps on an event loop's timer: the caller's loop when it runs on one (an HTTP request's),
    /// else one of NIO's shared loops. Every lease of a pooled connection races such a sleep
    /// (``pooled(_:)``) and nearly always cancels it: with a Dispatch timer (``Sleep``) that woke
    /// Dispatch's timer thread to arm it and again to cancel it, ~70 µs of a trigger's ~520 µs of
    /// CPU (`--no-workers`, sequential triggers).
    static func sleep(for duration: Duration) async throws {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        let timer = loop.scheduleTask(in: TimeAmount(duration)) {}
        do {
            try await withTaskCancellationHandler {
                try await timer.futureResult.get()
            } onCancel: {
                timer.cancel()
            }
        } catch EventLoopError.cancelled {
            throw CancellationError()
        }
    }

    /// Runs `body` in one read-only REPEATABLE READ transaction: every statement sees the same
    /// snapshot (a run with its tasks and attempts, consistent statistics).
    func snapshot<T: Sendable>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        do {
            return try await pooled { connection in
                let session = PostgresSession(connection: connection, logger: queryLogger)
                try await session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                do {
                    let result = try await body(session)
                    try await session.execute("COMMIT")
                    return result
                } catch {
                    try? await session.execute("ROLLBACK")
                    throw error
                }
            }
        } catch {
            throw translate(error)
        }
    }

    /// Runs `body` on a leased connection without a transaction (each statement commits alone).
    func session<T: Sendable>(_ body: (PostgresSession) async throws -> T) async throws -> T {
        do {
            return try await pooled { connection in
                try await body(PostgresSession(connection: connection, logger: queryLogger))
            }
        } catch {
            throw translate(error)
        }
    }

    /// Deadlock detected (40P01) or serialization failure (40001): the transaction was rolled back.
    static func isTransient(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    /// A message that says what failed, without the generic text PSQLError prints and without
    /// credentials.
    func translate(_ error: any Error) -> any Error {
        switch error {
        case is DeerFlowError, is CancellationError, is any StoreControlFlow:
            return error
        case let error as PSQLError:
            return DeerFlowError(.unavailable, describe(error))
        default:
            return DeerFlowError(.unavailable, "PostgreSQL at \(configuration.endpoint): \(error)")
        }
    }

    func describe(_ error: PSQLError) -> String {
        if error.code == .server, let info = error.serverInfo {
            var message = "PostgreSQL: \(info[.message] ?? "error")"
            if let detail = info[.detail] { message += " (\(detail))" }
            if let state = info[.sqlState] { message += " [SQLSTATE \(state)]" }
            return message
        }
        var message = "cannot reach PostgreSQL at \(configuration.endpoint) (\(error.code))"
        if let underlying = error.underlying { message += ": \(underlying)" }
        return message
    }
}

/// Which of the two children of ``PostgresWorkflowStore/pooled(_:)`` finished.
enum PoolRace<T: Sendable>: Sendable {
    case finished(T)
    case timerFired
}

/// Set once the pool granted a connection.
final class LeaseFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// The caller's non-escaping body, run by a child task that the caller awaits before
/// `withoutActuallyEscaping` returns.
private struct UncheckedOperation<T>: @unchecked Sendable {
    let body: (PostgresConnection) async throws -> T
}

/// Errors the store throws inside a transaction to roll it back and handle outside.
protocol StoreControlFlow: Error {}

/// A one-dimensional array that may hold NULLs, for `unnest($1::text[], ...)` batches
/// (postgres-nio encodes arrays of non-optional elements only).
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable {
    var elements: [Element?]

    init(_ elements: [Element?]) {
        self.elements = elements
    }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Header: dimensions, has-nulls flag, element type; then size and lower bound of the one dimension.
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            guard let element else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            let start = buffer.writerIndex
            element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthIndex)
        }
    }
}

extension Array {
    func chunked(into size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}

