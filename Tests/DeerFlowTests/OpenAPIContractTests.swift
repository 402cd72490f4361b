import DeerFlowTestSupport
import DeerFlowTesting
import Foundation
import Testing

/// The repository root: this file is `Tests/<Target>/OpenAPIContractTests.swift`.
private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func documentText() throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
}

private func loadContract() throws -> OpenAPIContract {
    try OpenAPIContract(yaml: documentText())
}

private let jsonContentType = "application/json; charset=utf-8"

/// A run as `GET /api/v1/runs/{id}` answers it; `edit` changes the JSON text before it is sent.
private func runDetail(_ edit: (String) -> String = { $0 }) -> [UInt8] {
    let text = """
    {"id":"01J0ABCDEF0123456789ABCDEF","workflow":"etl","workflow_version":"etl@0a1b2c3d","status":"running",\
    "params":{"day":"2024-06-01","password":"[REDACTED]"},"trigger":"api","scheduled_for":null,\
    "created_at":"2024-06-01T12:00:00.000Z","started_at":"2024-06-01T12:00:00.020Z","finished_at":null,\
    "progress":{"total":2,"finished":1,"failed":0},\
    "tasks":[{"id":"extract","type":"shell","queue":"default","status":"running","output":null,\
    "attempts":[{"number":1,"status":"running","queued_at":"2024-06-01T12:00:00.000Z",\
    "started_at":"2024-06-01T12:00:00.020Z","finished_at":null,"worker":"host:42:abc","error":null}]},\
    {"id":"load","type":"http","queue":"default","status":"success","output":{"rows":[1,2,3]},"attempts":[]}]}

    """
    return Array(edit(text).utf8)
}

private func checkRunDetail(_ contract: OpenAPIContract, _ edit: (String) -> String) -> [String] {
    contract.validate(method: "GET", path: "/api/v1/runs/{id}", status: 200, contentType: jsonContentType, body: runDetail(edit))
}

