import DeerFlow
@testable import DeerFlowCLI
@testable import DeerFlowServer
import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `deerflow` executable as users run it: real processes, real exit codes, stdout and stderr.
@Suite("CLI")
struct CLITests {
    /// The repository root (`Tests/DeerFlowTests/CLITests.swift` is three levels below it).
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// What a finished `deerflow` command did.
    struct Outcome: Sendable, CustomStringConvertible {
        var status: Int32
        var stdout: String
        var stderr: String
        var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
        var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
        var stderrLines: [String] { stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    }

    /// Runs `deerflow` with arguments to completion, stdout and stderr kept apart (in files, so a
    /// chatty command cannot block on a full pipe).
    static func deerflow(_ arguments: [String], environment extra: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> Outcome {
        let directory = try TemporaryDirectory(prefix: "deerflow-cli")
        defer { directory.remove() }
        let outPath = directory.file("stdout")
        let errPath = directory.file("stderr")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["DEERFLOW_API_URL"] = nil
        environment["DEERFLOW_API_TOKEN"] = nil
        environment["DEERFLOW_DATABASE_URL"] = nil
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? out.close()
        try? err.close()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.stop()
                let printed = Outcome(
                    status: process.isRunning ? -1 : process.terminationStatus,
                    stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                    stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
                throw TestFailure("deerflow \(arguments.joined(separator: " ")) did not finish within \(timeout); killed. Output so far:\n\(printed)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return Outcome(
            status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// `file:line:column: key: message`.
    static let locatedError = try! NSRegularExpression(pattern: "^(.+):([0-9]+):([0-9]+): ([^ :]+): (.+)$")

    static func located(_ line: String) -> (file: String, line: Int, column: Int, key: String, message: String)? {
        guard let match = locatedError.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) else { return nil }
        func group(_ index: Int) -> String { Range(match.range(at: index), in: line).map { String(line[$0]) } ?? "" }
        return (group(1), Int(group(2)) ?? 0, Int(group(3)) ?? 0, group(4), group(5))
    }

    static let goodWorkflow = """
        name: good
        tasks:
          - id: a
            type: noop
          - id: b
            type: noop
            depends_on: [a]
        """

    static let unknownKeyWorkflow = """
        name: unknown
        tasks:
          - id: a
            type: noop
            bogus: 1
        """

    static let cyclicWorkflow = """
        name: cyclic
        tasks:
          - id: a
            type: noop
            depends_on: [b]
          - id: b
            type: noop
            depends_on: [a]
        """

    // MARK: validate

    @Test("deerflow validate prints ok: for a valid file and exits 0")
    func validateGood() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let good = try directory.write("good.yaml", Self.goodWorkflow)
        let outcome = try await Self.deerflow(["validate", good])
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stdoutLines == ["ok: \(good): workflow 'good' (2 tasks)"], "\(outcome)")
        #expect(outcome.stderr.isEmpty, "\(outcome)")
    }

    @Test("deerflow validate checks a config directory by file name: logging, tracing and alert rules; other YAML files are skipped, said so")
    func validateConfigDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let logging = try directory.write("config/logging.yaml", LoggingTests.loggingYAML(directory))
        let tracing = try directory.write("config/tracing.yaml", """
            tracing:
              endpoint: http://127.0.0.1:4318/v1/traces
              batch: {max_size: 9000, queue_size: 8192}
            """)
        let alerts = try directory.write("config/alerts.yaml", """
            groups:
              - name: deerflow
                rules:
                  - alert: Backlog
                    expr: sum(deerflow_tasks_queued) > 100
                    for: 5m
                  - alert: Unsupported
                    expr: predict_linear(deerflow_tasks_queued[5m], 3600) > 100
            """)
        let notes = try directory.write("config/notes.yaml", "anything: goes\n")
        let outcome = try await Self.deerflow(["validate", directory.file("config")])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stdoutLines.contains("ok: \(logging)"), "\(outcome)")
        #expect(outcome.stdoutLines.contains { $0.hasPrefix("skipped: \(notes) (DeerFlow reads alerts.yaml, deerflow.yaml, logging.yaml") }, "\(outcome)")
        let tracingError = try #require(outcome.stderrLines.compactMap(Self.located).first { $0.file == tracing }, "\(outcome)")
        #expect(tracingError.line == 3 && tracingError.key == "tracing.batch", "\(outcome)")
        #expect(tracingError.message == "max_size (9000) must not exceed queue_size (8192)", "\(outcome)")
        // The rule outside the PromQL subset is named, as the server would at start.
        #expect(outcome.stderr.contains(alerts) && outcome.stderr.contains("Unsupported") && outcome.stderr.contains("predict_linear"), "\(outcome)")
    }

