import DeerFlow
import DeerFlowAPI
import DeerFlowCore
import Foundation

/// The engine's records as the API's generated types (`Components.Schemas`), so a field that
/// openapi.yaml adds, renames or retypes fails to compile here.
enum APIRepresentation {
    /// Parameters with declared-secret values replaced by `[REDACTED]`.
    static func params(_ params: [String: JSONValue], secrets: Set<String>) -> [String: JSONValue] {
        guard !secrets.isEmpty else { return params }
        var shown = params
        for name in secrets where shown[name] != nil { shown[name] = .string("[REDACTED]") }
        return shown
    }

    static func run(_ run: RunRecord, secrets: Set<String>) throws -> Components.Schemas.Run {
        Components.Schemas.Run(
            id: run.id.rawValue,
            workflow: run.workflow,
            workflowVersion: run.workflowVersion,
            status: try value(run.status.rawValue, of: "run status"),
            params: params(run.params, secrets: secrets),
            trigger: try value(run.trigger.rawValue, of: "run trigger"),
            scheduledFor: .init(run.scheduledFor),
            logicalTime: run.logicalTime,
            backfillId: .init(run.backfillID),
            createdAt: run.createdAt,
            startedAt: .init(run.startedAt),
            finishedAt: .init(run.finishedAt),
            progress: progress(run.progress),
            reason: .init(run.reason),
            rerunOf: .init(run.rerunOf?.rawValue),
            deadline: .init(run.deadline),
            retries: run.retries,
            waitingReason: .init(run.waitingReason),
            parent: .init(parent(run.parent)))
    }

    static func parent(_ parent: RunParent?) -> Components.Schemas.RunParent? {
        parent.map { .init(runId: $0.runID.rawValue, taskId: $0.taskID, attempt: $0.attempt) }
    }

    static func child(_ run: RunRecord) throws -> Components.Schemas.ChildRun {
        .init(
            runId: run.id.rawValue, workflow: run.workflow, status: try value(run.status.rawValue, of: "run status"),
            taskId: run.parent?.taskID ?? "", attempt: run.parent?.attempt ?? 1)
    }

    static func runDetail(_ detail: RunDetail, secrets: Set<String>) throws -> Components.Schemas.RunDetail {
        let run = detail.run
        return Components.Schemas.RunDetail(
            id: run.id.rawValue,
            workflow: run.workflow,
            workflowVersion: run.workflowVersion,
            status: try value(run.status.rawValue, of: "run status"),
            params: params(run.params, secrets: secrets),
            trigger: try value(run.trigger.rawValue, of: "run trigger"),
            scheduledFor: .init(run.scheduledFor),
            logicalTime: run.logicalTime,
            backfillId: .init(run.backfillID),
            createdAt: run.createdAt,
            startedAt: .init(run.startedAt),
            finishedAt: .init(run.finishedAt),
            progress: progress(run.progress),
            reason: .init(run.reason),
            rerunOf: .init(run.rerunOf?.rawValue),
            deadline: .init(run.deadline),
            retries: run.retries,
            waitingReason: .init(run.waitingReason),
            parent: .init(parent(run.parent)),
            children: try detail.children.map(child),
            tasks: try detail.groupedTasks.map(task))
    }

    static func progress(_ progress: RunProgress) -> Components.Schemas.Progress {
        .init(total: progress.total, finished: progress.finished, failed: progress.failed)
    }

    static func task(_ grouped: GroupedTask) throws -> Components.Schemas.Task {
        let task = grouped.task
        var map: Components.Schemas.TaskMap?
        if let summary = grouped.summary {
            map = Components.Schemas.TaskMap(
                count: summary.count, maxParallel: summary.maxParallel, succeeded: summary.succeeded, failed: summary.failed,
                running: summary.running, queued: summary.queued, waiting: summary.waiting,
                instances: try grouped.instances.map { instance in
                    Components.Schemas.TaskMapInstance(
                        index: instance.mapIndex ?? 0, id: instance.id,
                        status: try value(instance.status.rawValue, of: "task status"),
                        item: instance.item ?? .null, output: instance.output ?? .null,
                        attempts: try instance.attempts.map(attempt))
                })
        }
        return Components.Schemas.Task(
            id: task.id,
            _type: task.type,
            queue: task.queue,
            status: try value(task.status.rawValue, of: "task status"),
            output: task.output ?? .null,
            attempts: try task.attempts.map(attempt),
            waitingReason: .init(task.waitingReason),
            map: map)
    }

