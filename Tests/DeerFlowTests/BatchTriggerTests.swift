import DeerFlow
import DeerFlowCore
import DeerFlowTestSupport
import Foundation
import Testing

/// `POST /api/v1/workflows/{name}/runs:batch`: many runs in one request and one transaction.
@Suite("Batch trigger")
struct BatchTriggerTests {
    static let workflows = [
        "load.yaml": """
            name: load
            params:
              day: {type: string}
              size: {type: int, default: 1}
            tasks:
              - id: first
                type: noop
              - id: second
                type: noop
                depends_on: [first]
            """
    ]

    @Test("1,000 runs are created in the order given and all run; one bad entry creates none and is named")
    func batch() async throws {
        try await withTestServer(yamlWorkflows: Self.workflows) { server in
            let entries = (0..<1_000).map { #"{"params": {"day": "2024-06-\#($0)"}}"# }
            let answer = try await server.request("POST", "/api/v1/workflows/load/runs:batch", body: #"{"runs": ["# + entries.joined(separator: ", ") + "]}")
            #expect(answer.status == 201, "\(answer.text.prefix(300))")
            guard case .object(let body)? = answer.json, case .array(let runs)? = body["runs"] else {
                Issue.record("no runs in \(answer.text.prefix(300))")
                return
            }
            #expect(runs.count == 1_000)
            let days = runs.compactMap { run -> String? in
                guard case .object(let fields) = run, case .object(let params)? = fields["params"] else { return nil }
                return params["day"]?.stringValue
            }
            #expect(days == (0..<1_000).map { "2024-06-\($0)" })
            let ids = runs.compactMap { run -> RunID? in
                guard case .object(let fields) = run, let id = fields["id"]?.stringValue else { return nil }
                return RunID(rawValue: id)
            }
            for id in ids {
                let finished = try await server.engine.waitForRun(id, pollInterval: .milliseconds(20))
                #expect(finished.run.status == .success)
            }

            // Entry 2 misses the required `day`: 422 naming it, and nothing of the batch exists.
            let before = try await server.engine.store.runs(RunQuery(workflow: "load", limit: 1_000)).runs.count
            let refused = try await server.request(
                "POST", "/api/v1/workflows/load/runs:batch", body: #"{"runs": [{"params": {"day": "a"}}, {"params": {"day": "b"}}, {"params": {"size": 2}}]}"#)
            #expect(refused.status == 422)
            #expect(refused.text.contains("runs[2]: missing required parameter 'day'"), "\(refused.text)")
            let misspelt = try await server.request("POST", "/api/v1/workflows/load/runs:batch", body: #"{"runs": [{"params": {"day": "a"}}, {"parms": {}}]}"#)
            #expect(misspelt.status == 400)
            #expect(misspelt.text.contains("unknown field 'parms' in runs[1]; the only field is 'params'"), "\(misspelt.text)")
            let tooMany = try await server.request(
                "POST", "/api/v1/workflows/load/runs:batch", body: #"{"runs": ["# + Array(repeating: #"{"params": {"day": "x"}}"#, count: 1_001).joined(separator: ",") + "]}")
            #expect(tooMany.status == 400)
            #expect(tooMany.text.contains("a batch holds 1 to 1000 runs; this one has 1001"), "\(tooMany.text)")
            #expect(try await server.engine.store.runs(RunQuery(workflow: "load", limit: 1_000)).runs.count == before)
        }
    }
}
