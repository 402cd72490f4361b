import DeerFlowCore
import Foundation
import Logging
import Synchronization
import Tracing

/// Runs one claimed attempt: builds its context, runs its action under its timeout and stop
/// signal, keeps its log, and turns the result into an ``AttemptCompletion``.
struct TaskExecutor: Sendable {
    let engine: DeerFlowEngine

    private enum RaceResult: Sendable {
        case finished(AttemptOutcome)
        case timedOut
        case stopped(StopReason)
    }

    /// Executes `attempt` inside its `task.execute` span (a child of the run's span, wherever the
    /// run was created), with its time in the queue as an attribute and event. When it times out
    /// or is stopped, `early` receives the completion at once and nil is returned after the code
    /// has returned; otherwise the completion is returned.
    func execute(_ attempt: ClaimedAttempt, stop: StopSignal, early: @escaping @Sendable (AttemptCompletion) -> Void) async -> AttemptCompletion? {
        guard let tracer = engine.tracer else { return await run(attempt, stop: stop, early: early) }
        // The run's span when it was created here, else the context stored with the run.
        let (parent, sampled) = engine.runSpans.context(of: attempt.runID) ?? StoredTraceContext.decode(attempt.traceContext, tracer: tracer)
        // A run that was not sampled gets no task spans: every sampler DeerFlow offers would leave
        // them unsampled too, and the trace context still reaches the task code.
        guard sampled else { return await ServiceContext.withValue(parent) { await run(attempt, stop: stop, early: early) } }
        let span = tracer.startSpan("task.execute", context: parent, ofKind: .internal, at: DateInstant(attempt.startedAt))
        if span.isRecording {
            // Time in the queue: an attribute to filter on and an event where the wait ended (one
            // span per attempt rather than two keeps tracing cheap at thousands of tasks per second).
            let waited = max(0, attempt.startedAt.timeIntervalSince(attempt.queuedAt)) * 1000
            Self.describe(span, attempt, queueWait: waited)
            span.addEvent(SpanEvent(name: "dequeued", at: DateInstant(attempt.startedAt), attributes: [DeerFlowTracing.Attribute.queueWait: .double(waited)]))
        }
        let reported = Mutex<AttemptCompletion?>(nil)
        let completion = await ServiceContext.withValue(span.context) {
            await run(attempt, stop: stop) { completion in
                reported.withLock { $0 = completion }
                early(completion)
            }
        }
        guard span.isRecording, let outcome = completion ?? reported.withLock({ $0 }) else {
            span.end()
            return completion
        }
        switch outcome.outcome {
        case .success:
            span.setStatus(SpanStatus(code: .ok))
        case .failure(let message), .timeout(let message), .interrupted(let message):
            span.recordError(TaskFailure(message: message))
            span.setStatus(SpanStatus(code: .error, message: message))
        case .cancelled(let message):
            span.attributes["deerflow.cancelled"] = message
        }
        span.end(at: DateInstant(outcome.finishedAt))
        return completion
    }

    /// Sets the attempt's attributes in one update (each `attributes[...] =` copies them all).
    static func describe(_ span: any Span, _ attempt: ClaimedAttempt, queueWait: Double) {
        span.updateAttributes { attributes in
            attributes[DeerFlowTracing.Attribute.workflow] = attempt.workflow
            attributes[DeerFlowTracing.Attribute.runID] = attempt.runID.rawValue
            attributes[DeerFlowTracing.Attribute.taskID] = attempt.taskID
            attributes[DeerFlowTracing.Attribute.taskType] = attempt.type
            attributes[DeerFlowTracing.Attribute.attempt] = attempt.number
            attributes[DeerFlowTracing.Attribute.queue] = attempt.queue
            attributes[DeerFlowTracing.Attribute.queueWait] = queueWait
        }
    }

