import DeerFlowCore
public import Foundation
public import Logging

/// Deletes history older than a retention policy from a ``RetentionStore``: finished runs (with
/// their tasks, attempts and logs), task logs alone, settled notifications and departed workers.
/// It works in batches of ``batchSize`` runs, each its own short transaction, with a pause between
/// them so the engine's own transactions never wait long; unfinished runs are never touched.
/// Used by the retention service of a server (on the scheduler leader) and by `deerflow purge`.
public struct HistoryPurger: Sendable {
    /// What a purge did (or, for a dry run, would do).
    public struct Report: Sendable, Hashable {
        /// Runs finished before this were (or would be) deleted; nil: runs were kept.
        public var runsCutoff: Date?
        /// Task logs of runs finished before this were (or would be) deleted; nil: logs were kept.
        public var taskLogsCutoff: Date?
        public var purged = PurgedHistory()
        /// Settled notifications and departed workers deleted (not counted by a dry run).
        public var settledRecords = 0
        public var dryRun: Bool
        /// The database size before and after, in bytes.
        public var bytesBefore: Int64
        public var bytesAfter: Int64
    }

    let store: any RetentionStore
    let metrics: EngineMetrics?
    let logger: Logger
    /// Runs per transaction; default 500.
    public var batchSize = 500
    /// Pause between two batches; default 10 ms.
    public var pause: Duration = .milliseconds(10)

    public init(store: any RetentionStore, metrics: EngineMetrics?, logger: Logger) {
        self.store = store
        self.metrics = metrics
        self.logger = logger
    }

    /// Purges runs older than `keepRuns` and task logs older than `keepTaskLogs` (nil: keep).
    ///
    /// - Parameter logCursor: where an earlier complete pass of task logs stopped; updated so
    ///   the next pass skips runs whose logs are already gone.
    public func purge(
        keepRuns: Duration?, keepTaskLogs: Duration?, dryRun: Bool = false, now: Date = Date(),
        logCursor: inout RetentionCursor?
    ) async throws -> Report {
        let runsCutoff = keepRuns.map { now.adding(.zero - $0) }
        let taskLogsCutoff = keepTaskLogs.map { now.adding(.zero - $0) }
        // Logs of runs deleted anyway need no pass of their own.
        let logsCutoff: Date? = if let taskLogsCutoff, runsCutoff.map({ $0 < taskLogsCutoff }) ?? true { taskLogsCutoff } else { nil }
        var report = Report(
            runsCutoff: runsCutoff, taskLogsCutoff: taskLogsCutoff, dryRun: dryRun, bytesBefore: try await store.storageSize(), bytesAfter: 0)
        if dryRun {
            report.purged = try await store.purgeCandidates(runsFinishedBefore: runsCutoff, logsFinishedBefore: logsCutoff)
            report.bytesAfter = report.bytesBefore
            return report
        }
        if let runsCutoff {
            while !Task.isCancelled {
                let batch = try await store.purgeRuns(finishedBefore: runsCutoff, limit: batchSize)
                record(batch, into: &report)
                if batch.runs < batchSize { break }
                try await Sleep.for(pause)
            }
            report.settledRecords = try await store.purgeSettledRecords(before: runsCutoff)
        }
        if let logsCutoff {
            var cursor = logCursor
            while !Task.isCancelled {
                let (batch, next) = try await store.purgeTaskLogs(finishedBefore: logsCutoff, after: cursor, limit: batchSize)
                record(batch, into: &report)
                guard let next else { break }
                cursor = next
                try await Sleep.for(pause)
            }
            // Every run finished before the cutoff was seen: the next pass starts there.
            if !Task.isCancelled { logCursor = RetentionCursor(finishedAt: logsCutoff, run: RunID(rawValue: "")) }
        }
        if report.purged != PurgedHistory() { try await store.reclaimSpace(full: false) }
        report.bytesAfter = try await store.storageSize()
        if report.purged != PurgedHistory() || report.settledRecords > 0 {
            logger.notice("purged history", metadata: [
                "runs": "\(report.purged.runs)", "task_logs": "\(report.purged.taskLogs)", "settled_records": "\(report.settledRecords)",
                "runs_finished_before": "\(runsCutoff.map(Timestamp.rfc3339) ?? "kept")",
                "task_logs_finished_before": "\(report.taskLogsCutoff.map(Timestamp.rfc3339) ?? "kept")",
                "bytes_before": "\(report.bytesBefore)", "bytes_after": "\(report.bytesAfter)",
            ])
        }
        return report
    }

    /// Gives freed space back to the file system (SQLite: `VACUUM`); see
    /// ``RetentionStore/reclaimSpace(full:)``.
    public func vacuum() async throws -> (bytesBefore: Int64, bytesAfter: Int64) {
        let before = try await store.storageSize()
        try await store.reclaimSpace(full: true)
        return (before, try await store.storageSize())
    }

    private func record(_ batch: PurgedHistory, into report: inout Report) {
        report.purged = report.purged + batch
        metrics?.recordPurged(batch)
    }
}
