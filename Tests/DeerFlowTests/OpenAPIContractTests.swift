import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing
import Yams

/// The repository root: this file is `Tests/<Target>/OpenAPIContractTests.swift`.
private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// openapi.yaml and what is generated from it. (The document's validity is checked by
/// openapi-spec-validator, and the server's answers against it by schemathesis, in scripts/test;
/// that the committed code is what the generator makes of it, by `scripts/generate-openapi --check`.)
@Suite("OpenAPI document")
struct OpenAPIContractTests {
    @Test("openapi.yaml documents every route of the API, health and metrics servers")
    func operations() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.compose(yaml: text))
        var documented: [String] = []
        for (path, item) in try #require(document["paths"]?.mapping) {
            for (method, _) in try #require(item.mapping) where ["get", "post", "put", "patch", "delete"].contains(method.string ?? "") {
                documented.append("\((method.string ?? "").uppercased()) \(path.string ?? "")")
            }
        }
        #expect(documented == [
            "GET /api/v1/openapi.yaml",
            "GET /api/v1/workflows",
            "GET /api/v1/workflows/{name}",
            "POST /api/v1/workflows/{name}/runs",
            "POST /api/v1/workflows/{name}/runs:batch",
            "POST /api/v1/workflows/{name}/pause",
            "POST /api/v1/workflows/{name}/unpause",
            "POST /api/v1/workflows/{name}/backfills",
            "GET /api/v1/backfills/{id}",
            "POST /api/v1/backfills/{id}/cancel",
            "GET /api/v1/runs",
            "GET /api/v1/runs/{id}",
            "POST /api/v1/runs/{id}/cancel",
            "POST /api/v1/runs/{id}/retry",
            "POST /api/v1/runs/{id}/rerun",
            "GET /api/v1/runs/{id}/tasks/{task_id}/log",
            "GET /api/v1/workers",
            "POST /api/v1/maintenance/purge",
            "GET /api/v1/alerts",
            "POST /api/v1/alertmanager/webhook",
            "POST /api/v1/hooks/{name}",
            "GET /health",
            "GET /health/live",
            "GET /health/ready",
            "GET /metrics",
        ])
    }

    @Test("the resource the server serves is a copy of openapi.yaml")
    func resourceCopy() throws {
        let canonical = try Data(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"))
        let resource = try Data(contentsOf: repositoryRoot.appendingPathComponent("Sources/DeerFlowAPI/openapi.yaml"))
        #expect(canonical == resource, "Sources/DeerFlowAPI/openapi.yaml differs from openapi.yaml: run scripts/generate-openapi")
    }
}
