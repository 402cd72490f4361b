import DeerFlow
import DeerFlowCore
import DeerFlowHTTP
import DeerFlowSQLite
import DeerFlowTestSupport
import DeerFlowTesting
import DeerFlowUI
import Foundation
import Hummingbird
import Logging
import Testing

/// No query per row: each UI page makes the same store calls whatever the number of runs it
/// lists or tasks it draws (counted by a store that passes every call on to SQLite).
@Suite("UI store calls")
struct UIStoreCallsTests {
    /// A fan-out of `tasks` tasks: `root`, then the others depending on it.
    static func fan(_ name: String, tasks: Int) -> String {
        var yaml = "name: \(name)\ntasks:\n  - id: root\n    type: noop\n"
        for index in 1..<tasks { yaml += "  - id: t\(index)\n    type: noop\n    depends_on: [root]\n" }
        return yaml
    }

    @Test("each page makes the same store calls for 10 runs as for 20, and for a 50-task run as for a 100-task run")
    func boundedStoreCalls() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("fan50.yaml", Self.fan("fan50", tasks: 50))
        try directory.write("fan100.yaml", Self.fan("fan100", tasks: 100))
        let workflows = try ["fan50", "fan100"].map { Workflow(definition: try WorkflowFileLoader.load(file: directory.file("\($0).yaml"))) }
        let quiet = Logger(label: "deerflow.test", factory: { _ in SwiftLogNoOpLogHandler() })
        let sqlite = SQLiteWorkflowStore(path: directory.file("db.sqlite"), logger: quiet)
        try await sqlite.prepare()
        let store = CountingStore(sqlite)
        try await store.withRunning { store in
            let engine = try DeerFlowEngine(store: store, workflows: workflows, logger: quiet)
            var api = APIConfiguration()
            api.port = 0
            api.browser = WebUI(
                engine: engine, configuration: .init(tokens: []), monitoring: nil, outbox: nil, live: LiveUpdates(store: store, pollsStore: false))
            let (ports, listening) = AsyncStream.makeStream(of: Int.self)
            let application = APIServer.makeApplication(engine: engine, configuration: api, metrics: nil, onListening: { listening.yield($0) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await application.runService() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                /// The store calls `path` makes (after the overview's 1 s cache of store figures expired).
                func calls(_ path: String) async throws -> [String: Int] {
                    try await Task.sleep(for: .milliseconds(1100))
                    store.reset()
                    let answer = try await TestServer.send("GET", "http://127.0.0.1:\(port)\(path)", body: nil, headers: [:])
                    #expect(answer.status == 200, "\(path): \(answer.status)")
                    return store.calls
                }
                let pages = ["/", "/runs", "/runs?workflow=fan50&status=pending", "/workflows", "/workflows/fan50", "/workflows/fan100", "/workers", "/alerts", "/dashboard"]
                for _ in 0..<10 { try await engine.trigger("fan50") }
                var few: [String: [String: Int]] = [:]
                for page in pages { few[page] = try await calls(page) }
                for _ in 0..<10 { try await engine.trigger("fan50") }
                for page in pages {
                    let many = try await calls(page)
                    #expect(many == few[page], "\(page): \(few[page] ?? [:]) with 10 runs, \(many) with 20")
                    #expect(many.values.reduce(0, +) <= 5, "\(page): \(many)")
                }
                // A run page: the same calls for 50 tasks as for 100, with a task's log or without.
                let small = try await engine.trigger("fan50").id.rawValue
                let big = try await engine.trigger("fan100").id.rawValue
                for suffix in ["", "?task=root", "?all=1"] {
                    let fifty = try await calls("/runs/\(small)\(suffix)")
                    let hundred = try await calls("/runs/\(big)\(suffix)")
                    #expect(fifty == hundred, "run page\(suffix): \(fifty) for 50 tasks, \(hundred) for 100")
                    #expect(hundred.values.reduce(0, +) <= 3, "run page\(suffix): \(hundred)")
                }
                group.cancelAll()
            }
        }
    }
}