@Suite("OpenAPI contract")
struct OpenAPIContractTests {
    @Test("openapi.yaml documents every route of the API, health and metrics servers")
    func operations() throws {
        let documented = try loadContract().operations.map { "\($0.method) \($0.path)" }
        #expect(documented == [
            "GET /api/v1/openapi.yaml",
            "GET /api/v1/workflows",
            "GET /api/v1/workflows/{name}",
            "POST /api/v1/workflows/{name}/runs",
            "GET /api/v1/runs",
            "GET /api/v1/runs/{id}",
            "POST /api/v1/runs/{id}/cancel",
            "GET /api/v1/runs/{id}/tasks/{task_id}/log",
            "GET /api/v1/workers",
            "GET /api/v1/alerts",
            "POST /api/v1/alertmanager/webhook",
            "GET /health",
            "GET /health/live",
            "GET /health/ready",
            "GET /metrics",
        ])
    }

    @Test("every example in openapi.yaml conforms to its schema")
    func examples() throws {
        #expect(try loadContract().validateExamples() == [])
    }

    @Test("the generated OpenAPIDocument.swift holds exactly openapi.yaml")
    func generatedDocumentAgrees() throws {
        let generated = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Sources/DeerFlowHTTP/OpenAPIDocument.swift"), encoding: .utf8)
        // `static let yaml = ##"""` … `"""##`: the literal's value is what lies between the
        // opening line and the newline before the closing delimiter.
        let opening = try #require(generated.range(of: "static let yaml = "))
        let rest = generated[opening.upperBound...]
        let hashes = rest.prefix { $0 == "#" }
        #expect(!hashes.isEmpty, "the document must be a raw string literal")
        let start = try #require(rest.range(of: "\(hashes)\"\"\"\n"))
        let end = try #require(rest.range(of: "\n\"\"\"\(hashes)", options: .backwards))
        #expect(String(rest[start.upperBound..<end.lowerBound]) == (try documentText()), "run scripts/generate-openapi")
    }

    @Test("a conforming run passes, by template or by concrete path")
    func validRun() throws {
        let contract = try loadContract()
        #expect(checkRunDetail(contract, { $0 }) == [])
        #expect(contract.validate(method: "get", path: "/api/v1/runs/01J0ABCDEF0123456789ABCDEF", status: 200, contentType: jsonContentType, body: runDetail()) == [])
        let page = Array(#"{"runs":[],"next_cursor":null}"#.utf8)
        #expect(contract.validate(method: "GET", path: "/api/v1/runs?limit=5&status=failed", status: 200, contentType: jsonContentType, body: page) == [])
    }

    @Test("responses of every kind pass")
    func validResponses() throws {
        let contract = try loadContract()
        let cases: [(String, String, Int, String, String)] = [
            ("GET", "/api/v1/workflows", 200, jsonContentType, #"{"workflows":[{"name":"hello","description":"","version":"hello@00ff00ff","schedule":{"cron":"@daily","timezone":"UTC","catchup":"all","next_fire_at":null},"params":[{"name":"n","type":"int","required":false,"default":3,"secret":false,"description":""}],"tasks":[{"id":"a","type":"noop","depends_on":[],"queue":"default","priority":0,"retries":0,"timeout":"500ms"}]}]}"#),
            ("GET", "/api/v1/runs", 200, jsonContentType, #"{"runs":[],"next_cursor":null}"#),
            ("GET", "/api/v1/workers", 200, jsonContentType, #"{"workers":[{"id":"h:1:x","host":"h","pid":1,"slots":4,"busy":0,"queues":["default"],"version":"0.1.0","started_at":"2024-06-01T12:00:00.000Z","last_seen":"2024-06-01T12:00:05.000Z","state":"lost"}]}"#),
            ("GET", "/api/v1/runs/{id}/tasks/{task_id}/log", 200, "text/plain; charset=utf-8", "=== attempt 1 (success) ===\nhi\n"),
            ("GET", "/api/v1/runs/{id}/tasks/{task_id}/log", 200, jsonContentType, #"{"attempts":[{"attempt":1,"status":"success","log":"hi\n","truncated":false}]}"#),
            ("POST", "/api/v1/runs/{id}/cancel", 409, jsonContentType, #"{"error":{"code":"conflict","message":"run already finished"}}"#),
            ("GET", "/health", 503, jsonContentType, #"{"status":"unhealthy","checks":{"database":{"status":"unhealthy","error":"down"},"custom":{"status":"healthy","tables":42,"latency_ms":1.5}}}"#),
            ("GET", "/health/ready", 503, jsonContentType, #"{"status":"draining","reason":"the worker is shutting down"}"#),
            ("GET", "/health/ready", 503, jsonContentType, #"{"status":"not_ready","reason":"the store does not answer","error":"closed"}"#),
            ("GET", "/api/v1/openapi.yaml", 200, "application/yaml; charset=utf-8", "openapi: 3.1.0\n"),
            ("GET", "/metrics", 200, "text/plain; version=0.0.4; charset=utf-8", "# TYPE x gauge\nx 1\n"),
        ]
        for (method, path, status, contentType, body) in cases {
            let problems = contract.validate(method: method, path: path, status: status, contentType: contentType, body: Array(body.utf8))
            #expect(problems == [], "\(method) \(path) \(status)")
        }
    }

    @Test("a missing required key is named with its object's pointer")
    func missingKey() throws {
        let problems = checkRunDetail(try loadContract()) { $0.replacingOccurrences(of: #""queue":"default","status":"running","#, with: #""status":"running","#) }
        #expect(problems == [#"/tasks/0: missing required key "queue""#])
    }

    @Test("a wrong type says what was expected and what came")
    func wrongType() throws {
        let contract = try loadContract()
        #expect(checkRunDetail(contract) { $0.replacingOccurrences(of: #""total":2"#, with: #""total":"2""#) }
            == [#"/progress/total: expected integer, got string "2""#])
        #expect(checkRunDetail(contract) { $0.replacingOccurrences(of: #""total":2"#, with: #""total":2.5"#) }
            == ["/progress/total: expected integer, got number 2.5"])
        #expect(checkRunDetail(contract) { $0.replacingOccurrences(of: #""finished_at":null,"progress""#, with: #""finished_at":5,"progress""#) }
            == ["/finished_at: expected string or null, got number 5"])
        #expect(checkRunDetail(contract) { $0.replacingOccurrences(of: #""tasks":["#, with: #""tasks":{"a":["#).replacingOccurrences(of: "]}]}\n", with: "]}]}}\n") }
            == ["/tasks: expected array, got object"])
    }

    @Test("an unknown key is rejected where additionalProperties is false")
    func unknownKey() throws {
        let problems = checkRunDetail(try loadContract()) { $0.replacingOccurrences(of: #""number":1,"#, with: #""number":1,"host":"h","#) }
        #expect(problems == [#"/tasks/0/attempts/0: unexpected key "host" (allowed: number, status, queued_at, started_at, finished_at, worker, error)"#])
    }

    @Test("a value outside an enum lists the allowed values")
    func badEnum() throws {
        let problems = checkRunDetail(try loadContract()) { $0.replacingOccurrences(of: #""number":1,"status":"running""#, with: #""number":1,"status":"weird""#) }
        #expect(problems == [#"/tasks/0/attempts/0/status: "weird" is not one of [queued, running, success, failed, timeout, cancelled]"#])
    }

    @Test("an undocumented status is reported with the documented ones")
    func undocumentedStatus() throws {
        let problems = try loadContract().validate(method: "GET", path: "/api/v1/runs/{id}", status: 418, contentType: jsonContentType, body: runDetail())
        #expect(problems == ["GET /api/v1/runs/{id}: status 418 is not documented (documented: 200, 401, 404, 500, 503)"])
    }

    @Test("a wrong or missing content type is reported")
    func wrongContentType() throws {
        let contract = try loadContract()
        #expect(contract.validate(method: "GET", path: "/api/v1/runs/{id}", status: 200, contentType: "text/plain; charset=utf-8", body: runDetail())
            == [#"GET /api/v1/runs/{id} 200: content type "text/plain; charset=utf-8" is not documented (documented: application/json)"#])
        #expect(contract.validate(method: "GET", path: "/api/v1/runs/{id}", status: 200, contentType: nil, body: runDetail())
            == ["GET /api/v1/runs/{id} 200: the response has no Content-Type; documented: application/json"])
        // A documented media type parameter (version=0.0.4) must be present.
        #expect(contract.validate(method: "GET", path: "/metrics", status: 200, contentType: "text/plain; charset=utf-8", body: Array("x 1\n".utf8))
            == [#"GET /metrics 200: content type "text/plain; charset=utf-8" is not documented (documented: text/plain; version=0.0.4)"#])
    }

    @Test("a timestamp that is not RFC 3339 is reported", arguments: [
        "2024-06-01 12:00:00Z", "2024-06-01T12:00:00", "2023-02-29T00:00:00Z", "2024-06-01T24:00:00Z",
        "2024-06-01T12:00:00.Z", "2024-6-01T12:00:00Z", "2024-06-01T12:00:00+0200", "yesterday",
    ])
    func badDateTime(_ timestamp: String) throws {
        let problems = checkRunDetail(try loadContract()) { $0.replacingOccurrences(of: "\"created_at\":\"2024-06-01T12:00:00.000Z\"", with: "\"created_at\":\"\(timestamp)\"") }
        #expect(problems == ["/created_at: \"\(timestamp)\" is not an RFC 3339 date-time"])
    }

    @Test("RFC 3339 variants are accepted", arguments: [
        "2024-06-01T12:00:00Z", "2024-02-29T00:00:00.5+02:00", "2024-06-01t12:00:00.123456z", "1990-12-31T23:59:60-08:00",
    ])
    func goodDateTime(_ timestamp: String) throws {
        let problems = checkRunDetail(try loadContract()) { $0.replacingOccurrences(of: "\"created_at\":\"2024-06-01T12:00:00.000Z\"", with: "\"created_at\":\"\(timestamp)\"") }
        #expect(problems == [])
    }

    @Test("patterns, minimums and several problems at once")
    func otherConstraints() throws {
        let problems = checkRunDetail(try loadContract()) {
            $0.replacingOccurrences(of: #""id":"01J0ABCDEF0123456789ABCDEF""#, with: #""id":"run-1""#)
                .replacingOccurrences(of: #""number":1,"#, with: #""number":0,"#)
                .replacingOccurrences(of: #""trigger":"api""#, with: #""trigger":"cron""#)
        }
        #expect(problems == [
            #"/id: "run-1" does not match the pattern ^[0-9A-HJKMNP-TV-Z]{26}$"#,
            "/trigger: \"cron\" is not one of [api, schedule, library]",
            "/tasks/0/attempts/0/number: 0 is less than the minimum 1",
        ])
    }

    @Test("oneOf reports why no alternative matched")
    func oneOf() throws {
        let contract = try loadContract()
        let problems = contract.validate(method: "GET", path: "/health/ready", status: 503, contentType: jsonContentType, body: Array(#"{"status":"down","reason":"x"}"#.utf8))
        #expect(problems == [#"/: matches none of the oneOf alternatives: [0] /status: "down" is not one of [draining] | [1] /status: "down" is not one of [not_ready]"#])
        let schedule = contract.validate(method: "GET", path: "/api/v1/workflows/{name}", status: 200, contentType: jsonContentType, body: Array(
            #"{"name":"a","description":"","version":"a@00000000","schedule":"daily","params":[],"tasks":[]}"#.utf8))
        #expect(schedule == [#"/schedule: matches none of the oneOf alternatives: [0] /schedule: expected null, got string "daily" | [1] /schedule: expected object, got string "daily""#])
    }

    @Test("bodies that are not JSON, and operations that are not documented")
    func malformed() throws {
        let contract = try loadContract()
        #expect(contract.validate(method: "GET", path: "/api/v1/runs/{id}", status: 200, contentType: jsonContentType, body: Array(#"{"id": }"#.utf8))
            == ["GET /api/v1/runs/{id} 200: the body is not valid JSON: unexpected character '}' at byte 7"])
        #expect(contract.validate(method: "GET", path: "/api/v1/runs", status: 200, contentType: jsonContentType, body: Array(#"{"runs":[],"runs":[]}"#.utf8))
            == [#"GET /api/v1/runs 200: the body is not valid JSON: duplicate key "runs" at byte 11"#])
        #expect(contract.validate(method: "GET", path: "/api/v1/runs", status: 200, contentType: jsonContentType, body: [])
            == ["GET /api/v1/runs 200: the body is not valid JSON: the body is empty"])
        #expect(contract.validate(method: "DELETE", path: "/api/v1/runs/{id}", status: 200, contentType: jsonContentType, body: [])
            == ["DELETE /api/v1/runs/{id} is not a documented operation"])
        #expect(contract.validate(method: "GET", path: "/api/v2/runs", status: 200, contentType: jsonContentType, body: [])
            == ["GET /api/v2/runs is not a documented operation"])
    }

    @Test("a document outside the supported subset is refused when loaded")
    func unsupportedDocuments() throws {
        let base = """
        openapi: 3.1.0
        info: {title: t, version: '1'}
        paths:
          /things:
            get:
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema: SCHEMA
        """
        func load(_ schema: String) -> String? {
            do {
                _ = try OpenAPIContract(yaml: base.replacingOccurrences(of: "SCHEMA", with: schema))
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(load("{type: string}") == nil)
        #expect(load("{type: string, minLength: 2}")?.contains("schema keyword 'minLength' is not checked by OpenAPIContract") == true)
        #expect(load("{$ref: '#/components/schemas/Nope'}")?.contains("$ref #/components/schemas/Nope does not resolve") == true)
        #expect(load("{type: [string, strung]}") == #"/paths/~1things/get/responses/200/content/application~1json/schema/type: "strung" is not a JSON Schema type"#)
        #expect(load("{type: string, pattern: '(['}")?.contains("is not a valid regular expression") == true)
        #expect(throws: OpenAPIContract.DocumentError.self) { try OpenAPIContract(yaml: "openapi: 3.1.0\n") }
        #expect(throws: OpenAPIContract.DocumentError.self) { try OpenAPIContract(yaml: "paths: [") }
    }

    @Test("a response without documented content must have no body; allOf, anyOf and const are checked")
    func smallDocument() throws {
        let contract = try OpenAPIContract(yaml: """
        openapi: 3.1.0
        info: {title: t, version: '1'}
        paths:
          /things/{id}:
            delete:
              responses:
                '204': {description: gone}
                4XX:
                  description: client error
                  content:
                    application/problem+json:
                      schema:
                        allOf:
                          - {type: object, required: [title]}
                          - {type: object, properties: {status: {const: 400}}}
                default:
                  description: anything
                  content:
                    '*/*':
                      schema:
                        anyOf: [{type: integer}, {type: boolean}]
        """)
        #expect(contract.operations.map { "\($0.method) \($0.path)" } == ["DELETE /things/{id}"])
        #expect(contract.validate(method: "DELETE", path: "/things/7", status: 204, contentType: nil, body: []) == [])
        #expect(contract.validate(method: "DELETE", path: "/things/7", status: 204, contentType: nil, body: [0x7B])
            == ["DELETE /things/{id} 204: no body is documented, got 1 bytes"])
        #expect(contract.validate(method: "DELETE", path: "/things/7", status: 404, contentType: "application/problem+json", body: Array(#"{"status":404}"#.utf8))
            == [#"/: missing required key "title""#, "/status: 404 is not 400"])
        #expect(contract.validate(method: "DELETE", path: "/things/7", status: 500, contentType: "application/json", body: Array("true".utf8)) == [])
        #expect(contract.validate(method: "DELETE", path: "/things/7", status: 500, contentType: "application/json", body: Array("\"x\"".utf8))
            == [#"/: matches none of the anyOf alternatives: [0] /: expected integer, got string "x" | [1] /: expected boolean, got string "x""#])
    }
}
