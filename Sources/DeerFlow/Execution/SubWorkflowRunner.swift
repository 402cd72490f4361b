import DeerFlowCore
import Foundation
import Logging
import Synchronization

/// Runs a `workflow` task's attempt: starts the child run (or finds the one an earlier attempt
/// started), waits for it, and turns its end into the task's output or failure.
///
/// One child per parent attempt: the store keeps `(parent run, task, attempt)` unique. An attempt
/// first looks for the latest child of its task: it waits for that child instead of starting one
/// while the child has not failed or been cancelled and no attempt since the one that started it
/// succeeded (a worker lost while waiting, a store error). A child that failed or was cancelled,
/// or a task retried after it succeeded, gets a new child.
///
/// While waiting, the attempt holds its worker slot; it wakes on the child's `.runFinished`
/// event when the child finishes in this process, and otherwise looks at the store every
/// ``pollInterval`` (``slowPollInterval`` once it waited ``patientAfter``).
final class SubWorkflowRunner: Sendable {
    let engine: DeerFlowEngine
    let attempt: ClaimedAttempt
    let action: SubWorkflowAction
    /// The child run once known, for stopping it with the attempt.
    private let child = Mutex<RunID?>(nil)

    /// How often a waiting attempt looks at the store when no event arrives: every second for
    /// the first ``patientAfter``, then every ``slowPollInterval`` (a child finishing in this
    /// process wakes it at once either way).
    static let pollInterval: Duration = .seconds(1)
    static let slowPollInterval: Duration = .seconds(5)
    static let patientAfter: Duration = .seconds(30)
    /// How long an attempt waits before it checks whether every slot of this process is held by
    /// a waiting `workflow` task (a deadlock unless other processes run the children).
    static let deadlockCheckAfter: Duration = .seconds(10)

    init(engine: DeerFlowEngine, attempt: ClaimedAttempt, action: SubWorkflowAction) {
        self.engine = engine
        self.attempt = attempt
        self.action = action
    }

    /// The child run started or found so far.
    var childRun: RunID? { child.withLock { $0 } }

    /// Starts or finds the child, and with `wait` waits for it: the outputs of its tasks keyed by
    /// task id, or a failure naming the child and its failed task. Without `wait`: `{"run_id": ...}`.
    func run(log: TaskLog) async throws -> JSONValue {
        let record = try await findOrStartChild(log: log)
        child.withLock { $0 = record.id }
        guard action.wait else { return .object(["run_id": .string(record.id.rawValue)]) }
        let detail = try await waitForChild(record.id)
        return try Self.result(of: detail, log: log)
    }

    /// Cancels the child run when the attempt stops because its task timed out, or its run was
    /// cancelled or timed out. (An attempt released by a worker shutting down leaves the child
    /// running: the next attempt waits for it.)
    func stopChild(_ why: String) async {
        guard action.wait, let id = childRun else { return }
        do {
            try await engine.cancel(id)
            engine.logger.info("cancelled a child run with its parent task", metadata: [
                "run_id": "\(id)", "parent_run_id": "\(attempt.runID)", "parent_task_id": "\(attempt.taskID)", "reason": "\(why)",
            ])
        } catch let error as DeerFlowError where error.code == .conflict {
            // Finished already (or cancelled with the parent run).
        } catch {
            engine.logger.warning("could not cancel the child run of a stopped task", metadata: ["run_id": "\(id)", "error": "\(error)"])
        }
    }

    // MARK: Starting

    private func findOrStartChild(log: TaskLog) async throws -> RunRecord {
        if let existing = try await adoptableChild() {
            log.append("[deerflow] waiting for child run \(existing.id) (workflow '\(existing.workflow)', started by attempt \(existing.parent?.attempt ?? 0))\n")
            return existing
        }
        let params = try await childParams()
        let key = RunParent(runID: attempt.runID, taskID: attempt.taskID, attempt: attempt.number)
        do {
            let record = try await engine.trigger(action.workflow, params: params, trigger: .workflow, childOf: key)
            log.append("[deerflow] started child run \(record.id) of workflow '\(action.workflow)'\n")
            return record
        } catch let error as DeerFlowError where error.code == .conflict {
            // Another process runs this same attempt and was first: wait for its child.
            guard let existing = try await children().first(where: { $0.parent?.attempt == attempt.number }) else { throw error }
            return existing
        }
    }

    /// The children of this task, oldest first.
    private func children() async throws -> [RunRecord] {
        try await engine.store.childRuns(of: attempt.runID).filter { $0.parent?.taskID == attempt.taskID }
    }

