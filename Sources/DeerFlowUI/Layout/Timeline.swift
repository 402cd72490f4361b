import DeerFlow
import DeerFlowCore
import Foundation

/// Where each task of a run spent its time, from the attempts' `queued_at`, `started_at` and
/// `finished_at`: waiting for its dependencies (from the run's creation to its first attempt
/// becoming ready), queued for a worker, running, and in retry back-off (between an attempt's end
/// and the next attempt becoming claimable). The critical path is the chain of tasks that set the
/// run's length: from the task that finished last, back through the dependency that finished
/// last before it.
struct Timeline: Sendable {
    enum Kind: String, Sendable {
        case waiting, queued, running, backoff
    }

    struct Segment: Sendable {
        var kind: Kind
        var start: Date
        var end: Date
        var attempt: Int
        /// The attempt's status, for running segments.
        var status: AttemptStatus?
    }

    struct Row: Sendable {
        var task: TaskRecord
        var segments: [Segment]
        var critical: Bool
    }

    var start: Date
    var end: Date
    var rows: [Row]

    /// - Parameters:
    ///   - dependencies: task id → the ids of the tasks it depends on.
    ///   - now: the end of what is still going on.
    static func make(_ detail: RunDetail, dependencies: [String: [String]], now: Date) -> Timeline {
        let run = detail.run
        let start = run.createdAt
        let open = run.finishedAt ?? now
        var rows: [Row] = []
        rows.reserveCapacity(detail.tasks.count)
        var latestEnd = start
        for task in detail.tasks {
            var segments: [Segment] = []
            let attempts = task.attempts
            if let first = attempts.first {
                if first.queuedAt > start { segments.append(Segment(kind: .waiting, start: start, end: first.queuedAt, attempt: 0)) }
            } else if !task.status.isFinished || run.finishedAt != nil {
                // Never became ready: waiting until now, or until the run ended.
                segments.append(Segment(kind: .waiting, start: start, end: task.status.isFinished ? open : now, attempt: 0))
            }
            for (offset, attempt) in attempts.enumerated() {
                if offset > 0, let previousEnd = attempts[offset - 1].finishedAt, attempt.queuedAt > previousEnd {
                    segments.append(Segment(kind: .backoff, start: previousEnd, end: attempt.queuedAt, attempt: attempt.number))
                }
                let queuedEnd = attempt.startedAt ?? attempt.finishedAt ?? (attempt.status.isFinished ? attempt.queuedAt : open)
                if queuedEnd > attempt.queuedAt {
                    segments.append(Segment(kind: .queued, start: attempt.queuedAt, end: queuedEnd, attempt: attempt.number))
                }
                if let started = attempt.startedAt {
                    let finished = attempt.finishedAt ?? (attempt.status.isFinished ? started : open)
                    segments.append(Segment(kind: .running, start: started, end: max(started, finished), attempt: attempt.number, status: attempt.status))
                }
            }
            if let last = segments.last?.end, last > latestEnd { latestEnd = last }
            rows.append(Row(task: task, segments: segments, critical: false))
        }
        let end = max(latestEnd, run.finishedAt ?? start, start.addingTimeInterval(0.001))
        for index in criticalPath(detail, dependencies: dependencies) { rows[index].critical = true }
        return Timeline(start: start, end: end, rows: rows)
    }

    /// The indices (into `detail.tasks`) of the tasks on the critical path.
    static func criticalPath(_ detail: RunDetail, dependencies: [String: [String]]) -> [Int] {
        let index = Dictionary(detail.tasks.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { first, _ in first })
        func finished(_ task: TaskRecord) -> Date? { task.attempts.last?.finishedAt }
        guard var current = detail.tasks.indices.filter({ finished(detail.tasks[$0]) != nil })
            .max(by: { (finished(detail.tasks[$0]) ?? .distantPast) < (finished(detail.tasks[$1]) ?? .distantPast) })
        else { return [] }
        var path = [current]
        var visited: Set<Int> = [current]
        while true {
            let candidates = (dependencies[detail.tasks[current].id] ?? []).compactMap { index[$0] }.filter { finished(detail.tasks[$0]) != nil }
            guard let next = candidates.max(by: { (finished(detail.tasks[$0]) ?? .distantPast) < (finished(detail.tasks[$1]) ?? .distantPast) }),
                  visited.insert(next).inserted
            else { break }
            path.append(next)
            current = next
        }
        return path
    }

    /// Axis ticks: a round step (1, 2, 5 × 10ⁿ seconds, or minutes and hours) giving about six.
    static func ticks(span: Double) -> [Double] {
        let steps: [Double] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400]
        let step = steps.first { span / $0 <= 7 } ?? 86400 * (span / 86400 / 6).rounded(.up)
        return stride(from: 0, through: span, by: step).map { $0 }
    }
}
