import DeerFlowCore
import Foundation

/// Thresholds of the built-in health checks.
public struct HealthThresholds: Sendable {
    /// Ready tasks at or above which `queue` is degraded; default 10,000.
    public var queueDepthDegraded: Int = 10_000
    /// Scheduler lag (seconds) at or above which `scheduler` is unhealthy; default 30.
    public var schedulerLagUnhealthy: Double = 30
    /// Oldest ready task age (seconds) at or above which `queue` is degraded; default 300.
    public var queueAgeDegraded: Double = 300

    public init() {}
}

extension DeerFlowEngine {
    /// Registers the built-in checks: `database` (a store round trip), `queue` (depth and age of
    /// the oldest ready task, queues whose ready tasks no live worker serves) and `scheduler` (lag,
    /// as `deerflow_scheduler_lag_seconds`).
    public func registerBuiltinHealthChecks(_ thresholds: HealthThresholds = .init()) {
        let store = self.store
        health.register("database") {
            try await store.ping()
            return HealthCheckResult(.healthy)
        }
        health.register("queue") {
            let now = Date()
            let statistics = try await store.statistics(now: now)
            let depth = statistics.queuedTotal
            let oldest = statistics.queues.values.compactMap(\.oldestReadyAt).min()
            let age = oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0
            // Ready tasks on a queue no live worker serves wait until one comes: say which queues.
            let waiting = statistics.queues.filter { $0.value.depth > 0 }.keys
            var unserved: [String] = []
            if !waiting.isEmpty {
                let served = Set(try await store.workers().filter { $0.state == .active }.flatMap(\.queues))
                unserved = waiting.filter { !served.contains($0) }.sorted()
            }
            let degraded = depth >= thresholds.queueDepthDegraded || age >= thresholds.queueAgeDegraded || !unserved.isEmpty
            return HealthCheckResult(degraded ? .degraded : .healthy, [
                "queue_depth": .int(depth),
                "oldest_age_seconds": .double((age * 1000).rounded() / 1000),
                "threshold_depth": .int(thresholds.queueDepthDegraded),
                "queues_without_workers": .array(unserved.map(JSONValue.string)),
            ])
        }
        health.register("scheduler") {
            let now = Date()
            let lag = try await store.statistics(now: now).schedulerLag(now: now)
            return HealthCheckResult(lag < thresholds.schedulerLagUnhealthy ? .healthy : .unhealthy, [
                "lag_seconds": .double((lag * 1000).rounded() / 1000),
                "threshold_seconds": .double(thresholds.schedulerLagUnhealthy),
            ])
        }
    }
}
