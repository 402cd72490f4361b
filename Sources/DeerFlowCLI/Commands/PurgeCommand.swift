import ArgumentParser
import DeerFlowAPI
import DeerFlowCore
import Foundation
import NIOCore
import OpenAPIRuntime

/// `deerflow purge --older-than 30d [--task-logs-older-than 7d] [--dry-run] [--vacuum]`.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete finished runs (and their task logs) older than a duration, now.",
        discussion: """
            The server does this on its own every 10 minutes with `retention:` of deerflow.yaml \
            (default: runs 90d, task logs 30d). Unfinished runs are never deleted.
            Example: deerflow purge --older-than 30d --dry-run
            """
    )

    @Option(help: "Delete finished runs that finished longer ago than this (e.g. 30d), with their tasks, attempts and logs.")
    var olderThan: String?
    @Option(help: "Delete the task logs of runs finished longer ago than this (e.g. 7d); the runs stay.")
    var taskLogsOlderThan: String?
    @Flag(help: "Count what would be deleted; delete nothing.") var dryRun = false
    @Flag(help: "Afterwards rewrite the SQLite file to give the freed space back (blocks writes while it runs).") var vacuum = false
    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if olderThan == nil && taskLogsOlderThan == nil {
            throw ValidationError("give --older-than (finished runs) and/or --task-logs-older-than (task logs), e.g. --older-than 30d")
        }
    }

    func run() async throws {
        let request = Components.Schemas.PurgeRequest(
            olderThan: olderThan, taskLogsOlderThan: taskLogsOlderThan, dryRun: dryRun, vacuum: vacuum)
        // A purge of a long history takes a while (batches of 500 runs): wait up to an hour.
        let api = client.client
        let report = try await api.call(timeout: .hours(1)) { try await $0.purgeHistory(body: .json(request)).ok.body.json }
        if json {
            print(api.lastText)
            return
        }
        let verb = report.dryRun ? "would delete" : "deleted"
        if let cutoff = report.runsFinishedBefore.value {
            print("\(verb) \(report.runs) runs finished before \(Timestamp.rfc3339(cutoff)), with their tasks, attempts and \(report.taskLogs) task logs")
        } else if let cutoff = report.taskLogsFinishedBefore.value {
            print("\(verb) \(report.taskLogs) task logs of runs finished before \(Timestamp.rfc3339(cutoff))")
        }
        if let cutoff = report.taskLogsFinishedBefore.value, report.runsFinishedBefore.value != nil {
            print("task logs of runs finished before \(Timestamp.rfc3339(cutoff)) included")
        }
        if report.dryRun {
            print("database: \(Self.bytes(report.databaseBytesBefore))")
        } else {
            print("database: \(Self.bytes(report.databaseBytesBefore)) before, \(Self.bytes(report.databaseBytesAfter)) after")
        }
    }

    /// `734.0 MB`.
    static func bytes(_ count: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}
