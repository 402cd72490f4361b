public import DeerFlow
public import DeerFlowCore
public import Foundation
import Synchronization
import Testing

/// The behaviour every ``WorkflowStore`` must have. Each check takes a prepared, empty store;
/// a store's test suite runs every check in ``all`` against its own implementation, and the
/// checks of ``serverCapabilities`` when it also offers what a server needs (``ServerStore``).
///
/// ```swift
/// @Test(arguments: WorkflowStoreConformance.all)
/// func conformance(_ check: WorkflowStoreConformance.Check<any WorkflowStore>) async throws {
///     try await withMyStore { store in try await check.run(store) }
/// }
/// ```
public enum WorkflowStoreConformance {
    /// One named check of a store with the capabilities `Store`.
    public struct Check<Store: Sendable>: Sendable, CustomStringConvertible {
        public let name: String
        public let run: @Sendable (Store) async throws -> Void
        public var description: String { name }
    }

    /// The checks of the outbox and state capabilities (``OutboxStore``, ``StateStore``).
    public static let serverCapabilities: [Check<any ServerStore>] = [
        Check(name: "state documents are saved, replaced and deleted by key", run: stateDocuments),
        Check(name: "the notification outbox takes a key once, hands a due message to one claimer, and records outcomes", run: outbox),
        Check(name: "purges delete old finished runs and logs in batches and never touch unfinished runs", run: retention),
        Check(name: "a webhook delivery creates one run, also when repeated at the same time, and is forgotten by the purge", run: webhookDeliveries),
    ]

    /// Every check of the engine's store (``WorkflowStore``).
    public static let all: [Check<any WorkflowStore>] = [
        Check(name: "creating a run queues the tasks without dependencies", run: createQueuesRoots),
        Check(name: "a batch of runs is created in order in one call, and a batch holding a scheduled run is refused whole", run: createBatch),
        Check(name: "claims follow queue, priority, readiness and limit", run: claimOrder),
        Check(name: "a completion queues dependents and the same exchange can claim them", run: completionReleasesDependents),
        Check(name: "a worker that found the queues empty starts newly ready dependents directly", run: directStart),
        Check(name: "a run created with a claim starts up to its limit of first tasks in the claim's queues on the worker, or queues them all", run: { try await createStartingOn($0, mustStart: false) }),
        Check(name: "a failure with retries left queues a new attempt after the backoff", run: retryAfterBackoff),
        Check(name: "a final failure skips dependents and fails the run after independent branches", run: finalFailure),
        Check(name: "a timeout is recorded as timeout", run: timeoutOutcome),
        Check(name: "a completion reported twice is applied once", run: duplicateCompletion),
        Check(name: "cancelling drops queued work and asks running attempts to stop", run: cancel),
        Check(name: "heartbeats extend leases; expired leases and dead workers are reclaimed without using retries", run: leases),
        Check(name: "a scheduled run is created once per workflow and due time", run: scheduleUniqueness),
        Check(name: "runs are listed newest first with filters and cursor paging", run: listing),
        Check(name: "statistics report queues, active runs, workers and lag sources", run: statistics),
        Check(name: "task logs are kept per attempt up to the limit", run: logs),
        Check(name: "many completions of several runs in one exchange", run: batchedExchange),
        Check(name: "finished runs are found among many ids in one call", run: finishedAmong),
        Check(name: "the UI's aggregates: recent runs per workflow, task states, counts, time and trigger filters", run: aggregates),
        Check(name: "a paused schedule keeps its pause across saves, does not fire, and unpauses with or without its due time", run: pausedSchedule),
        Check(name: "a backfill creates each fire time's run once, skips runs already present, and is cancelled as a whole", run: backfillRuns),
        Check(name: "claimed attempts carry their run's logical time", run: logicalTime),
    ] + recoveryChecks + limitChecks + subWorkflowChecks + mapChecks

    /// The checks of a store that starts a triggered run's first tasks in the run's own
    /// transaction (``RunStore/createRun(_:startingOn:)`` beyond the default).
    public static let directStartChecks: [Check<any WorkflowStore>] = [
        Check(name: "a run created with a claim starts up to its limit of first tasks in the claim's queues on the worker at once", run: { try await createStartingOn($0, mustStart: true) }),
    ]

    // MARK: Fixtures

    static let lease = Duration.seconds(30)

    /// A run of tasks given as (id, dependencies), each with an optional retry policy.
    public static func newRun(
        _ workflow: String = "flow",
        tasks: [(String, [String])],
        retries: Int = 0,
        retryDelay: Duration = .seconds(10),
        queue: String = "default",
        priority: Int = 0,
        trigger: RunTrigger = .api,
        at date: Date = Date()
    ) -> NewRun {
        let index = Dictionary(uniqueKeysWithValues: tasks.enumerated().map { ($0.element.0, $0.offset) })
        var dependents = Array(repeating: [Int](), count: tasks.count)
        for (offset, task) in tasks.enumerated() {
            for dependency in task.1 { if let parent = index[dependency] { dependents[parent].append(offset) } }
        }
        let newTasks = tasks.enumerated().map { offset, task in
            NewTask(
                index: offset, id: task.0, type: "test", queue: queue, priority: priority, dependencyCount: task.1.count,
                dependents: dependents[offset], retry: RetryPolicy(retries: retries, delay: retryDelay, maxDelay: .seconds(600), jitter: 0),
                timeout: nil)
        }
        return NewRun(id: .generate(at: date), workflow: workflow, workflowVersion: "\(workflow)@test", params: ["p": 1], tasks: newTasks, trigger: trigger, traceContext: nil, createdAt: date)
    }

    static func claim(_ store: any WorkflowStore, worker: String = "w1", queues: [String] = ["default"], limit: Int = 10, at now: Date = Date()) async throws -> [ClaimedAttempt] {
        try await store.exchange(ExchangeRequest(completions: [], claim: ClaimRequest(worker: worker, queues: queues, limit: limit, leaseDuration: lease), now: now)).claimed
    }

    static func complete(_ store: any WorkflowStore, _ attempts: [ClaimedAttempt], _ outcome: AttemptOutcome, claim: Int = 0, at now: Date = Date()) async throws -> ExchangeResult {
        let completions = attempts.map { AttemptCompletion(attemptID: $0.id, outcome: outcome, finishedAt: now, jitter: 0) }
        let request = claim > 0 ? ClaimRequest(worker: "w1", queues: ["default"], limit: claim, leaseDuration: lease) : nil
        return try await store.exchange(ExchangeRequest(completions: completions, claim: request, now: now))
    }

    /// Stores keep time to the microsecond at least.
    static func close(_ lhs: Date?, _ rhs: Date) -> Bool {
        guard let lhs else { return false }
        return abs(lhs.timeIntervalSince(rhs)) < 0.001
    }

    static func detail(_ store: any WorkflowStore, _ id: RunID) async throws -> RunDetail {
        let detail = try await store.run(id)
        #expect(detail != nil)
        guard let detail else { throw ConformanceFailure("run \(id) not found") }
        return detail
    }

    static func statuses(_ detail: RunDetail) -> [String: TaskStatus] {
        Dictionary(uniqueKeysWithValues: detail.tasks.map { ($0.id, $0.status) })
    }

    /// Claims and succeeds every ready attempt until nothing is left.
    public static func finishAll(_ store: any WorkflowStore, at now: Date = Date()) async throws {
        while true {
            let claimed = try await claim(store, limit: 100, at: now)
            if claimed.isEmpty { return }
            _ = try await complete(store, claimed, .success(output: .null), at: now)
        }
    }

