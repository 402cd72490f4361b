import DeerFlowCore
public import DeerFlowTesting
import Foundation
public import Testing

/// Every page of the web UI through a real `deerflow server`, shared by the SQLite and PostgreSQL
/// suites: each answers 200 with what it must show, a 500-task run's page stays within the page
/// weight target, and the Metrics page draws every panel of the shipped Grafana dashboard with
/// the same PromQL, all understood by DeerFlow's evaluator.
public enum UIScenario {
    /// `metrics.yaml`: a sample of the history every second, so the charts fill quickly.
    public static let metricsConfig = "metrics:\n  prometheus:\n    scrape_interval: 1s\n"

    /// The line the `small` workflow's task prints.
    public static let logLine = "ui-scenario-line"

    /// `wide500` (1 → 498 → 1 noop tasks, as `deerflow bench --server --only ui` has it) and
    /// `small` (a shell task printing ``logLine``, failing with `fail: true`).
    public static var workflows: [String: String] {
        var wide = "name: wide500\ntasks:\n  - id: start\n    type: noop\n"
        for index in 0..<498 { wide += "  - id: m\(index)\n    type: noop\n    depends_on: [start]\n" }
        wide += "  - id: end\n    type: noop\n    depends_on: [\((0..<498).map { "m\($0)" }.joined(separator: ", "))]\n"
        let small = """
            name: small
            params:
              fail: {type: bool, default: false}
            tasks:
              - id: say
                type: shell
                script: echo \(logLine); [ "$DEERFLOW_PARAM_FAIL" != "true" ]
            """
        return ["wide500.yaml": wide, "small.yaml": small]
    }

    /// Writes the workflows (into `workflows/`) and the config (`config/metrics.yaml`).
    public static func write(into directory: TemporaryDirectory) throws {
        for (name, text) in workflows { try directory.write("workflows/\(name)", text) }
        try directory.write("config/metrics.yaml", metricsConfig)
    }

    /// The most a page may weigh with the stylesheet and the script (the issue's target).
    public static let weightLimit = 150_000

    /// Checks every page of the server on `api` (started with workers and ``write(into:)``'s files).
    public static func check(api: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let base = "http://127.0.0.1:\(api)"
        func get(_ path: String) async throws -> String {
            let answer = try await TestServer.send("GET", base + path, body: nil, headers: [:])
            #expect(answer.status == 200, "GET \(path) answered \(answer.status): \(answer.text.prefix(300))", sourceLocation: sourceLocation)
            return answer.text
        }
        let wide = try await ClusterAPI.trigger(api: api, workflow: "wide500")
        let ok = try await ClusterAPI.trigger(api: api, workflow: "small")
        let failed = try await ClusterAPI.trigger(api: api, workflow: "small", params: #"{"fail": true}"#)
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: [wide, ok, failed], timeout: .seconds(180))
        #expect(runs[wide]?["status"]?.stringValue == "success" && runs[ok]?["status"]?.stringValue == "success", sourceLocation: sourceLocation)
        #expect(runs[failed]?["status"]?.stringValue == "failed", sourceLocation: sourceLocation)

        let overview = try await get("/")
        #expect(overview.contains("Active runs") && overview.contains("href=\"/runs/\(ok)\""), sourceLocation: sourceLocation)
        let workflowsPage = try await get("/workflows")
        #expect(workflowsPage.contains("href=\"/workflows/wide500\"") && workflowsPage.contains("href=\"/workflows/small\""), sourceLocation: sourceLocation)

        // The workflow page: the DAG's nodes link to the Tasks table's rows; the grid links attempts.
        let workflow = try await get("/workflows/wide500")
        #expect(workflow.contains("<svg class=\"dag\"") && workflow.contains("href=\"#task-m497\"") && workflow.contains("<tr id=\"task-m497\">"), sourceLocation: sourceLocation)
        #expect(workflow.contains("href=\"/runs/\(wide)?task=end&amp;attempt=1#log\""), sourceLocation: sourceLocation)

        // A 500-task run: every task in the DAG; the timeline and attempts folded to what explains
        // the run, within the weight target; all of them with ?all=1.
        let run = try await get("/runs/\(wide)")
        let stylesheet = try await get("/static/deerflow.css")
        let script = try await get("/static/deerflow.js")
        let weight = run.utf8.count + stylesheet.utf8.count + script.utf8.count
        #expect(weight <= weightLimit, "the 500-task run's page weighs \(weight) bytes with stylesheet and script", sourceLocation: sourceLocation)
        #expect((0..<498).allSatisfy { run.contains("href=\"?task=m\($0)#log\"") }, "every task is a DAG node", sourceLocation: sourceLocation)
        #expect(run.contains("Showing ") && run.contains(" of 500 tasks: the critical path"), sourceLocation: sourceLocation)
        let logLinks = "#log\">log</a>"
        let folded = run.components(separatedBy: logLinks).count - 1
        #expect(folded > 0 && folded < 100, "\(folded) attempt rows in the folded table", sourceLocation: sourceLocation)
        #expect(run.contains("★ start") && run.contains("★ end"), "the critical path is in the timeline", sourceLocation: sourceLocation)
        let all = try await get("/runs/\(wide)?all=1")
        #expect(all.components(separatedBy: logLinks).count - 1 == 500, sourceLocation: sourceLocation)
        #expect(all.components(separatedBy: "<text class=\"label").count - 1 == 500 && !all.contains("Showing "), "every task is a timeline row", sourceLocation: sourceLocation)

        // A browser (Accept-Encoding: gzip) gets the page gzip-compressed: gzip(1) restores it whole.
        // (`followRedirects: false`: the client that leaves bodies as sent.)
        let gzipped = try await TestServer.send("GET", base + "/runs/\(wide)?all=1", body: nil, headers: ["Accept-Encoding": "gzip, deflate, br"], followRedirects: false)
        #expect(gzipped.header("Content-Encoding") == "gzip" && gzipped.header("Vary") == "Accept-Encoding", "\(gzipped.headers)", sourceLocation: sourceLocation)
        #expect(gzipped.body.count * 4 < all.utf8.count, "gzip: \(gzipped.body.count) of \(all.utf8.count) bytes", sourceLocation: sourceLocation)
        let restored = try gunzip(gzipped.body)
        #expect(restored.components(separatedBy: logLinks).count - 1 == 500 && restored.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</html>"), sourceLocation: sourceLocation)
        let styles = try await TestServer.send("GET", base + "/static/deerflow.css", body: nil, headers: ["Accept-Encoding": "gzip"], followRedirects: false)
        #expect(try styles.header("Content-Encoding") == "gzip" && gunzip(styles.body) == stylesheet, sourceLocation: sourceLocation)
        // Not without it, nor with gzip refused (q=0), nor for the API's JSON.
        for refused in ["identity", "gzip;q=0"] {
            let plain = try await TestServer.send("GET", base + "/runs/\(wide)", body: nil, headers: ["Accept-Encoding": refused], followRedirects: false)
            #expect(plain.header("Content-Encoding") == nil && plain.text.contains("Showing "), "Accept-Encoding: \(refused)", sourceLocation: sourceLocation)
        }
        let json = try await TestServer.send("GET", base + "/api/v1/runs/\(wide)", body: nil, headers: ["Accept-Encoding": "gzip"], followRedirects: false)
        #expect(json.header("Content-Encoding") == nil && json.json != nil, sourceLocation: sourceLocation)

        // Runs with filters.
        let failedOnly = try await get("/runs?workflow=small&status=failed")
        #expect(failedOnly.contains("/runs/\(failed)") && !failedOnly.contains("/runs/\(ok)"), sourceLocation: sourceLocation)
        let small = try await get("/runs?workflow=small")
        #expect(small.contains("/runs/\(failed)") && small.contains("/runs/\(ok)") && !small.contains("/runs/\(wide)"), sourceLocation: sourceLocation)
        #expect(try await get("/runs?status=bogus").contains("unknown status &#39;bogus&#39;"), sourceLocation: sourceLocation)

        // A task's log, on the run page and as a file.
        #expect(try await get("/runs/\(ok)?task=say#log").contains(logLine), sourceLocation: sourceLocation)
        #expect(try await get("/runs/\(ok)/tasks/say/log.txt").contains(logLine), sourceLocation: sourceLocation)
        #expect(try await get("/runs/\(failed)").contains("s-failed"), sourceLocation: sourceLocation)

        #expect(try await get("/workers").contains("s-active"), sourceLocation: sourceLocation)
        #expect(try await get("/alerts").contains("Notification deliveries"), sourceLocation: sourceLocation)
        try await checkMetricsPage(get, sourceLocation: sourceLocation)
    }