    static func attempt(_ attempt: AttemptRecord) throws -> Components.Schemas.Attempt {
        Components.Schemas.Attempt(
            number: attempt.number,
            status: try value(attempt.status.rawValue, of: "attempt status"),
            queuedAt: attempt.queuedAt,
            startedAt: .init(attempt.startedAt),
            finishedAt: .init(attempt.finishedAt),
            worker: .init(attempt.worker),
            error: .init(attempt.error))
    }

    /// - Parameter state: the schedule's stored state (next due time, pause); nil when the store
    ///   has none yet, then the definition's initial `paused:` is shown.
    static func workflow(_ entry: WorkflowRegistry.Entry, state: ScheduleRecord?) throws -> Components.Schemas.Workflow {
        let definition = entry.definition
        var schedule: Components.Schemas.Schedule?
        if let declared = definition.schedule {
            schedule = Components.Schemas.Schedule(
                cron: declared.cron,
                timezone: declared.timeZone,
                catchup: try value(declared.catchup.rawValue, of: "schedule catchup"),
                nextFireAt: .init(state?.nextFireAt))
        }
        return Components.Schemas.Workflow(
            name: definition.name,
            description: definition.description,
            version: entry.versionID,
            schedule: .init(schedule),
            paused: definition.schedule == nil ? false : (state?.paused ?? definition.schedule?.paused ?? false),
            params: try definition.params.map { param in
                Components.Schemas.WorkflowParam(
                    name: param.name,
                    _type: try value(param.type.rawValue, of: "parameter type"),
                    required: param.isRequired,
                    _default: param.secret ? (param.defaultValue == nil ? .null : .string("[REDACTED]")) : (param.defaultValue ?? .null),
                    secret: param.secret,
                    description: param.description)
            },
            tasks: definition.tasks.map { task in
                Components.Schemas.WorkflowTask(
                    id: task.id,
                    _type: task.type,
                    dependsOn: task.dependsOn,
                    queue: task.queue,
                    priority: task.priority,
                    retries: task.retry.retries,
                    timeout: .init(task.timeout.map(DurationText.format)))
            })
    }

    static func backfill(_ backfill: BackfillRecord, secrets: Set<String>) throws -> Components.Schemas.Backfill {
        Components.Schemas.Backfill(
            id: backfill.id,
            workflow: backfill.workflow,
            from: backfill.from,
            to: backfill.to,
            maxActive: backfill.maxActive,
            params: params(backfill.params, secrets: secrets),
            status: try value(backfill.status.rawValue, of: "backfill status"),
            fireTimes: backfill.fireTimes,
            runsCreated: backfill.runsCreated,
            alreadyPresent: backfill.alreadyPresent,
            pending: backfill.runs[.pending] ?? 0,
            running: backfill.runs[.running] ?? 0,
            succeeded: backfill.succeeded,
            failed: backfill.failed,
            nextFireAt: .init(backfill.nextFireAt),
            createdAt: backfill.createdAt,
            finishedAt: .init(backfill.finishedAt))
    }

    static func worker(_ worker: WorkerRecord) throws -> Components.Schemas.Worker {
        Components.Schemas.Worker(
            id: worker.id,
            host: worker.host,
            pid: worker.pid,
            slots: worker.slots,
            busy: worker.busy,
            queues: worker.queues,
            version: worker.version,
            startedAt: worker.startedAt,
            lastSeen: worker.lastSeen,
            state: try value(worker.state.rawValue, of: "worker state"))
    }

    static func health(_ report: HealthReport) throws -> Components.Schemas.HealthReport {
        Components.Schemas.HealthReport(
            status: try value(report.status.rawValue, of: "health status"),
            checks: .init(additionalProperties: report.checks.mapValues { result in
                var details = result.details
                details["status"] = .string(result.status.rawValue)
                return details
            }))
    }

    static func taskLogs(_ logs: [AttemptLog]) throws -> Components.Schemas.TaskLogList {
        .init(attempts: try logs.map { log in
            .init(attempt: log.attempt, status: try value(log.status.rawValue, of: "attempt status"), log: log.text, truncated: log.truncated)
        })
    }

    /// The generated enum case of a stored string; a value openapi.yaml does not list is a
    /// server error naming it (the store and the document disagree).
    static func value<T: RawRepresentable>(_ raw: String, of what: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else {
            throw DeerFlowError(.internal, "the \(what) '\(raw)' is not one openapi.yaml lists; this server and its API description disagree")
        }
        return value
    }
}
