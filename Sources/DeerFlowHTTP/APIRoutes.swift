import DeerFlow
import DeerFlowCore
import Foundation
import Hummingbird
import NIOCore
import HTTPTypes

/// `/api/v1/...` routes.
struct APIRoutes: Sendable {
    let engine: DeerFlowEngine
    let maxBodyBytes: Int

    func register(on router: some RouterMethods<BasicRequestContext>) {
        router.get("/api/v1/openapi.yaml") { _, _ in
            JSONResponse.text(OpenAPIDocument.yaml, contentType: "application/yaml; charset=utf-8")
        }
        router.get("/api/v1/workflows") { _, _ in try await listWorkflows() }
        router.get("/api/v1/workflows/{name}") { _, context in
            try await workflow(try context.parameters.require("name"))
        }
        router.post("/api/v1/workflows/{name}/runs") { request, context in
            try await trigger(try context.parameters.require("name"), request: request)
        }
        router.get("/api/v1/runs") { request, _ in try await listRuns(request) }
        router.get("/api/v1/runs/{id}") { _, context in
            try await run(try context.parameters.require("id"))
        }
        router.post("/api/v1/runs/{id}/cancel") { _, context in
            try await cancel(try context.parameters.require("id"))
        }
        router.get("/api/v1/runs/{id}/tasks/{task_id}/log") { request, context in
            try await log(run: try context.parameters.require("id"), task: try context.parameters.require("task_id"), request: request)
        }
        router.get("/api/v1/workers") { _, _ in
            let workers = try await engine.store.workers()
            return JSONResponse.make(["workers": .array(workers.map(JSONRepresentation.worker))])
        }
    }

    private func nextFires() async -> [String: Date] {
        let schedules = (try? await engine.store.schedules()) ?? []
        return Dictionary(schedules.compactMap { record in record.nextFireAt.map { (record.workflow, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    private func listWorkflows() async throws -> Response {
        let fires = await nextFires()
        let workflows = engine.workflows.all.map { JSONRepresentation.workflow($0, nextFire: fires[$0.definition.name]) }
        return JSONResponse.make(["workflows": .array(workflows)])
    }

    private func workflow(_ name: String) async throws -> Response {
        guard let entry = engine.workflows[name] else {
            throw DeerFlowError(.notFound, "workflow '\(name)' not found")
        }
        return JSONResponse.make(JSONRepresentation.workflow(entry, nextFire: await nextFires()[name]))
    }

    private func secrets(of workflow: String) -> Set<String> {
        Set(engine.workflows[workflow]?.definition.params.filter(\.secret).map(\.name) ?? [])
    }

    private func trigger(_ name: String, request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        var params: [String: JSONValue] = [:]
        let text = String(buffer: body)
        if !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            let json: JSONValue
            do {
                json = try JSONValue(parsing: text)
            } catch {
                throw DeerFlowError(.badRequest, "the request body is not valid JSON; send {\"params\": {...}}")
            }
            guard case .object(let object) = json else {
                throw DeerFlowError(.badRequest, "the request body must be a JSON object: {\"params\": {...}}")
            }
            if let unknown = object.keys.sorted().first(where: { $0 != "params" }) {
                throw DeerFlowError(.badRequest, "unknown field '\(unknown)' in the request body; the only field is 'params'")
            }
            if let given = object["params"] {
                guard case .object(let values) = given else {
                    throw DeerFlowError(.badRequest, "'params' must be a JSON object of parameter names to values, got \(given.typeName)")
                }
                params = values
            }
        }
        // The run's span continues the request's span (TracingMiddleware), which continues the
        // caller's traceparent.
        let run = try await engine.trigger(name, params: params, trigger: .api)
        return JSONResponse.make(
            JSONRepresentation.run(run, secrets: secrets(of: name)), status: .created,
            headers: [.location: "/api/v1/runs/\(run.id.rawValue)"])
    }

    private func listRuns(_ request: Request) async throws -> Response {
        let query = request.uri.queryParameters
        var runQuery = RunQuery()
        if let workflow = query.get("workflow"), !workflow.isEmpty { runQuery.workflow = workflow }
        if let status = query.get("status"), !status.isEmpty {
            guard let parsed = RunStatus(rawValue: status) else {
                throw DeerFlowError(.badRequest, "unknown status '\(status)'; use one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            runQuery.status = parsed
        }
        if let limit = query.get("limit"), !limit.isEmpty {
            guard let value = Int(limit), (1...1000).contains(value) else {
                throw DeerFlowError(.badRequest, "limit must be an integer from 1 to 1000, got '\(limit)'")
            }
            runQuery.limit = value
        }
        if let cursor = query.get("cursor"), !cursor.isEmpty {
            guard RunID.isWellFormed(cursor) else {
                throw DeerFlowError(.badRequest, "cursor '\(cursor)' is not a run id; pass the next_cursor of the previous page")
            }
            runQuery.cursor = RunID(rawValue: cursor)
        }
        let page = try await engine.runs(runQuery)
        return JSONResponse.make([
            "runs": .array(page.runs.map { JSONRepresentation.run($0, secrets: secrets(of: $0.workflow)) }),
            "next_cursor": page.nextCursor.map { .string($0.rawValue) } ?? .null,
        ])
    }

    private func runID(_ text: String) throws -> RunID {
        guard RunID.isWellFormed(text) else { throw DeerFlowError(.notFound, "run \(text) not found") }
        return RunID(rawValue: text)
    }

    private func run(_ id: String) async throws -> Response {
        guard let detail = try await engine.run(try runID(id)) else {
            throw DeerFlowError(.notFound, "run \(id) not found")
        }
        return JSONResponse.make(JSONRepresentation.runDetail(detail, secrets: secrets(of: detail.run.workflow)))
    }

    private func cancel(_ id: String) async throws -> Response {
        let run = try await engine.cancel(try runID(id))
        return JSONResponse.make(JSONRepresentation.run(run, secrets: secrets(of: run.workflow)))
    }

    private func log(run id: String, task: String, request: Request) async throws -> Response {
        let runID = try runID(id)
        var attempt: Int?
        if let text = request.uri.queryParameters.get("attempt"), !text.isEmpty {
            guard let number = Int(text), number >= 1 else {
                throw DeerFlowError(.badRequest, "attempt must be a positive integer, got '\(text)'")
            }
            attempt = number
        }
        guard let logs = try await engine.store.taskLogs(run: runID, task: task, attempt: attempt) else {
            if try await engine.run(runID) == nil { throw DeerFlowError(.notFound, "run \(id) not found") }
            throw DeerFlowError(.notFound, "run \(id) has no task '\(task)'")
        }
        if let attempt, logs.isEmpty {
            throw DeerFlowError(.notFound, "task '\(task)' of run \(id) has no attempt \(attempt)")
        }
        if let follow = request.uri.queryParameters.get("follow"), follow == "true" || follow == "1" {
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody { [engine, attempt] writer in
                    try await LogFollower(store: engine.store, run: runID, task: task, attempt: attempt).stream(to: &writer)
                })
        }
        if request.uri.queryParameters.get("format") == "json" {
            return JSONResponse.make(["attempts": .array(logs.map { log in
                ["attempt": .int(log.attempt), "status": .string(log.status.rawValue), "log": .string(log.text), "truncated": .bool(log.truncated)]
            })])
        }
        let text = logs.map { log in
            "=== attempt \(log.attempt) (\(log.status.rawValue)) ===\n" + log.text + (log.text.isEmpty || log.text.hasSuffix("\n") ? "" : "\n")
        }.joined()
        return JSONResponse.text(text)
    }
}
