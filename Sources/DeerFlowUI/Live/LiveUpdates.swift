public import DeerFlow
import DeerFlowCore
import Foundation
public import ServiceLifecycle
import Synchronization

/// What makes open pages live: the engine's events (this process's runs) and, on a store shared
/// by several processes, a bounded poll of the store (changes made by any process of the
/// cluster). Each open page holds one subscription, to one run or to everything; a change wakes
/// it, and the page's server-sent event stream tells the browser to refresh its live parts.
///
/// Cost on the engine's hot path: one lock and a dictionary lookup per batch of events, whatever
/// the number of open pages; nothing when no page is open.
public final class LiveUpdates: EngineObserver, Service, Sendable {
    /// How often a shared store is polled while pages are open.
    let pollInterval: Duration
    /// At most this many runs are polled per round (the most recently subscribed).
    let pollLimit = 200
    private let store: any WorkflowStore
    private let pollsStore: Bool
    private let state = Mutex(State())

    struct State {
        var nextID = 0
        var byRun: [RunID: [Int: AsyncStream<Bool>.Continuation]] = [:]
        var everything: [Int: AsyncStream<Bool>.Continuation] = [:]
        var fingerprints: [RunID: Int] = [:]
        var globalFingerprint = 0
    }

    /// - Parameters:
    ///   - pollsStore: whether other processes change the store (PostgreSQL), so open pages
    ///     also follow a poll of it.
    public init(store: any WorkflowStore, pollsStore: Bool, pollInterval: Duration = .seconds(2)) {
        self.store = store
        self.pollsStore = pollsStore
        self.pollInterval = pollInterval
    }

    public func engine(didEmit events: [EngineEvent]) {
        var runs: Set<RunID> = []
        for event in events {
            switch event {
            case .runCreated(let id, _, _, _), .runStarted(let id, _, _), .runFinished(let id, _, _, _, _, _), .tasksSkipped(let id, _, _),
                 .runRetried(let id, _, _, _), .runTimedOut(let id, _, _, _):
                runs.insert(id)
            case .attemptStarted(let info, _, _), .attemptFinished(let info, _, _, _, _, _), .retryScheduled(let info, _):
                runs.insert(info.runID)
            }
        }
        let woken = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
            guard !state.everything.isEmpty || !state.byRun.isEmpty else { return [] }
            var woken = Array(state.everything.values)
            for run in runs { if let values = state.byRun[run]?.values { woken += values } }
            return woken
        }
        for continuation in woken { continuation.yield(true) }
    }

    /// A stream that yields `true` when `run` (nil: anything) changed, and `false` every
    /// `keepAliveInterval` (so a stream notices a browser that left, and its age); it ends its
    /// subscription when the consumer stops iterating.
    func subscribe(run: RunID?) -> AsyncStream<Bool> {
        let (stream, continuation) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> Int in
            let id = state.nextID
            state.nextID += 1
            if let run { state.byRun[run, default: [:]][id] = continuation } else { state.everything[id] = continuation }
            return id
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { state in
                if let run {
                    state.byRun[run]?[id] = nil
                    if state.byRun[run]?.isEmpty == true {
                        state.byRun[run] = nil
                        state.fingerprints[run] = nil
                    }
                } else {
                    state.everything[id] = nil
                }
            }
        }
        return stream
    }

    /// Open subscriptions (tests, the benchmark).
    var subscriberCount: Int { state.withLock { $0.everything.count + $0.byRun.values.reduce(0) { $0 + $1.count } } }

    /// How often open streams get a keep-alive.
    let keepAliveInterval: Duration = .seconds(15)

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var sinceKeepAlive = Duration.zero
            while !Task.isCancelled {
                try? await Sleep.for(self.pollInterval)
                if self.pollsStore { await self.poll() }
                sinceKeepAlive += self.pollInterval
                if sinceKeepAlive >= self.keepAliveInterval {
                    sinceKeepAlive = .zero
                    let all = self.state.withLock { state in Array(state.everything.values) + state.byRun.values.flatMap(\.values) }
                    for continuation in all { continuation.yield(false) }
                }
            }
        }
        // Open streams end with the process.
        let all = state.withLock { state in Array(state.everything.values) + state.byRun.values.flatMap(\.values) }
        for continuation in all { continuation.finish() }
    }

    /// One round of the shared store's poll: the task states of every run an open page shows
    /// (one store call), and the newest runs for the pages that show everything (one call).
    func poll() async {
        let (runs, global) = state.withLock { (Array($0.byRun.keys.suffix(pollLimit)), !$0.everything.isEmpty) }
        if !runs.isEmpty, let states = try? await store.taskStates(runs: runs) {
            let changed = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
                var woken: [AsyncStream<Bool>.Continuation] = []
                for run in runs {
                    var hasher = Hasher()
                    for task in states[run] ?? [] {
                        hasher.combine(task.status)
                        hasher.combine(task.attempts)
                    }
                    let fingerprint = hasher.finalize()
                    if let old = state.fingerprints[run], old != fingerprint, let values = state.byRun[run]?.values { woken += values }
                    state.fingerprints[run] = fingerprint
                }
                return woken
            }
            for continuation in changed { continuation.yield(true) }
        }
        if global, let page = try? await store.runs(RunQuery(limit: 20)) {
            var hasher = Hasher()
            for run in page.runs {
                hasher.combine(run.id)
                hasher.combine(run.status)
                hasher.combine(run.progress.finished)
            }
            let fingerprint = hasher.finalize()
            let woken = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
                defer { state.globalFingerprint = fingerprint }
                return state.globalFingerprint != 0 && state.globalFingerprint != fingerprint ? Array(state.everything.values) : []
            }
            for continuation in woken { continuation.yield(true) }
        }
    }
}
