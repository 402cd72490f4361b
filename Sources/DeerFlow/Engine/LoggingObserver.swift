import DeerFlowCore
import Foundation
public import Logging
import Tracing

/// Logs state transitions: runs created and finished, failed and timed-out attempts, retries and
/// skipped tasks at info or warning; started and successful attempts at debug. Every line carries
/// the run's ids.
public struct LoggingObserver: EngineObserver {
    let logger: Logger
    let traceContext: (@Sendable (RunID) -> ServiceContext?)?

    /// - Parameters:
    ///   - engine: when given, `run finished` is logged in the run's trace context, so it carries
    ///     the run's `trace_id` as `run created` does (for runs this process created).
    public init(logger: Logger, engine: DeerFlowEngine? = nil) {
        self.logger = logger
        // The spans, not the engine: the engine holds its observers.
        traceContext = engine.map { engine in
            let spans = engine.runSpans
            return { spans.context(of: $0)?.context }
        }
    }

    public func engine(didEmit events: [EngineEvent]) {
        for event in events {
            switch event {
            case .runCreated(let runID, let workflow, let trigger, _):
                logger.info("run created", metadata: ["run_id": .string(runID.rawValue), "workflow": .string(workflow), "trigger": .string(trigger.rawValue)])
            case .runStarted(let runID, let workflow, _):
                logger.debug("run started", metadata: ["run_id": .string(runID.rawValue), "workflow": .string(workflow)])
            case .runFinished(let runID, let workflow, let status, let createdAt, let startedAt, let finishedAt):
                let level: Logger.Level = status == .failed ? .warning : .info
                guard logger.logLevel <= level else { continue }
                let seconds = finishedAt.timeIntervalSince(startedAt ?? createdAt)
                let metadata: Logger.Metadata = [
                    "run_id": .string(runID.rawValue), "workflow": .string(workflow), "status": .string(status.rawValue),
                    "duration_ms": "\(Int((seconds * 1000).rounded()))",
                ]
                if let context = traceContext?(runID) {
                    ServiceContext.withValue(context) { logger.log(level: level, "run finished", metadata: metadata) }
                } else {
                    logger.log(level: level, "run finished", metadata: metadata)
                }
            case .attemptStarted(let info, _, _):
                if logger.logLevel <= .debug { logger.debug("attempt started", metadata: Self.metadata(info)) }
            case .attemptFinished(let info, let status, let metricStatus, _, _, let error):
                let (level, message): (Logger.Level, Logger.Message) = switch metricStatus {
                case .success: (.debug, "attempt finished")
                case .cancelled: (.info, "attempt cancelled")
                case .retried: (.info, "attempt failed; retrying")
                case .failed, .timeout: (.warning, "attempt failed")
                }
                // Checked first: at the default level a successful attempt logs nothing, and its
                // metadata would be built for nothing once per task.
                guard logger.logLevel <= level else { continue }
                var metadata = Self.metadata(info)
                metadata["status"] = .string(status.rawValue)
                if let error { metadata["error"] = "\(error)" }
                logger.log(level: level, message, metadata: metadata)
            case .retryScheduled(let info, let at):
                guard logger.logLevel <= .debug else { continue }
                var metadata = Self.metadata(info)
                metadata["retry_at"] = "\(at)"
                logger.debug("retry scheduled", metadata: metadata)
            case .runRetried(let runID, let workflow, let taskIDs, _):
                logger.notice("run retried", metadata: [
                    "run_id": "\(runID)", "workflow": "\(workflow)", "tasks": .array(taskIDs.map { .string($0) }),
                ])
            case .runTimedOut(let runID, let workflow, let deadline, _):
                logger.warning("run timed out; its running attempts are stopped", metadata: [
                    "run_id": "\(runID)", "workflow": "\(workflow)", "deadline": "\(Timestamp.rfc3339(deadline))",
                ])
            case .tasksSkipped(let runID, let workflow, let taskIDs):
                logger.info("tasks skipped: an upstream task failed", metadata: [
                    "run_id": "\(runID)", "workflow": "\(workflow)", "tasks": .array(taskIDs.map { .string($0) }),
                ])
            }
        }
    }

    static func metadata(_ info: AttemptInfo) -> Logger.Metadata {
        // The strings themselves, not interpolated copies (an id is too long to be stored inline).
        [
            "run_id": .string(info.runID.rawValue), "workflow": .string(info.workflow), "task_id": .string(info.taskID),
            "type": .string(info.type), "queue": .string(info.queue), "attempt": "\(info.number)",
            "execution_id": "\(info.runID):\(info.taskID):\(info.number)",
        ]
    }
}
