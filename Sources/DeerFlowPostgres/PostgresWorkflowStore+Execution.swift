public import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

// Lock order. Transactions that lock several rows lock them in one global order — attempts (by
// id), then tasks (by run and index), then runs (by id) — and, within a table, in key order
// (`ORDER BY ... FOR UPDATE`, in a materialized CTE in front of an UPDATE). Claims and heartbeats
// skip locked rows instead of waiting. Transactions therefore do not deadlock; should PostgreSQL
// still report one (SQLSTATE 40P01), the whole transaction runs again (`transaction(_:)`).

extension PostgresWorkflowStore {
    /// Completions, then a claim, in one transaction of (usually) five or six round trips: BEGIN,
    /// kept plans (``UseKeptPlans``), lock and read the completing attempts, write the plan
    /// (`ApplyCompletions`, which also starts newly ready dependents on this worker when it asked
    /// for that), claim (which also marks finished runs), COMMIT.
    ///
    /// With concurrency limits: newly ready dependents of a limited queue are queued rather than
    /// started directly; a claim from limited queues locks their `queue_limits` rows first (one
    /// round trip more); runs finished here let waiting runs of limited workflows start (after
    /// the claim, with NOTIFY); attempts finished in a limited queue send NOTIFY, as a place
    /// came free. Without limits, none of this costs anything.
    public func exchange(_ request: ExchangeRequest) async throws -> ExchangeResult {
        let limits = try await currentLimits(now: request.now)
        return try await transaction(keptPlans: true) { session in
            let claim = request.claim.flatMap { $0.limit > 0 ? $0 : nil }
            var events: [EngineEvent] = []
            var claimed: [ClaimedAttempt] = []
            var finish = FinishRuns()
            var leftReadyQueued = false
            var completionEvents: [EngineEvent] = []
            if !request.completions.isEmpty {
                var direct = claim?.onlyNewlyReady == true ? claim : nil
                if !limits.queueLimits.isEmpty, let queues = direct?.queues {
                    // Tasks of a limited queue go through the queue, where its limit is checked.
                    direct?.queues = queues.filter { limits.queueLimits[$0] == nil }
                }
                let completed = try await Self.complete(request.completions, now: request.now, direct: direct, in: session)
                events = completed.events + completed.startEvents
                completionEvents = completed.events
                claimed = completed.started
                finish = completed.finish
                leftReadyQueued = completed.leftReadyQueued
            }
            if let claim, !claim.onlyNewlyReady {
                let caps = try await Self.lockQueueLimits(limits.limitedQueues(among: claim.queues), in: session)
                // Behind the lock, attempts start now, not when the exchange was sent: after every
                // attempt whose end made room for them.
                let claimNow = caps.isEmpty ? request.now : max(request.now, Date())
                let (attempts, claimEvents) = try await Self.claim(claim, caps: caps, finish: finish, now: claimNow, in: session)
                claimed += attempts
                events += claimEvents
            } else if !finish.ids.isEmpty {
                try await session.rows(finish)
            }
            if !completionEvents.isEmpty {
                let admitted = try await Self.admitWaitingRuns(of: limits.workflowsToAdmit(after: completionEvents), now: request.now, in: session)
                let freed = limits.freesQueue(completionEvents)
                if freed { try await session.execute("SELECT pg_notify('deerflow_work', '')") }
                leftReadyQueued = leftReadyQueued || freed || !admitted.isEmpty
            }
            return ExchangeResult(claimed: claimed, events: events, leftReadyQueued: leftReadyQueued)
        }
    }

    // MARK: Completing

    /// A task whose last dependency just succeeded.
    struct ReadyTask: Sendable {
        var runID: RunID
        var index: Int
        var taskID: String
        var type: String
        var queue: String
        var priority: Int
        var timeoutMilliseconds: Int?
        /// The number of its next attempt (1, or after the attempts of a retried run).
        var number: Int
        /// Its running attempt, when it was started on the claiming worker.
        var startedAttempt: AttemptID?
    }

    /// Attempts a statement started for the tasks it made ready (``InsertRuns``,
    /// ``ApplyCompletions``), by run and task index: the statement returns them as rows of their
    /// own, matched to the tasks here.
    struct StartedAttempts {
        private struct Key: Hashable {
            let runID: String
            let index: Int
        }

