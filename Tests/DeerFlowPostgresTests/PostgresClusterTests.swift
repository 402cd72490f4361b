import DeerFlow
import DeerFlowCore
@testable import DeerFlowPostgres
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real `deerflow` processes sharing one PostgreSQL database: servers without workers, worker
/// processes, faults. Serialized: each test runs several processes and the machine has 2 cores.
@Suite("PostgreSQL cluster: processes and faults", .serialized)
struct PostgresClusterTests {
    /// A DAG of 40 shell tasks: start → 19 in parallel → join → 18 in parallel → end. Every task
    /// appends `run/task` to `marks`.
    static func dag(marks: String) -> String {
        let script = "script: 'echo \"$DEERFLOW_RUN_ID/$DEERFLOW_TASK_ID\" >> \"\(marks)\"'"
        var yaml = "name: dag\ntasks:\n  - id: start\n    type: shell\n    \(script)\n"
        let first = (0..<19).map { "a\($0)" }
        let second = (0..<18).map { "b\($0)" }
        for id in first { yaml += "  - id: \(id)\n    type: shell\n    depends_on: [start]\n    \(script)\n" }
        yaml += "  - id: join\n    type: shell\n    depends_on: [\(first.joined(separator: ", "))]\n    \(script)\n"
        for id in second { yaml += "  - id: \(id)\n    type: shell\n    depends_on: [join]\n    \(script)\n" }
        yaml += "  - id: end\n    type: shell\n    depends_on: [\(second.joined(separator: ", "))]\n    \(script)\n"
        return yaml
    }