    @Test("deerflow validate reports file:line:column: key: message on stderr for each bad file and exits 1")
    func validateBad() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let good = try directory.write("good.yaml", Self.goodWorkflow)
        let unknown = try directory.write("unknown.yaml", Self.unknownKeyWorkflow)
        let cyclic = try directory.write("cyclic.yaml", Self.cyclicWorkflow)
        let outcome = try await Self.deerflow(["validate", unknown, good, cyclic])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stdoutLines == ["ok: \(good): workflow 'good' (2 tasks)"], "valid files are still reported: \(outcome)")
        let errors = outcome.stderrLines.compactMap(Self.located)
        #expect(errors.count == outcome.stderrLines.count, "every stderr line is file:line:column: key: message: \(outcome)")
        #expect(errors.count == 2, "\(outcome)")

        let unknownError = try #require(errors.first { $0.file == unknown }, "\(outcome)")
        #expect(unknownError.line == 5)
        #expect(unknownError.column > 0)
        #expect(unknownError.key == "tasks[0].bogus")
        #expect(unknownError.message.contains("unknown key 'bogus'"), "\(outcome)")

        let cycleError = try #require(errors.first { $0.file == cyclic }, "\(outcome)")
        #expect(cycleError.line == 5, "the cycle is reported at a's depends_on: \(outcome)")
        #expect(cycleError.key == "tasks[0].depends_on")
        #expect(cycleError.message.contains("cycle"), "\(outcome)")
        #expect(cycleError.message.contains("a → b → a"), "the message names the cycle: \(outcome)")
    }

    @Test("deerflow validate refuses what a probe found accepted: a cron that never fires, the names '..' and '--help', 1h1h, a NUL in a script")
    func validateProbeFindings() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = try directory.write("probe.yaml", """
            name: ".."
            schedule: "0 0 30 2 *"
            tasks:
              - id: "--help"
                type: shell
                script: "echo a\\0b"
                retry_delay: 1h1h
            """)
        let outcome = try await Self.deerflow(["validate", file])
        #expect(outcome.status == 1, "\(outcome)")
        let errors = outcome.stderrLines.compactMap(Self.located)
        #expect(errors.count == outcome.stderrLines.count, "every stderr line is file:line:column: key: message: \(outcome)")
        #expect(errors.map(\.key) == ["name", "schedule.cron", "tasks[0].id", "tasks[0].script", "tasks[0].retry_delay"], "\(outcome)")
        #expect(errors.map(\.line) == [1, 2, 4, 6, 7], "\(outcome)")
        #expect(errors.contains { $0.message.contains("never fires: day-of-month 30 never occurs in February") }, "\(outcome)")
    }

    @Test("deerflow validate reads triggers: located errors for bad webhook keys, duplicate hook names across files, a warning for an unset secret_env")
    func validateWebhooks() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let hook = "params: {ref: string}\ntriggers:\n  - webhook: {name: push, secret_env: DEERFLOW_TEST_UNSET_SECRET, params: {ref: \"{{ body.ref }}\"}}\ntasks: [{id: a, type: noop}]\n"
        let first = try directory.write("workflows/a.yaml", "name: a\n" + hook)
        let second = try directory.write("workflows/b.yaml", "name: b\n" + hook)
        let bad = try directory.write("workflows/c.yaml", """
            name: c
            params: {ref: string}
            triggers:
              - webhook: {name: other, secret_env: S, secret: x, params: {ref: "{{ params.ref }}"}}
            tasks: [{id: a, type: noop}]
            """)
        let outcome = try await Self.deerflow(["validate", directory.file("workflows")])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stdoutLines.contains("ok: \(first): workflow 'a' (1 tasks)"), "\(outcome)")
        let errors = outcome.stderrLines.compactMap(Self.located)
        #expect(errors.contains { $0.file == second && $0.line == 4 && $0.key == "triggers[0].webhook.name" && $0.message.contains("also defined in \(first)") }, "\(outcome)")
        #expect(errors.contains { $0.file == bad && $0.line == 4 && $0.key == "triggers[0].webhook.secret" }, "\(outcome)")
        #expect(errors.contains { $0.file == bad && $0.line == 4 && $0.key == "triggers[0].webhook.params.ref" && $0.message.contains("'body'") }, "\(outcome)")
        #expect(outcome.stderr.contains("\(first): warning: triggers[0].webhook.secret_env: DEERFLOW_TEST_UNSET_SECRET is not set"), "\(outcome)")
    }

    @Test("deerflow validate checks {{ secrets.X }} against deerflow.yaml's secrets when given both, and warns when it cannot")
    func validateSecrets() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let workflow = try directory.write("workflows/data.yaml", DataPassingScenario.workflow)
        try directory.write("config/deerflow.yaml", "secrets:\n  OTHER: {env: OTHER}\n")
        let outcome = try await Self.deerflow(["validate", directory.file("workflows"), directory.file("config")])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stderr.contains("\(workflow): workflow 'data' reads {{ secrets.API_TOKEN }}, but deerflow.yaml declares OTHER"), "\(outcome)")
        try directory.write("config/deerflow.yaml", DataPassingScenario.config)
        let fixed = try await Self.deerflow(["validate", directory.file("workflows"), directory.file("config")])
        #expect(fixed.status == 0, "\(fixed)")
        let alone = try await Self.deerflow(["validate", directory.file("workflows")])
        #expect(alone.status == 0 && alone.stderr.contains("warning: templates read secrets of deerflow.yaml"), "\(alone)")
    }

    @Test("deerflow validate names every file of a directory it checked; a directory with nothing to check is an error")
    func validateNamesFilesAndRefusesEmpty() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("empty"), withIntermediateDirectories: true)
        let empty = try await Self.deerflow(["validate", directory.file("empty")])
        #expect(empty.status == 1, "\(empty)")
        #expect(empty.stderr.contains("\(directory.file("empty")): nothing to check"), "\(empty)")

        let good = try directory.write("workflows/good.yaml", Self.goodWorkflow)
        let other = try directory.write("workflows/other.yml", "name: other\ntasks:\n  - {id: x, type: noop}\n")
        let cyclic = try directory.write("workflows/cyclic.yaml", Self.cyclicWorkflow)
        let outcome = try await Self.deerflow(["validate", directory.file("workflows")])
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stdoutLines == ["ok: \(good): workflow 'good' (2 tasks)", "ok: \(other): workflow 'other' (1 tasks)"], "\(outcome)")
        #expect(outcome.stderrLines.compactMap(Self.located).contains { $0.file == cyclic }, "\(outcome)")
    }

    @Test("deerflow validate warns about tasks on queues deerflow.yaml's workers do not serve and a tracing endpoint on port 4317; refuses http/json")
    func validateWarnings() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let workflow = try directory.write("workflows/report.yaml", """
            name: report
            tasks:
              - {id: gather, type: noop}
              - {id: render, type: noop, queue: reports}
              - {id: mail, type: noop, queue: reports}
              - {id: archive, type: noop, queue: etl}
            """)
        let serverFile = try directory.write("config/deerflow.yaml", "worker:\n  queues: [default, etl]\n")
        let tracing = try directory.write("config/tracing.yaml", "tracing:\n  endpoint: http://collector:4317\n")
        let warned = try await Self.deerflow(["validate", directory.file("workflows"), directory.file("config")])
        #expect(warned.status == 0, "warnings do not fail: \(warned)")
        #expect(warned.stdoutLines.contains("ok: \(serverFile)") && warned.stdoutLines.contains("ok: \(tracing)"), "\(warned)")
        #expect(warned.stderrLines.contains {
            $0.hasPrefix("\(workflow): warning: workflow 'report': tasks render, mail use queue 'reports', which \(serverFile) worker.queues (default, etl) does not serve")
        }, "\(warned)")
        #expect(!warned.stderr.contains("'etl', which"), "etl is served: \(warned)")
        #expect(warned.stderrLines.contains {
            $0.hasPrefix("\(tracing): tracing: warning: endpoint http://collector:4317 is on port 4317") && $0.contains("http://collector:4318/v1/traces")
        }, "\(warned)")
        // Without a deerflow.yaml the served queues are not known: no warning.
        let workflowsOnly = try await Self.deerflow(["validate", directory.file("workflows")])
        #expect(workflowsOnly.status == 0 && workflowsOnly.stderr.isEmpty, "\(workflowsOnly)")

        try directory.write("config/tracing.yaml", "tracing:\n  protocol: http/json\n")
        let json = try await Self.deerflow(["validate", tracing])
        #expect(json.status == 1, "\(json)")
        let error = try #require(json.stderrLines.compactMap(Self.located).first, "\(json)")
        #expect(error.file == tracing && error.line == 2 && error.key == "tracing.protocol", "\(json)")
        for part in ["OTLP http/json is not supported", "base64", "hex", "answers 400", "use protocol http/protobuf"] {
            #expect(error.message.contains(part), "'\(part)' missing: \(json)")
        }
    }

    @Test("validate checks the channels of workflows' notify: against notifications.yaml")
    func validateNotifyChannels() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let workflow = try directory.write("workflows/nightly.yaml", """
            name: nightly
            notify: {on_failure: [slack, pagerduty]}
            tasks:
              - {id: load, type: noop}
            """)
        try directory.write("config/notifications.yaml", "notifications:\n  channels:\n    slack:\n      webhook: http://127.0.0.1:9/hook\n")
        let checked = try await Self.deerflow(["validate", directory.file("workflows"), directory.file("config")])
        #expect(checked.status == 1, "\(checked)")
        #expect(checked.stderrLines.contains("\(workflow): workflow 'nightly': notify names channel 'pagerduty', but its channels are slack"), "\(checked)")
        #expect(!checked.stderr.contains("channel 'slack'"), "\(checked)")
        let alone = try await Self.deerflow(["validate", directory.file("workflows")])
        #expect(alone.status == 0, "\(alone)")
        #expect(alone.stderrLines.contains { $0.hasPrefix("\(workflow): warning: notify names channels of notifications.yaml") }, "\(alone)")
    }

    @Test("deerflow server refuses to start on an invalid workflow file, naming file and line")
    func serverRefusesInvalidWorkflow() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/good.yaml", Self.goodWorkflow)
        try directory.write("workflows/cyclic.yaml", Self.cyclicWorkflow)
        let server = try ServerProcess([
            "server", "--workflows", directory.file("workflows"), "--database", "sqlite://" + directory.file("db.sqlite"),
            "--api-port", "0", "--metrics-port", "0",
        ])
        defer { server.stop() }
        let status = try await server.waitForExit(timeout: .seconds(30))
        #expect(status != 0, "\(server.log)")
        #expect(server.log.contains(directory.file("workflows/cyclic.yaml") + ":5:"), "\(server.log)")
        #expect(server.log.contains("cycle"), "\(server.log)")
        #expect(!server.log.contains("API listening"), "it must not serve: \(server.log)")
    }

    @Test("deerflow server without --workflows loads ./workflows of its directory and runs them; without that directory it warns what to do")
    func serverLoadsDefaultWorkflowsDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/good.yaml", Self.goodWorkflow)
        let server = try ServerProcess(
            ["server", "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0"],
            environment: ["DEERFLOW_DATABASE_URL": ""], directory: directory.path)
        defer { server.stop() }
        let api = try await server.apiPort()
        let id = try await ClusterAPI.trigger(api: api, workflow: "good")
        let run = try await ClusterAPI.waitForRuns(api: api, ids: [id])[id]
        #expect(run?["status"] == .string("success"), "\(server.log)")
        #expect(server.log.contains("workflows loaded"), "\(server.log)")

        let empty = try TemporaryDirectory()
        defer { empty.remove() }
        let bare = try ServerProcess(
            ["server", "--database", "sqlite://" + empty.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0"],
            environment: ["DEERFLOW_DATABASE_URL": ""], directory: empty.path)
        defer { bare.stop() }
        _ = try await bare.apiPort()
        _ = try await bare.waitFor("no workflows registered; pass --workflows DIR, put YAML files in ./workflows")
    }

    @Test("a port in use stops the start with the listener, the port and the setting to change, before anything listens")
    func portInUse() async throws {
        let holder = try await TestHTTPServer.start()
        defer { Task { await holder.stop() } }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/good.yaml", Self.goodWorkflow)
        let base = ["server", "--workflows", directory.file("workflows"), "--database", "sqlite://" + directory.file("db.sqlite")]
        for (ports, listener, setting) in [
            (["--api-port", "\(holder.port)", "--metrics-port", "0"], "API", "--api-port or api.port in deerflow.yaml"),
            (["--api-port", "0", "--metrics-port", "\(holder.port)"], "metrics endpoint", "--metrics-port or metrics.port in metrics.yaml"),
        ] {
            let server = try ServerProcess(base + ports)
            defer { server.stop() }
            let status = try await server.waitForExit(timeout: .seconds(30))
            #expect(status != 0, "\(server.log)")
            #expect(server.log.contains("the \(listener) cannot listen on 127.0.0.1:\(holder.port): the port is in use by another process."), "\(server.log)")
            #expect(server.log.contains("Choose another port with \(setting) (0 picks a free one)."), "\(server.log)")
            for noise in ["API listening", "metrics listening", "errno", "bind(descriptor", "Address already in use"] {
                #expect(!server.log.contains(noise), "'\(noise)' in: \(server.log)")
            }
        }
    }

    @Test("the metrics port message says when the port is 9090, Prometheus' own default")
    func prometheusPortNamed() {
        let busy = ListenerUnavailable(listener: Listener(kind: .metrics, host: "127.0.0.1", port: 9090), reason: "the port is in use by another process")
        #expect(busy.description.contains("9090 is also Prometheus' own default port"), "\(busy)")
        #expect(busy.description.contains("--metrics-port or metrics.port in metrics.yaml"), "\(busy)")
        let api = ListenerUnavailable(listener: Listener(kind: .api, host: "127.0.0.1", port: 9090), reason: "the port is in use by another process")
        #expect(!api.description.contains("Prometheus"), "\(api)")
    }

    @Test("deerflow server warns at start about tasks on queues its workers do not serve and about a tracing endpoint on the gRPC port")
    func startWarnings() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/report.yaml", """
            name: report
            tasks:
              - id: gather
                type: noop
              - id: render
                type: noop
                queue: reports
                depends_on: [gather]
            """)
        try directory.write("config/tracing.yaml", "tracing:\n  endpoint: http://127.0.0.1:4317\n")
        let server = try ServerProcess([
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ], environment: ["DEERFLOW_DATABASE_URL": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_SDK_DISABLED": ""])
        defer { server.stop() }
        _ = try await server.apiPort()
        #expect(server.log.contains("workflow 'report': task render uses queue 'reports', which this server's workers"), "\(server.log)")
        #expect(server.log.contains("until a worker serving 'reports' runs"), "\(server.log)")
        #expect(server.log.contains("endpoint http://127.0.0.1:4317 is on port 4317, where collectors serve OTLP over gRPC"), "\(server.log)")
        #expect(server.log.contains("http://127.0.0.1:4318/v1/traces"), "the working endpoint is suggested: \(server.log)")
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.log.suffix(2000))")
    }

    @Test("deerflow export dashboards, alerts and prometheus-config read metrics.yaml only; alertmanager-config notifications.yaml only")
    func exportReadsOnlyItsFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("config/metrics.yaml", "metrics:\n  port: 9400\n")
        try directory.write("config/deerflow.yaml", "api:\n  tokens: [\"${DEERFLOW_TEST_UNSET_TOKEN}\"]\n")
        try directory.write("config/logging.yaml", "logging:\n  level: loud\n")
        try directory.write("config/notifications.yaml", """
            notifications:
              channels:
                pagerduty:
                  service_key: ${DEERFLOW_TEST_UNSET_PAGERDUTY_KEY}
            """)
        for kind in ["dashboards", "alerts", "prometheus-config"] {
            let outcome = try await Self.deerflow(["export", kind, "--config", directory.file("config"), "--out", directory.file("out")])
            #expect(outcome.status == 0, "\(kind): \(outcome)")
        }
        let scrape = try String(contentsOfFile: directory.file("out/prometheus.yml"), encoding: .utf8)
        #expect(scrape.contains("localhost:9400"), "metrics.yaml was read: \(scrape)")
        let alertmanager = try await Self.deerflow(["export", "alertmanager-config", "--config", directory.file("config"), "--out", directory.file("out")])
        #expect(alertmanager.status != 0, "\(alertmanager)")
        #expect(alertmanager.stderr.contains("DEERFLOW_TEST_UNSET_PAGERDUTY_KEY"), "\(alertmanager)")
        #expect(!alertmanager.stderr.contains("DEERFLOW_TEST_UNSET_TOKEN") && !alertmanager.stderr.contains("loud"), "\(alertmanager)")
    }

    @Test("tracing configured in deerflow.yaml's tracing: section turns tracing on; configured in both files, the server refuses to start")
    func tracingSectionOfServerFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("workflows/good.yaml", Self.goodWorkflow)
        let serverFile = try directory.write("config/deerflow.yaml", """
            worker:
              slots: 2
            tracing:
              endpoint: http://127.0.0.1:4318/v1/traces-from-deerflow-yaml
              sampler: ratio
              ratio: 0.5
            """)
        let arguments = [
            "server", "--workflows", directory.file("workflows"), "--config", directory.file("config"),
            "--database", "sqlite://" + directory.file("db.sqlite"), "--api-port", "0", "--metrics-port", "0",
        ]
        let environment = ["DEERFLOW_DATABASE_URL": "", "OTEL_EXPORTER_OTLP_ENDPOINT": "", "OTEL_TRACES_SAMPLER": ""]
        let server = try ServerProcess(arguments, environment: environment)
        defer { server.stop() }
        let line = try await server.waitFor("([^\\n]*tracing on[^\\n]*)")
        #expect(line.contains("traces-from-deerflow-yaml"), "\(server.log)")
        _ = try await server.apiPort()
        server.signal(SIGTERM)
        #expect(try await server.waitForExit() == 0, "\(server.log.suffix(2000))")

        let tracingFile = try directory.write("config/tracing.yaml", "tracing:\n  endpoint: http://127.0.0.1:4318/v1/traces\n")
        let refused = try ServerProcess(arguments, environment: environment)
        defer { refused.stop() }
        #expect(try await refused.waitForExit(timeout: .seconds(30)) != 0, "\(refused.log)")
        #expect(refused.log.contains("tracing is configured twice, in \(tracingFile) and in the tracing: section of \(serverFile)"), "\(refused.log)")
        #expect(!refused.log.contains("API listening"), "it must not serve: \(refused.log)")
        // validate finds each file fine alone, and the pair not.
        let validated = try await Self.deerflow(["validate", directory.file("config")])
        #expect(validated.status == 1, "\(validated)")
        #expect(validated.stdoutLines.contains("ok: \(serverFile)") && validated.stdoutLines.contains("ok: \(tracingFile)"), "\(validated)")
        #expect(validated.stderr.contains("tracing is configured twice, in \(tracingFile) and in the tracing: section of \(serverFile)"), "\(validated)")
    }

    // MARK: Client commands

    static let clientWorkflows: [String: String] = [
        "typed.yaml": """
            name: typed
            params:
              n: {type: int}
            tasks:
              - id: check
                type: shell
                script: test "$DEERFLOW_PARAM_N" -eq 5 && echo "n is $DEERFLOW_PARAM_N"
            """,
        "fails.yaml": """
            name: fails
            tasks:
              - id: bad
                type: shell
                script: echo 'no route to warehouse' >&2; exit 2
            """,
        "hello.yaml": """
            name: hello
            description: Greets.
            schedule:
              cron: "0 2 * * *"
            tasks:
              - id: greet
                type: shell
                script: echo "hello, world"
            """,
    ]

    static func runID(in text: String) -> String? {
        let expression = try! NSRegularExpression(pattern: "run ([0-9A-Za-z]+) of ")
        guard let match = expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
              let range = Range(match.range(at: 1), in: text) else { return nil }
        return String(text[range])
    }

    @Test("deerflow run --wait exits 0 for a succeeding run and 1 for a failing one; --param follows the declared type")
    func runWait() async throws {
        try await withTestServer(yamlWorkflows: Self.clientWorkflows) { server in
            let succeeded = try await Self.deerflow(["run", "typed", "--param", "n=5", "--wait", "--api", server.apiURL])
            #expect(succeeded.status == 0, "\(succeeded)")
            #expect(succeeded.stdout.contains("check: success"), "\(succeeded)")
            let id = try #require(Self.runID(in: succeeded.stdout), "\(succeeded)")
            #expect(succeeded.stdout.contains("run \(id): success"), "\(succeeded)")
            let detail = try await server.engine.run(RunID(rawValue: id))
            #expect(detail?.run.params == ["n": .int(5)], "the parameter reached the API as an int")
            #expect(detail?.run.status == .success)

            let failed = try await Self.deerflow(["run", "fails", "--wait", "--api", server.apiURL])
            #expect(failed.status == 1, "\(failed)")
            let failedID = try #require(Self.runID(in: failed.stdout), "\(failed)")
            #expect(failed.stdout.contains("run \(failedID): failed"), "\(failed)")
            #expect(failed.stdout.contains("bad: failed — exited with code 2: no route to warehouse"), "\(failed)")

            let notAnInt = try await Self.deerflow(["run", "typed", "--param", "n=five", "--api", server.apiURL])
            #expect(notAnInt.status != 0, "\(notAnInt)")
            #expect(notAnInt.stderr.contains("expected a value of type int"), "\(notAnInt)")

            let undeclared = try await Self.deerflow(["run", "typed", "--param", "m=1", "--api", server.apiURL])
            #expect(undeclared.status != 0, "\(undeclared)")
            #expect(undeclared.stderr.contains("has no parameter 'm'"), "\(undeclared)")

            let unknown = try await Self.deerflow(["run", "nope", "--api", server.apiURL])
            #expect(unknown.status != 0, "\(unknown)")
            #expect(unknown.stderr.contains("(HTTP 404)"), "\(unknown)")

            // Without --wait: the run is created and the command returns at once.
            let noWait = try await Self.deerflow(["run", "hello", "--api", server.apiURL])
            #expect(noWait.status == 0, "\(noWait)")
            #expect(noWait.stdout.contains("of hello created"), "\(noWait)")
        }
    }

    @Test("deerflow run --wait prints each line as it happens into a pipe; --timeout gives up with exit code 124 and the run goes on")
    func runWaitStreamsAndTimesOut() async throws {
        let napping = ["nap.yaml": "name: nap\ntasks:\n  - id: nap\n    type: sleep\n    duration: 60s\n"]
        try await withTestServer(yamlWorkflows: napping) { server in
            // ServerProcess reads the command's output through a pipe, as `| tee` or a CI log does.
            // A --timeout of 10 minutes, not 8 s: a loaded machine slow to start the command could
            // otherwise see its lines only after it had ended, as if they were block-buffered.
            let waiting = try ServerProcess(["run", "nap", "--wait", "--timeout", "10m", "--api", server.apiURL])
            defer { waiting.stop() }
            // Block-buffered, these lines would show only when the command exits (after 10 minutes).
            let streamed = try await waiting.waitFor("run ([0-9A-Za-z]+) of nap created; waiting", timeout: .seconds(60))
            _ = try await waiting.waitFor("(  nap: running)", timeout: .seconds(60))
            #expect(waiting.isRunning, "the lines came before the command ended: \(waiting.log)")
            waiting.stop()
            try await server.engine.cancel(RunID(rawValue: streamed))

            // --timeout: a run of its own, given up after 1 s (the nap takes 60 s).
            let timing = try ServerProcess(["run", "nap", "--wait", "--timeout", "1s", "--api", server.apiURL])
            defer { timing.stop() }
            #expect(try await timing.waitForExit(timeout: .seconds(60)) == 124, "\(timing.log)")
            let id = try await timing.waitFor("run ([0-9A-Za-z]+) of nap created; waiting")
            #expect(timing.log.contains("stopped waiting after 1s (--timeout); run \(id) has not finished and goes on"), "\(timing.log)")
            let run = try #require(try await server.engine.run(RunID(rawValue: id)))
            #expect(run.run.status == .running, "the run goes on")
            try await server.engine.cancel(RunID(rawValue: id))

            let withoutWait = try await Self.deerflow(["run", "nap", "--timeout", "1s", "--api", server.apiURL])
            #expect(withoutWait.status == 64 && withoutWait.stderr.contains("--timeout limits --wait"), "\(withoutWait)")
            let badDuration = try await Self.deerflow(["run", "nap", "--wait", "--timeout", "soon", "--api", server.apiURL])
            #expect(badDuration.status == 64 && badDuration.stderr.contains("'soon' is not a duration"), "\(badDuration)")
        }
    }

    @Test("a bad --param prints run's usage, not the top-level one, with exit code 64")
    func badParamUsage() async throws {
        try await withTestServer(yamlWorkflows: Self.clientWorkflows) { server in
            for params in [["--param", "m=1"], ["--param", "n=five"], ["--param", "n"]] {
                let outcome = try await Self.deerflow(["run", "typed"] + params + ["--api", server.apiURL])
                #expect(outcome.status == 64, "\(params): \(outcome)")
                #expect(outcome.stderr.contains("Usage: deerflow run <workflow>"), "\(params): \(outcome)")
                #expect(outcome.stderr.contains("See 'deerflow run --help'"), "\(params): \(outcome)")
                #expect(!outcome.stderr.contains("<subcommand>"), "the top-level usage: \(outcome)")
            }
        }
    }

    @Test("deerflow status, runs, workflows, workers and logs print readable tables and text")
    func readCommands() async throws {
        try await withTestServer(yamlWorkflows: Self.clientWorkflows) { server in
            let run = try await server.engine.trigger("hello")
            let detail = try await withDeadline(.seconds(30), "hello run") {
                try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            }
            #expect(detail.run.status == .success)
            let id = run.id.rawValue
            let api = ["--api", server.apiURL]

            let status = try await Self.deerflow(["status", id] + api)
            #expect(status.status == 0, "\(status)")
            #expect(status.stdoutLines.first?.hasPrefix("run \(id) of hello: success") == true, "\(status)")
            #expect(status.stdoutLines.contains { $0.hasPrefix("TASK") && $0.contains("TYPE") && $0.contains("STATUS") && $0.contains("ATTEMPTS") }, "\(status)")
            let greetRow = status.stdoutLines.first { $0.hasPrefix("greet ") }?.split(separator: " ").map(String.init) ?? []
            #expect(Array(greetRow.prefix(4)) == ["greet", "shell", "success", "1"], "\(status)")

            let statusJSON = try await Self.deerflow(["status", id, "--json"] + api)
            guard case .object(let object)? = try? JSONValue(parsing: statusJSON.stdout) else {
                Issue.record("status --json is not JSON: \(statusJSON)")
                return
            }
            #expect(object["id"]?.stringValue == id)

            let runs = try await Self.deerflow(["runs"] + api)
            #expect(runs.status == 0, "\(runs)")
            #expect(runs.stdoutLines.first?.split(separator: " ").map(String.init) == ["RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"], "\(runs)")
            let runRow = runs.stdoutLines.first { $0.hasPrefix(id) }?.split(separator: " ").map(String.init) ?? []
            #expect(Array(runRow.prefix(3)) == [id, "hello", "success"], "\(runs)")
            let filtered = try await Self.deerflow(["runs", "--workflow", "typed"] + api)
            #expect(filtered.stdoutLines.count == 1, "no runs of typed, only the header: \(filtered)")

            let workflows = try await Self.deerflow(["workflows"] + api)
            #expect(workflows.status == 0, "\(workflows)")
            #expect(workflows.stdoutLines.first?.hasPrefix("WORKFLOW") == true, "\(workflows)")
            let names = workflows.stdoutLines.dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) }
            #expect(names.sorted() == ["fails", "hello", "typed"], "\(workflows)")
            let helloRow = try #require(workflows.stdoutLines.first { $0.hasPrefix("hello ") }, "\(workflows)")
            #expect(helloRow.contains("0 2 * * * UTC"), "\(workflows)")
            #expect(helloRow.contains("Greets."), "\(workflows)")

            let workers = try await Self.deerflow(["workers"] + api)
            #expect(workers.status == 0, "\(workers)")
            #expect(workers.stdoutLines.first?.split(separator: " ").map(String.init) == ["WORKER", "STATE", "SLOTS", "BUSY", "QUEUES", "LAST", "SEEN"], "\(workers)")
            let workerRow = workers.stdoutLines.dropFirst().first?.split(separator: " ").map(String.init) ?? []
            #expect(workerRow.count >= 5 && workerRow[1] == "active" && workerRow[2] == "4" && workerRow[4] == "default", "\(workers)")

            let logs = try await Self.deerflow(["logs", id] + api)
            #expect(logs.status == 0, "\(logs)")
            #expect(logs.stdoutLines.contains("### task greet"), "\(logs)")
            #expect(logs.stdoutLines.contains("hello, world"), "\(logs)")
            let taskLog = try await Self.deerflow(["logs", id, "greet"] + api)
            #expect(taskLog.stdout.contains("hello, world"), "\(taskLog)")
            #expect(!taskLog.stdout.contains("### task"), "\(taskLog)")

            let missing = try await Self.deerflow(["status", "01J00000000000000000000000"] + api)
            #expect(missing.status != 0, "\(missing)")
            #expect(missing.stderr.contains("(HTTP 404)"), "\(missing)")
        }
    }

    @Test("a client command without a server says where it tried and what to do")
    func noServer() async throws {
        // Nothing listens on port 1: the connection is refused at once, so the answer needs no
        // more than a few seconds (the generous bound below is far from the 30 s request timeout).
        let outcome = try await Self.deerflow(["workflows", "--api", "http://127.0.0.1:1"], timeout: .seconds(10))
        #expect(outcome.status != 0, "\(outcome)")
        #expect(outcome.stderr.contains("cannot reach the DeerFlow API at http://127.0.0.1:1: is `deerflow server` running?"), "\(outcome)")
        #expect(outcome.stderr.contains("connection refused"), "the cause in words: \(outcome)")
        #expect(outcome.stderr.contains("--api or DEERFLOW_API_URL"), "\(outcome)")
        #expect(!outcome.stderr.contains("errno") && !outcome.stderr.contains("error set"), "no NIO wrapping: \(outcome)")
    }

    // MARK: Help

    @Test("deerflow --help lists the subcommands; subcommand help lists their options")
    func help() async throws {
        let root = try await Self.deerflow(["--help"])
        #expect(root.status == 0, "\(root)")
        for command in ["server", "worker", "demo", "run", "status", "runs", "cancel", "logs", "workflows", "workers", "validate", "bench"] {
            #expect(root.stdoutLines.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(command + " ") }, "\(command) missing: \(root)")
        }

        let server = try await Self.deerflow(["server", "--help"])
        #expect(server.status == 0, "\(server)")
        for option in ["--workflows", "--config", "--database", "--api-port", "--metrics-port", "--host", "--log-level", "--slots", "--queues", "--drain-timeout", "--no-workers"] {
            #expect(server.stdout.contains(option), "\(option) missing: \(server)")
        }
        #expect(server.stdout.contains("sqlite://./.deerflow/deerflow.sqlite"), "the default database is documented: \(server)")

        let run = try await Self.deerflow(["run", "--help"])
        #expect(run.status == 0, "\(run)")
        for option in ["--param", "--wait", "--timeout", "--json", "--api", "--token"] {
            #expect(run.stdout.contains(option), "\(option) missing: \(run)")
        }
    }

    /// Help text with its line wrapping undone.
    static func unwrapped(_ text: String) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    @Test("help texts are true: run's example uses etl's parameters, --config names every file, export names only files that exist")
    func helpMatchesTheRepository() async throws {
        let run = try await Self.deerflow(["run", "--help"])
        let example = try #require(run.stdoutLines.first { $0.contains("Example: deerflow run ") }, "\(run)")
        let workflow = try #require(example.split(separator: " ").drop { $0 != "run" }.dropFirst().first.map(String.init))
        let definition = try WorkflowFileLoader.load(file: "\(Self.repositoryRoot)/examples/workflows/\(workflow).yaml")
        let expression = try NSRegularExpression(pattern: "--param ([a-z_]+)=")
        let used = expression.matches(in: example, range: NSRange(example.startIndex..., in: example))
            .compactMap { Range($0.range(at: 1), in: example).map { String(example[$0]) } }
        #expect(!used.isEmpty, "\(example)")
        #expect(Set(used).isSubset(of: definition.params.map(\.name)), "\(example) uses parameters \(workflow) does not declare (\(definition.params.map(\.name)))")
        for code in ["0", "1", "64", "124"] {
            #expect(run.stdoutLines.contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix(code + " ") }, "exit code \(code) undocumented: \(run)")
        }

        for command in ["server", "worker"] {
            let help = Self.unwrapped(try await Self.deerflow([command, "--help"]).stdout)
            for file in ["deerflow.yaml", "metrics.yaml", "logging.yaml", "tracing.yaml", "alerts.yaml", "notifications.yaml"] {
                #expect(help.contains(file), "\(command) --help does not name \(file) for --config: \(help)")
            }
        }

        let export = try await Self.deerflow(["export", "--help"])
        let paths = try NSRegularExpression(pattern: "deploy/[A-Za-z0-9_./-]+")
            .matches(in: export.stdout, range: NSRange(export.stdout.startIndex..., in: export.stdout))
            .compactMap { Range($0.range, in: export.stdout).map { String(export.stdout[$0]) } }
        #expect(paths.count >= 3, "\(export)")
        for path in paths {
            #expect(FileManager.default.fileExists(atPath: "\(Self.repositoryRoot)/\(path)"), "export --help names \(path), which does not exist")
        }
    }

    @Test("the docs and openapi.yaml name only commands that exist")
    func documentedCommandsExist() async throws {
        let root = try await Self.deerflow(["--help"])
        let commands = Set(root.stdoutLines.compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("  "), let word = trimmed.split(separator: " ").first else { return nil }
            return String(word)
        })
        #expect(commands.contains("server") && commands.contains("validate"), "\(root)")
        let expression = try NSRegularExpression(pattern: "`deerflow ([a-z][a-z-]*)")
        var files = ["README.md", "openapi.yaml"]
        files += try FileManager.default.contentsOfDirectory(atPath: "\(Self.repositoryRoot)/docs").filter { $0.hasSuffix(".md") }.map { "docs/\($0)" }
        for file in files {
            let text = try String(contentsOfFile: "\(Self.repositoryRoot)/\(file)", encoding: .utf8)
            for match in expression.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let range = Range(match.range(at: 1), in: text) else { continue }
                #expect(commands.contains(String(text[range])), "\(file) names `deerflow \(text[range])`, which is no command")
            }
        }
    }

    // MARK: demo

    @Test("deerflow demo --exit-when-done runs the example workflows, prints the URLs and exits 0")
    func demo() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let outcome = try await Self.deerflow([
            "demo", "--exit-when-done", "--api-port", "0", "--metrics-port", "0",
            "--database", "sqlite://" + directory.file("demo.sqlite"),
            "--workflows", Self.repositoryRoot + "/examples/workflows",
        ], timeout: .seconds(20))  // the example runs take about 2 s; `slow` times out after 1 s
        #expect(outcome.status == 0, "\(outcome)")
        let text = outcome.stdout
        for pattern in [
            "API +http://127\\.0\\.0\\.1:[1-9][0-9]*/api/v1/workflows",
            "Metrics +http://127\\.0\\.0\\.1:[1-9][0-9]*/metrics",
            "Health +http://127\\.0\\.0\\.1:[1-9][0-9]*/health",
        ] {
            #expect(text.range(of: pattern, options: .regularExpression) != nil, "/\(pattern)/ missing: \(outcome)")
        }
        #expect(text.contains("hello: success"), "\(outcome)")
        #expect(text.contains("flaky: success"), "\(outcome)")
        #expect(text.contains("broken: failed"), "\(outcome)")
        #expect(text.contains("slow: failed"), "\(outcome)")
        #expect(FileManager.default.fileExists(atPath: directory.file("demo.sqlite")))
    }

    // MARK: Graceful shutdown

    @Test("SIGTERM drains: readiness answers 503 draining, the process exits 0, and the released attempt runs again after a restart")
    func gracefulShutdown() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let marker = directory.file("started")
        // The first attempt runs until stopped (the shell stays the task process, so this test is
        // about draining and releasing, not about how SIGTERM reaches an exec'd program; that is
        // TaskExecutionTests' job); the second attempt, after the restart, finishes at once.
        try directory.write("workflows/long.yaml", """
            name: long
            tasks:
              - id: wait
                type: shell
                script: 'if [ "$DEERFLOW_ATTEMPT" -lt 2 ]; then echo started > "\(marker)"; while true; do sleep 0.2; done; fi; echo "attempt $DEERFLOW_ATTEMPT done"'
            """)
        let arguments = [
            "server", "--workflows", directory.file("workflows"), "--database", "sqlite://" + directory.file("db.sqlite"),
            // The drain lasts the whole timeout (the attempt never ends by itself): 20 s, so a test
            // process starved on a loaded machine still polls /health/ready inside it (5 s was
            // little for a process kept off the CPU for seconds).
            "--api-port", "0", "--metrics-port", "0", "--drain-timeout", "20",
        ]
        let first = try ServerProcess(arguments)
        defer { first.stop() }
        let port = try await first.apiPort()
        let base = "http://127.0.0.1:\(port)"
        #expect(try await TestServer.send("GET", base + "/health/ready", body: nil, headers: [:]).status == 200)
        let created = try await TestServer.send("POST", base + "/api/v1/workflows/long/runs", body: "{}", headers: [:])
        #expect(created.status == 201, "\(created.text)")
        guard case .object(let run)? = created.json, let id = run["id"]?.stringValue else {
            Issue.record("no run id: \(created.text)")
            return
        }
        try await eventually("the first attempt started") { FileManager.default.fileExists(atPath: marker) }

        first.signal(SIGTERM)
        var sawDraining = false
        let drainDeadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < drainDeadline, first.isRunning {
            guard let ready = try? await TestServer.send("GET", base + "/health/ready", body: nil, headers: [:]) else { break }
            if ready.status == 503, case .object(let body)? = ready.json, body["status"]?.stringValue == "draining" {
                sawDraining = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(sawDraining, "/health/ready never answered 503 draining:\n\(first.log)")
        let status = try await first.waitForExit()
        #expect(status == 0, "\(first.log)")

        let second = try ServerProcess(arguments)
        defer { second.stop() }
        let secondPort = try await second.apiPort()
        var final: [String: JSONValue] = [:]
        try await eventually("the run finished after the restart", timeout: .seconds(60)) {
            let answer = try await TestServer.send("GET", "http://127.0.0.1:\(secondPort)/api/v1/runs/\(id)", body: nil, headers: [:])
            guard case .object(let object)? = answer.json, let status = object["status"]?.stringValue else { return false }
            final = object
            return status != "pending" && status != "running"
        }
        #expect(final["status"]?.stringValue == "success", "\(final)\n\(second.log)")
        guard case .array(let tasks)? = final["tasks"], case .object(let task)? = tasks.first, case .array(let attempts)? = task["attempts"] else {
            Issue.record("no attempts: \(final)")
            return
        }
        #expect(attempts.count == 2, "\(attempts)")
        if case .object(let firstAttempt)? = attempts.first {
            #expect(firstAttempt["error"]?.stringValue == "released by worker shutting down; will run again", "\(firstAttempt)")
        }
        if case .object(let secondAttempt)? = attempts.last {
            #expect(secondAttempt["number"]?.intValue == 2)
            #expect(secondAttempt["status"]?.stringValue == "success", "\(secondAttempt)")
        }
        let log = try await TestServer.send("GET", "http://127.0.0.1:\(secondPort)/api/v1/runs/\(id)/tasks/wait/log", body: nil, headers: [:])
        #expect(log.text.contains("attempt 2 done"), "\(log.text)")
        second.signal(SIGTERM)
        #expect(try await second.waitForExit() == 0, "\(second.log)")
    }
}
