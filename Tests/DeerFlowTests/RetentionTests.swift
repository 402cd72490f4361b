import DeerFlow
import DeerFlowCore
import DeerFlowServer
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Retention as users meet it: `retention:` in deerflow.yaml, the server purging on its own, and
/// `deerflow purge` / `POST /api/v1/maintenance/purge`.
@Suite("Retention")
struct RetentionTests {
    /// History put straight into the store, on a queue no worker of the test server serves:
    /// three runs finished 100 days ago, one 40 days ago, one created 100 days ago and still running.
    struct History {
        var old: [RunID] = []
        var recent: RunID
        var unfinished: RunID
    }

    static func seed(_ store: any ServerStore) async throws -> History {
        let now = Date()
        let old = now.addingTimeInterval(-100 * 86_400)
        let middle = now.addingTimeInterval(-40 * 86_400)
        func run(_ queue: String) -> NewRun {
            WorkflowStoreConformance.newRun("nightly", tasks: [("extract", []), ("load", ["extract"])], queue: queue, at: old)
        }
        let oldRuns = (0..<3).map { _ in run("archive-old") }
        let recent = run("archive-recent")
        let unfinished = run("archive-old")
        for created in oldRuns + [recent, unfinished] { _ = try await store.createRun(created) }
        // Each queue's tasks run at its time; the unfinished run's second task keeps running.
        for (queue, at) in [("archive-old", old), ("archive-recent", middle)] {
            for round in 0..<2 {
                let claimed = try await store.exchange(ExchangeRequest(
                    completions: [], claim: ClaimRequest(worker: "archive-worker", queues: [queue], limit: 100, leaseDuration: .seconds(3_600)),
                    now: at)).claimed
                for attempt in claimed { try await store.appendLog(attempt: attempt.id, text: "\(attempt.taskID) printed\n", limit: 10_000) }
                let completions = claimed.filter { $0.runID != unfinished.id || round == 0 }.map {
                    AttemptCompletion(attemptID: $0.id, outcome: .success(output: .null), finishedAt: at, jitter: 0)
                }
                _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: at))
            }
        }
        #expect(try await store.purgeCandidates(runsFinishedBefore: now, logsFinishedBefore: nil).runs == 4)
        return History(old: oldRuns.map(\.id), recent: recent.id, unfinished: unfinished.id)
    }

    @Test("the server purges runs older than 90 days and logs older than 30 days on its own, counts them, and keeps unfinished runs")
    func serverPurgesByDefault() async throws {
        // The history is in the database before the server opens it, as after an upgrade.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("history.sqlite")
        let seeding = SQLiteWorkflowStore(path: path)
        try await seeding.prepare()
        let history = try await Self.seed(seeding)
        try await seeding.close()
        try await withTestServer(configure: { options in
            // The defaults (runs 90d, task logs 30d), purged soon and often.
            options.databaseURL = "sqlite://" + path
            options.retention.firstPurgeAfter = .milliseconds(50)
            options.retention.interval = .milliseconds(100)
        }) { server in
            let store = server.runtime.store
            let deadline = ContinuousClock.now + .seconds(60)
            while try await store.purgeCandidates(runsFinishedBefore: Date().addingTimeInterval(-90 * 86_400), logsFinishedBefore: Date().addingTimeInterval(-30 * 86_400)) != PurgedHistory() {
                guard ContinuousClock.now < deadline else { throw TestFailure("nothing was purged within 60 s") }
                try await Task.sleep(for: .milliseconds(50))
            }
            for id in history.old { #expect(try await store.run(id) == nil) }
            // Finished 40 days ago: the run stays, what its tasks printed goes.
            #expect(try await store.run(history.recent)?.run.status == .success)
            #expect(try await store.taskLogs(run: history.recent, task: "extract", attempt: nil)?.contains { $0.text.contains("printed") } == false)
            // Never finished: untouched, logs too.
            let unfinished = try #require(try await store.run(history.unfinished))
            #expect(unfinished.run.status == .running)
            #expect(try await store.taskLogs(run: history.unfinished, task: "extract", attempt: nil)?.first?.text == "extract printed\n")
            let samples = try await server.metrics()
            #expect(samples["deerflow_runs_purged_total"] == 3)
            // Two tasks of three old runs, and the recent run's two.
            #expect(samples["deerflow_task_logs_purged_total"] == 8)
        }
    }

    @Test("deerflow purge: a dry run counts and deletes nothing, then the purge deletes and reports sizes; bad input is refused with what to do")
    func purgeCommand() async throws {
        try await withTestServer(configure: { options in
            options.retention.policy = RetentionPolicy(runs: nil, taskLogs: nil)
            // The seeded attempts' leases ran out long ago (they are claimed "100 days ago"): a
            // scheduler would reclaim them between the seed's claim and its completion.
            options.runScheduler = false
        }) { server in
            let history = try await Self.seed(server.runtime.store)
            let url = ["--api", server.apiURL]

            let dryRun = try await CLITests.deerflow(["purge", "--older-than", "60d", "--dry-run"] + url)
            #expect(dryRun.status == 0, "\(dryRun)")
            #expect(dryRun.stdoutLines.first?.hasPrefix("would delete 3 runs finished before ") == true, "\(dryRun)")
            #expect(dryRun.stdout.contains("with their tasks, attempts and 6 task logs"), "\(dryRun)")
            for id in history.old { #expect(try await server.runtime.store.run(id) != nil) }

            let purge = try await CLITests.deerflow(["purge", "--older-than", "60d", "--task-logs-older-than", "30d"] + url)
            #expect(purge.status == 0, "\(purge)")
            #expect(purge.stdoutLines.first?.hasPrefix("deleted 3 runs finished before ") == true, "\(purge)")
            #expect(purge.stdout.contains("and 8 task logs"), "\(purge)")
            #expect(purge.stdout.contains(" before, "), "\(purge)")
            for id in history.old { #expect(try await server.runtime.store.run(id) == nil) }
            #expect(try await server.runtime.store.run(history.recent) != nil)
            #expect(try await server.runtime.store.run(history.unfinished)?.run.status == .running)

            let json = try await CLITests.deerflow(["purge", "--older-than", "1m", "--json"] + url)
            #expect(json.status == 0, "\(json)")
            guard case .object(let report) = try JSONValue(parsing: json.stdout) else { throw TestFailure("not a JSON object: \(json)") }
            // The recent run (finished 40 days ago) goes now; the unfinished one never does.
            #expect(report["runs"]?.intValue == 1)
            #expect(report["dry_run"]?.boolValue == false)
            #expect(try await server.runtime.store.run(history.unfinished) != nil)

            let nothing = try await CLITests.deerflow(["purge"] + url)
            #expect(nothing.status != 0)
            #expect(nothing.stderr.contains("give --older-than (finished runs) and/or --task-logs-older-than"), "\(nothing)")
            let tooShort = try await CLITests.deerflow(["purge", "--older-than", "10s"] + url)
            #expect(tooShort.status != 0)
            #expect(tooShort.stderr.contains("older_than: must be between 1m and 3650d, got 10s"), "\(tooShort)")

            // The API: 422 naming the field, 400 for a body of other fields, and nothing deleted.
            let notDuration = try await server.request("POST", "/api/v1/maintenance/purge", body: #"{"older_than": "a month"}"#)
            #expect(notDuration.status == 422)
            #expect(notDuration.text.contains("older_than: 'a month' is not a duration"), "\(notDuration.text)")
            let empty = try await server.request("POST", "/api/v1/maintenance/purge", body: "{}")
            #expect(empty.status == 422)
            #expect(empty.text.contains("nothing to purge"), "\(empty.text)")
            let unknown = try await server.request("POST", "/api/v1/maintenance/purge", body: #"{"older": "30d"}"#)
            #expect(unknown.status == 400, "\(unknown.text)")
            #expect(try await server.runtime.store.run(history.unfinished) != nil)
        }
    }

    @Test("retention in deerflow.yaml: durations, forever, and a located error below a minute")
    func configuration() throws {
        let config = try ServerConfigFile.parse(yaml: "retention:\n  runs: forever\n  task_logs: 7d\n", file: "deerflow.yaml", environment: [:])
        #expect(config.retainRuns == .some(nil))
        #expect(config.retainTaskLogs == .some(.seconds(7 * 86_400)))
        var options = RuntimeOptions()
        #expect(options.retention.policy == RetentionPolicy(runs: .seconds(90 * 86_400), taskLogs: .seconds(30 * 86_400)))
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("deerflow.yaml", "retention:\n  runs: 30d\n")
        options.configDirectory = directory.path
        try options.applyConfigFiles(environment: [:])
        #expect(options.retention.policy == RetentionPolicy(runs: .seconds(30 * 86_400), taskLogs: .seconds(30 * 86_400)))
        do {
            _ = try ServerConfigFile.parse(yaml: "retention:\n  runs: 10s\n", file: "deerflow.yaml", environment: [:])
            Issue.record("10s accepted")
        } catch {
            #expect(error.description == "deerflow.yaml:2:9: retention.runs: must be between 1m and 3650d, got 10s")
        }
    }
}
