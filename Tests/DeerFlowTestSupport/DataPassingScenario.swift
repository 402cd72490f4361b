import DeerFlowCore
import Foundation
import Testing

/// Data between tasks on a real server (SQLite and PostgreSQL tests): a shell task's output
/// through `$DEERFLOW_OUTPUT`, templates in argv, env and an http task's URL, a secret of
/// deerflow.yaml, and the attempts that must fail with a clear message.
public enum DataPassingScenario {
    /// The secret's value, given to the server as `DATA_TEST_TOKEN`.
    public static let secretValue = "tok-Data-Passing-S3cret"
    public static let environment = ["DATA_TEST_TOKEN": secretValue]
    public static let config = "secrets:\n  API_TOKEN: {env: DATA_TEST_TOKEN}\n"

    public static let workflow = """
        name: data
        params:
          day: {type: string, default: "2026-12-06"}
          api: {type: int}
        tasks:
          - id: extract
            type: shell
            script: |
              echo extracting
              printf '{"rows": 42, "files": ["a.csv", "b c.csv"], "workflow": "data", "quote": "a;b $(x) `y`"}' > "$DEERFLOW_OUTPUT"
          - id: load
            type: shell
            depends_on: [extract]
            command: [sh, -c, 'echo "rows=$ROWS file=$1 quote=$2 day=$DAY token=$TOKEN"; printf "{\\"loaded\\": %s, \\"token\\": \\"%s\\"}" "$ROWS" "$TOKEN" > "$DEERFLOW_OUTPUT"', load, "{{ tasks.extract.output.files[1] }}", "{{ tasks.extract.output.quote }}"]
            env:
              ROWS: "{{ tasks.extract.output.rows }}"
              DAY: "{{ params.day }}@{{ run.workflow }}"
              TOKEN: "{{ secrets.API_TOKEN }}"
          - id: lookup
            type: http
            depends_on: [extract]
            url: "http://127.0.0.1:{{ params.api }}/api/v1/workflows/{{ tasks.extract.output.workflow }}"
          - id: missing-key
            type: shell
            depends_on: [extract]
            command: [echo, "{{ tasks.extract.output.cols }}"]
          - id: not-json
            type: shell
            script: echo not-json-text > "$DEERFLOW_OUTPUT"
          - id: symlinked
            type: shell
            script: ln -s /etc/hostname "$DEERFLOW_OUTPUT"
          - id: fifo
            type: shell
            script: mkfifo "$DEERFLOW_OUTPUT"
          - id: too-big
            type: shell
            script: head -c 2000000 /dev/zero | tr '\\0' 'x' | sed 's/^/"/; s/$/"/' > "$DEERFLOW_OUTPUT"
        """

    /// Triggers the workflow through the API on `api`, waits for it and checks every task.
    public static func check(api: Int) async throws {
        let id = try await ClusterAPI.trigger(api: api, workflow: "data", params: #"{"api": \#(api)}"#)
        let run = try #require(try await ClusterAPI.waitForRuns(api: api, ids: [id], timeout: .seconds(60))[id])
        guard case .array(let list)? = run["tasks"] else { throw ProcessFailure("no tasks in \(run)") }
        var tasks: [String: [String: JSONValue]] = [:]
        for case .object(let task) in list { if let name = task["id"]?.stringValue { tasks[name] = task } }
        let errors = Dictionary(uniqueKeysWithValues: ClusterAPI.attempts(of: run).map { ($0.task, $0.attempts.last?.error ?? "") })

        #expect(tasks["extract"]?["output"] == ["rows": 42, "files": ["a.csv", "b c.csv"], "workflow": "data", "quote": "a;b $(x) `y`"])
        // The secret reached the task and is redacted from its output.
        #expect(tasks["load"]?["output"] == ["loaded": 42, "token": "[REDACTED]"], "\(errors)")
        let log = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(id)/tasks/load/log", body: nil, headers: [:]).text
        #expect(log.contains("rows=42 file=b c.csv quote=a;b $(x) `y` day=2026-12-06@data token=[REDACTED]"), "\(log)")
        #expect(!log.contains(secretValue))
        #expect(!run.description.contains(secretValue))
        // The http task's URL was rendered; its output is the API's answer.
        if case .object(let workflow)? = tasks["lookup"]?["output"] {
            #expect(workflow["name"] == "data")
        } else {
            Issue.record("lookup: \(tasks["lookup"] ?? [:]) \(errors["lookup"] ?? "")")
        }
        #expect(errors["missing-key"]?.contains("template in command[1]: tasks.extract.output has no key 'cols'") == true, "\(errors)")
        #expect(errors["not-json"]?.contains("is not JSON") == true, "\(errors)")
        #expect(errors["too-big"]?.contains("more than the limit of 1.0 MiB") == true, "\(errors)")
        // DeerFlow reads only a regular file of the task's own: not a file a link points to, not a FIFO (which would block).
        #expect(errors["symlinked"]?.contains("$DEERFLOW_OUTPUT is a symbolic link") == true, "\(errors)")
        #expect(errors["fifo"]?.contains("$DEERFLOW_OUTPUT is not a regular file") == true, "\(errors)")
        #expect(run["status"]?.stringValue == "failed")
    }
}