        private var ids: [Key: AttemptID] = [:]

        mutating func record(_ attempt: AttemptID, runID: String, index: Int) {
            ids[Key(runID: runID, index: index)] = attempt
        }

        subscript(runID: RunID, index: Int) -> AttemptID? {
            ids[Key(runID: runID.rawValue, index: index)]
        }
    }

    /// Run columns a claim needs, read along with completing attempts.
    struct RunColumns: Sendable {
        var workflow: String
        var version: String
        var params: String
        var traceContext: String?
        /// The time the run stands for: its schedule or backfill fire time, else its creation.
        var logicalTime: Date?
    }

    /// What applying completions produced.
    struct Completed: Sendable {
        var events: [EngineEvent] = []
        /// Newly ready dependents started on the claiming worker, and their events.
        var started: [ClaimedAttempt] = []
        var startEvents: [EngineEvent] = []
        /// Newly ready dependents in the direct claim's queues were queued, not all started.
        var leftReadyQueued = false
        /// Runs that finished: marked by the exchange's next statement.
        var finish = FinishRuns()
    }

    /// Applies completions as `CompletionPlan` decides.
    ///
    /// The attempts are locked in id order by the statement that reads them (a worker finishing an
    /// attempt, the leader reclaiming it and a cancel flagging it take turns). A statement that
    /// waited for such a lock sees the attempt row as the other transaction left it, but the task
    /// and run rows as they were when it started; only a cancel changes the run meanwhile, and it
    /// flags the attempt (`stop_requested`), so for flagged attempts the run's status is read again.
    ///
    /// - Parameter direct: the claim of a worker that asked for newly ready dependents
    ///   (`onlyNewlyReady`): up to `limit` of them in its queues start on it at once.
    static func complete(_ completions: [AttemptCompletion], now: Date, direct: ClaimRequest?, in session: PostgresSession) async throws -> Completed {
        let ids = Array(Set(completions.map(\.attemptID))).sorted()
        let rows = try await session.rows(LoadCompleting(ids))
        var loaded: [AttemptID: CompletingAttempt] = [:]
        var runs: [RunID: RunColumns] = [:]
        var flagged: Set<String> = []
        for row in rows {
            let (id, runID, taskIndex, number, status, startedAt, worker, stopRequested, taskID, type, queue, priority, retries, delay, maxDelay,
                 jitter, retriesUsed, interruptions, dependents, workflow, runStatus, version, params, traceContext, logicalTime, mapParent) =
                try row.decode((Int64, String, Int, Int, String, Date?, String?, Bool, String, String, String, Int, Int, Int, Int,
                                Double, Int, Int, [Int], String, String, String, String, String?, Date, Int?).self)
            let attempt = CompletingAttempt(
                attemptID: id, runID: RunID(rawValue: runID), workflow: workflow, runStatus: RunStatus(rawValue: runStatus) ?? .failed,
                taskIndex: taskIndex, taskID: taskID, type: type, queue: queue, priority: priority, number: number,
                status: AttemptStatus(rawValue: status) ?? .failed, startedAt: startedAt, worker: worker,
                retry: RetryPolicy(retries: retries, delay: .milliseconds(delay), maxDelay: .milliseconds(maxDelay), jitter: jitter),
                retriesUsed: retriesUsed, interruptions: interruptions, dependents: dependents, mapParent: mapParent)
            loaded[id] = attempt
            runs[attempt.runID] = RunColumns(workflow: workflow, version: version, params: params, traceContext: traceContext, logicalTime: logicalTime)
            if stopRequested && attempt.status == .running { flagged.insert(runID) }
        }
        if !flagged.isEmpty {
            // The run may have been cancelled while this statement waited for the attempt's lock.
            let current = try await session.rows("SELECT id, status FROM runs WHERE id = ANY(\(flagged.sorted()))")
            var statuses: [String: RunStatus] = [:]
            for row in current {
                let (id, status) = try row.decode((String, String).self)
                statuses[id] = RunStatus(rawValue: status)
            }
            for (id, attempt) in loaded {
                if let status = statuses[attempt.runID.rawValue] { loaded[id]?.runStatus = status }
            }
        }
        let pairs = completions.compactMap { completion in loaded[completion.attemptID].map { (completion, $0) } }
        var plan = CompletionPlan.plan(pairs)
        var completed = Completed()
        guard !plan.attemptUpdates.isEmpty else { return completed }

        let mode: ReadyMode
        if let direct {
            mode = plan.dependencyReleases.count <= direct.limit ? .startAll : .leave
        } else {
            mode = .queue
        }
        // Upstream failures change the counters; with them, the counters are written afterwards.
        // So do mapped tasks: instances inserted or ending may finish a mapped task, which
        // releases or fails its dependents like any task.
        let hasMaps = !plan.expansions.isEmpty || !plan.mapEnds.isEmpty
        let countersLater = !plan.finalFailures.isEmpty || hasMaps
        let leaseUntil = now.adding(direct?.leaseDuration ?? .zero)
        let applied = try await session.rows(ApplyCompletions(
            plan: plan, mode: mode, queues: direct?.queues ?? [], worker: direct?.worker ?? "", now: now, leaseUntil: leaseUntil,
            deltas: countersLater ? [] : deltas(plan)))
        var ready: [ReadyTask] = []
        var counters: [PostgresRow] = []
        var startedHere = StartedAttempts()
        for row in applied {
            let kind = try row.decode(String.self)
            switch kind {
            case "ready":
                let (_, runID, index, taskID, type, queue, priority, timeout, _, _, _, number) =
                    try row.decode((String, String, Int, String, String, String, Int, Int?, Int64?, Date?, Date?, Int).self)
                ready.append(ReadyTask(
                    runID: RunID(rawValue: runID), index: index, taskID: taskID, type: type, queue: queue, priority: priority,
                    timeoutMilliseconds: timeout, number: number))
            case "started":
                let (_, runID, index, _, _, _, _, _, attempt, _, _, _) =
                    try row.decode((String, String, Int, String?, String?, String?, Int?, Int?, Int64, Date?, Date?, Int?).self)
                startedHere.record(attempt, runID: runID, index: index)
            case "run":
                counters.append(row)
            default:
                break
            }
        }
        for position in ready.indices {
            ready[position].startedAttempt = startedHere[ready[position].runID, ready[position].index]
        }
        ready.sort { ($0.runID, $0.index) < ($1.runID, $1.index) }
        if mode == .leave, let direct, !ready.isEmpty {
            ready = try await startSome(ready, claim: direct, now: now, leaseUntil: leaseUntil, in: session)
        }
        if let direct {
            (completed.started, completed.startEvents) = try startedAttempts(ready, runs: runs, claim: direct, now: now, leaseUntil: leaseUntil)
            let queues = Set(direct.queues)
            completed.leftReadyQueued = ready.contains { $0.startedAttempt == nil && queues.contains($0.queue) }
        }

        if countersLater {
            // Instances to queue and mapped tasks that finished (releasing their dependents).
            let maps = hasMaps ? try await applyMaps(&plan, now: now, in: session) : CompletionPlan()
            try await markUpstreamFailed(&plan, in: session)
            let rows = try await session.rows(ApplyCompletions(
                plan: maps, mode: .queue, queues: [], worker: "", now: now, leaseUntil: now, deltas: deltas(plan)))
            counters = rows.filter { (try? $0.decode(String.self)) == "run" }
        }

        // Runs that just finished.
        var finished: [(RunID, EngineEvent)] = []
        for row in counters {
            let (_, id, total, workflow, _, _, finishedCount, failed, _, createdAt, startedAt, _) =
                try row.decode((String, String, Int, String, String?, String?, Int, Int, Int64?, Date?, Date?, Int?).self)
            guard let outcome = RunProgress(total: total, finished: finishedCount, failed: failed).outcome else { continue }
            let runID = RunID(rawValue: id)
            completed.finish.ids.append(id)
            completed.finish.statuses.append(outcome.rawValue)
            finished.append((runID, .runFinished(runID: runID, workflow: workflow, status: outcome, createdAt: createdAt ?? now, startedAt: startedAt, finishedAt: now)))
        }
        completed.finish.now = now
        plan.events += finished.sorted { $0.0 < $1.0 }.map(\.1)
        completed.events = plan.events
        return completed
    }