    // MARK: Checks

    static func createQueuesRoots(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"]), ("c", [])])
        let created = try await store.createRun(run)
        #expect(created?.status == .pending)
        #expect(created?.progress.total == 3)
        let detail = try await detail(store, run.id)
        #expect(detail.run.params == ["p": 1])
        #expect(statuses(detail) == ["a": .queued, "b": .pending, "c": .queued])
        #expect(detail.tasks.first { $0.id == "a" }?.attempts.map(\.status) == [.queued])
        #expect(detail.tasks.first { $0.id == "b" }?.attempts.isEmpty == true)
    }

    static func createBatch(_ store: any WorkflowStore) async throws {
        let runs = (0..<1_200).map { _ in newRun(tasks: [("a", []), ("b", ["a"])]) }
        let created = try await store.createRuns(runs)
        #expect(created.map(\.id) == runs.map(\.id))
        #expect(created.allSatisfy { $0.status == .pending && $0.progress.total == 2 })
        #expect(try await claim(store, limit: 2_000).count == 1_200)
        #expect(statuses(try await detail(store, runs[1_199].id)) == ["a": .running, "b": .pending])
        // All or nothing: a batch that holds a run the insert may skip is refused before anything is stored.
        let mixed = [newRun(tasks: [("a", [])]), newRun(tasks: [("a", [])], trigger: .schedule(dueAt: Date()))]
        await #expect(throws: DeerFlowError.self) { try await store.createRuns(mixed) }
        #expect(try await store.run(mixed[0].id) == nil)
    }

    static func claimOrder(_ store: any WorkflowStore) async throws {
        let now = Date()
        let low = newRun(tasks: [("low", [])], at: now.addingTimeInterval(-2))
        let high = newRun(tasks: [("high", [])], priority: 5, at: now.addingTimeInterval(-1))
        let other = newRun(tasks: [("other", [])], queue: "reports", at: now.addingTimeInterval(-3))
        for run in [low, high, other] { _ = try await store.createRun(run) }
        let first = try await claim(store, limit: 1, at: now)
        #expect(first.map(\.taskID) == ["high"])
        #expect(first.first?.params == ["p": 1])
        #expect(close(first.first?.leaseUntil, now.addingTimeInterval(30)))
        let rest = try await claim(store, limit: 10, at: now)
        #expect(rest.map(\.taskID) == ["low"])
        let reports = try await claim(store, worker: "w2", queues: ["reports", "default"], limit: 10, at: now)
        #expect(reports.map(\.taskID) == ["other"])
        let started = try await detail(store, high.id)
        #expect(started.run.status == .running)
        #expect(started.run.startedAt != nil)
        #expect(started.tasks[0].status == .running)
        #expect(started.tasks[0].attempts[0].worker == "w1")
        #expect(try await claim(store, at: now).isEmpty)
    }

    static func completionReleasesDependents(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"])])
        _ = try await store.createRun(run)
        let a = try await claim(store)
        #expect(a.map(\.taskID) == ["a"])
        let afterA = try await complete(store, a, .success(output: ["rows": 3]), claim: 10)
        #expect(Set(afterA.claimed.map(\.taskID)) == ["b", "c"])
        #expect(try await store.taskOutput(run: run.id, task: "a") == ["rows": 3])
        let b = afterA.claimed.filter { $0.taskID == "b" }
        let c = afterA.claimed.filter { $0.taskID == "c" }
        let afterB = try await complete(store, b, .success(output: .null), claim: 10)
        #expect(afterB.claimed.isEmpty, "d still waits for c")
        let afterC = try await complete(store, c, .success(output: .null), claim: 10)
        #expect(afterC.claimed.map(\.taskID) == ["d"])
        let finished = try await complete(store, afterC.claimed, .success(output: "done"))
        let runFinished = finished.events.contains { event in
            if case .runFinished(let id, _, .success, _, _, _) = event { return id == run.id }
            return false
        }
        #expect(runFinished)
        let detail = try await detail(store, run.id)
        #expect(detail.run.status == .success)
        #expect(detail.run.finishedAt != nil)
        #expect(detail.run.progress == RunProgress(total: 4, finished: 4, failed: 0))
        #expect(detail.tasks.allSatisfy { $0.status == .success && $0.attempts.count == 1 })
    }