    /// The latest child of this task, when this attempt should wait for it rather than start one.
    private func adoptableChild() async throws -> RunRecord? {
        guard let latest = try await children().last, let started = latest.parent?.attempt else { return nil }
        if started == attempt.number { return latest }
        guard started < attempt.number, latest.status != .failed, latest.status != .cancelled else { return nil }
        // A success since the child started means its result was used: this is a retry of the
        // task (the run retried with it selected), which runs the child workflow again.
        let attempts = try await engine.store.run(attempt.runID)?.tasks.first { $0.id == attempt.taskID }?.attempts ?? []
        let succeededSince = attempts.contains { $0.number >= started && $0.number < attempt.number && $0.status == .success }
        return succeededSince ? nil : latest
    }

    /// The child's parameters: values as written, templates rendered with the task's scope (a
    /// string that is one expression gives its JSON value: `"{{ tasks.list.output.files }}"` stays
    /// a list), strings read as the child's declared type (`"5"` for an `int`) as the command line
    /// reads them. The child's declaration then checks them (``DeerFlowEngine/trigger``).
    private func childParams() async throws -> [String: JSONValue] {
        var params = action.params
        let rendered = try await TaskTemplates.values(of: WorkflowDefinition.templatedFields(of: .workflow(action)), for: attempt, engine: engine)
        for (field, value) in rendered { params[String(field.dropFirst("params.".count))] = value }
        let declared = engine.workflows[action.workflow]?.definition.params ?? []
        for param in declared {
            if let value = params[param.name] { params[param.name] = SubWorkflowGraph.coerce(value, to: param.type) ?? value }
        }
        return params
    }

    // MARK: Waiting

    private func waitForChild(_ id: RunID) async throws -> RunDetail {
        let started = ContinuousClock.now
        engine.waitingSubWorkflows.add(1, ordering: .relaxed)
        defer { engine.waitingSubWorkflows.subtract(1, ordering: .relaxed) }
        var warned = false
        while true {
            try Task.checkCancellation()
            // One indexed row read per poll; the whole run only once it finished.
            if try await !engine.store.finishedRuns(among: [id]).isEmpty, let detail = try await engine.store.run(id) {
                return detail
            }
            let waited = ContinuousClock.now - started
            if waited > Self.deadlockCheckAfter, !warned, let slots = Self.allSlotsWaiting(engine) {
                warned = true
                engine.logger.error(
                    "every worker slot of this process (\(slots)) is held by a workflow task waiting for its child run: unless another worker process serves the children's queues, they never start; give more slots (--slots, worker.slots), add workers, or use wait: false",
                    metadata: ["run_id": "\(attempt.runID)", "task_id": "\(attempt.taskID)", "child_run_id": "\(id)"])
            }
            await engine.waitForFinishEvent(of: id, timeout: waited > Self.patientAfter ? Self.slowPollInterval : Self.pollInterval)
        }
    }

    /// The number of slots of this process's workers when every one of them holds a waiting
    /// `workflow` task (a deadlock unless other processes run the children); nil otherwise.
    static func allSlotsWaiting(_ engine: DeerFlowEngine) -> Int? {
        let slots = engine.localWorkerLoad.reduce(0) { $0 + $1.slots }
        return slots > 0 && engine.waitingSubWorkflows.load(ordering: .relaxed) >= slots ? slots : nil
    }

    /// The task's output for a finished child: its tasks' outputs keyed by task id, or the error
    /// naming the child run and what failed in it.
    static func result(of detail: RunDetail, log: TaskLog) throws -> JSONValue {
        let run = detail.run
        let name = "child run \(run.id) (workflow '\(run.workflow)')"
        switch run.status {
        case .success:
            log.append("[deerflow] \(name) succeeded\n")
            var outputs: [String: JSONValue] = [:]
            for task in detail.tasks { outputs[task.id] = task.output ?? .null }
            return .object(outputs)
        case .cancelled:
            throw TaskFailure(message: "\(name) was cancelled")
        default:
            if run.reason == "timeout" {
                throw TaskFailure(message: "\(name) timed out (its workflow's timeout)")
            }
            let failed = detail.tasks.first { $0.status == .failed || $0.status == .timeout } ?? detail.tasks.first { $0.status.failsRun }
            guard let failed else { throw TaskFailure(message: "\(name) \(run.status.rawValue)") }
            let error = failed.attempts.last?.error.map { ": \($0)" } ?? ""
            throw TaskFailure(message: "\(name) failed: task '\(failed.id)' \(failed.status.rawValue)\(error)")
        }
    }
}
