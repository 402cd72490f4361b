import DeerFlowCore
import Foundation
import Synchronization
import Tracing

/// The `workflow.run` spans this process started. A run's span starts when the run is created
/// here and ends when it finishes — at once when this process finishes it, otherwise when a sweep
/// finds it finished in the store (another process completed its last task), with the recorded
/// finish time. A process that dies before its runs finish loses their run spans; their task
/// spans still carry the trace.
final class RunSpans: EngineObserver, Sendable {
    private let open = Mutex<[RunID: any Span]>([:])
    /// Bound on open run spans; beyond it the oldest is ended (marked) to keep memory bounded.
    static let limit = 100_000

    var count: Int { open.withLock { $0.count } }

    func add(_ span: any Span, for run: RunID) {
        let evicted = open.withLock { open -> (any Span)? in
            open[run] = span
            guard open.count > Self.limit, let oldest = open.keys.min() else { return nil }
            return open.removeValue(forKey: oldest)
        }
        if let evicted {
            evicted.attributes["deerflow.run.span_evicted"] = true
            evicted.end()
        }
    }

    func remove(_ run: RunID) -> (any Span)? {
        open.withLock { $0.removeValue(forKey: run) }
    }

    /// The trace context of a run created here and still open: what its tasks' spans continue,
    /// without parsing the context stored with the run.
    func context(of run: RunID) -> (context: ServiceContext, sampled: Bool)? {
        open.withLock { open in open[run].map { ($0.context, $0.isRecording) } }
    }

    var openRuns: [RunID] { open.withLock { Array($0.keys) } }

    func engine(didEmit events: [EngineEvent]) {
        for event in events {
            guard case .runFinished(let runID, _, let status, _, _, let finishedAt) = event, let span = remove(runID) else { continue }
            Self.finish(span, status: status, at: finishedAt)
        }
    }

    static func finish(_ span: any Span, status: RunStatus, at finishedAt: Date) {
        guard span.isRecording else { // not sampled: nothing to describe or export
            span.end(at: DateInstant(finishedAt))
            return
        }
        span.updateAttributes { $0[DeerFlowTracing.Attribute.status] = status.rawValue }
        if status == .failed {
            span.setStatus(SpanStatus(code: .error, message: "run failed"))
        } else if status == .success {
            span.setStatus(SpanStatus(code: .ok))
        }
        span.end(at: DateInstant(finishedAt))
    }

    /// Ends the spans of runs that finished in another process (one store query per sweep).
    func sweep(store: any WorkflowStore) async {
        let candidates = openRuns
        guard !candidates.isEmpty, let finished = try? await store.finishedRuns(among: candidates) else { return }
        for run in finished {
            guard let span = remove(run.id) else { continue }
            Self.finish(span, status: run.status, at: run.finishedAt ?? Date())
        }
    }
}
