import DeerFlow
import DeerFlowCore
import Foundation
import Logging
import ServiceLifecycle

/// Deletes history older than `retention:` (deerflow.yaml) every few minutes, on the process that
/// leads the scheduler, so a cluster purges once; the work is ``HistoryPurger``'s small batches.
final class RetentionService: Service, Sendable {
    private let purger: HistoryPurger
    private let settings: RuntimeOptions.RetentionSettings
    private let leads: @Sendable () -> Bool
    private let logger: Logger

    init(purger: HistoryPurger, settings: RuntimeOptions.RetentionSettings, leads: @escaping @Sendable () -> Bool, logger: Logger) {
        self.purger = purger
        self.settings = settings
        self.leads = leads
        self.logger = logger
    }

    /// Whether anything is ever purged (both kept forever: the service need not run).
    var isNeeded: Bool { settings.policy.runs != nil || settings.policy.taskLogs != nil }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var logCursor: RetentionCursor?
            try? await Sleep.for(self.settings.firstPurgeAfter)
            while !Task.isCancelled {
                if self.leads() {
                    do {
                        _ = try await self.purger.purge(
                            keepRuns: self.settings.policy.runs, keepTaskLogs: self.settings.policy.taskLogs, logCursor: &logCursor)
                    } catch where !Task.isCancelled {
                        self.logger.error("could not purge old history; trying again later", metadata: ["error": "\(error)"])
                    } catch {}
                } else {
                    // Another process leads: when this one takes over, it starts its log pass afresh.
                    logCursor = nil
                }
                try? await Sleep.for(self.settings.interval)
            }
        }
    }
}