    static func directStart(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"]), ("c", ["a"])])
        let other = newRun(tasks: [("queued-before", [])], at: Date().addingTimeInterval(-60))
        _ = try await store.createRun(run)
        let a = try await claim(store, limit: 1)
        #expect(a.map(\.taskID) == ["a"], "a is newer but the other run is not created yet")
        _ = try await store.createRun(other)
        // Direct start: only b and c (made ready now), not the older queued task, and at most `limit`.
        let completions = a.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0) }
        let result = try await store.exchange(ExchangeRequest(
            completions: completions,
            claim: ClaimRequest(worker: "w9", queues: ["default"], limit: 1, leaseDuration: lease, onlyNewlyReady: true),
            now: Date()))
        #expect(result.claimed.count == 1)
        #expect(result.leftReadyQueued, "two became ready for one slot: the worker must learn that one waits in the queue")
        let started = try #require(result.claimed.first)
        #expect(["b", "c"].contains(started.taskID))
        #expect(started.number == 1)
        #expect(started.params == ["p": 1])
        #expect(started.workflow == "flow")
        let detail = try await detail(store, run.id)
        let startedTask = try #require(detail.tasks.first { $0.id == started.taskID })
        #expect(startedTask.status == .running)
        #expect(startedTask.attempts.map(\.status) == [.running])
        #expect(startedTask.attempts.first?.worker == "w9")
        let otherTask = started.taskID == "b" ? "c" : "b"
        #expect(statuses(detail)[otherTask] == .queued)
        // The rest is claimed in priority and age order: the older run's task first.
        let next = try await claim(store, limit: 1)
        #expect(next.map(\.taskID) == ["queued-before"])
        // All that became ready fits: nothing is left queued.
        let chain = newRun(tasks: [("x", []), ("y", ["x"])])
        _ = try await store.createRun(chain)
        let x = try await claim(store, limit: 10).filter { $0.runID == chain.id }
        let fits = try await store.exchange(ExchangeRequest(
            completions: x.map { AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: Date(), jitter: 0) },
            claim: ClaimRequest(worker: "w9", queues: ["default"], limit: 5, leaseDuration: lease, onlyNewlyReady: true),
            now: Date()))
        #expect(fits.claimed.map(\.taskID) == ["y"])
        #expect(!fits.leftReadyQueued)
    }

    /// ``RunStore/createRun(_:startingOn:)``: a store may start the first tasks at once (SQLite)
    /// or create the run as ``RunStore/createRun(_:)`` does (the default); either way nothing is
    /// started twice and the run completes through the usual exchanges.
    static func createStartingOn(_ store: any WorkflowStore, mustStart: Bool) async throws {
        var run = newRun(tasks: [("a", []), ("b", []), ("c", ["a", "b"]), ("d", [])])
        run.tasks[3].queue = "other"
        let starting = ClaimRequest(worker: "w7", queues: ["default"], limit: 1, leaseDuration: lease, onlyNewlyReady: true)
        let created = try #require(try await store.createRun(run, startingOn: starting))
        let detail = try await detail(store, run.id)
        #expect(!mustStart || !created.started.isEmpty, "this store starts first tasks with the run")
        if created.started.isEmpty {
            #expect(created.record.status == .pending)
            #expect(created.events.isEmpty)
            #expect(statuses(detail) == ["a": .queued, "b": .queued, "c": .pending, "d": .queued])
        } else {
            // One slot: the first root task of the claim's queues starts, on the claim's worker.
            let started = try #require(created.started.first)
            #expect(created.started.count == 1)
            #expect(started.taskID == "a")
            #expect(started.number == 1)
            #expect(started.params == ["p": 1])
            #expect(close(started.startedAt, run.createdAt))
            #expect(close(started.leaseUntil, run.createdAt.adding(lease)))
            #expect(created.record.status == .running)
            #expect(close(created.record.startedAt, run.createdAt))
            guard created.events.count == 2, case .runStarted(let runID, _, _) = created.events[0],
                  case .attemptStarted(let info, _, _) = created.events[1]
            else {
                Issue.record("expected runStarted and attemptStarted, got \(created.events)")
                return
            }
            #expect(runID == run.id)
            #expect(info.attemptID == started.id && info.worker == "w7")
            #expect(detail.run.status == .running)
            #expect(statuses(detail) == ["a": .running, "b": .queued, "c": .pending, "d": .queued])
            let attempt = try #require(detail.tasks.first { $0.id == "a" }?.attempts.first)
            #expect(attempt.status == .running && attempt.worker == "w7" && attempt.id == started.id)
            // A claim does not hand out the started attempt again.
            let others = try await claim(store, queues: ["default", "other"], limit: 10)
            #expect(Set(others.map(\.taskID)) == ["b", "d"])
            let finished = try await complete(store, [started] + others, .success(output: .null))
            #expect(finished.events.contains { if case .attemptFinished(let info, _, _, _, _, _) = $0 { info.attemptID == started.id } else { false } })
        }
        try await finishAll(store)
        let rest = try await claim(store, queues: ["other"], limit: 10)
        _ = try await complete(store, rest, .success(output: .null))
        #expect(try await Self.detail(store, run.id).run.status == .success)
    }

    static func retryAfterBackoff(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("flaky", [])], retries: 1, retryDelay: .seconds(10), at: now)
        _ = try await store.createRun(run)
        let first = try await claim(store, at: now)
        let result = try await complete(store, first, .failure(message: "boom"), claim: 10, at: now)
        #expect(result.claimed.isEmpty, "the retry is not ready before its backoff")
        let retried = result.events.contains { if case .retryScheduled(_, let at) = $0 { return close(at, now.addingTimeInterval(10)) } else { return false } }
        #expect(retried)
        let metric = result.events.compactMap { event -> AttemptMetricStatus? in
            if case .attemptFinished(_, _, let status, _, _, _) = event { return status }
            return nil
        }
        #expect(metric == [.retried])
        var detail = try await detail(store, run.id)
        #expect(detail.tasks[0].status == .queued)
        #expect(detail.tasks[0].attempts.map(\.status) == [.failed, .queued])
        #expect(detail.tasks[0].attempts[0].error == "boom")
        #expect(try await claim(store, at: now.addingTimeInterval(9)).isEmpty)
        let second = try await claim(store, at: now.addingTimeInterval(11))
        #expect(second.map(\.number) == [2])
        _ = try await complete(store, second, .failure(message: "again"), at: now.addingTimeInterval(12))
        detail = try await self.detail(store, run.id)
        #expect(detail.tasks[0].status == .failed)
        #expect(detail.run.status == .failed)
        #expect(detail.tasks[0].attempts.map(\.status) == [.failed, .failed])
    }

    static func finalFailure(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("bad", []), ("child", ["bad"]), ("grandchild", ["child"]), ("side", [])])
        _ = try await store.createRun(run)
        let claimed = try await claim(store)
        let bad = claimed.filter { $0.taskID == "bad" }
        let side = claimed.filter { $0.taskID == "side" }
        let result = try await complete(store, bad, .failure(message: "nope"))
        let skipped = result.events.compactMap { event -> [String]? in
            if case .tasksSkipped(_, _, let ids) = event { return ids }
            return nil
        }
        #expect(skipped == [["child", "grandchild"]])
        var detail = try await detail(store, run.id)
        #expect(detail.run.status == .running, "the independent branch is still running")
        #expect(statuses(detail) == ["bad": .failed, "child": .upstreamFailed, "grandchild": .upstreamFailed, "side": .running])
        _ = try await complete(store, side, .success(output: .null))
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .failed)
        #expect(detail.run.progress == RunProgress(total: 4, finished: 4, failed: 3))
    }

    static func timeoutOutcome(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("slow", [])])
        _ = try await store.createRun(run)
        let claimed = try await claim(store)
        let result = try await complete(store, claimed, .timeout(message: "timed out after 1s"))
        let metric = result.events.compactMap { event -> AttemptMetricStatus? in
            if case .attemptFinished(_, .timeout, let status, _, _, _) = event { return status }
            return nil
        }
        #expect(metric == [.timeout])
        let detail = try await detail(store, run.id)
        #expect(detail.tasks[0].status == .timeout)
        #expect(detail.tasks[0].attempts[0].error == "timed out after 1s")
        #expect(detail.run.status == .failed)
    }

    static func duplicateCompletion(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", []), ("b", ["a"])])
        _ = try await store.createRun(run)
        let a = try await claim(store)
        _ = try await complete(store, a, .success(output: .null))
        let again = try await complete(store, a, .failure(message: "late duplicate"))
        #expect(again.events.isEmpty)
        let detail = try await detail(store, run.id)
        #expect(statuses(detail) == ["a": .success, "b": .queued])
        #expect(detail.tasks[1].attempts.count == 1)
    }

    static func finishedAmong(_ store: any WorkflowStore) async throws {
        let done = newRun(tasks: [("only", [])])
        let open = newRun(tasks: [("only", [])])
        let cancelled = newRun(tasks: [("only", [])])
        for run in [done, open, cancelled] { _ = try await store.createRun(run) }
        #expect(try await store.finishedRuns(among: []).isEmpty)
        #expect(try await store.finishedRuns(among: [done.id, open.id, cancelled.id]).isEmpty)
        let claimed = try await claim(store, limit: 3)
        _ = try await complete(store, claimed.filter { $0.runID == done.id }, .success(output: .null))
        _ = try await store.cancelRun(cancelled.id, at: Date())
        // More ids than one statement binds (SQLite chunks at 900), unknown ones among them.
        let ids = [done.id, open.id, cancelled.id] + (0..<1500).map { _ in RunID.generate() }
        let finished = try await store.finishedRuns(among: ids)
        #expect(Set(finished.map(\.id)) == [done.id, cancelled.id])
        #expect(finished.first { $0.id == done.id }?.status == .success)
        #expect(finished.first { $0.id == cancelled.id }?.status == .cancelled)
        #expect(finished.allSatisfy { $0.finishedAt != nil })
    }

    static func stateDocuments(_ store: any ServerStore) async throws {
        #expect(try await store.state(forKey: "alerts.active") == nil)
        try await store.saveState(#"[{"name":"A"}]"#, forKey: "alerts.active")
        try await store.saveState("other", forKey: "something.else")
        #expect(try await store.state(forKey: "alerts.active") == #"[{"name":"A"}]"#)
        try await store.saveState("[]", forKey: "alerts.active")
        #expect(try await store.state(forKey: "alerts.active") == "[]")
        try await store.saveState(nil, forKey: "alerts.active")
        #expect(try await store.state(forKey: "alerts.active") == nil)
        #expect(try await store.state(forKey: "something.else") == "other")
    }

    static func outbox(_ store: any ServerStore) async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let first = NewOutboxMessage(key: "slack|a|firing", channel: "slack", payload: #"{"n":1}"#, createdAt: start)
        let second = NewOutboxMessage(key: "email|a|firing", channel: "email", payload: #"{"n":2}"#, createdAt: start.addingTimeInterval(1))
        #expect(try await store.enqueue([first, second]) == 2)
        // The same transition written again (a restart, another process) adds nothing.
        #expect(try await store.enqueue([first]) == 0)
        #expect(try await store.outbox(status: nil, limit: 10).count == 2)

        // Not due before its time; due messages go to one claimer until the lease ends.
        #expect(try await store.claimOutbox(now: start.addingTimeInterval(-1), limit: 10, lease: .seconds(30)).isEmpty)
        let claimed = try await store.claimOutbox(now: start.addingTimeInterval(2), limit: 10, lease: .seconds(30))
        #expect(claimed.map(\.key) == ["slack|a|firing", "email|a|firing"])
        #expect(claimed.first?.payload == #"{"n":1}"#)
        #expect(claimed.allSatisfy { $0.status == .pending && $0.attempts == 0 })
        #expect(try await store.claimOutbox(now: start.addingTimeInterval(3), limit: 10, lease: .seconds(30)).isEmpty)

        // A retry releases the message for its next attempt time; delivery and failure end it.
        guard let slack = claimed.first(where: { $0.channel == "slack" }), let email = claimed.first(where: { $0.channel == "email" }) else {
            throw ConformanceFailure("claimed messages missing: \(claimed)")
        }
        try await store.settleOutbox(slack.id, outcome: .retry(at: start.addingTimeInterval(10), error: "HTTP 503"), at: start.addingTimeInterval(3))
        try await store.settleOutbox(email.id, outcome: .failed(error: "550 mailbox unavailable"), at: start.addingTimeInterval(3))
        #expect(try await store.claimOutbox(now: start.addingTimeInterval(9), limit: 10, lease: .seconds(30)).isEmpty)
        let again = try await store.claimOutbox(now: start.addingTimeInterval(10), limit: 10, lease: .seconds(30))
        #expect(again.map(\.id) == [slack.id])
        #expect(again.first?.attempts == 1)
        #expect(again.first?.lastError == "HTTP 503")
        try await store.settleOutbox(slack.id, outcome: .delivered, at: start.addingTimeInterval(11))

        // A claimer that died: its lease ends and another takes the message.
        let third = NewOutboxMessage(key: "pagerduty|b|firing", channel: "pagerduty", payload: "{}", createdAt: start)
        #expect(try await store.enqueue([third]) == 1)
        let held = try await store.claimOutbox(now: start.addingTimeInterval(20), limit: 10, lease: .seconds(5))
        #expect(held.map(\.key) == ["pagerduty|b|firing"])
        #expect(try await store.claimOutbox(now: start.addingTimeInterval(24), limit: 10, lease: .seconds(5)).isEmpty)
        #expect(try await store.claimOutbox(now: start.addingTimeInterval(26), limit: 10, lease: .seconds(5)).map(\.key) == ["pagerduty|b|firing"])

        let delivered = try await store.outbox(status: .delivered, limit: 10)
        #expect(delivered.map(\.key) == ["slack|a|firing"])
        #expect(delivered.first?.attempts == 2)
        #expect(delivered.first?.deliveredAt != nil)
        #expect(delivered.first?.lastError == nil)
        let failed = try await store.outbox(status: .failed, limit: 10)
        #expect(failed.map(\.key) == ["email|a|firing"])
        #expect(failed.first?.lastError == "550 mailbox unavailable")
        #expect(try await store.outbox(status: .pending, limit: 10).map(\.key) == ["pagerduty|b|firing"])
    }

    static func retention(_ store: any ServerStore) async throws {
        let now = Date()
        let old = now.addingTimeInterval(-100 * 86_400)
        let middle = now.addingTimeInterval(-40 * 86_400)
        let oldRuns = (0..<3).map { _ in newRun("old", tasks: [("a", []), ("b", ["a"])], at: old) }
        let recent = newRun("recent", tasks: [("a", [])], at: old)
        // Created as long ago as the old runs, but not finished: never purged.
        let unfinished = newRun("unfinished", tasks: [("a", []), ("b", ["a"])], at: old)
        for run in oldRuns + [recent, unfinished] { _ = try await store.createRun(run) }
        for round in 0..<2 {
            let claimed = try await claim(store, limit: 100, at: old)
            #expect(claimed.count == 5 - round)
            for attempt in claimed { try await store.appendLog(attempt: attempt.id, text: "\(attempt.taskID) printed\n", limit: 1_000) }
            let oldAttempts = claimed.filter { attempt in oldRuns.contains { $0.id == attempt.runID } }
            _ = try await complete(store, oldAttempts, .success(output: .null), at: old)
            _ = try await complete(store, claimed.filter { $0.runID == recent.id }, .success(output: .null), at: middle)
            // The unfinished run's first task finishes; its second stays running.
            if round == 0 { _ = try await complete(store, claimed.filter { $0.runID == unfinished.id }, .success(output: .null), at: old) }
        }
        let runsCutoff = now.addingTimeInterval(-90 * 86_400)
        let logsCutoff = now.addingTimeInterval(-30 * 86_400)

        // A dry run counts: 3 old runs; logs of the old runs (6) and of the recent one (1).
        #expect(try await store.purgeCandidates(runsFinishedBefore: runsCutoff, logsFinishedBefore: logsCutoff) == PurgedHistory(runs: 3, taskLogs: 7))
        #expect(try await store.purgeCandidates(runsFinishedBefore: runsCutoff, logsFinishedBefore: nil) == PurgedHistory(runs: 3, taskLogs: 6))
        #expect(try await store.purgeCandidates(runsFinishedBefore: nil, logsFinishedBefore: nil) == PurgedHistory())
        for run in oldRuns + [recent, unfinished] { #expect(try await store.run(run.id) != nil) }

        // Batches of two: two runs, then the last one, then nothing.
        #expect(try await store.purgeRuns(finishedBefore: runsCutoff, limit: 2) == PurgedHistory(runs: 2, taskLogs: 4))
        #expect(try await store.purgeRuns(finishedBefore: runsCutoff, limit: 2) == PurgedHistory(runs: 1, taskLogs: 2))
        #expect(try await store.purgeRuns(finishedBefore: runsCutoff, limit: 2) == PurgedHistory())
        for run in oldRuns {
            #expect(try await store.run(run.id) == nil)
            #expect(try await store.taskLogs(run: run.id, task: "a", attempt: nil) == nil)
        }
        #expect(try await store.runs(RunQuery()).runs.map(\.id).sorted() == [recent.id, unfinished.id].sorted())

        // Logs alone, one run per batch: the recent run keeps its record, loses its log.
        let (first, cursor) = try await store.purgeTaskLogs(finishedBefore: logsCutoff, after: nil, limit: 1)
        #expect(first == PurgedHistory(taskLogs: 1))
        #expect(cursor?.run == recent.id)
        let (second, end) = try await store.purgeTaskLogs(finishedBefore: logsCutoff, after: cursor, limit: 1)
        #expect(second == PurgedHistory())
        #expect(end == nil)
        #expect(try await detail(store, recent.id).run.status == .success)
        #expect(try await store.taskLogs(run: recent.id, task: "a", attempt: nil)?.contains { $0.text.contains("printed") } == false)

        // Even a cutoff in the future leaves the unfinished run, its tasks and its logs alone.
        let future = now.addingTimeInterval(86_400)
        _ = try await store.purgeRuns(finishedBefore: future, limit: 100)
        _ = try await store.purgeTaskLogs(finishedBefore: future, after: nil, limit: 100)
        let kept = try await detail(store, unfinished.id)
        #expect(kept.run.status == .running)
        #expect(statuses(kept) == ["a": .success, "b": .running])
        #expect(try await store.taskLogs(run: unfinished.id, task: "a", attempt: nil)?.first?.text == "a printed\n")
        #expect(try await store.run(recent.id) == nil)

        // Settled notifications older than the cutoff go; pending ones stay.
        let delivered = NewOutboxMessage(key: "slack|old|firing", channel: "slack", payload: "{}", createdAt: old)
        let pending = NewOutboxMessage(key: "email|old|firing", channel: "email", payload: "{}", createdAt: old)
        #expect(try await store.enqueue([delivered, pending]) == 2)
        let message = try await store.claimOutbox(now: old, limit: 10, lease: .seconds(30)).first { $0.key == delivered.key }
        try await store.settleOutbox(try #require(message).id, outcome: .delivered, at: old)
        #expect(try await store.purgeSettledRecords(before: runsCutoff) >= 1)
        #expect(try await store.outbox(status: nil, limit: 10).map(\.key) == [pending.key])

        #expect(try await store.storageSize() > 0)
        try await store.reclaimSpace(full: false)
        try await store.reclaimSpace(full: true)
        #expect(try await store.run(unfinished.id) != nil)
    }

    static func cancel(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("running", []), ("waiting", ["running"]), ("queued", [])])
        _ = try await store.createRun(run)
        let running = try await claim(store, limit: 1)
        #expect(running.count == 1)
        guard case .cancelled(let record, let attempts, let events) = try await store.cancelRun(run.id, at: Date()) else {
            Issue.record("expected the run to be cancelled")
            return
        }
        #expect(record.status == .cancelled)
        #expect(attempts == running.map(\.id))
        #expect(events.count == 1)
        let stop = try await store.heartbeat(worker("w1"), running: running.map(\.id), leaseUntil: Date().addingTimeInterval(30))
        #expect(stop == Set(running.map(\.id)))
        var detail = try await detail(store, run.id)
        #expect(detail.run.status == .cancelled)
        let queuedTask = running[0].taskID == "running" ? "queued" : "running"
        #expect(statuses(detail)[queuedTask] == .cancelled)
        #expect(statuses(detail)["waiting"] == .cancelled)
        _ = try await complete(store, running, .cancelled(message: "run cancelled"))
        detail = try await self.detail(store, run.id)
        #expect(detail.run.status == .cancelled)
        #expect(detail.tasks.allSatisfy { $0.status == .cancelled })
        guard case .alreadyFinished(.cancelled) = try await store.cancelRun(run.id, at: Date()) else {
            Issue.record("expected alreadyFinished")
            return
        }
        guard case .notFound = try await store.cancelRun(.generate(), at: Date()) else {
            Issue.record("expected notFound")
            return
        }
        #expect(try await claim(store).isEmpty)
    }

    static func worker(_ id: String, slots: Int = 4, at date: Date = Date()) -> WorkerRecord {
        WorkerRecord(id: id, host: "test-host", pid: 1, slots: slots, busy: 0, queues: ["default"], version: "test", startedAt: date, lastSeen: date, state: .active)
    }

    static func leases(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("a", []), ("b", []), ("c", [])], retries: 0, at: now)
        _ = try await store.createRun(run)
        _ = try await store.heartbeat(worker("w1", at: now), running: [], leaseUntil: now)
        _ = try await store.heartbeat(worker("w2", at: now), running: [], leaseUntil: now)
        let w1 = try await claim(store, worker: "w1", limit: 2, at: now)
        let w2 = try await claim(store, worker: "w2", limit: 1, at: now)
        #expect(w1.count == 2 && w2.count == 1)
        // w1 renews; w2 does not.
        let stop = try await store.heartbeat(worker("w1", at: now.addingTimeInterval(20)), running: w1.map(\.id), leaseUntil: now.addingTimeInterval(50))
        #expect(stop.isEmpty)
        let events = try await store.reclaim(now: now.addingTimeInterval(40), workerTimeout: .seconds(60), deadWorkers: [])
        let interrupted = events.compactMap { event -> AttemptInfo? in
            if case .attemptFinished(let info, .failed, .retried, _, _, _) = event { return info }
            return nil
        }
        #expect(interrupted.map(\.attemptID) == w2.map(\.id), "only the attempt whose lease expired")
        let again = try await claim(store, worker: "w3", at: now.addingTimeInterval(40))
        #expect(again.map(\.taskID) == w2.map(\.taskID))
        #expect(again.first?.number == 2)
        // A dead worker's attempts are reclaimed at once, whatever their lease.
        let dead = try await store.reclaim(now: now.addingTimeInterval(41), workerTimeout: .seconds(60), deadWorkers: ["w1"])
        #expect(dead.count >= 2)
        let workers = try await store.workers()
        #expect(workers.first { $0.id == "w1" }?.state == .lost)
        let detail = try await detail(store, run.id)
        #expect(detail.tasks.allSatisfy { $0.status == .queued || $0.status == .running })
        #expect(detail.run.status == .running)
        // A silent worker is marked lost after the timeout.
        _ = try await store.reclaim(now: now.addingTimeInterval(200), workerTimeout: .seconds(60), deadWorkers: [])
        #expect(try await store.workers().first { $0.id == "w2" }?.state == .lost)
    }

    static func scheduleUniqueness(_ store: any WorkflowStore) async throws {
        let due = Date(timeIntervalSince1970: 1_700_000_000)
        let first = newRun("nightly", tasks: [("a", [])], trigger: .schedule(dueAt: due))
        let second = newRun("nightly", tasks: [("a", [])], trigger: .schedule(dueAt: due))
        let schedule = ScheduleRecord(workflow: "nightly", cron: "0 2 * * *", timeZone: "UTC", nextFireAt: due.addingTimeInterval(86400), lastFiredAt: due)
        #expect(try await store.fire(schedule: schedule, run: first) != nil)
        #expect(try await store.fire(schedule: schedule, run: second) == nil)
        #expect(try await store.createRun(second) == nil)
        let saved = try await store.schedules()
        #expect(saved == [schedule])
        let runs = try await store.runs(RunQuery(workflow: "nightly"))
        #expect(runs.runs.map(\.id) == [first.id])
        #expect(close(runs.runs.first?.scheduledFor, due))
        #expect(runs.runs.first?.trigger == .schedule)
    }

    static func listing(_ store: any WorkflowStore) async throws {
        let base = Date()
        var ids: [RunID] = []
        for offset in 0..<5 {
            let run = newRun(offset % 2 == 0 ? "even" : "odd", tasks: [("a", [])], at: base.addingTimeInterval(Double(offset)))
            _ = try await store.createRun(run)
            ids.append(run.id)
        }
        let page1 = try await store.runs(RunQuery(limit: 2))
        #expect(page1.runs.map(\.id) == [ids[4], ids[3]])
        #expect(page1.nextCursor == ids[3])
        let page2 = try await store.runs(RunQuery(limit: 2, cursor: page1.nextCursor))
        #expect(page2.runs.map(\.id) == [ids[2], ids[1]])
        let page3 = try await store.runs(RunQuery(limit: 2, cursor: page2.nextCursor))
        #expect(page3.runs.map(\.id) == [ids[0]])
        #expect(page3.nextCursor == nil)
        let even = try await store.runs(RunQuery(workflow: "even"))
        #expect(even.runs.map(\.id) == [ids[4], ids[2], ids[0]])
        let pending = try await store.runs(RunQuery(status: .pending, limit: 50))
        #expect(pending.runs.count == 5)
        #expect(try await store.runs(RunQuery(status: .success)).runs.isEmpty)
    }

    static func aggregates(_ store: any WorkflowStore) async throws {
        let base = Date().addingTimeInterval(-3600)
        var ids: [RunID] = []
        for offset in 0..<6 {
            let trigger: RunTrigger = offset == 5 ? .schedule(dueAt: base) : .api
            let run = newRun(
                offset % 2 == 0 ? "alpha" : "beta", tasks: [("a", []), ("b", ["a"])], trigger: trigger,
                at: base.addingTimeInterval(Double(offset) * 60))
            _ = try await store.createRun(run)
            ids.append(run.id)
        }
        let recent = try await store.recentRuns(workflows: ["alpha", "beta", "gamma"], limit: 2)
        #expect(recent["alpha"]?.map(\.id) == [ids[4], ids[2]])
        #expect(recent["beta"]?.map(\.id) == [ids[5], ids[3]])
        #expect(recent["gamma"] == nil)
        let claimed = try await claim(store, limit: 10)
        _ = try await complete(store, claimed.filter { $0.runID == ids[0] }, .success(output: .null))
        let states = try await store.taskStates(runs: [ids[0], ids[1], RunID.generate()])
        #expect(states.count == 2)
        #expect(states[ids[0]]?.map(\.id) == ["a", "b"])
        #expect(states[ids[0]]?.map(\.status) == [.success, .queued])
        #expect(states[ids[0]]?.map(\.attempts) == [1, 1])
        #expect(states[ids[1]]?.map(\.status) == [.running, .pending])
        let counts = try await store.runCounts(since: base.addingTimeInterval(90))
        #expect(counts.values.reduce(0, +) == 4)
        #expect(counts[.running] == 4)
        let window = try await store.runs(RunQuery(createdAfter: base.addingTimeInterval(60), createdBefore: base.addingTimeInterval(180)))
        #expect(window.runs.map(\.id) == [ids[2], ids[1]])
        let scheduled = try await store.runs(RunQuery(trigger: .schedule))
        #expect(scheduled.runs.map(\.id) == [ids[5]])
    }

    static func statistics(_ store: any WorkflowStore) async throws {
        let now = Date()
        _ = try await store.createRun(newRun(tasks: [("a", []), ("b", [])], at: now.addingTimeInterval(-5)))
        _ = try await store.createRun(newRun(tasks: [("r", [])], queue: "reports", at: now.addingTimeInterval(-2)))
        _ = try await store.heartbeat(worker("w1", slots: 3, at: now), running: [], leaseUntil: now)
        let claimed = try await claim(store, limit: 1, at: now)
        #expect(claimed.count == 1)
        _ = try await store.saveSchedule(ScheduleRecord(workflow: "nightly", cron: "0 2 * * *", timeZone: "UTC", nextFireAt: now.addingTimeInterval(-7), lastFiredAt: nil))
        let statistics = try await store.statistics(now: now)
        #expect(statistics.activeRuns == 2)
        #expect(statistics.queues["default"]?.depth == 1)
        #expect(statistics.queues["reports"]?.depth == 1)
        #expect(close(statistics.queues["reports"]?.oldestReadyAt, now.addingTimeInterval(-2)))
        #expect(statistics.queuedTotal == 2)
        #expect(statistics.workerSlots == 3)
        #expect(statistics.runningAttempts == 1)
        #expect(statistics.oldestExpiredLease == nil)
        #expect(close(statistics.oldestDueSchedule, now.addingTimeInterval(-7)))
        #expect(abs(statistics.schedulerLag(now: now) - 7) < 0.001)
        let later = try await store.statistics(now: now.addingTimeInterval(40))
        #expect(close(later.oldestExpiredLease, now.addingTimeInterval(30)))
    }

    static func logs(_ store: any WorkflowStore) async throws {
        let run = newRun(tasks: [("a", [])], retries: 1, retryDelay: .zero)
        _ = try await store.createRun(run)
        let first = try await claim(store)
        try await store.appendLog(attempt: first[0].id, text: "line 1\n", limit: 20)
        try await store.appendLog(attempt: first[0].id, text: "line 2\n", limit: 20)
        try await store.appendLog(attempt: first[0].id, text: "this line is too long\n", limit: 20)
        _ = try await complete(store, first, .failure(message: "x"))
        let second = try await claim(store)
        try await store.appendLog(attempt: second[0].id, text: "second attempt\n", limit: 20)
        let all = try await store.taskLogs(run: run.id, task: "a", attempt: nil)
        #expect(all?.map(\.attempt) == [1, 2])
        #expect(all?.first?.text.hasPrefix("line 1\nline 2\n") == true)
        #expect(all?.first?.truncated == true)
        #expect(all?.first?.text.contains("22 more bytes dropped") == true)
        #expect(all?.last?.text == "second attempt\n")
        let one = try await store.taskLogs(run: run.id, task: "a", attempt: 2)
        #expect(one?.map(\.attempt) == [2])
        #expect(try await store.taskLogs(run: run.id, task: "missing", attempt: nil) == nil)
    }

    static func batchedExchange(_ store: any WorkflowStore) async throws {
        var runs: [NewRun] = []
        for _ in 0..<50 {
            let run = newRun(tasks: [("a", []), ("b", ["a"])])
            runs.append(run)
            _ = try await store.createRun(run)
        }
        let firsts = try await claim(store, limit: 100)
        #expect(firsts.count == 50)
        let result = try await complete(store, firsts, .success(output: .null), claim: 100)
        #expect(result.claimed.count == 50)
        #expect(Set(result.claimed.map(\.taskID)) == ["b"])
        let done = try await complete(store, result.claimed, .success(output: .null))
        let finished = done.events.filter { if case .runFinished = $0 { return true } else { return false } }
        #expect(finished.count == 50)
        let page = try await store.runs(RunQuery(status: .success, limit: 100))
        #expect(page.runs.count == 50)
    }
}