    private func run(_ attempt: ClaimedAttempt, stop: StopSignal, early: @escaping @Sendable (AttemptCompletion) -> Void) async -> AttemptCompletion? {
        if let problem = attempt.unreadable {
            return AttemptCompletion(attemptID: attempt.id, outcome: .failure(message: problem), finishedAt: Date())
        }
        if let entry = engine.workflows[attempt.workflow], let index = entry.taskIndex[attempt.definitionID] {
            let task = entry.definition.tasks[index]
            if let map = task.map, attempt.mapIndex == nil {
                // A mapped task's first attempt: work out its instances; the store inserts them.
                return await expand(attempt, task: task, map: map, entry: entry)
            }
        }
        if let entry = engine.workflows[attempt.workflow], let index = entry.taskIndex[attempt.definitionID],
           case .noop = entry.definition.tasks[index].action {
            // Nothing to run, log, time out or stop: done at once, without the machinery below.
            return AttemptCompletion(attemptID: attempt.id, outcome: .success(output: .null), finishedAt: Date())
        }
        let secrets = SecretValues(
            params: attempt.params, definition: engine.workflows[attempt.workflow]?.definition, configured: engine.configuredSecrets)
        let log = TaskLog(limit: engine.configuration.taskLogLimit, secrets: secrets)
        let work: @Sendable () async throws -> JSONValue
        let subWorkflow = makeSubWorkflowRunner(attempt)
        switch makeWork(attempt, log: log, secrets: secrets, subWorkflow: subWorkflow) {
        case .success(let made): work = made
        case .failure(let error):
            return AttemptCompletion(attemptID: attempt.id, outcome: .failure(message: error.message), finishedAt: Date())
        }
        let timeout = attempt.timeout
        let outcome: AttemptOutcome? = await withTaskGroup(of: RaceResult?.self) { group in
            group.addTask {
                do {
                    return .finished(.success(output: try await work()))
                } catch {
                    return .finished(.failure(message: Self.describe(error)))
                }
            }
            if let timeout {
                group.addTask {
                    do {
                        try await Sleep.for(timeout)
                        return .timedOut
                    } catch {
                        return nil
                    }
                }
            }
            group.addTask {
                await stop.wait().map(RaceResult.stopped)
            }
            group.addTask {
                // While the attempt runs, its log reaches the store every half second, so the
                // API can stream it (`?follow=true`) and it survives the worker.
                while true {
                    do {
                        try await Sleep.for(.milliseconds(500))
                    } catch {
                        return nil
                    }
                    await flush(log, attempt: attempt.id)
                }
            }
            var outcome: AttemptOutcome?
            var decided = false
            var stopChild: String?
            while let next = await group.next() {
                guard let next, !decided else { continue }
                decided = true
                group.cancelAll()
                switch next {
                case .finished(let finished):
                    outcome = finished
                case .timedOut:
                    let message = "timed out after \(DurationText.format(timeout ?? .zero))"
                    log.append("[deerflow] \(message)\n")
                    early(AttemptCompletion(attemptID: attempt.id, outcome: .timeout(message: message), finishedAt: Date()))
                    stopChild = "task timed out"
                case .stopped(.cancelled):
                    log.append("[deerflow] run cancelled\n")
                    early(AttemptCompletion(attemptID: attempt.id, outcome: .cancelled(message: "run cancelled"), finishedAt: Date()))
                    stopChild = "run cancelled"
                case .stopped(.runTimedOut):
                    log.append("[deerflow] run timed out\n")
                    early(AttemptCompletion(attemptID: attempt.id, outcome: .cancelled(message: "run timed out"), finishedAt: Date()))
                    stopChild = "run timed out"
                case .stopped(.released):
                    let message = "released by worker shutting down; will run again"
                    log.append("[deerflow] \(message)\n")
                    early(AttemptCompletion(attemptID: attempt.id, outcome: .interrupted(message: message), finishedAt: Date()))
                }
            }
            if !decided {
                // Our own task was cancelled (hard shutdown): release the attempt for another worker.
                outcome = .interrupted(message: "worker stopped before the attempt finished")
            }
            if let stopChild, let subWorkflow { await subWorkflow.stopChild(stopChild) }
            return outcome
        }
        await finalFlush(log, attempt: attempt.id)
        guard let outcome else { return nil }
        return AttemptCompletion(attemptID: attempt.id, outcome: secrets.redact(outcome), finishedAt: Date())
    }

