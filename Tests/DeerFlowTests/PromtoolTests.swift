import DeerFlow
import DeerFlowCore
import DeerFlowTesting
import Foundation
import Testing

/// `promtool check metrics` (Prometheus' own linter) on a real scrape.
@Suite("promtool")
struct PromtoolTests {
    @Test("promtool check metrics reports nothing but the accepted note on deerflow_workers_total")
    func checkMetrics() async throws {
        let workflows = [
            "ok.yaml": "name: ok\ntasks:\n  - id: a\n    type: noop\n",
            "bad.yaml": "name: bad\ntasks:\n  - id: a\n    type: shell\n    script: exit 1\n    retries: 1\n    retry_delay: 10ms\n  - id: b\n    type: noop\n    depends_on: [a]\n",
        ]
        try await withTestServer(yamlWorkflows: workflows, configFiles: ["metrics.yaml": """
            metrics:
              prometheus:
                labels: {environment: test}
              custom_metrics:
                - name: data_processed_bytes
                  type: counter
                  description: Total bytes processed
                  labels: [workflow, task]
            """]) { server in
            for name in ["ok", "bad"] {
                let run = try await server.engine.trigger(name)
                _ = try await server.engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            }
            _ = try await server.request("GET", "/api/v1/workflows")
            let text = try await server.metricsText()
            let output = try Promtool.run(["check", "metrics"], input: text)
            let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            #expect(lines == [#"deerflow_workers_total non-counter metrics should not have "_total" suffix"#], "\(output)")
        }
    }
}

/// Runs Prometheus' promtool.
enum Promtool {
    static func run(_ arguments: [String], input: String? = nil) throws -> String {
        try PrometheusTool.execute("promtool", arguments, input: input).output
    }
}

/// Runs a command-line tool of the Prometheus project (promtool, amtool) from the Debian packages
/// scripts/test installs; returns its exit status and its stdout and stderr together.
enum PrometheusTool {
    static func execute(_ name: String, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        guard let path = ["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw ProcessFailure("\(name) not found: scripts/test installs it (Debian packages prometheus and prometheus-alertmanager)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