    /// Each task of each run has exactly one successful attempt.
    static func expectEachTaskSucceededOnce(_ runs: [String: [String: JSONValue]], sourceLocation: SourceLocation = #_sourceLocation) {
        for (id, run) in runs {
            #expect(run["status"]?.stringValue == "success", "run \(id): \(run["status"]?.stringValue ?? "?")", sourceLocation: sourceLocation)
            for (task, attempts) in ClusterAPI.attempts(of: run) {
                let successes = attempts.filter { $0.status == "success" }.count
                #expect(successes == 1, "run \(id) task \(task): \(attempts.map(\.status))", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("a default server on PostgreSQL starts without warnings: services that reach the store first wait for its pool to run")
    func startsWithoutWarnings() async throws {
        try await withTestDatabase("quietstart") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/one.yaml", "name: one\ntasks:\n  - id: a\n    type: noop\n")
            // postgres-nio warned at two of three starts before (the services start concurrently).
            for start in 1...3 {
                let server = try ServerProcess.server(database: database.url, workflows: directory.file("workflows"), workers: true)
                defer { server.stop() }
                let api = try await server.apiPort()
                let id = try await ClusterAPI.trigger(api: api, workflow: "one")
                #expect(try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(30))[id]?["status"]?.stringValue == "success")
                let warnings = server.log.split(separator: "\n").filter { $0.contains(#""level":"warning""#) || $0.contains(#""level":"error""#) }
                #expect(warnings.isEmpty, "start \(start): \(warnings)")
            }
        }
    }

    @Test("a server on PostgreSQL does not grow with the runs it serves")
    func memoryFlatInRuns() async throws {
        try await withTestDatabase("memory") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/one.yaml", "name: one\ntasks:\n  - id: a\n    type: noop\n")
            let server = try ServerProcess.server(database: database.url, workflows: directory.file("workflows"), workers: true)
            defer { server.stop() }
            let api = try await server.apiPort()
            func triggerAll(_ count: Int) async throws {
                var ids: [String] = []
                for _ in 0..<count { ids.append(try await ClusterAPI.trigger(api: api, workflow: "one")) }
                _ = try await ClusterAPI.waitForRuns(api: api, ids: Array(ids.suffix(50)), timeout: .seconds(60))
            }
            try await triggerAll(500)  // caches, pools and buffers at their working size
            let before = try Self.anonymousMemory(of: server.pid)
            try await triggerAll(2_500)
            let grown = try Self.anonymousMemory(of: server.pid) - before
            // Before, each connection lease left cancelled timers' memory behind (`Sleep`,
            // `persistentConnections`): 7.0 MB over these runs. Now 0.1–0.3 MB per 10,000 runs.
            #expect(grown < 2 << 20, "the server's anonymous memory grew by \(grown >> 10) KiB over 2,500 runs")
        }
    }

    /// Resident anonymous memory of a process (`RssAnon`), in bytes.
    static func anonymousMemory(of pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")) * 1024
    }

    @Test("a worker process with fewer slots than the fan-out claims queued work as slots free, not at the next poll")
    func fanOutDoesNotWaitForPolls() async throws {
        try await withTestDatabase("fanout") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/fan.yaml", FanOutScenario.workflow(width: 12))
            try directory.write("config/deerflow.yaml", FanOutScenario.config)
            let workflows = directory.file("workflows")
            let config = directory.file("config")
            // The API in one process, the only worker (2 slots, 1 h poll) in another.
            let server = try ServerProcess.server(database: database.url, workflows: workflows, config: config)
            let worker = try ServerProcess.worker(database: database.url, workflows: workflows, config: config, slots: 2)
            defer { for process in [server, worker] { process.stop() } }
            let api = try await server.apiPort()
            _ = try await worker.metricsPort()
            try await FanOutScenario.check(api: api)
        }
    }

    @Test("data between tasks on PostgreSQL, API and worker in separate processes: outputs, templates, secrets and their errors")
    func dataBetweenTasks() async throws {
        try await withTestDatabase("datapass") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/data.yaml", DataPassingScenario.workflow)
            try directory.write("config/deerflow.yaml", DataPassingScenario.config)
            let workflows = directory.file("workflows")
            let config = directory.file("config")
            // The server renders nothing: the secret's value is needed only where tasks run.
            let server = try ServerProcess.server(database: database.url, workflows: workflows, config: config)
            let worker = try ServerProcess.worker(database: database.url, workflows: workflows, config: config, environment: DataPassingScenario.environment)
            defer { for process in [server, worker] { process.stop() } }
            _ = try await worker.metricsPort()
            try await DataPassingScenario.check(api: try await server.apiPort())
        }
    }

    @Test("a retry on PostgreSQL survives kill -9 of the server running it: the run finishes, the successful task is kept, attempt numbers continue")
    func retrySurvivesKill() async throws {
        try await withTestDatabase("retrykill") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let fixed = directory.file("fixed")
            let go = directory.file("go")
            try directory.write("workflows/flaky.yaml", RetryScenario.flakyWorkflow(fixed: fixed, go: go))
            let workflows = directory.file("workflows")
            let first = try ServerProcess.server(database: database.url, workflows: workflows, workers: true)
            defer { first.stop() }
            let api = try await first.apiPort()
            let id = try await ClusterAPI.trigger(api: api, workflow: "flaky")
            #expect(try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(30))[id]?["status"]?.stringValue == "failed")

            _ = FileManager.default.createFile(atPath: fixed, contents: Data())
            let retried = try await TestServer.send("POST", "http://127.0.0.1:\(api)/api/v1/runs/\(id)/retry", body: nil, headers: [:])
            #expect(retried.status == 200, "\(retried.text)")
            let deadline = ContinuousClock.now + .seconds(60)
            while ClusterAPI.attempts(of: try await ClusterAPI.run(api: api, id: id)).first(where: { $0.task == "gate" })?.attempts.last?.status != "running" {
                guard ContinuousClock.now < deadline else { throw ProcessFailure("the retried gate did not start within 60 s") }
                try await Task.sleep(for: .milliseconds(100))
            }
            first.signal(SIGKILL)
            _ = try await first.waitForExit()

            let second = try ServerProcess.server(database: database.url, workflows: workflows, workers: true)
            defer { second.stop() }
            let secondAPI = try await second.apiPort()
            _ = FileManager.default.createFile(atPath: go, contents: Data())
            let run = try #require(try await ClusterAPI.waitForRuns(api: secondAPI, ids: [id], timeout: .seconds(60))[id])
            #expect(run["status"]?.stringValue == "success", "\(run)")
            #expect(run["retries"]?.intValue == 1)
            let attempts = Dictionary(uniqueKeysWithValues: ClusterAPI.attempts(of: run).map { ($0.task, $0.attempts.map(\.status)) })
            #expect(attempts["extract"] == ["success"], "the successful task was kept, not run again: \(attempts)")
            // The first gate failed, the retried one was interrupted by the kill, the next succeeded.
            #expect(attempts["gate"]?.first == "failed" && attempts["gate"]?.last == "success" && (attempts["gate"]?.count ?? 0) >= 3, "\(attempts)")
            #expect(attempts["load"] == ["success"], "\(attempts)")
        }
    }