    /// Stores what the attempt wrote since the last flush; on failure the text goes back into the
    /// log for the next flush, so a store hiccup while the task runs loses nothing.
    @discardableResult
    private func flush(_ log: TaskLog, attempt: AttemptID, final: Bool = false) async -> Bool {
        guard var text = log.drain(final: final) else { return true }
        if let redact = engine.configuration.redactTaskLog { text = redact(text) }
        do {
            try await engine.store.appendLog(attempt: attempt, text: text, limit: engine.configuration.taskLogLimit)
            return true
        } catch {
            log.restore(text)
            engine.logger.warning("could not store task log; will try again", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            return false
        }
    }

    /// The last flush of an attempt: tries for a while (the store may be restarting) before giving up.
    private func finalFlush(_ log: TaskLog, attempt: AttemptID) async {
        for delay in [100, 500, 1000, 2000, 4000] {
            if await flush(log, attempt: attempt, final: true) { return }
            try? await Sleep.for(.milliseconds(delay))
        }
        if await flush(log, attempt: attempt, final: true) { return }
        engine.logger.error("task log lost: the store kept failing", metadata: ["attempt": "\(attempt)"])
    }

    /// The runner of a `workflow` task's attempt; nil for other tasks.
    private func makeSubWorkflowRunner(_ attempt: ClaimedAttempt) -> SubWorkflowRunner? {
        guard let entry = engine.workflows[attempt.workflow], let index = entry.taskIndex[attempt.taskID],
              case .workflow(let action) = entry.definition.tasks[index].action else { return nil }
        return SubWorkflowRunner(engine: engine, attempt: attempt, action: action)
    }

    private func makeWork(
        _ attempt: ClaimedAttempt, log: TaskLog, secrets: SecretValues, subWorkflow: SubWorkflowRunner?
    ) -> Result<@Sendable () async throws -> JSONValue, DeerFlowError> {
        guard let entry = engine.workflows[attempt.workflow] else {
            return .failure(DeerFlowError(.notFound, "workflow '\(attempt.workflow)' is not registered in worker process \(getpid()); give this worker the same workflows as the server"))
        }
        guard let index = entry.taskIndex[attempt.definitionID] else {
            return .failure(DeerFlowError(.notFound, "task '\(attempt.taskID)' is not part of workflow '\(attempt.workflow)' (version \(entry.versionID)) in this worker"))
        }
        let task = entry.definition.tasks[index]
        let context = makeContext(attempt, entry: entry, log: log, secrets: secrets)
        let forwarder = engine.configuration.taskOutputLogging.map { settings in
            // The trace ids of the task's span, read here where its context is current: the
            // output is read on a thread of its own, outside it.
            var logger = Self.taskLogger(attempt, entry: entry, handler: engine.logger.handler, level: engine.logger.logLevel)
            for (key, value) in engine.logger.handler.metadataProvider?.get() ?? [:] { logger[metadataKey: key] = value }
            return TaskOutputForwarder(logger: logger, secrets: secrets, settings: settings)
        }
        let writable = engine.configuration.taskWritableMetrics
        let registry = engine.metrics
        let applyMetrics: (@Sendable (String) -> [String])? = writable.isEmpty ? nil : { @Sendable text in
            // Redacted first: a label value must not publish a secret on /metrics.
            registry.apply(taskMetrics: secrets.redact(text), writable: writable, workflow: attempt.workflow, task: attempt.taskID)
        }
        let grace = engine.configuration.killGracePeriod
        switch task.action {
        case .noop:
            return .success { .null }
        case .sleep(let duration):
            return .success {
                try await Sleep.for(duration)
                return .null
            }
        case .shell(let shell):
            return .success {
                let shell = try await TaskTemplates.render(shell, for: attempt, engine: engine)
                var environment = ShellRunner.environment(for: attempt)
                // The task span's context, for programs that continue the trace (TRACEPARENT).
                var carrier: [String: String] = [:]
                DeerFlowTracing.inject(into: &carrier)
                for (key, value) in carrier { environment[key.uppercased()] = value }
                return try await ShellRunner.run(
                    shell, environment: environment, passthrough: engine.configuration.environmentPassthrough,
                    user: engine.configuration.taskUser, log: log, killGracePeriod: grace, outputLimit: engine.configuration.taskOutputLimit,
                    forwarder: forwarder, applyMetrics: applyMetrics)
            }
        case .http(let http):
            return .success {
                try await HTTPTaskRunner.run(TaskTemplates.render(http, for: attempt, engine: engine), log: log)
            }
        case .swift:
            guard let body = entry.workflow.body(of: task.id) else {
                return .failure(DeerFlowError(.notFound, "task '\(task.id)' has no Swift body in this worker"))
            }
            return .success { try await body(context) }
        case .workflow:
            guard let subWorkflow else {
                return .failure(DeerFlowError(.notFound, "task '\(task.id)' is not a workflow task in this worker"))
            }
            return .success { try await subWorkflow.run(log: log) }
        }
    }

    /// A logger labelled `deerflow.task` whose metadata carries the attempt's ids.
    static func taskLogger(_ attempt: ClaimedAttempt, entry: WorkflowRegistry.Entry, handler: any LogHandler, level: Logger.Level) -> Logger {
        var logger = Logger(label: "deerflow.task") { _ in handler }
        logger.logLevel = level
        logger[metadataKey: "workflow"] = "\(attempt.workflow)"
        logger[metadataKey: "workflow_id"] = "\(entry.versionID)"
        logger[metadataKey: "run_id"] = "\(attempt.runID)"
        logger[metadataKey: "task_id"] = "\(attempt.taskID)"
        logger[metadataKey: "execution_id"] = "\(attempt.runID):\(attempt.taskID):\(attempt.number)"
        logger[metadataKey: "attempt"] = "\(attempt.number)"
        return logger
    }

    func makeContext(_ attempt: ClaimedAttempt, entry: WorkflowRegistry.Entry, log: TaskLog, secrets: SecretValues) -> TaskContext {
        let executionID = "\(attempt.runID):\(attempt.taskID):\(attempt.number)"
        let base = engine.logger
        let logger = Self.taskLogger(attempt, entry: entry, handler: TaskLogHandler(primary: base.handler, log: log, secrets: secrets), level: base.logLevel)
        let store = engine.store
        let runID = attempt.runID
        return TaskContext(
            workflow: .init(name: attempt.workflow, id: entry.versionID),
            run: .init(id: attempt.runID, logicalTime: attempt.effectiveLogicalTime),
            task: .init(id: attempt.taskID, type: attempt.type, queue: attempt.queue),
            execution: .init(id: executionID, number: attempt.number),
            params: attempt.params,
            logger: logger,
            metrics: engine.metrics,
            started: .now,
            outputs: { task in try await store.taskOutput(run: runID, task: task) },
            map: attempt.mapIndex.map { TaskContext.MapInstance(index: $0, item: attempt.mapItem ?? .null) }
        )
    }

    static func describe(_ error: any Error) -> String {
        if error is CancellationError { return "cancelled" }
        let text = String(describing: error)
        return text.isEmpty ? "\(type(of: error))" : text
    }
}

/// A failed attempt's message as an error recorded on its span.
struct TaskFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
