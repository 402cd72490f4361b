import DeerFlow
import DeerFlowCLI
import DeerFlowServer
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Secrets stay out of tasks and of every output: a task that prints its whole environment, the
/// environment and command line of the server process, and its secret parameter shows none of
/// the server's secrets, and the secret parameter's value appears nowhere — task log (text and
/// JSON), the attempt's error, the process log file, the API, the metrics.
@Suite("Secrets and the task environment", .serialized)
struct TaskSecretsTests {
    static let apiToken = "tok-Sup3rS3cretApiToken"
    static let cloudSecret = "aws-Sup3rS3cretCloudKey"
    static let paramValue = "Pa55w0rd-Param-Value"

    /// `deerflow server` as an unprivileged user when the tests run as root (as a service would
    /// run), so that what it does to keep tasks out of its /proc files is what is tested.
    static func serverCommand(_ arguments: [String]) -> (executable: String, arguments: [String]) {
        guard geteuid() == 0 else { return (ServerProcess.executable, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", ServerProcess.executable] + arguments)
    }

    @Test("a task sees only the base variables and the passthrough ones; no output shows a secret")
    func nothingLeaks() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        try directory.write("workflows/leak.yaml", """
            name: leak
            params:
              token: {type: string, secret: true}
            tasks:
              - id: dump
                type: shell
                script: |
                  env
                  echo "param=$DEERFLOW_PARAM_TOKEN"
                  printf 'split-%s' "$DEERFLOW_PARAM_TOKEN"; echo
                  echo "--- server environ"; tr '\\0' '\\n' < /proc/$PPID/environ 2>&1
                  echo "--- server cmdline"; tr '\\0' ' ' < /proc/$PPID/cmdline 2>&1; echo
                  sleep 0.3   # stdout and stderr are separate pipes: the stderr above is read first
                  echo "last $DEERFLOW_PARAM_TOKEN"
                  exit 1
            """)
        let logFile = directory.file("logs/deerflow.log")
        try directory.write("config/deerflow.yaml", "worker:\n  env_passthrough: [MY_*]\n")
        try directory.write("config/logging.yaml", """
            logging:
              level: DEBUG
              handlers:
                console: {format: json}
                file:
                  path: \(logFile)
            """)
        for path in ["workflows", "config", "logs"] { try FileManager.default.createDirectory(atPath: directory.file(path), withIntermediateDirectories: true) }
        for path in ["workflows", "config", "logs"] { chmod(directory.file(path), 0o777) }
        let (executable, arguments) = Self.serverCommand([
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ])
        let server = try ServerProcess(arguments, executable: executable, environment: [
            "DEERFLOW_API_TOKENS": Self.apiToken, "AWS_SECRET_ACCESS_KEY": Self.cloudSecret, "MY_ALLOWED": "visible-value",
            "DEERFLOW_DATABASE_URL": "",
        ])
        defer { server.stop() }
        let api = "http://127.0.0.1:\(try await server.apiPort())"
        let metrics = "http://127.0.0.1:\(try await server.metricsPort())/metrics"
        let auth = ["Authorization": "Bearer \(Self.apiToken)"]
        let created = try await TestServer.send("POST", api + "/api/v1/workflows/leak/runs", body: #"{"params": {"token": "\#(Self.paramValue)"}}"#, headers: auth)
        #expect(created.status == 201, "\(created.text)")
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run id: \(created.text)\n\(server.log)")
            return
        }
        var detail = ""
        try await eventually("the run failed", timeout: .seconds(30)) {
            detail = try await TestServer.send("GET", api + "/api/v1/runs/\(id)", body: nil, headers: auth).text
            return detail.contains(#""status":"failed""#)
        }
        let text = try await TestServer.send("GET", api + "/api/v1/runs/\(id)/tasks/dump/log", body: nil, headers: auth).text
        let json = try await TestServer.send("GET", api + "/api/v1/runs/\(id)/tasks/dump/log?format=json", body: nil, headers: auth).text
        let runs = try await TestServer.send("GET", api + "/api/v1/runs", body: nil, headers: auth).text
        let scraped = try await TestServer.send("GET", metrics, body: nil, headers: [:]).text
        try await Task.sleep(for: .seconds(1)) // the file handler flushes
        // ...in the background: on a loaded machine it may not have written anything yet after 1 s.
        var processLog = ""
        let flushed = ContinuousClock.now + .seconds(60)
        repeat {
            processLog = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            if !processLog.isEmpty { break }
            try await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < flushed

        // What the task did see.
        #expect(text.contains("MY_ALLOWED=visible-value"), "\(text)")
        #expect(text.contains("PATH="), "\(text)")
        #expect(text.contains("DEERFLOW_RUN_ID=\(id)"), "\(text)")
        #expect(text.contains("param=[REDACTED]"), "\(text)")
        #expect(text.contains("split-[REDACTED]"), "\(text)")
        #expect(detail.contains("exited with code 1: last [REDACTED]"), "\(detail)")
        #expect(!processLog.isEmpty, "the process log file is empty:\n\(server.log)")
        // What no one sees.
        let outputs = ["task log": text, "task log JSON": json, "run detail": detail, "runs": runs, "metrics": scraped,
                       "process log file": processLog, "console": server.log]
        for (name, output) in outputs {
            for secret in [Self.apiToken, Self.cloudSecret, Self.paramValue] {
                #expect(!output.contains(secret), "\(name) shows \(secret):\n\(output.suffix(3000))")
            }
        }
        #expect(!text.contains("AWS_SECRET_ACCESS_KEY"), "\(text)")
        #expect(!text.contains("DEERFLOW_API_TOKENS"), "\(text)")
    }

    @Test("worker.run_as runs shell tasks as that user", .enabled(if: geteuid() == 0, "switching users needs root"))
    func runAs() async throws {
        let workflows = ["who.yaml": "name: who\ntasks:\n  - {id: id, type: shell, script: 'echo \"uid=$(id -u) home=$HOME user=$USER\"'}\n"]
        try await withTestServer(yamlWorkflows: workflows, configure: { $0.taskUserName = "nobody" }) { server in
            let run = try await server.engine.trigger("who")
            #expect(try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(20)).run.status == .success)
            let logs = try await server.engine.store.taskLogs(run: run.id, task: "id", attempt: nil) ?? []
            #expect(logs.first?.text.contains("uid=65534") == true, "\(logs)")
            #expect(logs.first?.text.contains("user=nobody") == true, "\(logs)")
        }
    }

    @Test("worker.run_as naming no user stops the start with a clear error")
    func runAsUnknownUser() async throws {
        await #expect {
            try await withTestServer(configure: { $0.taskUserName = "no-such-user-here" }) { _ in }
        } throws: { error in
            "\(error)".contains("worker.run_as: there is no user 'no-such-user-here'")
        }
    }
}
