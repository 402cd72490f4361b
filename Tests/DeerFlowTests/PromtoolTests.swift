import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
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
