public import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import Foundation
public import Logging
public import ServiceLifecycle

/// Runs an engine with a scheduler and a worker on a fresh SQLite file for the duration of
/// `body`, then shuts the services down gracefully and removes the file.
///
/// ```swift
/// try await withEngine(workflows: [flow]) { engine in
///     let run = try await engine.trigger("flow")
///     let detail = try await engine.waitForRun(run.id)
/// }
/// ```
public func withEngine<T: Sendable>(
    workflows: [Workflow],
    configuration: DeerFlowEngine.Configuration = .init(),
    worker: WorkerService.Configuration = .testing,
    scheduler: SchedulerService.Configuration = .init(),
    metrics: MetricsRegistry = MetricsRegistry(),
    observers: [any EngineObserver] = [],
    logger: Logger = Logger(label: "deerflow.test", factory: { _ in SwiftLogNoOpLogHandler() }),
    _ body: @Sendable (DeerFlowEngine) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let store = SQLiteWorkflowStore(path: directory.file("deerflow.sqlite"), logger: logger)
    try await store.prepare()
    let engine = try DeerFlowEngine(store: store, workflows: workflows, configuration: configuration, metrics: metrics, logger: logger)
    for observer in observers { engine.addObserver(observer) }
    engine.registerBuiltinHealthChecks()
    do {
        let result = try await withServices([engine.makeScheduler(scheduler), engine.makeWorker(worker)], logger: logger) {
            try await body(engine)
        }
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}

/// Runs services while `body` runs, then shuts them down gracefully (in reverse order) and waits
/// for them to finish.
public func withServices<T: Sendable>(_ services: [any Service], logger: Logger, _ body: @Sendable () async throws -> T) async throws -> T {
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, logger: logger))
    return try await withThrowingTaskGroup(of: T?.self) { tasks in
        tasks.addTask {
            try await group.run()
            return nil
        }
        let result: T
        do {
            result = try await body()
        } catch {
            await group.triggerGracefulShutdown()
            while let _ = try? await tasks.next() {}
            throw error
        }
        await group.triggerGracefulShutdown()
        while let _ = try await tasks.next() {}
        return result
    }
}

extension WorkerService.Configuration {
    /// Fast settings for tests: 4 slots, short poll interval and drain timeout.
    public static var testing: Self {
        var configuration = Self()
        configuration.slots = 4
        configuration.pollInterval = .milliseconds(100)
        configuration.drainTimeout = .seconds(5)
        return configuration
    }
}