    /// The Metrics page draws every panel of `deploy/grafana/deerflow-overview.json` with the same
    /// expressions (once the history has samples), names the panels only Grafana draws, and has
    /// no expression DeerFlow's evaluator does not understand.
    static func checkMetricsPage(_ get: (String) async throws -> String, sourceLocation: SourceLocation) async throws {
        let file = LoopbackScript.repositoryRoot.appendingPathComponent("deploy/grafana/deerflow-overview.json")
        let dashboard = try JSONSerialization.jsonObject(with: try Data(contentsOf: file)) as? [String: Any]
        let panels = try #require(dashboard?["panels"] as? [[String: Any]], sourceLocation: sourceLocation)
        var page = ""
        let deadline = ContinuousClock.now + .seconds(30)
        repeat {
            page = try await get("/dashboard")
            if page.contains("<figure class=\"chart\">") { break }
            try await Task.sleep(for: .milliseconds(500))
        } while ContinuousClock.now < deadline
        #expect(page.contains("<figure class=\"chart\">"), "no chart on the Metrics page: \(page.prefix(2000))", sourceLocation: sourceLocation)
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
                .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
        }
        #expect(panels.count >= 10, sourceLocation: sourceLocation)
        for panel in panels {
            let title = try #require(panel["title"] as? String, sourceLocation: sourceLocation)
            if panel["type"] as? String == "heatmap" {
                #expect(page.contains("Drawn only in Grafana (heatmaps): ") && page.contains(escaped(title)), "\(title)", sourceLocation: sourceLocation)
                continue
            }
            #expect(page.contains("<h3>\(escaped(title))</h3>"), "the Metrics page has no panel '\(title)'", sourceLocation: sourceLocation)
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expression = try #require(target["expr"] as? String, sourceLocation: sourceLocation)
                #expect(page.contains("<code>\(escaped(expression))</code>"), "panel '\(title)' lacks \(expression)", sourceLocation: sourceLocation)
            }
        }
        #expect(!page.contains("does not understand"), sourceLocation: sourceLocation)
    }
}

/// `bytes` decompressed by gzip(1), an implementation independent of the server's.
func gunzip(_ bytes: [UInt8]) throws -> String {
    let (status, output) = try Process.output(of: ["gzip", "-dc"], input: Data(bytes))
    guard status == 0 else { throw ProcessFailure("gzip -dc failed with \(status)") }
    return String(decoding: output, as: UTF8.self)
}