/// A conformance check that cannot continue.
extension WorkflowStoreConformance {
    /// A row changed behind the store's back, as a corrupted database or an older version could
    /// leave it. A store's test applies it with its own SQL.
    public enum Corruption: Sendable {
        /// The run's `params` column holds text that is not JSON (`not json`).
        case params(RunID)
        /// The run's `created_at` is far outside any real time (SQLite: the largest integer;
        /// PostgreSQL: `infinity`).
        case createdAt(RunID)
        /// The number of the task's running attempt (and the task's attempt count) is the largest
        /// value its column holds, so counting on from it overflows.
        case attemptNumber(RunID)
        /// The task's retry delays are the largest integer of milliseconds.
        case retryDelay(RunID)
    }

    /// A store with poisoned rows fails what it cannot process, with a message saying why, and
    /// keeps serving everything else: listing, reading, claiming, completing, new runs.
    ///
    /// - Parameter corrupt: changes the rows of a run as the corruption says.
    public static func poisonedRows(_ store: any WorkflowStore, corrupt: @Sendable (Corruption) async throws -> Void) async throws {
        let created = Date()
        let now = created.addingTimeInterval(1)
        let unreadable = newRun(tasks: [("a", [])], retries: 2, at: created)
        let counted = newRun(tasks: [("a", [])], retries: 2, at: created.addingTimeInterval(0.001))
        let delayed = newRun(tasks: [("a", [])], retries: 2, at: created.addingTimeInterval(0.002))
        let dated = newRun(tasks: [("a", [])], retries: 2, at: created.addingTimeInterval(0.003))
        for run in [unreadable, counted, delayed, dated] { _ = try await store.createRun(run) }
        try await corrupt(.params(unreadable.id))
        try await corrupt(.createdAt(dated.id))

        let claimed = try await claim(store, limit: 10, at: now)
        #expect(claimed.count == 4)
        let poisoned = claimed.first { $0.runID == unreadable.id }
        #expect(poisoned?.unreadable?.contains("not a JSON object") == true, "\(String(describing: poisoned?.unreadable))")
        #expect(claimed.filter { $0.runID != unreadable.id }.allSatisfy { $0.unreadable == nil && $0.params == ["p": 1] })

        try await corrupt(.attemptNumber(counted.id))
        try await corrupt(.retryDelay(delayed.id))
        _ = try await complete(store, claimed, .failure(message: "boom"), at: now)

        for id in [counted.id, delayed.id] {
            let detail = try await detail(store, id)
            #expect(detail.run.status == .failed, "\(id)")
            #expect(detail.tasks[0].status == .failed)
            #expect(detail.tasks[0].attempts.last?.error?.contains("the stored task row is corrupted") == true, "\(detail.tasks[0].attempts)")
        }
        // The others retry as usual.
        for id in [unreadable.id, dated.id] {
            let detail = try await detail(store, id)
            #expect(detail.tasks[0].status == .queued, "\(id)")
            #expect(detail.tasks[0].attempts.map(\.status) == [.failed, .queued])
        }
        let page = try await store.runs(RunQuery())
        #expect(page.runs.count == 4)
        let datedRecord = page.runs.first { $0.id == dated.id }
        #expect(datedRecord.map { Timestamp.rfc3339($0.createdAt).count } == 24)
        #expect(page.runs.first { $0.id == unreadable.id }?.params == [:])

        // New work is unaffected.
        let fresh = newRun(tasks: [("a", [])], at: created.addingTimeInterval(0.004))
        _ = try await store.createRun(fresh)
        let freshClaim = try await claim(store, limit: 10, at: now).filter { $0.runID == fresh.id }
        #expect(freshClaim.count == 1)
        _ = try await complete(store, freshClaim, .success(output: .null), at: now)
        #expect(try await detail(store, fresh.id).run.status == .success)
    }
}

