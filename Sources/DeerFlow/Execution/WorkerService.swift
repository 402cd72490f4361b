import DeerFlowCore
import Foundation
import Logging
public import ServiceLifecycle
import Synchronization

/// Executes attempts from the store in this process: `slots` at a time, from a list of queues.
///
/// One loop does all store traffic: it hands finished attempts back and claims new ones in a
/// single transaction (``WorkflowStore/exchange(_:)``), so a dependent made ready by a
/// completion starts on the slot that just freed, without waiting for a scheduler. When nothing
/// is ready, it sleeps until new work is triggered in this process, a slot finishes, or the poll
/// interval passes (other processes' work on a shared store).
///
/// On graceful shutdown (SIGTERM/SIGINT) it stops claiming, lets running attempts finish until
/// `drainTimeout`, then releases the rest for retry elsewhere; readiness answers 503 meanwhile.
public final class WorkerService: Service, Sendable {
    /// Worker settings.
    public struct Configuration: Sendable {
        /// Concurrent attempts; default ``defaultSlots`` (64).
        public var slots: Int = Configuration.defaultSlots

        /// 64: tasks mostly wait (HTTP calls, child processes, sleeps) and a slot is a Swift task,
        /// not a thread, so many slots cost little. Fewer slots than a run's fan-out make its
        /// tasks wait for each other; CPU-heavy shell tasks may want fewer (`--slots`).
        public static let defaultSlots = 64
        /// Queues served, in order; default `["default"]`.
        public var queues: [String] = ["default"]
        /// How often to look for work claimable by this worker when not woken; default 1 s.
        public var pollInterval: Duration = .seconds(1)
        /// How long running attempts may continue after a shutdown request; default 30 s.
        public var drainTimeout: Duration = .seconds(30)
        /// How often leases are renewed; default a third of the lease duration.
        public var heartbeatInterval: Duration?

        public init() {}
    }

    /// This worker's id: `host:pid:random`.
    public let id: String
    let engine: DeerFlowEngine
    let configuration: Configuration
    private let mailbox = Mailbox<Finished>()
    private let running = Mutex<[AttemptID: StopSignal]>([:])
    private let busySlots = Atomic<Int>(0)
    /// The loop's last claim found its queues empty and nothing was queued since, as far as this
    /// process knows: a trigger may start its run's first attempts here directly
    /// (``reserveIdleSlots(upTo:)``) without jumping ahead of queued work.
    private let queuesEmpty = Atomic<Bool>(false)
    private let startedAt = Date()
    private let executor: TaskExecutor

    /// What the loop is told: a finished attempt, or attempts started for it by a trigger.
    struct Finished: Sendable {
        var completion: AttemptCompletion?
        var slotReleased: Bool
        /// Attempts a trigger started on this worker in its run's transaction; their slots were
        /// reserved by ``reserveIdleSlots(upTo:)``.
        var adopted: [ClaimedAttempt] = []
        /// Their `runStarted` and `attemptStarted` events, emitted once they run.
        var adoptedEvents: [EngineEvent] = []
    }

    init(engine: DeerFlowEngine, configuration: Configuration) {
        self.engine = engine
        var configuration = configuration
        configuration.slots = max(1, configuration.slots)
        if configuration.queues.isEmpty { configuration.queues = ["default"] }
        self.configuration = configuration
        id = "\(engine.configuration.hostName):\(getpid()):\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        executor = TaskExecutor(engine: engine)
    }

