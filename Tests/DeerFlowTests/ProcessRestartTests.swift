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
        let arguments = [
            "server", "--workflows", directory.file("workflows"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ]
        let first = try ServerProcess(arguments)
        defer { first.stop() }
        let port = try await first.apiPort()
        let created = try await TestServer.send("POST", "http://127.0.0.1:\(port)/api/v1/workflows/chain/runs", body: "{}", headers: [:])
        #expect(created.status == 201)
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run id: \(created.text)")
            return
        }
        // Kill while c runs: a and b have finished, c has started (its first attempt sleeps 60 s).
        let deadline = ContinuousClock.now + .seconds(60)
        while !((try? String(contentsOfFile: marks, encoding: .utf8))?.contains("start-c") ?? false) {
            guard ContinuousClock.now < deadline else { throw ProcessFailure("c never started:\n\(first.log)") }
            try await Task.sleep(for: .milliseconds(10))
        }
        first.signal(SIGKILL)
        try await first.waitForExit()

        let second = try ServerProcess(arguments)
        defer { second.stop() }
        let secondPort = try await second.apiPort()
        var detail: JSONValue?
        // A deadline of its own, not what is left of the wait for c (little after a slow start).
        let finishDeadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < finishDeadline {
            let answer = try await TestServer.send("GET", "http://127.0.0.1:\(secondPort)/api/v1/runs/\(id)", body: nil, headers: [:])
            if case .object(let object)? = answer.json, let status = object["status"]?.stringValue, status != "running", status != "pending" {
                detail = answer.json
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard case .object(let final)? = detail, case .array(let finalTasks)? = final["tasks"] else {
            Issue.record("the run did not finish after the restart:\n\(second.log)")
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
}
