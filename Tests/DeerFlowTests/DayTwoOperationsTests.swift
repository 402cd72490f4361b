import DeerFlow
import DeerFlowCore
import DeerFlowServer
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// Pausing schedules and backfilling, through a real server (HTTP API, scheduler, workers, store)
/// and the `deerflow` command line.
@Suite("Day-2 operations: pause and backfill")
struct DayTwoOperationsTests {
    static let workflows: [String: String] = [
        // Fires every minute: a due time is never far.
        "minutely.yaml": """
            name: minutely
            schedule: "* * * * *"
            tasks:
              - id: tick
                type: shell
                script: echo "tick $DEERFLOW_LOGICAL_TIME"
            """,
        // Starts paused (the file's initial state).
        "quiet.yaml": """
            name: quiet
            schedule: {cron: "0 3 * * *", paused: true}
            tasks:
              - id: noop
                type: noop
            """,
        "daily.yaml": """
            name: daily
            schedule: "0 2 * * *"
            params:
              region: {type: string, default: eu}
            tasks:
              - id: show
                type: shell
                script: sleep 0.3; echo "logical=$DEERFLOW_LOGICAL_TIME region=$DEERFLOW_PARAM_REGION"
            """,
        "slow.yaml": """
            name: slow
            schedule: "0 * * * *"
            tasks:
              - id: wait
                type: shell
                script: sleep 30
            """,
        "manual.yaml": """
            name: manual
            tasks:
              - id: noop
                type: noop
            """,
    ]

    static func paused(_ server: TestServer, _ name: String) async throws -> Bool? {
        guard case .object(let workflow)? = try await server.request("GET", "/api/v1/workflows/\(name)").json,
              case .bool(let paused)? = workflow["paused"] else { return nil }
        return paused
    }

    static func runs(_ server: TestServer, _ workflow: String) async throws -> [[String: JSONValue]] {
        guard case .object(let page)? = try await server.request("GET", "/api/v1/runs?workflow=\(workflow)&limit=1000").json,
              case .array(let runs)? = page["runs"] else { return [] }
        return runs.compactMap { if case .object(let run) = $0 { return run } else { return nil } }
    }

