import DeerFlowCore
import Synchronization
public import Foundation

/// Concurrency limits the store enforces across every process sharing it: `max_active_runs` of
/// a workflow (further runs wait as `pending`, then start in creation order) and `concurrency`
/// of a queue in `deerflow.yaml` (claims skip a queue at its limit).
///
/// The limits are stored, so every server and worker of a cluster applies the same ones: a
/// process writes those it was started with (``saveRunLimits(_:now:)``, ``saveQueueLimits(_:)``),
/// and every process reads them from the store.
public protocol LimitStore: Sendable {
    /// Records the `max_active_runs` of workflows (nil: no limit) and starts the waiting runs a
    /// raised or removed limit lets start. Workflows not named keep their stored limits.
    func saveRunLimits(_ limits: [String: Int?], now: Date) async throws
    /// Replaces the queue concurrency limits (an empty map removes them all).
    func saveQueueLimits(_ limits: [String: Int]) async throws
    /// The limits and how far they are used: the gauges and the waiting reasons the API shows.
    func limitUsage() async throws -> LimitUsage
}

/// The stored limits and their use, cluster-wide.
public struct LimitUsage: Sendable, Hashable {
    /// A limited queue: its limit and the attempts of it running now.
    public struct Queue: Sendable, Hashable {
        public var limit: Int
        public var running: Int

        public init(limit: Int, running: Int) {
            self.limit = limit
            self.running = running
        }
    }

    /// Per limited queue.
    public var queues: [String: Queue]
    /// Per workflow with a `max_active_runs`: the limit.
    public var runLimits: [String: Int]
    /// Per workflow: runs waiting because of `max_active_runs` (workflows without any left out).
    public var waitingRuns: [String: Int]

    public init(queues: [String: Queue] = [:], runLimits: [String: Int] = [:], waitingRuns: [String: Int] = [:]) {
        self.queues = queues
        self.runLimits = runLimits
        self.waitingRuns = waitingRuns
    }

    /// Why a queued attempt of `queue` is not claimed, when the queue is at its limit; else nil.
    public func queueWaitingReason(_ queue: String) -> String? {
        guard let usage = queues[queue], usage.running >= usage.limit else { return nil }
        return ConcurrencyReason.queue(queue, limit: usage.limit)
    }
}

/// The texts of the waiting reasons, the same in both stores and the API.
public enum ConcurrencyReason {
    /// A run waiting for a slot of its workflow's `max_active_runs`.
    public static func runs(limit: Int) -> String {
        "max_active_runs \(limit) reached"
    }

    /// An attempt waiting for its queue's concurrency limit.
    public static func queue(_ queue: String, limit: Int) -> String {
        "queue '\(queue)' concurrency \(limit) reached"
    }
}

/// What a store keeps in memory about the stored limits, so that claims and run inserts of
/// unlimited queues and workflows cost nothing extra. Refreshed from the store every
/// ``refreshInterval`` (another process may have changed the limits) and whenever this process
/// saves limits.
package struct LimitSnapshot: Sendable, Hashable {
    package var runLimits: [String: Int] = [:]
    package var queueLimits: [String: Int] = [:]
    package var loadedAt: Date = .distantPast

    /// How long a snapshot is trusted before the store reads the limits again.
    package static let refreshInterval: TimeInterval = 2

    package init(runLimits: [String: Int] = [:], queueLimits: [String: Int] = [:], loadedAt: Date = .distantPast) {
        self.runLimits = runLimits
        self.queueLimits = queueLimits
        self.loadedAt = loadedAt
    }

    package func isStale(at now: Date) -> Bool {
        now.timeIntervalSince(loadedAt) >= Self.refreshInterval || now < loadedAt
    }

    /// The limited queues among `queues`.
    package func limitedQueues(among queues: [String]) -> [String] {
        guard !queueLimits.isEmpty else { return [] }
        return Set(queues).filter { queueLimits[$0] != nil }.sorted()
    }

    /// Workflows with a `max_active_runs` among the runs `events` finished: their waiting runs
    /// may start.
    package func workflowsToAdmit(after events: [EngineEvent]) -> [String] {
        guard !runLimits.isEmpty else { return [] }
        var workflows: Set<String> = []
        for case .runFinished(_, let workflow, _, _, _, _) in events where runLimits[workflow] != nil {
            workflows.insert(workflow)
        }
        return workflows.sorted()
    }

    /// Whether `events` finished an attempt of a limited queue (a place in it came free).
    package func freesQueue(_ events: [EngineEvent]) -> Bool {
        guard !queueLimits.isEmpty else { return false }
        for case .attemptFinished(let info, _, _, _, _, _) in events where queueLimits[info.queue] != nil {
            return true
        }
        return false
    }
}

/// A store's ``LimitSnapshot``, read again from the store when it is stale.
package final class LimitCache: Sendable {
    private let snapshot = Mutex(LimitSnapshot())

    package init() {}

    /// The snapshot, or a fresh one from `load` when it is older than the refresh interval.
    package func current(now: Date, load: () async throws -> LimitSnapshot) async throws -> LimitSnapshot {
        let current = snapshot.withLock { $0 }
        guard current.isStale(at: now) else { return current }
        return try await reload(load)
    }

    /// Makes the next ``current(now:load:)`` read the limits again (this process changed them).
    package func invalidate() {
        snapshot.withLock { $0.loadedAt = .distantPast }
    }

    /// A fresh snapshot from `load` (after this process changed the limits).
    @discardableResult
    package func reload(_ load: () async throws -> LimitSnapshot) async throws -> LimitSnapshot {
        let fresh = try await load()
        snapshot.withLock { $0 = fresh }
        return fresh
    }
}

/// A store that keeps a ``LimitCache`` of the limits it stores.
package protocol LimitCaching: Sendable {
    var limitCache: LimitCache { get }
    /// Reads the stored limits.
    func loadLimits(now: Date) async throws -> LimitSnapshot
}

extension LimitCaching {
    /// The stored limits; read again when the snapshot is older than its refresh interval.
    package func currentLimits(now: Date) async throws -> LimitSnapshot {
        try await limitCache.current(now: now) { try await loadLimits(now: now) }
    }

    /// Reads the stored limits now (after this process changed them).
    package func reloadLimits(now: Date) async throws {
        try await limitCache.reload { try await loadLimits(now: now) }
    }
}
