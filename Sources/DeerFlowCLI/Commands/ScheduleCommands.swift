import ArgumentParser
import DeerFlowAPI
import DeerFlowCore
import Foundation

/// `deerflow pause WORKFLOW`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Pause a workflow's schedule (stored: every server and restart respects it).",
        discussion: "Runs triggered with 'deerflow run' still run. Undo with 'deerflow unpause'.")

    @Argument(help: "Name of the workflow.") var workflow: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let name = workflow
        let shown = try await client.client.call { try await $0.pauseWorkflow(path: .init(name: name)).ok.body.json }
        print("workflow \(shown.name): schedule \(shown.paused ? "paused" : "not paused")")
    }
}

/// `deerflow unpause WORKFLOW [--catch-up]`.
struct UnpauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpause",
        abstract: "Unpause a workflow's schedule.",
        discussion: """
            Fire times that passed while paused are skipped, unless --catch-up: then they fire as \
            after downtime, following the schedule's catchup policy (latest: the most recent once; \
            all: every one).
            """)

    @Argument(help: "Name of the workflow.") var workflow: String
    @Flag(help: "Fire the times missed while paused (the schedule's catchup policy applies).") var catchUp = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let name = workflow
        let body = Operations.UnpauseWorkflow.Input.Body.json(.init(catchUp: catchUp))
        let shown = try await client.client.call { try await $0.unpauseWorkflow(path: .init(name: name), body: body).ok.body.json }
        let next = shown.schedule.value?.nextFireAt.value.map { ", next fire \(Timestamp.rfc3339($0))" } ?? ""
        print("workflow \(shown.name): schedule \(shown.paused ? "paused" : "running")\(next)")
    }
}

/// `deerflow backfill WORKFLOW --from DAY --to DAY [--max-active N] [--param k=v] [--wait]`.
struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Create one run per schedule fire time in a past range.",
        discussion: """
            Both bounds are inclusive; a date means 00:00 UTC that day, so --to 2024-06-30 ends at the \
            start of June 30 (give 2024-07-01 or 2024-06-30T23:59:59Z to include its later fires). \
            Each run's logical time (DEERFLOW_LOGICAL_TIME) is the fire time it stands for; a fire \
            time that already has a run gets no second one. At most 10000 fire times per backfill.
            Example: deerflow backfill etl --from 2024-06-01 --to 2024-07-01 --max-active 4 --wait
            """)

    @Argument(help: "Name of the workflow.") var workflow: String
    @Option(help: ArgumentHelp("First bound, inclusive: a date (00:00 UTC) or an RFC 3339 time.", valueName: "date")) var from: String
    @Option(help: ArgumentHelp("Last bound, inclusive: a date (00:00 UTC) or an RFC 3339 time; not after now.", valueName: "date")) var to: String
    @Option(help: "Most runs of the backfill pending or running at once, 1-1000; default 1.") var maxActive: Int?
    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter of every run as name=value; repeat for several.", valueName: "name=value"))
    var params: [String] = []
    @Flag(help: "Wait until the backfill finishes, printing its progress; exit 1 unless it succeeded.") var wait = false
    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let name = workflow
        let parameters = try await typedParams(params, of: name, api: api) { ValidationError($0) }
        let request = Components.Schemas.BackfillRequest(from: from, to: to, maxActive: maxActive, params: parameters.isEmpty ? nil : parameters)
        let created = try await api.call { try await $0.createBackfill(path: .init(name: name), body: .json(request)).created.body.json }
        if json && !wait {
            print(api.lastText)
            return
        }
        print("backfill \(created.id) of \(created.workflow): \(created.fireTimes) fire times from \(Timestamp.rfc3339(created.from)) to \(Timestamp.rfc3339(created.to)), at most \(created.maxActive) active")
        guard wait else { return }
        var last = ""
        var backfill = created
        while backfill.status == .running {
            let line = BackfillStatusCommand.progress(backfill)
            if line != last { print(line) }
            last = line
            try await Sleep.for(.seconds(1))
            let id = backfill.id
            backfill = try await api.call { try await $0.getBackfill(path: .init(id: id)).ok.body.json }
        }
        print(json ? api.lastText : BackfillStatusCommand.progress(backfill))
        guard backfill.status == .succeeded else { throw ExitCode(1) }
    }
}

/// `deerflow backfill-status ID`.
struct BackfillStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backfill-status", abstract: "Show a backfill's progress.")

    @Argument(help: "Backfill id (bf-…).") var id: String
    @Flag(help: "Print the API's JSON.") var json = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let api = client.client
        let id = self.id
        let backfill = try await api.call { try await $0.getBackfill(path: .init(id: id)).ok.body.json }
        print(json ? api.lastText : Self.progress(backfill))
    }

    /// One line: status and counts.
    static func progress(_ backfill: Components.Schemas.Backfill) -> String {
        "backfill \(backfill.id) \(backfill.status.rawValue): \(backfill.runsCreated + backfill.alreadyPresent)/\(backfill.fireTimes) fire times handled "
            + "(\(backfill.runsCreated) runs created, \(backfill.alreadyPresent) already present); "
            + "\(backfill.pending) pending, \(backfill.running) running, \(backfill.succeeded) succeeded, \(backfill.failed) failed"
    }
}

/// `deerflow backfill-cancel ID`.
struct BackfillCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill-cancel", abstract: "Cancel a backfill: no new runs, its pending and running runs are cancelled.")

    @Argument(help: "Backfill id (bf-…).") var id: String
    @OptionGroup var client: ClientOptions

    func run() async throws {
        let id = self.id
        let backfill = try await client.client.call { try await $0.cancelBackfill(path: .init(id: id)).ok.body.json }
        print(BackfillStatusCommand.progress(backfill))
    }
}
