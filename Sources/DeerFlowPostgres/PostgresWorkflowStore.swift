public import DeerFlow
import DeerFlowCore
import Foundation
public import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The distributed store: any number of `deerflow server` and `deerflow worker` processes on any
/// number of machines share one PostgreSQL database.
///
/// Coordination is the database's own: every transition is one READ COMMITTED transaction;
/// workers claim with `FOR UPDATE SKIP LOCKED` (never waiting for each other); rows locked by
/// several transactions are locked in key order, so transactions do not deadlock; a transaction
/// that makes work claimable sends `NOTIFY deerflow_work`, which wakes idle workers of every
/// process through a LISTEN connection (polling stays as the fallback, and finds retries whose
/// backoff ends later); scheduler leadership is a lease row; cron fires are unique per workflow
/// and due time.
///
/// `prepare()` starts the connection pool (postgres-nio's `PostgresClient`, which reconnects by
/// itself) and the LISTEN connection in a background task, then migrates the schema; `close()`
/// stops both.
///
/// ```swift
/// let store = try PostgresWorkflowStore(url: "postgres://deerflow:secret@db:5432/deerflow?sslmode=verify-full")
/// try await store.prepare()
/// defer { try? await store.close() }
/// ```
public final class PostgresWorkflowStore: WorkflowStore, OutboxStore, StateStore, RetentionStore, Sendable {
    /// Where and how the store connects.
    public let configuration: Configuration
    let logger: Logger
    /// Logger handed to postgres-nio for statements (it logs at debug and trace levels only).
    let queryLogger: Logger
    let client: PostgresClient
    let notifier = WorkNotifier()
    /// Opens as `run()` starts the pool; leases wait for it (``PoolStartGate``).
    let poolStarted = PoolStartGate()
    /// Concurrent triggers are inserted together, one transaction per batch.
    let runInserts: GroupCommit<RunInsert, CreatedRun?>
    /// The stored concurrency limits, as last read (``LimitSnapshot``).
    package let limitCache = LimitCache()
    /// Per hot table, its size in pages when this store last analyzed it (``analyzeGrownTables()``).
    let tableGrowth = Mutex<[String: Int]>([:])

    /// Creates a store; `prepare()` connects and migrates.
    ///
    /// - Parameters:
    ///   - configuration: connection settings, usually from ``Configuration/init(url:)``.
    ///   - logger: the store's logger (migrations, lost and re-established connections).
    public init(configuration: Configuration, logger: Logger = Logger(label: "deerflow.postgres")) throws {
        self.configuration = configuration
        self.logger = logger
        queryLogger = logger
        client = PostgresClient(configuration: try configuration.clientConfiguration(), backgroundLogger: logger)
        let inserter = WeakStore()
        runInserts = GroupCommit { runs in
            guard let store = inserter.value else { throw DeerFlowError(.unavailable, "the PostgreSQL store was closed") }
            return try await store.insertBatch(runs)
        }
        inserter.value = self
    }

    /// Creates a store for `postgres://user:password@host:port/database?sslmode=...`.
    /// - Throws: ``DeerFlowError`` `.badRequest` for a malformed URL (the message masks the password).
    public convenience init(url: String, logger: Logger = Logger(label: "deerflow.postgres")) throws {
        try self.init(configuration: Configuration(url: url), logger: logger)
    }

    /// Connects (waiting up to the connect timeout for a server that is starting) and migrates
    /// the schema. A migration cut off by the server going away (a restart, an immediate stop, its
    /// session terminated) rolled back; it is tried again on a new connection until the connect
    /// timeout. The connection pool and the LISTEN connection run in ``run()``.
    ///
    /// - Throws: ``DeerFlowError`` `.unavailable` when the server cannot be reached, refuses the
    ///   credentials or the database, or holds a schema newer than this DeerFlow knows.
    public func prepare() async throws {
        // A migration cut off by the server going away is run again by the direct transaction
        // (found by scripts/chaos: a server restarted while PostgreSQL stopped, `-m immediate`,
        // lost the connection during its migration and exited). Past this deadline (the
        // transaction's own ends a moment later) the error ends the migration, with its context.
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let from = try await transaction(direct: true) { session in
            do {
                return try await migrate(in: session)
            } catch where !(Self.isConnectionLost(error) && ContinuousClock.now < deadline) {
                throw migrationFailure(error)
            }
        }
        let latest = PostgresSchema.migrations.count
        if from != latest {
            logger.info("database migrated", metadata: ["database": "\(configuration.redactedURL)", "from": "\(from)", "to": "\(latest)"])
        }
    }

    /// The server closed the connection or is going away (SQLSTATE 57P, connection errors), or a
    /// statement found its connection closed: what was under way on it rolled back, and a new
    /// connection may succeed.
    static func isConnectionLost(_ error: any Error) -> Bool {
        if let error = error as? PSQLError {
            return [.serverClosedConnection, .connectionError, .uncleanShutdown].contains(error.code) || isUnavailableForNow(error)
        }
        return (error as? DeerFlowError) == .postgresConnectionClosed
    }