    /// Runs until graceful shutdown or cancellation.
    public func run() async throws {
        engine.attach(self)
        defer { engine.detach(self) }
        let logger = engine.logger
        // Before any claim: what a killed worker on this machine left running must not run on
        // beside the retry of its attempt.
        TaskProcessGroups.standard.killOrphans(logger: logger)
        logger.info("worker started", metadata: [
            "worker": "\(id)", "slots": "\(configuration.slots)", "queues": "\(configuration.queues.joined(separator: ","))",
        ])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.heartbeatLoop() }
                if let wakeups = self.engine.store.workAvailable() {
                    // Another process made work claimable (e.g. PostgreSQL NOTIFY): look at once.
                    group.addTask {
                        for await _ in wakeups { self.wake() }
                    }
                }
                await self.dispatchLoop(group: &group)
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.mailbox.close()
        }
        try? await engine.store.deregister(worker: id, at: Date())
        logger.info("worker stopped", metadata: ["worker": "\(id)"])
    }

    /// Attempts running now.
    var busy: Int { busySlots.load(ordering: .relaxed) }

    /// Wakes the loop: work may be ready.
    func wake() {
        queuesEmpty.store(false, ordering: .relaxed)
        mailbox.wake()
    }

    /// Reserves up to `count` free slots for attempts a trigger starts on this worker in its
    /// run's own transaction, when the worker found its queues empty at its last claim (so
    /// nothing queued is overtaken) and is not draining. Returns how many were reserved (0: queue
    /// the run as usual). Hand the attempts over with ``adopt(_:reserved:)``, also when none
    /// were started.
    func reserveIdleSlots(upTo count: Int) -> Int {
        guard count > 0, queuesEmpty.load(ordering: .relaxed), !mailbox.isClosed else { return 0 }
        var busy = busySlots.load(ordering: .relaxed)
        while true {
            let reserved = min(count, configuration.slots - busy)
            guard reserved > 0 else { return 0 }
            let (exchanged, original) = busySlots.compareExchange(expected: busy, desired: busy + reserved, ordering: .relaxed)
            if exchanged { return reserved }
            busy = original
        }
    }

    /// Starts attempts a trigger started for this worker, and frees the reserved slots they do
    /// not use. The loop emits `events` (their start) once they run, as it does for the attempts
    /// it claims, and before it can report them finished.
    func adopt(_ attempts: [ClaimedAttempt], events: [EngineEvent] = [], reserved: Int) {
        let unused = reserved - attempts.count
        if unused > 0 { busySlots.subtract(unused, ordering: .relaxed) }
        if !attempts.isEmpty { mailbox.post(Finished(completion: nil, slotReleased: false, adopted: attempts, adoptedEvents: events)) }
    }

    /// Asks running attempts to stop.
    func stop(_ attempts: Set<AttemptID>, reason: StopReason) {
        let signals = running.withLock { running in attempts.compactMap { running[$0] } }
        for signal in signals { signal.fire(reason) }
    }

    // MARK: Loop

    private func dispatchLoop(group: inout DiscardingTaskGroup) async {
        let store = engine.store
        let clock = ContinuousClock()
        var pending: [AttemptCompletion] = []
        var draining = false
        var drainDeadline = clock.now
        var moreWork = true
        var nextPoll = clock.now
        var failures = 0
        while true {
            let (items, woken) = mailbox.take()
            var adoptedEvents: [EngineEvent] = []
            for item in items {
                if let completion = item.completion { pending.append(completion) }
                for attempt in item.adopted { start(attempt, in: &group) }
                adoptedEvents += item.adoptedEvents
            }
            if !adoptedEvents.isEmpty { engine.emit(adoptedEvents) }
            if (mailbox.isClosed || Task.isCancelled) && !draining {
                draining = true
                queuesEmpty.store(false, ordering: .relaxed)
                // Closed also when cancelled: no trigger reserves a slot on a worker about to stop.
                mailbox.close()
                drainDeadline = clock.now + configuration.drainTimeout
                engine.setDraining()
                engine.logger.info("worker draining", metadata: ["worker": "\(id)", "running": "\(busySlots.load(ordering: .relaxed))"])
            }
            if woken || clock.now >= nextPoll { moreWork = true }
            let free = draining ? 0 : configuration.slots - busySlots.load(ordering: .relaxed)
            // Completions can make dependents ready: claim with them whenever a slot is free.
            let claim = free > 0 && (moreWork || !pending.isEmpty)
            if pending.isEmpty && !claim {
                if draining {
                    if busySlots.load(ordering: .relaxed) == 0 { return }
                    if clock.now >= drainDeadline {
                        stop(Set(running.withLock { Array($0.keys) }), reason: .released)
                    }
                    if Task.isCancelled {
                        // Cancelled (hard stop): sleeping would return at once; wait without spinning
                        // for the slots, which were cancelled too, to finish.
                        await mailbox.waitIgnoringCancellation(timeout: .milliseconds(50))
                    } else {
                        await mailbox.wait(timeout: .milliseconds(50))
                    }
                } else {
                    await mailbox.wait(timeout: max(.milliseconds(1), nextPoll - clock.now))
                }
                continue
            }
            // When the last claim found nothing queued, dependents made ready by these completions
            // start here directly (the store skips the queue lookup); otherwise claim by priority.
            let onlyNewlyReady = !moreWork
            let request = ExchangeRequest(
                completions: pending,
                claim: claim ? ClaimRequest(worker: id, queues: configuration.queues, limit: free, leaseDuration: engine.configuration.leaseDuration, onlyNewlyReady: onlyNewlyReady) : nil,
                now: Date()
            )
            let result: ExchangeResult
            do {
                result = try await store.exchange(request)
                failures = 0
            } catch {
                // Keep the completions and try again: nothing finished is lost while the store is away.
                failures += 1
                engine.logger.error("worker could not reach the store; retrying", metadata: ["worker": "\(id)", "error": "\(error)", "pending": "\(pending.count)"])
                try? await Sleep.for(.milliseconds(min(5000, 50 << min(failures, 7))))
                continue
            }
            pending.removeAll(keepingCapacity: true)
            if claim && !onlyNewlyReady { nextPoll = clock.now + configuration.pollInterval }
            // Without a claim we do not know what is ready: look again once a slot frees.
            if !claim || result.leftReadyQueued {
                // Ready work waits in the queues (dependents beyond the free slots were queued):
                // claim from the queues as soon as a slot frees, not at the next poll.
                moreWork = true
            } else if !onlyNewlyReady {
                moreWork = result.claimed.count >= free
            }
            if !draining { queuesEmpty.store(!moreWork, ordering: .relaxed) }
            for event in result.events {
                guard case .retryScheduled(_, let at) = event else { continue }
                // Wake up for a retry that comes due before the next poll.
                let due = clock.now + .milliseconds(Int64(max(0, at.timeIntervalSinceNow) * 1000))
                if due < nextPoll { nextPoll = due }
            }
            for attempt in result.claimed {
                busySlots.add(1, ordering: .relaxed)
                start(attempt, in: &group)
            }
            // Observers (metrics, run spans, logs) after the claimed attempts have started, so they
            // run while the attempts do rather than before.
            engine.emit(result.events)
        }
    }

    /// Runs a claimed attempt in a slot already counted busy.
    private func start(_ attempt: ClaimedAttempt, in group: inout DiscardingTaskGroup) {
        let signal = StopSignal()
        running.withLock { $0[attempt.id] = signal }
        group.addTask {
            // A timed-out or stopped attempt is reported at once (`early`), even if its code
            // takes a while to honour cancellation; its slot stays busy until it returns.
            let completion = await self.executor.execute(attempt, stop: signal) { early in
                _ = self.running.withLock { $0.removeValue(forKey: attempt.id) }
                self.mailbox.post(Finished(completion: early, slotReleased: false))
            }
            _ = self.running.withLock { $0.removeValue(forKey: attempt.id) }
            self.busySlots.subtract(1, ordering: .relaxed)
            self.mailbox.post(Finished(completion: completion, slotReleased: true))
        }
    }

    private func heartbeatLoop() async {
        let interval = configuration.heartbeatInterval ?? engine.configuration.leaseDuration / 3
        var failures = 0
        while !Task.isCancelled {
            let attempts = running.withLock { Array($0.keys) }
            let record = WorkerRecord(
                id: id, host: engine.configuration.hostName, pid: Int(getpid()), slots: configuration.slots,
                busy: busySlots.load(ordering: .relaxed), queues: configuration.queues, version: engine.configuration.version,
                startedAt: startedAt, lastSeen: Date(), state: .active
            )
            do {
                let leaseUntil = Date().adding(engine.configuration.leaseDuration)
                let stopped = try await engine.store.heartbeat(record, running: attempts, leaseUntil: leaseUntil)
                if !stopped.isEmpty { stop(stopped, reason: .cancelled) }
                if failures > 0 {
                    engine.logger.notice("worker heartbeat restored", metadata: ["worker": "\(id)", "failed_heartbeats": "\(failures)"])
                    failures = 0
                }
            } catch {
                failures += 1
                engine.logger.warning("worker heartbeat failed", metadata: ["worker": "\(id)", "error": "\(error)", "failed_heartbeats": "\(failures)"])
            }
            try? await Sleep.for(interval)
        }
    }
}
