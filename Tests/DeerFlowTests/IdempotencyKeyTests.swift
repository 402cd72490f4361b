import DeerFlowCore
import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// `Idempotency-Key` on triggers: a client that retries never creates a second run.
@Suite("Idempotency keys")
struct IdempotencyKeyTests {
    static let workflows = [
        "greet.yaml": "name: greet\ntasks:\n  - {id: a, type: noop}\n",
        "other.yaml": "name: other\ntasks:\n  - {id: a, type: noop}\n",
    ]

    static func id(_ answer: TestServer.Answer) -> String? {
        guard case .object(let run)? = answer.json else { return nil }
        return run["id"]?.stringValue
    }

    @Test("the same key gives the first run (200) and creates nothing, also for ten at once; another key or workflow creates; a bad key is 400; the CLI flag works")
    func oneRunPerKey() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let key = ["Idempotency-Key": "5f0c7a1e-9d3b-4c6e-a2f1-8b7d9e0c1a23"]
            let first = try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: key)
            #expect(first.status == 201, "\(first.text)")
            let again = try await server.request("POST", "/api/v1/workflows/greet/runs", body: #"{"params": {}}"#, headers: key)
            #expect(again.status == 200, "\(again.text)")
            #expect(Self.id(again) != nil && Self.id(again) == Self.id(first))
            #expect(again.header("location") == "/api/v1/runs/\(Self.id(first) ?? "")")

            let burst = ["Idempotency-Key": "burst-key"]
            let answers = try await withThrowingTaskGroup(of: TestServer.Answer.self) { group in
                for _ in 0..<10 { group.addTask { try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: burst) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.filter { $0.status == 201 }.count == 1, "\(answers.map(\.status))")
            #expect(Set(answers.compactMap(Self.id)).count == 1)

            let otherWorkflow = try await server.request("POST", "/api/v1/workflows/other/runs", body: "{}", headers: key)
            #expect(otherWorkflow.status == 201, "a key is per workflow")
            #expect(try await server.request("POST", "/api/v1/workflows/greet/runs", body: "{}", headers: ["Idempotency-Key": String(repeating: "k", count: 201)]).status == 400)

            let command = ["run", "greet", "--idempotency-key", "cli-key", "--api", server.apiURL]
            let once = try await CLITests.deerflow(command)
            let twice = try await CLITests.deerflow(command)
            #expect(once.status == 0 && twice.status == 0, "\(once) \(twice)")
            let runID = once.stdout.split(separator: " ").dropFirst().first
            #expect(runID != nil && twice.stdout.contains(String(runID ?? "-")), "\(once.stdout) \(twice.stdout)")
            #expect(once.stdout.contains("greet created (status"), "\(once.stdout)")
            #expect(twice.stdout.contains("created earlier with this --idempotency-key"), "the repeat says it created nothing new: \(twice.stdout)")

            let all = try await server.request("GET", "/api/v1/runs?workflow=greet")
            guard case .object(let list)? = all.json, case .array(let runs)? = list["runs"] else { throw ProcessFailure("\(all.text)") }
            #expect(runs.count == 3, "one run per key: \(runs.count)")
        }
    }
}