    @Test("concurrency limits hold across processes: 2 servers and 2 workers never run more than 2 attempts of a queue with concurrency 2, nor 2 runs of a workflow with max_active_runs 1")
    func concurrencyLimits() async throws {
        try await withTestDatabase("limits") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try ConcurrencyScenario.write(into: directory)
            let workflows = directory.file("workflows")
            let config = directory.file("config")
            let servers = try (0..<2).map { _ in try ServerProcess.server(database: database.url, workflows: workflows, config: config) }
            // Each worker alone has slots for 4 attempts of the queue: only the store's limit keeps them at 2.
            let workers = try (0..<2).map { _ in try ServerProcess.worker(database: database.url, workflows: workflows, config: config, slots: 4) }
            defer { for process in servers + workers { process.stop() } }
            let apis = [try await servers[0].apiPort(), try await servers[1].apiPort()]
            for worker in workers { _ = try await worker.metricsPort() }
            try await ConcurrencyScenario.check(apis: apis, directory: directory)
        }
    }

    @Test("2 servers and 3 worker processes run 2,000 tasks of 50 DAG runs: each task exactly once")
    func exactlyOnce() async throws {
        try await withTestDatabase("cluster") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let marks = directory.file("marks.txt")
            try directory.write("workflows/dag.yaml", Self.dag(marks: marks))
            let workflows = directory.file("workflows")
            // All five start at once on an empty database: one of them migrates.
            let servers = try (0..<2).map { _ in try ServerProcess.server(database: database.url, workflows: workflows) }
            let workers = try (0..<3).map { _ in try ServerProcess.worker(database: database.url, workflows: workflows, slots: 8) }
            defer { for process in servers + workers { process.stop() } }
            let apis = [try await servers[0].apiPort(), try await servers[1].apiPort()]
            for worker in workers { _ = try await worker.metricsPort() }
            #expect((servers + workers).map { $0.count("database migrated") }.reduce(0, +) == 1)

            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<50 {
                    group.addTask { try await ClusterAPI.trigger(api: apis[index % 2], workflow: "dag") }
                }
                var ids: [String] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            let runs = try await ClusterAPI.waitForRuns(api: apis[1], ids: ids, timeout: .seconds(150))
            Self.expectEachTaskSucceededOnce(runs)
            var attempts = 0
            var byWorker: [String: Int] = [:]
            for run in runs.values {
                for (_, list) in ClusterAPI.attempts(of: run) {
                    attempts += list.count
                    for attempt in list { byWorker[attempt.worker ?? "none", default: 0] += 1 }
                }
            }
            #expect(attempts == 2_000, "no attempt lost, none run twice")
            #expect(byWorker.count == 3, "every worker process ran tasks: \(byWorker)")
            let lines = try String(contentsOfFile: marks, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2_000)
            #expect(Set(lines).count == 2_000, "every task's command ran exactly once")

            let (status, listed) = try await ClusterAPI.get("http://127.0.0.1:\(apis[0])/api/v1/workers")
            #expect(status == 200)
            guard case .object(let body)? = listed, case .array(let registered)? = body["workers"] else {
                Issue.record("no workers listed")
                return
            }
            let active = registered.filter { if case .object(let worker) = $0 { return worker["state"]?.stringValue == "active" } else { return false } }
            #expect(active.count == 3)

            for process in servers + workers { process.signal(SIGTERM) }
            for process in servers + workers { #expect(try await process.waitForExit() == 0, "\(process.log.suffix(2000))") }
        }
    }

    @Test("a frozen worker's attempts are retried on another worker after its lease expires, a killed worker's at once; the runs succeed")
    func workerFaults() async throws {
        try await withTestDatabase("faults") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // Every task waits for the file `go`, which appears only after the freeze and the kill:
            // the attempts the two workers were seen holding are still theirs when the signals land,
            // however long a loaded machine takes between the look and the signals (with `sleep 2`
            // they could finish in between, leaving nothing to reclaim).
            let go = directory.file("go")
            let gated = "'while [ ! -e \"\(go)\" ]; do sleep 0.1; done'"
            try directory.write("workflows/slow.yaml", """
                name: slow
                tasks:
                  - {id: t1, type: shell, script: \(gated)}
                  - {id: t2, type: shell, script: \(gated)}
                  - {id: t3, type: shell, script: \(gated)}
                """)
            // Short leases: renewed every second, expired after 4 s; silent workers are lost after 6 s.
            try directory.write("config/deerflow.yaml", "worker:\n  lease: 4s\nscheduler:\n  worker_timeout: 6s\n")
            let workflows = directory.file("workflows")
            let config = directory.file("config")
            let server = try ServerProcess.server(database: database.url, workflows: workflows, config: config)
            defer { server.stop() }
            let api = try await server.apiPort()
            let workers = try (0..<3).map { _ in try ServerProcess.worker(database: database.url, workflows: workflows, config: config, slots: 2) }
            defer {
                for worker in workers {
                    worker.signal(SIGCONT)
                    worker.stop()
                }
            }
            for worker in workers { _ = try await worker.metricsPort() }
            let (frozen, killed, survivor) = (workers[0], workers[1], workers[2])

            var ids: [String] = []
            for _ in 0..<4 { ids.append(try await ClusterAPI.trigger(api: api, workflow: "slow")) }
            // Wait until the frozen-to-be and the killed-to-be workers both hold running attempts.
            func holding(_ worker: ServerProcess) async throws -> Int {
                var count = 0
                for id in ids {
                    for (_, attempts) in ClusterAPI.attempts(of: try await ClusterAPI.run(api: api, id: id)) {
                        count += attempts.filter { $0.status == "running" && ($0.worker ?? "").contains(":\(worker.pid):") }.count
                    }
                }
                return count
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                let (heldByFrozen, heldByKilled) = (try await holding(frozen), try await holding(killed))
                if heldByFrozen > 0 && heldByKilled > 0 { break }
                guard ContinuousClock.now < deadline else { throw ProcessFailure("the workers never held attempts") }
                try await Task.sleep(for: .milliseconds(50))
            }
            // A frozen process is alive (its PID exists) but renews nothing: only its lease tells. A
            // killed process on the same machine is seen gone by the leader at once.
            frozen.signal(SIGSTOP)
            killed.signal(SIGKILL)
            _ = FileManager.default.createFile(atPath: go, contents: Data())
            let runs = try await ClusterAPI.waitForRuns(api: api, ids: ids, timeout: .seconds(60))
            Self.expectEachTaskSucceededOnce(runs)
            var expired = 0
            var gone = 0
            for run in runs.values {
                for (task, attempts) in ClusterAPI.attempts(of: run) {
                    for attempt in attempts {
                        let worker = attempt.worker ?? ""
                        if worker.contains(":\(frozen.pid):") && attempt.status != "success" {
                            #expect(attempt.error?.contains("lease expired") == true, "\(task): \(attempt)")
                            expired += 1
                        }
                        if worker.contains(":\(killed.pid):") && attempt.status != "success" {
                            #expect(attempt.error?.contains("is gone") == true, "\(task): \(attempt)")
                            gone += 1
                        }
                    }
                    if let success = attempts.first(where: { $0.status == "success" }), attempts.count > 1 {
                        #expect(!(success.worker ?? "").contains(":\(frozen.pid):") && !(success.worker ?? "").contains(":\(killed.pid):"),
                                "\(task) retried on another worker: \(attempts)")
                    }
                }
            }
            #expect(expired >= 1, "the frozen worker's attempts were reclaimed after their lease expired")
            #expect(gone >= 1, "the killed worker's attempts were reclaimed")
            // Both are reported lost once silent for longer than the worker timeout.
            let lostDeadline = ContinuousClock.now + .seconds(60)
            while true {
                let (_, listed) = try await ClusterAPI.get("http://127.0.0.1:\(api)/api/v1/workers")
                var states: [Int: String] = [:]
                if case .object(let body)? = listed, case .array(let list)? = body["workers"] {
                    for case .object(let worker) in list {
                        if let pid = worker["pid"]?.intValue { states[pid] = worker["state"]?.stringValue }
                    }
                }
                if states[Int(frozen.pid)] == "lost" && states[Int(killed.pid)] == "lost" && states[Int(survivor.pid)] == "active" { break }
                guard ContinuousClock.now < lostDeadline else {
                    Issue.record("workers not marked lost: \(states)")
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            frozen.signal(SIGKILL)
        }
    }

    @Test("PostgreSQL restarted under load: ready turns 503, then 200; processes reconnect, LISTEN too; no run is lost")
    func databaseRestart() async throws {
        let cluster = try await PostgresTestCluster.start()
        defer { cluster.destroy() }
        let url = cluster.url()
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/steps.yaml", """
            name: steps
            tasks:
              - {id: a, type: shell, script: sleep 0.3}
              - {id: b, type: shell, script: sleep 0.3, depends_on: [a]}
              - {id: c, type: shell, script: sleep 0.3, depends_on: [b]}
            """)
        try directory.write("workflows/quick.yaml", "name: quick\ntasks:\n  - {id: only, type: noop}\n")
        // Workers poll once an hour (the longest allowed): after the restart, only NOTIFY (through
        // a re-established LISTEN connection) gets new work started before the test's deadlines.
        try directory.write("config/deerflow.yaml", "worker:\n  poll_interval: 1h\n")
        let workflows = directory.file("workflows")
        let config = directory.file("config")
        let server = try ServerProcess.server(database: url, workflows: workflows, config: config)
        defer { server.stop() }
        let api = try await server.apiPort()
        let workers = try (0..<2).map { _ in try ServerProcess.worker(database: url, workflows: workflows, config: config, slots: 4) }
        defer { for worker in workers { worker.stop() } }
        for worker in workers { _ = try await worker.metricsPort() }
        try await ClusterAPI.waitForReadiness(api: api, status: 200)

        var ids: [String] = []
        for _ in 0..<10 { ids.append(try await ClusterAPI.trigger(api: api, workflow: "steps")) }
        try await Task.sleep(for: .milliseconds(500))
        try await cluster.stop()
        try await ClusterAPI.waitForReadiness(api: api, status: 503, timeout: .seconds(60))
        // While the database is down, API calls answer 503 with Retry-After after pool_timeout
        // (5 s) instead of waiting for the outage (the client gives up after 30 s), and a trigger
        // that answered 503 creates no run when the database comes back.
        async let listed = TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs", body: nil, headers: [:])
        async let triggered = TestServer.send(
            "POST", "http://127.0.0.1:\(api)/api/v1/workflows/quick/runs", body: "{}", headers: ["Idempotency-Key": "outage-1"])
        async let page = TestServer.send("GET", "http://127.0.0.1:\(api)/runs", body: nil, headers: [:])
        for answer in try await [listed, triggered, page] {
            #expect(answer.status == 503, "\(answer.status) \(answer.text)")
            #expect(answer.headers.contains { $0.0.lowercased() == "retry-after" && $0.1 == "5" }, "\(answer.headers)")
            #expect(answer.text.contains("pool_timeout"), "\(answer.text)")
        }
        #expect(try await listed.text.contains("\"unavailable\""))
        // Workers say that their heartbeats fail (every lease/3 = 10 s, each waiting pool_timeout).
        for worker in workers {
            _ = try await worker.waitFor("worker heartbeat failed", timeout: .seconds(60))
        }
        #expect(await ClusterAPI.readiness(api: api) == 503)
        try await cluster.restart()
        try await ClusterAPI.waitForReadiness(api: api, status: 200, timeout: .seconds(60))
        for worker in workers {
            _ = try await worker.waitFor("LISTEN connection re-established", timeout: .seconds(60))
            _ = try await worker.waitFor("worker heartbeat restored", timeout: .seconds(60))
        }
        // New work after the restart starts through NOTIFY, not the hourly poll: without NOTIFY
        // the run would wait an hour, far past this deadline. (It was "within 5 s, with a 20 s
        // poll", which a loaded machine could miss although NOTIFY worked.)
        let quick = try await ClusterAPI.trigger(api: api, workflow: "quick")
        let quickRuns = try await ClusterAPI.waitForRuns(api: api, ids: [quick], timeout: .seconds(120))
        Self.expectEachTaskSucceededOnce(quickRuns)
        for _ in 0..<10 { ids.append(try await ClusterAPI.trigger(api: api, workflow: "steps")) }
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: ids, timeout: .seconds(90))
        #expect(runs.count == 20)
        Self.expectEachTaskSucceededOnce(runs)
        let quickList = try await ClusterAPI.get("http://127.0.0.1:\(api)/api/v1/runs?workflow=quick")
        guard case .object(let page)? = quickList.json, case .array(let quickRunList)? = page["runs"] else {
            Issue.record("GET /api/v1/runs?workflow=quick answered \(quickList.status)")
            return
        }
        #expect(quickRunList.count == 1, "the trigger refused during the outage created a run: \(quickRunList)")
        for process in [server] + workers { process.signal(SIGTERM) }
        for process in [server] + workers { #expect(try await process.waitForExit() == 0, "\(process.log.suffix(2000))") }
    }

    @Test("two processes starting at once on an empty database migrate it once")
    func migrationAtOnce() async throws {
        try await withTestDatabase("migrate2") { database in
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try directory.write("workflows/quick.yaml", "name: quick\ntasks:\n  - {id: only, type: noop}\n")
            let processes = try (0..<2).map { _ in try ServerProcess.server(database: database.url, workflows: directory.file("workflows")) }
            defer { for process in processes { process.stop() } }
            for process in processes { try await ClusterAPI.waitForReadiness(api: try await process.apiPort(), status: 200) }
            #expect(processes.map { $0.count("database migrated") }.reduce(0, +) == 1, "\(processes.map(\.log))")
            let versions = try await database.rows("SELECT count(*)::text FROM deerflow_migrations")
            // One row per migration applied: each of them, once.
            #expect(versions == [[String(PostgresSchema.migrations.count)]])
        }
    }

    @Test("a password in the database URL never reaches the output, even when the server cannot be reached")
    func passwordNotLogged() async throws {
        // Refused for the whole test: a port that was free a moment ago may be taken meanwhile.
        let refused = try RefusedPort()
        defer { withExtendedLifetime(refused) {} }
        let port = refused.port
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/quick.yaml", "name: quick\ntasks:\n  - {id: only, type: noop}\n")
        let process = try ServerProcess.server(
            database: "postgres://deerflow:sw0rdfish@127.0.0.1:\(port)/deerflow?connect_timeout=1", workflows: directory.file("workflows"))
        defer { process.stop() }
        let status = try await process.waitForExit(timeout: .seconds(30))
        #expect(status != 0)
        #expect(!process.log.contains("sw0rdfish"), "\(process.log)")
        #expect(process.log.contains("cannot open the database postgres://deerflow:***@127.0.0.1:\(port)/deerflow"), "\(process.log)")
    }
}