    /// Polls until `condition` holds or `timeout` passes.
    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    @Test("a pause is stored: it survives a restart, wins over the file, stops fires; unpause with catch-up fires the missed time")
    func pauseSurvivesRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let database = "sqlite://" + directory.file("shared.sqlite")
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.databaseURL = database }) { server in
            #expect(try await Self.paused(server, "minutely") == false)
            #expect(try await Self.paused(server, "quiet") == true, "paused: true in the file is the initial state")

            let pause = try await CLITests.deerflow(["pause", "minutely", "--api", server.apiURL])
            #expect(pause.status == 0, "\(pause)")
            #expect(pause.stdout.contains("workflow minutely: schedule paused"), "\(pause)")
            let unpauseQuiet = try await CLITests.deerflow(["unpause", "quiet", "--api", server.apiURL])
            #expect(unpauseQuiet.status == 0, "\(unpauseQuiet)")

            // No schedule / unknown workflow.
            let manual = try await server.request("POST", "/api/v1/workflows/manual/pause")
            #expect(manual.status == 409)
            #expect(manual.text.contains("has no schedule"), "\(manual.text)")
            #expect(try await server.request("POST", "/api/v1/workflows/nope/pause").status == 404)
            let listed = try await server.request("GET", "/api/v1/workflows").text
            #expect(listed.contains("\"paused\":true") || listed.contains("\"paused\" : true"), "\(listed)")
        }
        try await withTestServer(yamlWorkflows: Self.workflows, configure: { $0.databaseURL = database }) { server in
            #expect(try await Self.paused(server, "minutely") == true, "the pause survived the restart")
            #expect(try await Self.paused(server, "quiet") == false, "the API's unpause won over the file's paused: true")
            let metric = try await Self.eventually {
                try await server.metrics()[MetricSamples.key("deerflow_schedule_paused", ["workflow": "minutely"])] == 1
            }
            #expect(metric, "deerflow_schedule_paused{workflow=\"minutely\"} is 1")
            #expect(try await server.metrics()[MetricSamples.key("deerflow_schedule_paused", ["workflow": "quiet"])] == 0)
            #expect(try await server.metrics()[MetricSamples.key("deerflow_schedule_next_fire_timestamp_seconds", ["workflow": "minutely"])] == 0,
                    "a paused schedule has no next fire time, so ScheduleOverdue does not fire for it")

            // Make the paused schedule due: the scheduler must not fire it. (A fire of a minute
            // that passed before the first server paused it may exist: count from here.)
            let before = try await Self.runs(server, "minutely").count
            let now = Date()
            let missed = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 60).rounded(.down) * 60 - 120)
            let stored = try #require(try await server.engine.store.schedules().first { $0.workflow == "minutely" })
            var due = stored
            due.nextFireAt = missed
            _ = try await server.engine.store.setSchedulePaused(due, resetNextFire: true)
            try await Task.sleep(for: .seconds(2.5))
            #expect(try await Self.runs(server, "minutely").count == before, "a paused schedule fired")
            #expect(try await server.metrics()["deerflow_scheduler_lag_seconds"] ?? 0 < 60, "a paused schedule counts as scheduler lag")

            // Unpause with catch-up: the missed fire times fire (catchup latest: the most recent once).
            let unpause = try await CLITests.deerflow(["unpause", "minutely", "--catch-up", "--api", server.apiURL])
            #expect(unpause.status == 0, "\(unpause)")
            let fired = try await Self.eventually { try await Self.runs(server, "minutely").count > before }
            #expect(fired, "the missed fire did not run after unpause --catch-up")
            let run = try await Self.runs(server, "minutely").first
            #expect(run?["trigger"] == .string("schedule"))
            if case .string(let time)? = run?["scheduled_for"], let date = Timestamp.parse(time) {
                #expect(date >= missed && date <= Date(), "\(time)")
            } else {
                Issue.record("the caught-up run has no scheduled_for: \(String(describing: run))")
            }
            #expect(try await Self.paused(server, "minutely") == false)
        }
    }

    @Test("the UI's workflow page pauses and unpauses with CSRF forms and says so in text; a backfill run's page shows its logical time")
    func userInterface() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let csrf = String(repeating: "a1", count: 16)
            let cookie = ["Cookie": "deerflow_csrf=\(csrf)", "Content-Type": "application/x-www-form-urlencoded"]
            let page = try await server.request("GET", "/workflows/daily").text
            #expect(page.contains("action=\"/workflows/daily/pause\"") && page.contains("Pause schedule"), "\(page)")
            #expect(!page.contains("⏸ paused"))
            // Without the CSRF token nothing happens.
            let forged = try await server.request("POST", "/workflows/daily/pause", body: "csrf=", headers: cookie)
            #expect(forged.status == 400)
            #expect(try await Self.paused(server, "daily") == false)
            let rawCookie = cookie.map { ($0.key, $0.value) }
            let paused = try await RawHTTP.send(port: server.apiPort, method: "POST", target: "/workflows/daily/pause", headers: rawCookie, body: "csrf=\(csrf)")
            #expect(paused.status == 303, "\(paused.body)")
            #expect(try await Self.paused(server, "daily") == true)
            let pausedPage = try await server.request("GET", "/workflows/daily?notice=paused").text
            #expect(pausedPage.contains("⏸ paused") && pausedPage.contains("Unpause schedule") && pausedPage.contains("The schedule is paused"), "\(pausedPage)")
            let list = try await server.request("GET", "/workflows").text
            #expect(list.contains("⏸ paused"), "\(list)")
            let unpaused = try await server.request("POST", "/workflows/daily/unpause", body: "csrf=\(csrf)&catch_up=true", headers: cookie)
            #expect(unpaused.text.contains("the fire times missed while paused fire now"), "\(unpaused.text)")
            #expect(try await Self.paused(server, "daily") == false)
            #expect(try await server.request("POST", "/workflows/manual/pause", body: "csrf=\(csrf)", headers: cookie).status == 409)

            let created = try await server.request("POST", "/api/v1/workflows/daily/backfills", body: #"{"from": "2024-06-01", "to": "2024-06-01T02:00:00Z"}"#)
            #expect(created.status == 201, "\(created.text)")
            let run = try await Self.eventually { try await !Self.runs(server, "daily").isEmpty }
            #expect(run)
            guard case .string(let runID)? = try await Self.runs(server, "daily").first?["id"] else { return }
            let runPage = try await server.request("GET", "/runs/\(runID)").text
            #expect(runPage.contains("Logical time") && runPage.contains("2024-06-01T02:00:00.000Z"), "\(runPage)")
            #expect(runPage.contains("<dd>backfill · ") && runPage.contains("<span class=\"mono\">bf-"), "\(runPage)")

            // The backfill form, the backfills under way, and their cancel button.
            let slowPage = try await server.request("GET", "/workflows/slow").text
            #expect(slowPage.contains("action=\"/workflows/slow/backfills\"") && slowPage.contains("Create backfill"), "\(slowPage)")
            #expect(!(try await server.request("GET", "/workflows/manual").text.contains("Create backfill")), "a workflow without a schedule offers a backfill")
            let refused = try await server.request("POST", "/workflows/slow/backfills", body: "csrf=\(csrf)&from=2024-06-02&to=2024-06-01&max_active=1", headers: cookie)
            #expect(refused.status == 400 && refused.text.contains("the range is reversed"), "\(refused.text)")
            let viaForm = try await server.request(
                "POST", "/workflows/slow/backfills", body: "csrf=\(csrf)&from=2024-06-01T00%3A00%3A00Z&to=2024-06-01T01%3A00%3A00Z&max_active=1", headers: cookie)
            #expect(viaForm.text.contains("The backfill was created") && viaForm.text.contains("Backfills under way"), "\(viaForm.text)")
            let backfillID = try #require(try await server.engine.store.activeBackfills().first { $0.workflow == "slow" }?.id)
            #expect(viaForm.text.contains(backfillID) && viaForm.text.contains("action=\"/backfills/\(backfillID)/cancel\""), "\(viaForm.text)")
            let cancelled = try await server.request("POST", "/backfills/\(backfillID)/cancel", body: "csrf=\(csrf)", headers: cookie)
            #expect(cancelled.text.contains("The backfill was cancelled") && !cancelled.text.contains("Backfills under way"), "\(cancelled.text)")
            #expect(try await server.engine.store.backfill(backfillID)?.status == .cancelled)
        }
    }

    @Test("unpause without catch-up skips the fire times missed while paused")
    func unpauseSkipsMissed() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            #expect(try await server.request("POST", "/api/v1/workflows/minutely/pause").status == 200)
            let stored = try #require(try await server.engine.store.schedules().first { $0.workflow == "minutely" })
            var due = stored
            due.nextFireAt = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 60).rounded(.down) * 60 - 180)
            _ = try await server.engine.store.setSchedulePaused(due, resetNextFire: true)
            // The scheduler sees the pause and the missed due time (it reads them once a second; on a
            // loaded machine a pass can come late, so: its pause gauge, then two more passes).
            let sawPause = try await Self.eventually(timeout: .seconds(60)) {
                try await server.metrics()[MetricSamples.key("deerflow_schedule_paused", ["workflow": "minutely"])] == 1
            }
            #expect(sawPause)
            try await Task.sleep(for: .seconds(2.5))
            let unpausedAt = Date()
            let answer = try await server.request("POST", "/api/v1/workflows/minutely/unpause", body: "{}", headers: ["Content-Type": "application/json"])
            #expect(answer.status == 200, "\(answer.text)")
            let next = try #require(try await server.engine.store.schedules().first { $0.workflow == "minutely" }?.nextFireAt)
            // After the unpause, not after `Date()` here: a loaded machine that gets here after the
            // next minute began, before the scheduler's pass fired it, is not skipping a due time.
            #expect(next > unpausedAt, "the next fire time is after the unpause, not the missed one")
            let counted = try await Self.eventually(timeout: .seconds(60)) {
                try await server.metrics()[MetricSamples.key("deerflow_schedules_missed_total", ["workflow": "minutely", "reason": "paused"])] ?? 0 >= 3
            }
            #expect(counted, "the fire times skipped while paused count as missed with reason paused")
            try await Task.sleep(for: .seconds(1.5))
            // Only a fire of the current minute may have happened meanwhile, never the missed ones.
            for run in try await Self.runs(server, "minutely") {
                guard case .string(let time)? = run["scheduled_for"], let date = Timestamp.parse(time) else { continue }
                #expect(date > next.addingTimeInterval(-61), "a missed fire time ran: \(time)")
            }
        }
    }

    @Test("a backfill runs every fire time once with its logical time, at most max_active at once; a second one finds them present")
    func backfill() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let created = try await CLITests.deerflow([
                "backfill", "daily", "--from", "2024-06-01", "--to", "2024-06-05", "--max-active", "2", "--param", "region=us", "--api", server.apiURL,
            ])
            #expect(created.status == 0, "\(created)")
            #expect(created.stdout.contains("4 fire times"), "\(created)")
            let id = try #require(created.stdout.split(separator: " ").dropFirst().first.map(String.init), "\(created)")
            var most = 0
            var final: [String: JSONValue] = [:]
            let finished = try await Self.eventually(timeout: .seconds(60)) {
                guard case .object(let backfill)? = try await server.request("GET", "/api/v1/backfills/\(id)").json else { return false }
                if case .int(let pending)? = backfill["pending"], case .int(let running)? = backfill["running"] { most = max(most, pending + running) }
                final = backfill
                return backfill["status"] != .string("running")
            }
            #expect(finished, "\(final)")
            #expect(final["status"] == .string("succeeded"), "\(final)")
            #expect(final["runs_created"] == .int(4) && final["succeeded"] == .int(4) && final["already_present"] == .int(0), "\(final)")
            #expect(most <= 2, "more than max_active runs were active: \(most)")

            let runs = try await Self.runs(server, "daily")
            #expect(runs.count == 4)
            var logged: [String] = []
            for run in runs {
                #expect(run["trigger"] == .string("backfill"))
                #expect(run["backfill_id"] == .string(id))
                guard case .string(let runID)? = run["id"], case .string(let logical)? = run["logical_time"] else { continue }
                #expect(run["scheduled_for"] == .string(logical))
                let log = try await server.request("GET", "/api/v1/runs/\(runID)/tasks/show/log").text
                logged.append(log)
                let expected = Timestamp.rfc3339Seconds(try #require(Timestamp.parse(logical)))
                #expect(log.contains("logical=\(expected) region=us"), "\(log)")
            }
            let days = Set(logged.compactMap { log in log.range(of: "logical=2024-06-0[0-9]T02:00:00Z", options: .regularExpression).map { String(log[$0]) } })
            #expect(days.count == 4, "\(logged)")
            #expect(logged.contains { $0.contains("logical=2024-06-01T02:00:00Z") } && logged.contains { $0.contains("logical=2024-06-04T02:00:00Z") }, "\(logged)")

            // The same range again: every fire time has its run already.
            let again = try await server.request("POST", "/api/v1/workflows/daily/backfills", body: #"{"from": "2024-06-01", "to": "2024-06-05"}"#)
            #expect(again.status == 201, "\(again.text)")
            guard case .object(let second)? = again.json, case .string(let secondID)? = second["id"] else { throw ProcessFailure("no backfill: \(again.text)") }
            let done = try await Self.eventually {
                try await server.request("GET", "/api/v1/backfills/\(secondID)").json.flatMap { if case .object(let b) = $0 { return b["status"] } else { return nil } } == .string("succeeded")
            }
            #expect(done)
            let secondFinal = try await server.request("GET", "/api/v1/backfills/\(secondID)").json
            if case .object(let b)? = secondFinal {
                #expect(b["already_present"] == .int(4) && b["runs_created"] == .int(0), "\(b)")
            }
            #expect(try await Self.runs(server, "daily").count == 4, "a backfill duplicated a run")

            // A run triggered by hand has its creation time as logical time.
            let manual = try await server.request("POST", "/api/v1/workflows/manual/runs")
            guard case .object(let run)? = manual.json, case .string(let logical)? = run["logical_time"], case .string(let createdAt)? = run["created_at"] else {
                throw ProcessFailure("no run: \(manual.text)")
            }
            #expect(logical == createdAt)
        }
    }

    @Test("backfill validation answers 422 naming the limit, 409 without a schedule, 404 for unknown ids")
    func backfillValidation() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            func post(_ workflow: String, _ body: String) async throws -> TestServer.Answer {
                try await server.request("POST", "/api/v1/workflows/\(workflow)/backfills", body: body, headers: ["Content-Type": "application/json"])
            }
            let reversed = try await post("daily", #"{"from": "2024-06-05", "to": "2024-06-01"}"#)
            #expect(reversed.status == 422 && reversed.text.contains("reversed"), "\(reversed.text)")
            let future = try await post("daily", #"{"from": "2024-06-01", "to": "2999-01-01"}"#)
            #expect(future.status == 422 && future.text.contains("future"), "\(future.text)")
            let tooMany = try await post("minutely", #"{"from": "2024-01-01", "to": "2024-02-01"}"#)
            #expect(tooMany.status == 422 && tooMany.text.contains("10000"), "\(tooMany.text)")
            let maxActive = try await post("daily", #"{"from": "2024-06-01", "to": "2024-06-05", "max_active": 0}"#)
            #expect(maxActive.status == 422 && maxActive.text.contains("between 1 and 1000"), "\(maxActive.text)")
            let badDate = try await post("daily", #"{"from": "June 1st", "to": "2024-06-05"}"#)
            #expect(badDate.status == 422 && badDate.text.contains("June 1st"), "\(badDate.text)")
            let noSchedule = try await post("manual", #"{"from": "2024-06-01", "to": "2024-06-05"}"#)
            #expect(noSchedule.status == 409 && noSchedule.text.contains("has no schedule"), "\(noSchedule.text)")
            #expect(try await post("nope", #"{"from": "2024-06-01", "to": "2024-06-05"}"#).status == 404)
            #expect(try await server.request("GET", "/api/v1/backfills/bf-nope").status == 404)
            #expect(try await server.request("POST", "/api/v1/backfills/bf-nope/cancel").status == 404)
            #expect(try await Self.runs(server, "daily").isEmpty, "a refused backfill created runs")
        }
    }

    @Test("cancelling a backfill cancels its running run and creates no more")
    func cancelBackfill() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let created = try await server.request("POST", "/api/v1/workflows/slow/backfills", body: #"{"from": "2024-06-01T00:00:00Z", "to": "2024-06-01T02:00:00Z"}"#)
            #expect(created.status == 201, "\(created.text)")
            guard case .object(let backfill)? = created.json, case .string(let id)? = backfill["id"] else { throw ProcessFailure(created.text) }
            #expect(backfill["fire_times"] == .int(3))
            // The backfill's runs only: `slow` also runs on its hourly schedule, and a test that
            // spans the top of the hour sees that run too (it did in CI at 12:00).
            func backfillRuns() async throws -> [[String: JSONValue]] {
                try await Self.runs(server, "slow").filter { $0["backfill_id"] == .string(id) }
            }
            let started = try await Self.eventually {
                try await backfillRuns().contains { $0["status"] == .string("running") }
            }
            #expect(started)
            let cancel = try await CLITests.deerflow(["backfill-cancel", id, "--api", server.apiURL])
            #expect(cancel.status == 0, "\(cancel)")
            #expect(cancel.stdout.contains("cancelled"), "\(cancel)")
            let stopped = try await Self.eventually { try await backfillRuns().allSatisfy { $0["status"] == .string("cancelled") } }
            #expect(stopped)
            try await Task.sleep(for: .seconds(1.5))
            #expect(try await backfillRuns().count == 1, "a cancelled backfill created more runs")
            #expect(try await server.request("POST", "/api/v1/backfills/\(id)/cancel").status == 409)
        }
    }
}
