import DeerFlowCore
import Foundation
import Logging

/// Brings the gauges up to date before `/metrics` is rendered: cluster-wide figures from the store
/// (only where this process exports them), this process's workers, and the health checks.
public struct MetricsCollector: Sendable {
    let engine: DeerFlowEngine
    let metrics: EngineMetrics
    let exportsClusterGauges: @Sendable () -> Bool

    /// - Parameters:
    ///   - exportsClusterGauges: whether this process exports the cluster-wide gauges (the scheduler
    ///     leader does, on SQLite and PostgreSQL alike; default true, for a collector without a scheduler).
    public init(engine: DeerFlowEngine, metrics: EngineMetrics, exportsClusterGauges: @escaping @Sendable () -> Bool = { true }) {
        self.engine = engine
        self.metrics = metrics
        self.exportsClusterGauges = exportsClusterGauges
    }

    /// Updates the gauges; a store that does not answer within `timeout` leaves them as they were.
    public func collect(timeout: Duration = .seconds(2)) async {
        metrics.update(workers: engine.localWorkerLoad)
        metrics.update(isLeader: engine.isSchedulerLeader)
        let store = engine.store
        if exportsClusterGauges() {
            let now = Date()
            let figures = await withTaskGroup(of: (StoreStatistics, [WorkerRecord]?, LimitUsage?)?.self) { group in
                group.addTask {
                    guard let statistics = try? await store.statistics(now: now) else { return nil }
                    return (statistics, try? await store.workers(), try? await store.limitUsage())
                }
                group.addTask {
                    try? await Sleep.for(timeout)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if let (statistics, workers, limits) = figures {
                metrics.update(from: statistics, now: now)
                if let workers { metrics.update(consumers: workers) }
                if let limits { metrics.update(limits: limits) }
            } else {
                engine.logger.warning("metrics: store statistics unavailable; cluster gauges keep their last values")
            }
        }
        metrics.record(await engine.health.evaluate())
    }
}
