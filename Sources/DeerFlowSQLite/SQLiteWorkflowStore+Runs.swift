public import DeerFlow
public import DeerFlowCore
public import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore {
    public func createRun(_ run: NewRun) async throws -> RunRecord? {
        try await runInserts.submit(RunInsert(run: run, claim: nil))?.record
    }

    public func createRun(_ run: NewRun, startingOn claim: ClaimRequest) async throws -> CreatedRun? {
        try await runInserts.submit(RunInsert(run: run, claim: claim))
    }

    public func createRuns(_ runs: [NewRun]) async throws -> [RunRecord] {
        try RunInsertion.checkBatch(runs)
        return try RunInsertion.created(try await insertBatch(runs.map { RunInsert(run: $0, claim: nil) }).map { $0?.record })
    }

    /// Inserts runs (one transaction per batch of concurrent triggers), their tasks and the first
    /// attempts of tasks without dependencies. A scheduled run whose workflow and due time exist
    /// already is skipped: its result is nil.
    func insertBatch(_ inserts: [RunInsert]) async throws -> [CreatedRun?] {
        let limits = try await currentLimits(now: Date())
        // A lone trigger's transaction runs on its request's event loop (19 % off the trigger's
        // time in the server); a batch of concurrent triggers goes to the connection's thread, and
        // the loop of the request that leads it goes on reading and answering the others' requests
        // meanwhile (W1 over 16 connections, medians of six alternating rounds: 3,100 tasks/s with
        // every batch on the loop, 3,290 with lone triggers only; noisy).
        return try await writer.transaction(onEventLoop: inserts.count == 1) { db in
            try await Self.insert(inserts.map(\.run), claims: inserts.map(\.claim), limits: limits, into: db)
        }
    }

    /// Inserts runs. Runs of a workflow with a `max_active_runs` (`runLimits`) are inserted
    /// waiting, without attempts, and then started in creation order as far as the limit allows.
    static func insert(_ runs: [NewRun], runLimits: [String: Int], into db: DatabaseConnection) async throws -> [RunRecord?] {
        try await insert(runs, claims: [], limits: LimitSnapshot(runLimits: runLimits), into: db).map { $0?.record }
    }

    /// Inserts runs as above; a run with a claim (`claims`, by position) starts its first tasks
    /// on the claiming worker at once (``RunInsertion/directStarts(of:claim:limits:)``).
    static func insert(_ runs: [NewRun], claims: [ClaimRequest?], limits: LimitSnapshot, into db: DatabaseConnection) async throws -> [CreatedRun?] {
        let runLimits = limits.runLimits
        let direct = RunInsertion.directStarts(of: runs, claims: claims, limits: limits)
        var inserted: Set<String> = []
        for chunk in runs.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 16)
            for run in chunk {
                binds += [
                    .text(run.id.rawValue), .text(run.workflow), .text(run.workflowVersion), .text(JSONValue.object(run.params).compactJSON),
                    .text(run.trigger.kind.rawValue), Column.time(run.scheduledFor), Column.text(run.traceContext), Column.time(run.createdAt),
                    .integer(run.tasks.count), Column.int(run.timeout.map { Int($0.milliseconds) }), Column.time(run.deadline),
                    Column.text(run.rerunOf?.rawValue),
                    Column.text(runLimits[run.workflow].map { ConcurrencyReason.runs(limit: $0) }),
                    Column.text(run.parent?.runID.rawValue), Column.text(run.parent?.taskID), Column.int(run.parent?.attempt),
                    .text(direct[run.id] == nil ? "pending" : "running"), direct[run.id] == nil ? .null : Column.time(run.createdAt),
                ]
            }
            let rows = try await db.rows(valuesInsert(
                """
                INSERT INTO runs (id, workflow, version, status, params, trigger, scheduled_for, trace_context, created_at, tasks_total,
                                  timeout_ms, deadline_at, rerun_of, waiting_reason, parent_run_id, parent_task_id, parent_attempt, started_at)
                """,
                select: """
                    v.column1, v.column2, v.column3, v.column17, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9,
                    v.column10, v.column11, v.column12, v.column13, v.column14, v.column15, v.column16, v.column18
                    """,
                tail: "ON CONFLICT DO NOTHING RETURNING id",
                rows: chunk.count, columns: 18), binds)
            for row in rows { inserted.insert(row.string("id")) }
        }
        let created = runs.filter { inserted.contains($0.id.rawValue) }
        var taskRows: [(RunID, NewTask, status: String)] = []
        var firstAttempts: [CompletionPlan.NewAttempt] = []
        var starting: [StartingTask] = []
        var startingRuns: [RunID: StartingRun] = [:]
        for run in created {
            let waits = runLimits[run.workflow] != nil
            let started = direct[run.id]
            for task in run.tasks {
                // A waiting run's first tasks stay pending, without attempts, until it starts.
                let root = task.dependencyCount == 0 && !waits
                if root, let started, started.tasks.contains(task.index) {
                    taskRows.append((run.id, task, "running"))
                    starting.append(StartingTask(
                        task: ReadyTask(
                            runID: run.id, index: task.index, taskID: task.id, type: task.type, queue: task.queue, priority: task.priority,
                            timeoutMilliseconds: task.timeout.map { Int($0.milliseconds) }, number: 1),
                        worker: started.claim.worker, startedAt: run.createdAt, leaseUntil: run.createdAt.adding(started.claim.leaseDuration)))
                    startingRuns[run.id] = StartingRun(
                        workflow: run.workflow, version: run.workflowVersion, params: run.params, traceContext: run.traceContext,
                        logicalTime: run.scheduledFor ?? run.createdAt)
                } else {
                    taskRows.append((run.id, task, root ? "queued" : "pending"))
                    if root {
                        firstAttempts.append(.init(runID: run.id, taskIndex: task.index, number: 1, queue: task.queue, priority: task.priority, queuedAt: run.createdAt))
                    }
                }
            }
        }
        // Chunks keep each statement under SQLite's limit of bound variables.
        for chunk in taskRows.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 15)
            for (runID, task, status) in chunk {
                let root = status != "pending"
                binds += [
                    .text(runID.rawValue), .integer(task.index), .text(task.id), .text(task.type), .text(task.queue),
                    .integer(task.priority), .text(status),
                    .integer(task.dependencyCount), .text(task.dependents.map(String.init).joined(separator: ",")),
                    .integer(task.retry.retries), .integer(Int(task.retry.delay.milliseconds)),
                    .integer(Int(task.retry.maxDelay.milliseconds)), .float(task.retry.jitter),
                    Column.int(task.timeout.map { Int($0.milliseconds) }), .integer(root ? 1 : 0),
                ]
            }
            _ = try await db.rows(
                """
                INSERT INTO tasks (run_id, idx, task_id, type, queue, priority, status, deps_remaining, dependents,
                                   retries, retry_delay_ms, max_retry_delay_ms, jitter, timeout_ms, attempts)
                VALUES \(placeholders(rows: chunk.count, columns: 15))
                """, binds)
        }
        try await insertAttempts(firstAttempts, into: db)
        let (claimed, startEvents) = try await insertRunning(starting, runs: startingRuns, in: db)
        let limited = Set(created.map(\.workflow).filter { runLimits[$0] != nil })
        var waiting: [String: String] = [:]
        if !limited.isEmpty {
            let admitted = Set(try await admitWaitingRuns(of: limited.sorted(), now: created.map(\.createdAt).max() ?? Date(), in: db))
            for run in created where runLimits[run.workflow] != nil && !admitted.contains(run.id) {
                let reason = try await db.rows("SELECT waiting_reason FROM runs WHERE id = ?", [.text(run.id.rawValue)]).first?.optionalString("waiting_reason")
                waiting[run.id.rawValue] = reason
            }
        }
        var startedByRun: [RunID: [ClaimedAttempt]] = [:]
        for attempt in claimed { startedByRun[attempt.runID, default: []].append(attempt) }
        var eventsByRun: [RunID: [EngineEvent]] = [:]
        for event in startEvents {
            guard case .attemptStarted(let info, _, _) = event else { continue }
            eventsByRun[info.runID, default: []].append(event)
        }
        return runs.map { run in
            guard inserted.contains(run.id.rawValue) else { return nil }
            return RunInsertion.createdRun(
                run, started: startedByRun[run.id] ?? [], startEvents: eventsByRun[run.id] ?? [], waitingReason: waiting[run.id.rawValue])
        }
    }

    static func insertAttempts(_ attempts: [CompletionPlan.NewAttempt], into db: DatabaseConnection) async throws {
        for chunk in attempts.statementChunks() {
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 6)
            for attempt in chunk {
                binds += [
                    .text(attempt.runID.rawValue), .integer(attempt.taskIndex), .integer(attempt.number),
                    .text(attempt.queue), .integer(attempt.priority), Column.time(attempt.queuedAt),
                ]
            }
            _ = try await db.rows(valuesInsert(
                "INSERT INTO attempts (run_id, task_idx, number, queue, priority, queued_at, status)",
                select: "v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, 'queued'",
                rows: chunk.count, columns: 6), binds)
        }
    }

    public func run(_ id: RunID) async throws -> RunDetail? {
        try await reader.transaction(immediate: false) { db in
            guard let row = try await db.rows("SELECT * FROM runs WHERE id = ?", [.text(id.rawValue)]).first else { return nil }
            let run = try Self.runRecord(row)
            let taskRows = try await db.rows(
                """
                SELECT idx, task_id, type, queue, status, output, map_count, map_parallel, map_succeeded, map_failed, map_parent, map_index, item
                FROM tasks WHERE run_id = ? ORDER BY idx
                """, [.text(id.rawValue)])
            let attemptRows = try await db.rows(
                """
                SELECT id, task_idx, number, status, queued_at, started_at, finished_at, worker, error
                FROM attempts WHERE run_id = ? ORDER BY task_idx, number
                """, [.text(id.rawValue)])
            var attempts: [Int: [AttemptRecord]] = [:]
            for row in attemptRows {
                attempts[row.int("task_idx"), default: []].append(AttemptRecord(
                    id: AttemptID(row.int("id")), number: row.int("number"),
                    status: AttemptStatus(rawValue: row.string("status")) ?? .failed,
                    queuedAt: row.date("queued_at") ?? run.createdAt, startedAt: row.date("started_at"),
                    finishedAt: row.date("finished_at"), worker: row.optionalString("worker"), error: row.optionalString("error")))
            }
            let tasks = taskRows.map { row in
                var task = TaskRecord(
                    index: row.int("idx"), id: row.string("task_id"), type: row.string("type"), queue: row.string("queue"),
                    status: TaskStatus(rawValue: row.string("status")) ?? .pending,
                    output: row.optionalString("output").flatMap { try? JSONValue(parsing: $0) },
                    attempts: attempts[row.int("idx")] ?? [])
                task.map = row.optionalInt("map_count").map {
                    MapProgress(count: $0, maxParallel: row.optionalInt("map_parallel"), succeeded: row.int("map_succeeded"), failed: row.int("map_failed"))
                }
                task.mapParent = row.optionalInt("map_parent")
                task.mapIndex = row.optionalInt("map_index")
                task.item = row.optionalString("item").flatMap { try? JSONValue(parsing: $0) }
                return task
            }
            return RunDetail(run: run, tasks: tasks)
        }
    }

    static func runRecord(_ row: ResultRow) throws -> RunRecord {
        // A corrupted params column shows as no params; the run's attempts fail saying why.
        let params = StoredParams.decode(row.string("params")).params
        return RunRecord(
            id: RunID(rawValue: row.string("id")), workflow: row.string("workflow"), workflowVersion: row.string("version"),
            status: RunStatus(rawValue: row.string("status")) ?? .failed, params: params, trigger: RunTrigger.Kind(rawValue: row.string("trigger")) ?? .api,
            scheduledFor: row.date("scheduled_for"), traceContext: row.optionalString("trace_context"),
            createdAt: row.date("created_at") ?? Date(timeIntervalSince1970: 0), startedAt: row.date("started_at"),
            finishedAt: row.date("finished_at"),
            progress: RunProgress(total: row.int("tasks_total"), finished: row.int("tasks_finished"), failed: row.int("tasks_failed")),
            backfillID: row.optionalString("backfill_id"),
            reason: row.optionalString("reason"), rerunOf: row.optionalString("rerun_of").map(RunID.init(rawValue:)),
            deadline: row.date("deadline_at"), retries: row.int("retries"),
            waitingReason: row.optionalString("waiting_reason"),
            parent: row.optionalString("parent_run_id").map { parent in
                RunParent(runID: RunID(rawValue: parent), taskID: row.optionalString("parent_task_id") ?? "", attempt: row.int("parent_attempt"))
            })
    }

    public func childRuns(of parent: RunID) async throws -> [RunRecord] {
        let rows = try await reader.exclusive { db in
            try await db.rows("SELECT * FROM runs WHERE parent_run_id = ? ORDER BY id", [.text(parent.rawValue)])
        }
        return try rows.map(Self.runRecord)
    }

    public func finishedRuns(among ids: [RunID]) async throws -> [RunRecord] {
        var finished: [RunRecord] = []
        for chunk in ids.statementChunks() {
            let rows = try await reader.exclusive { db in
                try await db.rows(
                    "SELECT * FROM runs WHERE id IN (\(placeholders(chunk.count))) AND finished_at IS NOT NULL",
                    chunk.map { .text($0.rawValue) })
            }
            finished += try rows.map(Self.runRecord)
        }
        return finished
    }

    public func runs(_ query: RunQuery) async throws -> RunPage {
        var conditions: [String] = []
        var binds: [SQLiteData] = []
        if let workflow = query.workflow {
            conditions.append("workflow = ?")
            binds.append(.text(workflow))
        }
        if let status = query.status {
            conditions.append("status = ?")
            binds.append(.text(status.rawValue))
        }
        if let cursor = query.cursor {
            conditions.append("id < ?")
            binds.append(.text(cursor.rawValue))
        }
        if let trigger = query.trigger {
            conditions.append("trigger = ?")
            binds.append(.text(trigger.rawValue))
        }
        let bounds = query.idBounds
        if let lower = bounds.lower {
            conditions.append("id >= ?")
            binds.append(.text(lower))
        }
        if let upper = bounds.upper {
            conditions.append("id < ?")
            binds.append(.text(upper))
        }
        let limit = max(1, min(query.limit, 1000))
        binds.append(.integer(limit + 1))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await reader.exclusive { db in
            try await db.rows("SELECT * FROM runs \(whereClause) ORDER BY id DESC LIMIT CAST(? AS INTEGER)", binds)
        }
        var runs = try rows.map(Self.runRecord)
        var next: RunID?
        if runs.count > limit {
            runs.removeLast()
            next = runs.last?.id
        }
        return RunPage(runs: runs, nextCursor: next)
    }

    public func recentRuns(workflows: [String], limit: Int) async throws -> [String: [RunRecord]] {
        var result: [String: [RunRecord]] = [:]
        let limit = max(1, min(limit, 1000))
        // One statement per 128 workflows: each part walks runs_by_workflow from the newest run.
        for chunk in workflows.statementChunks() {
            let parts = Array(repeating: "SELECT * FROM (SELECT * FROM runs WHERE workflow = ? ORDER BY id DESC LIMIT CAST(? AS INTEGER))", count: chunk.count)
            let binds = chunk.flatMap { [SQLiteData.text($0), .integer(limit)] }
            let rows = try await reader.exclusive { db in
                try await db.rows(parts.joined(separator: " UNION ALL "), binds)
            }
            for row in rows {
                let run = try Self.runRecord(row)
                result[run.workflow, default: []].append(run)
            }
        }
        for (workflow, runs) in result { result[workflow] = runs.sorted { $0.id > $1.id } }
        return result
    }

    public func taskStates(runs: [RunID]) async throws -> [RunID: [TaskState]] {
        var result: [RunID: [TaskState]] = [:]
        for chunk in runs.statementChunks() {
            let rows = try await reader.exclusive { db in
                try await db.rows(
                    "SELECT run_id, idx, task_id, status, attempts FROM tasks WHERE run_id IN (\(placeholders(chunk.count))) AND map_parent IS NULL ORDER BY run_id, idx",
                    chunk.map { .text($0.rawValue) })
            }
            for row in rows {
                result[RunID(rawValue: row.string("run_id")), default: []].append(TaskState(
                    index: row.int("idx"), id: row.string("task_id"), status: TaskStatus(rawValue: row.string("status")) ?? .pending,
                    attempts: row.int("attempts")))
            }
        }
        return result
    }

    public func runCounts(since: Date) async throws -> [RunStatus: Int] {
        let rows = try await reader.exclusive { db in
            try await db.rows("SELECT status, count(*) AS n FROM runs WHERE id >= ? GROUP BY status", [.text(RunID.lowerBound(at: since))])
        }
        var counts: [RunStatus: Int] = [:]
        for row in rows {
            if let status = RunStatus(rawValue: row.string("status")) { counts[status, default: 0] += row.int("n") }
        }
        return counts
    }

    public func cancelRun(_ id: RunID, at now: Date) async throws -> CancelResult {
        try await writer.transaction { db in
            guard let row = try await db.rows("SELECT * FROM runs WHERE id = ?", [.text(id.rawValue)]).first else { return .notFound }
            var run = try Self.runRecord(row)
            guard !run.status.isFinished else { return .alreadyFinished(run.status) }
            let running = try await Self.stop(&run, as: .cancelled, reason: nil, message: "run cancelled before the attempt started", at: now, admitsWaiting: true, in: db)
            let event = EngineEvent.runFinished(runID: id, workflow: run.workflow, status: .cancelled, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: now)
            return .cancelled(run, runningAttempts: running, events: [event])
        }
    }

    /// Ends an unfinished run with `status`: queued attempts are dropped with `message`, running
    /// ones flagged to stop, pending and queued tasks cancelled. Returns the running attempts.
    static func stop(
        _ run: inout RunRecord, as status: RunStatus, reason: String?, message: String, at now: Date, admitsWaiting: Bool, in db: DatabaseConnection
    ) async throws -> [AttemptID] {
        let runID = SQLiteData.text(run.id.rawValue)
        _ = try await db.rows(
            "UPDATE runs SET status = ?, finished_at = ?, reason = ?, waiting_reason = NULL WHERE id = ?",
            [.text(status.rawValue), Column.time(now), Column.text(reason), runID])
        _ = try await db.rows(
            "UPDATE attempts SET status = 'cancelled', finished_at = ?, error = ? WHERE run_id = ? AND status = 'queued'",
            [Column.time(now), .text(message), runID])
        let running = try await db.rows(
            "UPDATE attempts SET stop_requested = 1 WHERE run_id = ? AND status = 'running' RETURNING id", [runID])
        // A mapped task whose instances run is `running` without an attempt of its own.
        _ = try await db.rows(
            "UPDATE tasks SET status = 'cancelled' WHERE run_id = ? AND (status IN ('pending', 'queued') OR (status = 'running' AND map_count IS NOT NULL))",
            [runID])
        if admitsWaiting, run.waitingReason == nil {
            // Its place under max_active_runs goes to the next waiting run.
            _ = try await Self.admitWaitingRuns(of: [run.workflow], now: now, in: db)
        }
        run.status = status
        run.finishedAt = now
        run.reason = reason
        run.waitingReason = nil
        return running.map { AttemptID($0.int("id")) }
    }

    /// Active runs whose deadline passed, earliest first (`deadline_at <= ?`, `LIMIT`): through
    /// runs_deadline, which holds only active runs with a deadline, in deadline order (SQLite would
    /// otherwise visit every active run by status and sort them).
    package static let dueDeadlines = """
        SELECT * FROM runs INDEXED BY runs_deadline
        WHERE deadline_at IS NOT NULL AND deadline_at <= ? AND status IN ('pending', 'running') ORDER BY deadline_at LIMIT CAST(? AS INTEGER)
        """

    public func timeOutRuns(now: Date, limit: Int) async throws -> TimeoutSweep {
        try await writer.transaction { db in
            let rows = try await db.rows(
                Self.dueDeadlines,
                [Column.time(now), .integer(max(1, limit))])
            var sweep = TimeoutSweep()
            for row in rows {
                var run = try Self.runRecord(row)
                let deadline = run.deadline ?? now
                sweep.runningAttempts += try await Self.stop(
                    &run, as: .failed, reason: RunReason.timeout, message: "run timed out before the attempt started", at: now, admitsWaiting: true, in: db)
                sweep.runs.append(run)
                sweep.events += [
                    .runTimedOut(runID: run.id, workflow: run.workflow, deadline: deadline, at: now),
                    .runFinished(runID: run.id, workflow: run.workflow, status: .failed, createdAt: run.createdAt, startedAt: run.startedAt, finishedAt: now),
                ]
            }
            return sweep
        }
    }

    public func retryRun(_ id: RunID, tasks selected: [String]?, at now: Date) async throws -> RetryResult {
        try await writer.transaction { db in
            guard let row = try await db.rows("SELECT * FROM runs WHERE id = ?", [.text(id.rawValue)]).first else { return .notFound }
            let run = try Self.runRecord(row)
            guard run.status.isFinished else { return .notFinished(run.status) }
            let runID = SQLiteData.text(id.rawValue)
            let taskRows = try await db.rows(
                "SELECT idx, task_id, status, dependents, attempts, queue, priority, type FROM tasks WHERE run_id = ? AND map_parent IS NULL ORDER BY idx", [runID])
            var tasks: [RunRetryPlan.Task] = []
            var placement: [Int: (queue: String, priority: Int)] = [:]
            for row in taskRows {
                tasks.append(RunRetryPlan.Task(
                    index: row.int("idx"), id: row.string("task_id"), status: TaskStatus(rawValue: row.string("status")) ?? .failed,
                    dependents: row.string("dependents").split(separator: ",").compactMap { Int($0) }, attempts: row.int("attempts")))
                placement[row.int("idx")] = (row.string("queue"), row.int("priority"))
            }
            // Attempts of a cancelled run may still be stopping while their tasks already say cancelled.
            let active = try await db.rows("SELECT 1 FROM attempts WHERE run_id = ? AND status IN ('queued', 'running') LIMIT 1", [runID])
            let plan: RunRetryPlan
            switch RetryResult.plan(run: id, tasks: tasks, selected: selected, attemptsActive: !active.isEmpty) {
            case .write(let planned): plan = planned
            case .answer(let answer): return answer
            }
            // A mapped task that runs again expands again: its instances of the last try go.
            for chunk in plan.resets.map(\.index).statementChunks() {
                let parents = placeholders(chunk.count)
                let binds = [runID] + chunk.map { SQLiteData.integer($0) }
                _ = try await db.rows(
                    """
                    DELETE FROM task_logs WHERE attempt_id IN (
                        SELECT a.id FROM attempts a JOIN tasks t ON t.run_id = a.run_id AND t.idx = a.task_idx
                        WHERE t.run_id = ? AND t.map_parent IN (\(parents)))
                    """, binds)
                _ = try await db.rows(
                    "DELETE FROM attempts WHERE (run_id, task_idx) IN (SELECT run_id, idx FROM tasks WHERE run_id = ? AND map_parent IN (\(parents)))",
                    binds)
                _ = try await db.rows("DELETE FROM tasks WHERE run_id = ? AND map_parent IN (\(parents))", binds)
                _ = try await db.rows(
                    "UPDATE tasks SET map_count = NULL, map_parallel = NULL, map_succeeded = 0, map_failed = 0 WHERE run_id = ? AND idx IN (\(parents))",
                    binds)
            }
            for chunk in plan.resets.statementChunks() {
                var binds: [SQLiteData] = []
                for reset in chunk {
                    binds += [.integer(reset.index), .integer(reset.dependenciesRemaining), .integer(reset.isReady ? reset.nextAttempt : reset.nextAttempt - 1)]
                }
                _ = try await db.rows(valuesStatement(
                    """
                    UPDATE tasks SET deps_remaining = v.column2, attempts = v.column3, output = NULL, retries_used = 0, interruptions = 0,
                        status = CASE WHEN v.column2 = 0 THEN 'queued' ELSE 'pending' END
                    {values}
                    WHERE tasks.run_id = ? AND tasks.idx = v.column1
                    """, rows: chunk.count, columns: 3), binds + [runID])
            }
            try await Self.insertAttempts(plan.resets.filter(\.isReady).map { reset in
                let place = placement[reset.index] ?? ("default", 0)
                return .init(runID: id, taskIndex: reset.index, number: reset.nextAttempt, queue: place.queue, priority: place.priority, queuedAt: now)
            }, into: db)
            let timeout = row.optionalInt("timeout_ms")
            let deadline = timeout.map { now.adding(.milliseconds($0)) }
            _ = try await db.rows(
                """
                UPDATE runs SET status = 'running', finished_at = NULL, reason = NULL, tasks_finished = ?, tasks_failed = ?,
                    deadline_at = ?, retries = retries + 1, started_at = coalesce(started_at, ?)
                WHERE id = ?
                """, [.integer(plan.progress.finished), .integer(plan.progress.failed), Column.time(deadline), Column.time(now), runID])
            return .retried(run, plan: plan, deadline: deadline, at: now)
        }
    }

    public func taskOutput(run: RunID, task: String) async throws -> JSONValue? {
        let rows = try await reader.exclusive { db in
            try await db.rows("SELECT output FROM tasks WHERE run_id = ? AND task_id = ? AND status = 'success'", [.text(run.rawValue), .text(task)])
        }
        return try rows.first?.optionalString("output").map { try JSONValue(parsing: $0) }
    }
}