// MARK: Pause and backfill

extension WorkflowStoreConformance {
    static func pausedSchedule(_ store: any WorkflowStore) async throws {
        let due = Date(timeIntervalSince1970: 1_700_000_000)
        let later = due.addingTimeInterval(86400)
        // `paused` of a new row is stored: the definition's initial state.
        var record = ScheduleRecord(workflow: "nightly", cron: "0 2 * * *", timeZone: "UTC", nextFireAt: due, lastFiredAt: nil, paused: true)
        try await store.saveSchedule(record)
        #expect(try await store.schedules().first?.paused == true)
        // A later save (the scheduler loading a definition without `paused:`) keeps the stored pause.
        record.paused = false
        try await store.saveSchedule(record)
        #expect(try await store.schedules() == [ScheduleRecord(workflow: "nightly", cron: "0 2 * * *", timeZone: "UTC", nextFireAt: due, lastFiredAt: nil, paused: true)])
        // A paused schedule does not fire and its due time stays; it is not counted as lag.
        var advanced = record
        advanced.nextFireAt = later
        advanced.lastFiredAt = due
        #expect(try await store.fire(schedule: advanced, run: newRun("nightly", tasks: [("a", [])], trigger: .schedule(dueAt: due))) == nil)
        #expect(try await store.runs(RunQuery(workflow: "nightly")).runs.isEmpty)
        #expect(close(try await store.schedules().first?.nextFireAt, due))
        #expect(try await store.statistics(now: later).oldestDueSchedule == nil)
        // Unpause keeping the due time (catch up): the missed time is still due, and fires.
        var unpause = record
        unpause.paused = false
        unpause.nextFireAt = later
        let kept = try await store.setSchedulePaused(unpause, resetNextFire: false)
        #expect(kept.paused == false)
        #expect(close(kept.nextFireAt, due))
        #expect(close(try await store.statistics(now: later).oldestDueSchedule, due))
        let fired = try await store.fire(schedule: advanced, run: newRun("nightly", tasks: [("a", [])], trigger: .schedule(dueAt: due)))
        #expect(fired?.trigger == .schedule)
        // Pause, then unpause from a new due time (no catch-up).
        var pause = advanced
        pause.paused = true
        #expect(try await store.setSchedulePaused(pause, resetNextFire: false).paused == true)
        var reset = advanced
        reset.paused = false
        reset.nextFireAt = later.addingTimeInterval(86400 * 3)
        let restarted = try await store.setSchedulePaused(reset, resetNextFire: true)
        #expect(restarted.paused == false)
        #expect(close(restarted.nextFireAt, later.addingTimeInterval(86400 * 3)))
        // Pausing a schedule the store has no row for yet creates the row, paused.
        let fresh = ScheduleRecord(workflow: "hourly", cron: "0 * * * *", timeZone: "UTC", nextFireAt: later, lastFiredAt: nil, paused: true)
        #expect(try await store.setSchedulePaused(fresh, resetNextFire: false) == fresh)
        #expect(try await store.schedules().map(\.workflow) == ["hourly", "nightly"])
    }