    /// Per run, the tasks that reached a final status.
    static func deltas(_ plan: CompletionPlan) -> [(RunID, RunProgress)] {
        plan.progress.filter { $0.value.finished > 0 }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Tasks that can never run because a dependency failed for good become `upstream_failed`.
    static func markUpstreamFailed(_ plan: inout CompletionPlan, in session: PostgresSession) async throws {
        for (runID, failed) in plan.finalFailures.sorted(by: { $0.key < $1.key }) {
            let rows = try await session.rows("SELECT idx, task_id, status, dependents FROM tasks WHERE run_id = \(runID.rawValue)")
            var tasks: [Int: (status: TaskStatus, dependents: [Int])] = [:]
            var ids: [Int: String] = [:]
            for row in rows {
                let (index, taskID, status, dependents) = try row.decode((Int, String, String, [Int]).self)
                tasks[index] = (TaskStatus(rawValue: status) ?? .pending, dependents)
                ids[index] = taskID
            }
            let skipped = CompletionPlan.upstreamFailed(from: failed, tasks: tasks)
            guard !skipped.isEmpty else { continue }
            let marked = try await session.rows("""
                UPDATE tasks SET status = 'upstream_failed'
                WHERE run_id = \(runID.rawValue) AND idx = ANY(\(skipped)) AND status = 'pending'
                RETURNING idx
                """).map { try $0.decode(Int.self) }.sorted()
            guard !marked.isEmpty else { continue }
            plan.progress[runID, default: RunProgress(total: 0)].record(.upstreamFailed, count: marked.count)
            let workflow = try await session.rows("SELECT workflow FROM runs WHERE id = \(runID.rawValue)").first?.decode(String.self) ?? ""
            plan.events.append(.tasksSkipped(runID: runID, workflow: workflow, taskIDs: marked.compactMap { ids[$0] }))
        }
    }

    /// More tasks became ready than the worker has free slots: the first `limit` of its queues
    /// start on it, the others are queued.
    static func startSome(_ ready: [ReadyTask], claim: ClaimRequest, now: Date, leaseUntil: Date, in session: PostgresSession) async throws -> [ReadyTask] {
        let queues = Set(claim.queues)
        var remaining = claim.limit
        var statement = StartReady()
        for task in ready {
            let direct = remaining > 0 && queues.contains(task.queue)
            if direct { remaining -= 1 }
            statement.runIDs.append(task.runID.rawValue)
            statement.indices.append(task.index)
            statement.queues.append(task.queue)
            statement.priorities.append(task.priority)
            statement.numbers.append(task.number)
            statement.direct.append(direct)
        }
        statement.worker = claim.worker
        statement.now = now
        statement.leaseUntil = leaseUntil
        var started: [String: AttemptID] = [:]
        for row in try await session.rows(statement) {
            let (id, runID, index) = try row.decode((Int64?, String?, Int?).self)
            if let id, let runID, let index { started["\(runID)#\(index)"] = id }
        }
        return ready.map { task in
            var task = task
            task.startedAttempt = started["\(task.runID.rawValue)#\(task.index)"]
            return task
        }
    }

    /// The attempts started on the claiming worker, as it needs them.
    static func startedAttempts(_ ready: [ReadyTask], runs: [RunID: RunColumns], claim: ClaimRequest, now: Date, leaseUntil: Date) throws -> ([ClaimedAttempt], [EngineEvent]) {
        var claimed: [ClaimedAttempt] = []
        var events: [EngineEvent] = []
        var params: [RunID: (params: [String: JSONValue], problem: String?)] = [:]
        for task in ready {
            guard let id = task.startedAttempt, let run = runs[task.runID] else { continue }
            let runParams = params[task.runID] ?? StoredParams.decode(run.params)
            params[task.runID] = runParams
            claimed.append(ClaimedAttempt(
                id: id, runID: task.runID, workflow: run.workflow, workflowVersion: run.version, taskIndex: task.index,
                taskID: task.taskID, type: task.type, queue: task.queue, number: task.number, params: runParams.params, traceContext: run.traceContext,
                timeout: task.timeoutMilliseconds.map { .milliseconds($0) }, queuedAt: now, startedAt: now, leaseUntil: leaseUntil,
                unreadable: runParams.problem, logicalTime: run.logicalTime))
            events.append(.attemptStarted(
                AttemptInfo(attemptID: id, runID: task.runID, workflow: run.workflow, taskID: task.taskID, type: task.type, queue: task.queue, number: task.number, worker: claim.worker),
                queuedAt: now, startedAt: now))
        }
        return (claimed, events)
    }

    // MARK: Claiming

    /// Claims with one statement (``Claim``), which also marks the runs this exchange finished.
    /// `caps`: the limited queues among the claim's, locked by ``lockQueueLimits(_:in:)``.
    static func claim(_ claim: ClaimRequest, caps: [(queue: String, limit: Int)], finish: FinishRuns, now: Date, in session: PostgresSession) async throws -> ([ClaimedAttempt], [EngineEvent]) {
        var statement = Claim()
        statement.cappedQueues = caps.map(\.queue)
        statement.caps = caps.map(\.limit)
        statement.queues = Array(Set(claim.queues)).sorted()
        statement.limit = claim.limit
        statement.worker = claim.worker
        statement.now = now
        statement.leaseUntil = now.adding(claim.leaseDuration)
        statement.finish = finish
        let rows = try await session.rows(statement)
        guard !rows.isEmpty else { return ([], []) }
        struct Row {
            var id: Int64, runID: String, taskIndex: Int, number: Int, queue: String, priority: Int, queuedAt: Date
            var taskID: String, type: String, timeout: Int?, workflow: String, version: String, params: String, traceContext: String?, runStarted: Bool
            var logicalTime: Date
            var mapIndex: Int?, item: String?
        }
        var claimedRows: [Row] = []
        claimedRows.reserveCapacity(rows.count)
        for row in rows {
            let (id, runID, taskIndex, number, queue, priority, queuedAt, taskID, type, timeout, workflow, version, params, traceContext, runStarted, logicalTime,
                 mapIndex, item) =
                try row.decode((Int64, String, Int, Int, String, Int, Date, String, String, Int?, String, String, String, String?, Bool, Date, Int?, String?).self)
            claimedRows.append(Row(
                id: id, runID: runID, taskIndex: taskIndex, number: number, queue: queue, priority: priority, queuedAt: queuedAt,
                taskID: taskID, type: type, timeout: timeout, workflow: workflow, version: version, params: params,
                traceContext: traceContext, runStarted: runStarted, logicalTime: logicalTime, mapIndex: mapIndex, item: item))
        }
        claimedRows.sort { ($1.priority, $0.queuedAt, $0.id) > ($0.priority, $1.queuedAt, $1.id) }
        var events: [EngineEvent] = []
        var startedRuns: Set<String> = []
        for row in claimedRows where row.runStarted && startedRuns.insert(row.runID).inserted {
            events.append(.runStarted(runID: RunID(rawValue: row.runID), workflow: row.workflow, at: now))
        }
        var paramsCache: [String: (params: [String: JSONValue], problem: String?)] = [:]
        var claimed: [ClaimedAttempt] = []
        claimed.reserveCapacity(claimedRows.count)
        for row in claimedRows {
            let params = paramsCache[row.runID] ?? StoredParams.decode(row.params)
            paramsCache[row.runID] = params
            var attempt = ClaimedAttempt(
                id: row.id, runID: RunID(rawValue: row.runID), workflow: row.workflow, workflowVersion: row.version,
                taskIndex: row.taskIndex, taskID: row.taskID, type: row.type, queue: row.queue, number: row.number, params: params.params,
                traceContext: row.traceContext, timeout: row.timeout.map { .milliseconds($0) },
                queuedAt: row.queuedAt, startedAt: now, leaseUntil: statement.leaseUntil, unreadable: params.problem,
                logicalTime: row.logicalTime)
            attempt.setInstance(index: row.mapIndex, item: row.item)
            claimed.append(attempt)
            events.append(.attemptStarted(
                AttemptInfo(attemptID: attempt.id, runID: attempt.runID, workflow: attempt.workflow, taskID: attempt.taskID, type: attempt.type, queue: attempt.queue, number: attempt.number, worker: claim.worker),
                queuedAt: attempt.queuedAt, startedAt: now))
        }
        return (claimed, events)
    }
}