    /// Runs the connection pool and the LISTEN connection until graceful shutdown or
    /// cancellation; statements wait for it. Then wake-up subscribers are finished.
    public func run() async throws {
        let listener = Listener(configuration: configuration, notifier: notifier, logger: logger)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    self.poolStarted.open()
                    await self.client.run()
                }
                group.addTask { await listener.run() }
                group.addTask { await self.keepStatistics() }
            }
        }
        notifier.finish()
    }

    /// One connection outside the pool, so that a wrong password or a missing database fails at
    /// once with PostgreSQL's message (the pool would keep retrying); a refused connection, or a
    /// server that answers it is starting, recovering or shutting down, is retried until the
    /// connect timeout.
    func connectDirectly() async throws -> PostgresConnection {
        let deadline = ContinuousClock.now + configuration.connectTimeout
        let settings = try configuration.connectionConfiguration(purpose: "")
        while true {
            do {
                return try await PostgresConnection.connect(configuration: settings, id: 1, logger: queryLogger)
            } catch let error as PSQLError where error.code == .server && !Self.isUnavailableForNow(error) {
                throw DeerFlowError(.unavailable, "cannot open the database \(configuration.redactedURL): \(describe(error))")
            } catch {
                guard ContinuousClock.now < deadline else {
                    let reason = (error as? PSQLError).map(describe) ?? "\(error)"
                    throw DeerFlowError(.unavailable, "cannot open the database \(configuration.redactedURL) within \(configuration.connectTimeout): \(reason)")
                }
                try await Sleep.for(.milliseconds(250))
            }
        }
    }

    /// PostgreSQL refuses connections for now: SQLSTATE class 57P, `57P03` while it starts or
    /// recovers after a crash ("the database system is not yet accepting connections"), `57P01`/
    /// `57P02` while it shuts down. Found by scripts/chaos: a process started during the recovery
    /// after an immediate stop exited at once instead of waiting for the database.
    static func isUnavailableForNow(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("57P")
    }

    /// Ends the wake-ups; the connections close when ``run()`` ends.
    public func close() async throws {
        notifier.finish()
    }

    public func ping() async throws {
        try await session { try await $0.execute("SELECT 1") }
    }

    /// Wake-ups from `LISTEN deerflow_work`, sent by every transaction (of any process) that made
    /// attempts claimable now. Retries whose backoff ends later are found by polling.
    public func workAvailable() -> AsyncStream<Void>? {
        notifier.subscribe()
    }
}

/// The LISTEN connection: a dedicated session (pooled connections come and go), opened when the
/// first worker asks for wake-ups and re-opened after any failure, with backoff. After each
/// (re)connect every subscriber is woken once, for work queued while nobody listened.
struct Listener: Sendable {
    let configuration: PostgresWorkflowStore.Configuration
    let notifier: WorkNotifier
    let logger: Logger

    func run() async {
        await notifier.waitUntilWanted()
        var failures = 0
        var connectionID = 1_000_000
        while !Task.isCancelled {
            do {
                let settings = try configuration.connectionConfiguration(purpose: "-listen")
                connectionID += 1
                let connection = try await PostgresConnection.connect(configuration: settings, id: connectionID, logger: logger)
                do {
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: PostgresWorkflowStore.workChannel) { notifications in
                            if failures > 0 {
                                logger.notice("LISTEN connection re-established", metadata: ["database": "\(configuration.redactedURL)"])
                            }
                            failures = 0
                            notifier.broadcast()
                            for try await _ in notifications { notifier.broadcast() }
                        }
                    } onCancel: {
                        let closing: EventLoopFuture<Void> = connection.close()
                        _ = closing
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { break }
                failures += 1
                if failures == 1 {
                    logger.warning("LISTEN connection lost; reconnecting (workers poll meanwhile)", metadata: [
                        "database": "\(configuration.redactedURL)", "error": "\(String(reflecting: error).prefix(300))",
                    ])
                }
            }
            try? await Sleep.for(.milliseconds(min(5_000, 100 << min(failures, 6))))
        }
    }
}

/// A weak reference to the store for the group-commit closure created before `self` exists.
final class WeakStore: Sendable {
    private let box = Mutex<Box>(Box())

    private struct Box: @unchecked Sendable {
        weak var store: PostgresWorkflowStore?
    }

    var value: PostgresWorkflowStore? {
        get { box.withLock { $0.store } }
        set { box.withLock { $0.store = newValue } }
    }
}

/// Open once the store's `run()` starts its connection pool. The process's services start
/// concurrently, and those that reached the store first leased a connection before the pool
/// ran: postgres-nio served them once it ran, but warned "Trying to lease connection from
/// `PostgresClient`, but `PostgresClient.run()` hasn't been called yet" at every start on
/// PostgreSQL. Leases now wait here first. (`PostgresClient.run()` marks itself running before
/// it first suspends, and the store's task calls it right after opening the gate, while the
/// waiters it resumed still have to be scheduled.)
final class PoolStartGate: Sendable {
    private struct State {
        var open = false
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [:] }
            return state.waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    /// Returns once the gate is open; throws `CancellationError` when the task is cancelled first
    /// (the lease's `pool_timeout` still applies).
    func wait() async throws {
        let id: Int? = state.withLock { state in
            guard !state.open else { return nil }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { state in
                    if state.open { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }
}