    /// A backfill of `workflow` over `times` (hourly fire times), stored.
    static func createBackfill(_ store: any WorkflowStore, _ workflow: String, times: [Date], maxActive: Int = 2) async throws -> BackfillRecord {
        let first = times[0]
        return try await store.createBackfill(NewBackfill(
            id: "bf-" + RunID.generate().rawValue.lowercased(), workflow: workflow, cron: "0 * * * *", timeZone: "UTC", from: first,
            to: times[times.count - 1], maxActive: maxActive, params: ["p": 1], fireTimes: times.count, firstFireAt: first, createdAt: Date()))
    }

    static func backfillRun(_ workflow: String, _ time: Date) -> NewRun {
        newRun(workflow, tasks: [("a", [])], trigger: .backfill(logicalTime: time))
    }

    static func backfillRuns(_ store: any WorkflowStore) async throws {
        let base = Date(timeIntervalSince1970: 1_717_200_000)  // 2024-06-01T00:00:00Z
        let times = (0..<4).map { base.addingTimeInterval(Double($0) * 3600) }
        // The scheduler already made the run of the second time.
        let schedule = ScheduleRecord(workflow: "etl", cron: "0 * * * *", timeZone: "UTC", nextFireAt: times[2], lastFiredAt: times[1])
        let scheduled = try await store.fire(schedule: schedule, run: newRun("etl", tasks: [("a", [])], trigger: .schedule(dueAt: times[1])))
        #expect(scheduled != nil)

        let backfill = try await createBackfill(store, "etl", times: times)
        #expect(backfill.status == .running)
        #expect(backfill.fireTimes == 4)
        #expect(close(backfill.nextFireAt, times[0]))
        #expect(backfill.runs.isEmpty && backfill.runsCreated == 0)
        #expect(try await store.activeBackfills().map(\.id) == [backfill.id])

        // First batch: times 0 and 1; time 1 is already present.
        let batch = [backfillRun("etl", times[0]), backfillRun("etl", times[1])]
        let created = try await store.advanceBackfill(backfill.id, expectedNext: times[0], runs: batch, next: times[2])
        #expect(created.map(\.id) == [batch[0].id])
        #expect(created.first?.trigger == .backfill)
        #expect(created.first?.backfillID == backfill.id)
        #expect(close(created.first?.logicalTime, times[0]))
        // Asked twice (a second leader, a restart that lost the answer): nothing more is created.
        let again = try await store.advanceBackfill(backfill.id, expectedNext: times[0], runs: [backfillRun("etl", times[0]), backfillRun("etl", times[1])], next: times[2])
        #expect(again.isEmpty)
        var progress = try await store.backfill(backfill.id)
        #expect(progress?.runsCreated == 1)
        #expect(progress?.alreadyPresent == 1)
        #expect(progress?.runs == [.pending: 1])
        #expect(close(progress?.nextFireAt, times[2]))
        let runs = try await store.runs(RunQuery(workflow: "etl")).runs
        #expect(runs.count == 2)
        let backfilled = try await detail(store, batch[0].id).run
        #expect(backfilled.trigger == .backfill)
        #expect(backfilled.backfillID == backfill.id)
        #expect(close(backfilled.scheduledFor, times[0]))
        #expect(try await store.runs(RunQuery(trigger: .backfill)).runs.map(\.id) == [batch[0].id])

        // A second backfill over the same range creates nothing: every time has a run, or gets one once.
        let overlapping = try await createBackfill(store, "etl", times: Array(times.prefix(2)))
        let duplicate = try await store.advanceBackfill(
            overlapping.id, expectedNext: times[0], runs: [backfillRun("etl", times[0]), backfillRun("etl", times[1])], next: nil)
        #expect(duplicate.isEmpty)
        let finishedOverlap = try await store.backfill(overlapping.id)
        #expect(finishedOverlap?.alreadyPresent == 2)
        #expect(finishedOverlap?.nextFireAt == nil)
        #expect(try await store.finishBackfill(overlapping.id, status: .succeeded, at: Date()))
        #expect(try await store.finishBackfill(overlapping.id, status: .failed, at: Date()) == false)
        #expect(try await store.backfill(overlapping.id)?.status == .succeeded)
        #expect(try await store.activeBackfills().map(\.id) == [backfill.id])

        // Progress follows the runs; cancel stops new runs and names the active ones.
        let claimed = try await claim(store, limit: 10).filter { $0.runID == batch[0].id }
        #expect(claimed.count == 1)
        progress = try await store.backfill(backfill.id)
        #expect(progress?.runs == [.running: 1])
        guard case .cancelled(let cancelled, let active) = try await store.cancelBackfill(backfill.id, at: Date()) else {
            throw ConformanceFailure("a running backfill was not cancelled")
        }
        #expect(cancelled.status == .cancelled)
        #expect(cancelled.finishedAt != nil)
        #expect(active == [batch[0].id])
        #expect(try await store.advanceBackfill(backfill.id, expectedNext: times[2], runs: [backfillRun("etl", times[2])], next: times[3]).isEmpty)
        guard case .alreadyFinished(.cancelled) = try await store.cancelBackfill(backfill.id, at: Date()) else {
            throw ConformanceFailure("a cancelled backfill was cancelled again")
        }
        guard case .notFound = try await store.cancelBackfill("bf-unknown", at: Date()) else {
            throw ConformanceFailure("an unknown backfill was found")
        }
        #expect(try await store.backfill("bf-unknown") == nil)
        #expect(try await store.activeBackfills().isEmpty)
    }

