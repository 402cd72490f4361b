import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `deerflow server` as a real process, killed with SIGKILL in the middle of a run.
@Suite("Process: kill -9 and restart")
struct ProcessRestartTests {
    @Test("a run interrupted by SIGKILL completes after restart; finished tasks never run again")
    func killAndRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let marks = directory.file("marks.txt")
        var tasks = "name: chain\ntasks:\n"
        // c's first attempt sleeps 60 s, its second none: the kill lands in c even when this
        // test process is kept off the CPU for seconds (a CI run once killed during d after a
        // 3 s sleep of c had ended unseen), and the test does not wait a minute for c's rerun.
        let firstC = directory.file("c-started")
        for (index, id) in ["a", "b", "c", "d"].enumerated() {
            let sleep = id == "c" ? #"if [ ! -e "\#(firstC)" ]; then touch "\#(firstC)"; sleep 60; fi"# : "sleep 0.5"
            tasks += """
                  - id: \(id)
                    type: shell
                    script: 'echo start-\(id) >> "\(marks)"; \(sleep); echo done-\(id) >> "\(marks)"'

                """
            if index > 0 { tasks += "    depends_on: [\(["a", "b", "c", "d"][index - 1])]\n" }
        }
        try directory.write("workflows/chain.yaml", tasks)
        let database = "sqlite://" + directory.file("db.sqlite")
        let first = try ServerProcess.server(database: database, workflows: directory.file("workflows"), workers: true)
        defer { first.stop() }
        let id = try await ClusterAPI.trigger(api: try await first.apiPort(), workflow: "chain")
        // Kill while c runs: a and b have finished, c has started (its first attempt sleeps 60 s).
        let deadline = ContinuousClock.now + .seconds(60)
        while !((try? String(contentsOfFile: marks, encoding: .utf8))?.contains("start-c") ?? false) {
            guard ContinuousClock.now < deadline else { throw ProcessFailure("c never started:\n\(first.log)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        first.signal(SIGKILL)
        try await first.waitForExit()

        let second = try ServerProcess.server(database: database, workflows: directory.file("workflows"), workers: true)
        defer { second.stop() }
        // A deadline of its own, not what is left of the wait for c (little after a slow start).
        let final = try #require(try await ClusterAPI.waitForRuns(api: try await second.apiPort(), ids: [id])[id])
        guard case .array(let finalTasks)? = final["tasks"] else {
            Issue.record("the run has no tasks: \(final)")
            return
        }
        #expect(final["status"]?.stringValue == "success")
        for case .object(let task) in finalTasks {
            guard case .array(let attempts)? = task["attempts"] else { continue }
            let successes = attempts.filter { if case .object(let attempt) = $0 { return attempt["status"]?.stringValue == "success" } else { return false } }
            #expect(successes.count == 1, "task \(task["id"]?.stringValue ?? "?") finished \(successes.count) times")
        }
        let lines = (try String(contentsOfFile: marks, encoding: .utf8)).split(separator: "\n").map(String.init)
        for finished in ["done-a", "done-b", "done-d"] {
            #expect(lines.filter { $0 == finished }.count == 1, "\(finished) in \(lines)")
        }
        #expect(lines.filter { $0 == "start-c" }.count == 2, "c was interrupted and ran again: \(lines)")
        #expect(lines.filter { $0 == "done-c" }.count == 1)
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0)
    }

    @Test("what a task started and a killed server left running is stopped when the server starts again, before the attempt's rerun")
    func orphansStoppedAtRestart() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let first = directory.file("first-attempt")
        let grandchild = directory.file("grandchild.pid")
        let seen = directory.file("rerun-saw")
        // The first attempt starts a `sleep` (the shell's child, which the shell's death does not
        // take along) and waits; the rerun says whether that sleep still runs beside it.
        let script = """
            if [ -e "\(first)" ]; then
              pid=$(cat "\(grandchild)")
              if [ -e /proc/$pid ] && ! grep -q '^State:[[:space:]]*Z' /proc/$pid/status; then echo alive > "\(seen)"; else echo gone > "\(seen)"; fi
              exit 0
            fi
            touch "\(first)"; sleep 300 & echo $! > "\(grandchild)"; wait
            """
        try directory.write("workflows/orphan.yaml", """
            name: orphan
            tasks:
              - id: a
                type: shell
                script: |
            \(script.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))

            """)
        let database = "sqlite://" + directory.file("db.sqlite")
        // A temporary directory of their own, so that their record of task process groups is not
        // shared with other tests' servers (one of which, starting meanwhile, would kill the sleep
        // before this test looks at it).
        let environment = ["TMPDIR": directory.file("tmp")]
        try FileManager.default.createDirectory(atPath: directory.file("tmp"), withIntermediateDirectories: true)
        let server = try ServerProcess.server(database: database, workflows: directory.file("workflows"), workers: true, environment: environment)
        defer { server.stop() }
        let id = try await ClusterAPI.trigger(api: try await server.apiPort(), workflow: "orphan")
        let deadline = ContinuousClock.now + .seconds(60)
        var sleeper: Int32?
        while sleeper == nil {
            guard ContinuousClock.now < deadline else { throw ProcessFailure("the task never started its sleep:\n\(server.log)") }
            sleeper = (try? String(contentsOfFile: grandchild, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            try await Task.sleep(for: .milliseconds(10))
        }
        let pid = try #require(sleeper)
        defer { kill(pid, SIGKILL) }
        server.signal(SIGKILL)
        try await server.waitForExit()
        // The shell died with the server; its sleep did not.
        try #require(Self.isRunning(pid), "the task's sleep ended with the server: nothing to test")

        let restarted = try ServerProcess.server(database: database, workflows: directory.file("workflows"), workers: true, environment: environment)
        defer { restarted.stop() }
        let final = try #require(try await ClusterAPI.waitForRuns(api: try await restarted.apiPort(), ids: [id])[id])
        #expect(final["status"]?.stringValue == "success", "\(restarted.log)")
        #expect((try? String(contentsOfFile: seen, encoding: .utf8)) == "gone\n", "the rerun ran beside the first attempt's sleep")
        #expect(!Self.isRunning(pid))
        #expect(restarted.log.contains("killed the processes of a task whose worker died without stopping them"), "\(restarted.log)")
        restarted.signal(SIGTERM)
        #expect(try await restarted.waitForExit() == 0)
    }

    /// Whether the process runs (exists and is not a zombie waiting for its parent to reap it).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.split(separator: "\n").contains { $0.hasPrefix("State:") && $0.contains("Z") }
    }
}
