import DeerFlow
import DeerFlowCore
import Foundation

/// The JSON shapes of the API (documented in `openapi.yaml`).
enum JSONRepresentation {
    static func time(_ date: Date?) -> JSONValue {
        date.map { .string(Timestamp.rfc3339($0)) } ?? .null
    }

    /// Parameters with declared-secret values replaced by `[REDACTED]`.
    static func params(_ params: [String: JSONValue], secrets: Set<String>) -> JSONValue {
        .object(params.reduce(into: [:]) { result, entry in
            result[entry.key] = secrets.contains(entry.key) ? .string("[REDACTED]") : entry.value
        })
    }

    static func run(_ run: RunRecord, secrets: Set<String>) -> JSONValue {
        [
            "id": .string(run.id.rawValue),
            "workflow": .string(run.workflow),
            "workflow_version": .string(run.workflowVersion),
            "status": .string(run.status.rawValue),
            "params": params(run.params, secrets: secrets),
            "trigger": .string(run.trigger.rawValue),
            "scheduled_for": time(run.scheduledFor),
            "created_at": time(run.createdAt),
            "started_at": time(run.startedAt),
            "finished_at": time(run.finishedAt),
            "progress": [
                "total": .int(run.progress.total),
                "finished": .int(run.progress.finished),
                "failed": .int(run.progress.failed),
            ],
        ]
    }

    static func runDetail(_ detail: RunDetail, secrets: Set<String>) -> JSONValue {
        guard case .object(var object) = run(detail.run, secrets: secrets) else { return .null }
        object["tasks"] = .array(detail.tasks.map(task))
        return .object(object)
    }

    static func task(_ task: TaskRecord) -> JSONValue {
        [
            "id": .string(task.id),
            "type": .string(task.type),
            "queue": .string(task.queue),
            "status": .string(task.status.rawValue),
            "output": task.output ?? .null,
            "attempts": .array(task.attempts.map(attempt)),
        ]
    }

    static func attempt(_ attempt: AttemptRecord) -> JSONValue {
        [
            "number": .int(attempt.number),
            "status": .string(attempt.status.rawValue),
            "queued_at": time(attempt.queuedAt),
            "started_at": time(attempt.startedAt),
            "finished_at": time(attempt.finishedAt),
            "worker": attempt.worker.map(JSONValue.string) ?? .null,
            "error": attempt.error.map(JSONValue.string) ?? .null,
        ]
    }

    static func workflow(_ entry: WorkflowRegistry.Entry, nextFire: Date?) -> JSONValue {
        let definition = entry.definition
        var schedule: JSONValue = .null
        if let declared = definition.schedule {
            schedule = [
                "cron": .string(declared.cron),
                "timezone": .string(declared.timeZone),
                "catchup": .string(declared.catchup.rawValue),
                "next_fire_at": time(nextFire),
            ]
        }
        return [
            "name": .string(definition.name),
            "description": .string(definition.description),
            "version": .string(entry.versionID),
            "schedule": schedule,
            "params": .array(definition.params.map { param in
                [
                    "name": .string(param.name),
                    "type": .string(param.type.rawValue),
                    "required": .bool(param.isRequired),
                    "default": param.secret ? (param.defaultValue == nil ? .null : .string("[REDACTED]")) : (param.defaultValue ?? .null),
                    "secret": .bool(param.secret),
                    "description": .string(param.description),
                ]
            }),
            "tasks": .array(definition.tasks.map { task in
                [
                    "id": .string(task.id),
                    "type": .string(task.type),
                    "depends_on": .array(task.dependsOn.map(JSONValue.string)),
                    "queue": .string(task.queue),
                    "priority": .int(task.priority),
                    "retries": .int(task.retry.retries),
                    "timeout": task.timeout.map { .string(DurationText.format($0)) } ?? .null,
                ]
            }),
        ]
    }

    static func worker(_ worker: WorkerRecord) -> JSONValue {
        [
            "id": .string(worker.id),
            "host": .string(worker.host),
            "pid": .int(worker.pid),
            "slots": .int(worker.slots),
            "busy": .int(worker.busy),
            "queues": .array(worker.queues.map(JSONValue.string)),
            "version": .string(worker.version),
            "started_at": time(worker.startedAt),
            "last_seen": time(worker.lastSeen),
            "state": .string(worker.state.rawValue),
        ]
    }

    static func health(_ report: HealthReport) -> JSONValue {
        [
            "status": .string(report.status.rawValue),
            "checks": .object(report.checks.mapValues { result in
                var details = result.details
                details["status"] = .string(result.status.rawValue)
                return .object(details)
            }),
        ]
    }

    static func error(_ code: String, _ message: String) -> JSONValue {
        ["error": ["code": .string(code), "message": .string(message)]]
    }
}