    static func logicalTime(_ store: any WorkflowStore) async throws {
        let created = Date().addingTimeInterval(-5)
        let manual = newRun("flow", tasks: [("a", [])], at: created)
        let due = Date(timeIntervalSince1970: 1_717_207_200)
        let scheduled = newRun("flow", tasks: [("a", [])], trigger: .schedule(dueAt: due))
        let backfilled = newRun("flow", tasks: [("a", [])], trigger: .backfill(logicalTime: due.addingTimeInterval(-3600)))
        for run in [manual, scheduled, backfilled] { _ = try await store.createRun(run) }
        let claimed = Dictionary(uniqueKeysWithValues: try await claim(store, limit: 10).map { ($0.runID, $0) })
        #expect(close(claimed[manual.id]?.logicalTime, created))
        #expect(close(claimed[scheduled.id]?.logicalTime, due))
        #expect(close(claimed[backfilled.id]?.logicalTime, due.addingTimeInterval(-3600)))
        // Dependents started by a completion carry it too.
        let chain = newRun("flow", tasks: [("a", []), ("b", ["a"])], trigger: .backfill(logicalTime: due.addingTimeInterval(-7200)))
        _ = try await store.createRun(chain)
        let first = try await claim(store, limit: 10).filter { $0.runID == chain.id }
        let next = try await complete(store, first, .success(output: .null), claim: 10)
        #expect(close(next.claimed.first { $0.runID == chain.id }?.logicalTime, due.addingTimeInterval(-7200)))
    }

    /// A schedule's pause and a backfill's state survive closing the store and opening it again:
    /// the reopened store still refuses to fire the paused schedule, and the backfill continues
    /// from where it stopped without creating a run twice. `open` opens a new store on the same
    /// database each time and runs the body with it.
    public static func pauseAndBackfillSurviveReopening(_ open: (@Sendable (any WorkflowStore) async throws -> Void) async throws -> Void) async throws {
        let base = Date(timeIntervalSince1970: 1_717_200_000)
        let times = (0..<3).map { base.addingTimeInterval(Double($0) * 3600) }
        let ids = IDBox()
        try await open { store in
            let schedule = ScheduleRecord(workflow: "etl", cron: "0 * * * *", timeZone: "UTC", nextFireAt: times[0], lastFiredAt: nil, paused: true)
            _ = try await store.setSchedulePaused(schedule, resetNextFire: false)
            let backfill = try await createBackfill(store, "etl", times: times, maxActive: 1)
            let first = backfillRun("etl", times[0])
            #expect(try await store.advanceBackfill(backfill.id, expectedNext: times[0], runs: [first], next: times[1]).count == 1)
            ids.set(backfill.id)
        }
        try await open { store in
            let id = ids.get()
            #expect(try await store.schedules().first?.paused == true)
            let schedule = ScheduleRecord(workflow: "etl", cron: "0 * * * *", timeZone: "UTC", nextFireAt: times[1], lastFiredAt: times[0])
            #expect(try await store.fire(schedule: schedule, run: newRun("etl", tasks: [("a", [])], trigger: .schedule(dueAt: times[0]))) == nil)
            let resumed = try await store.activeBackfills()
            #expect(resumed.map(\.id) == [id])
            #expect(close(resumed.first?.nextFireAt, times[1]))
            #expect(resumed.first?.active == 1)
            // The reopened store continues; the first time is not created again.
            #expect(try await store.advanceBackfill(id, expectedNext: times[0], runs: [backfillRun("etl", times[0])], next: times[1]).isEmpty)
            let rest = [backfillRun("etl", times[1]), backfillRun("etl", times[2])]
            #expect(try await store.advanceBackfill(id, expectedNext: times[1], runs: rest, next: nil).count == 2)
            let runs = try await store.runs(RunQuery(workflow: "etl")).runs
            #expect(runs.count == 3)
            #expect(Set(runs.compactMap { $0.scheduledFor.map { Int($0.timeIntervalSince1970) } }) == Set(times.map { Int($0.timeIntervalSince1970) }))
            #expect(try await store.backfill(id)?.runsCreated == 3)
        }
    }
}

/// A value passed from one phase of a check to the next.
final class IDBox: Sendable {
    private let value = Mutex("")
    func set(_ text: String) { value.withLock { $0 = text } }
    func get() -> String { value.withLock { $0 } }
}

struct ConformanceFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
