public import DeerFlowCore
public import DeerFlowTesting
public import Foundation
public import Testing

/// Concurrency limits on real processes: a queue with `concurrency: 2` and a workflow with
/// `max_active_runs: 1`, checked from the attempts' and runs' own start and finish times.
public enum ConcurrencyScenario {
    /// `reports`: `width` independent sleep tasks on the limited queue `reports`.
    public static func reportsWorkflow(width: Int, sleep: String = "300ms") -> String {
        var yaml = "name: reports\ntasks:\n"
        for index in 0..<width {
            yaml += "  - id: r\(index)\n    type: sleep\n    duration: \(sleep)\n    queue: reports\n"
        }
        return yaml
    }

    /// The file whose creation lets `serial`'s first task finish (see ``serialWorkflow(gate:)``).
    public static let gateFile = "serial.gate"

    /// `serial`: at most one run at a time. Its first task waits for the file `gate` to exist, so
    /// the test decides when the first run may end: the later runs' waiting is checked while it is
    /// certainly active, however slowly a loaded machine runs the test.
    public static func serialWorkflow(gate: String) -> String {
        """
        name: serial
        max_active_runs: 1
        tasks:
          - id: first
            type: shell
            script: while [ ! -e '\(gate)' ]; do sleep 0.05; done
          - id: second
            type: sleep
            duration: 500ms
            depends_on: [first]
        """
    }

    /// Writes `workflows/reports.yaml`, `workflows/serial.yaml` and `config/deerflow.yaml` into
    /// `directory`, with `serial`'s gate at ``gateFile`` in it.
    public static func write(into directory: TemporaryDirectory, width: Int = 8) throws {
        try directory.write("workflows/reports.yaml", reportsWorkflow(width: width))
        try directory.write("workflows/serial.yaml", serialWorkflow(gate: directory.file(gateFile)))
        try directory.write("config/deerflow.yaml", config)
    }

    /// `deerflow.yaml`: workers serve both queues; `reports` runs at most 2 attempts in the cluster.
    public static let config = """
        worker:
          queues: [default, reports]
          poll_interval: 200ms
        queues:
          reports: {concurrency: 2}
        """

    /// The most intervals open at one instant. Intervals are half-open: one that ends when
    /// another starts does not overlap it.
    public static func maxOverlap(_ intervals: [(start: Date, end: Date)]) -> Int {
        let edges = intervals.flatMap { [($0.start, 1), ($0.end, -1)] }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var open = 0
        var most = 0
        for (_, delta) in edges {
            open += delta
            most = max(most, open)
        }
        return most
    }

    /// The [started, finished] intervals of a run detail's attempts.
    public static func attemptIntervals(_ run: [String: JSONValue]) -> [(start: Date, end: Date)] {
        guard case .array(let tasks)? = run["tasks"] else { return [] }
        var intervals: [(start: Date, end: Date)] = []
        for case .object(let task) in tasks {
            guard case .array(let attempts)? = task["attempts"] else { continue }
            for case .object(let attempt) in attempts {
                if let start = attempt["started_at"]?.stringValue.flatMap(Timestamp.parse),
                   let end = attempt["finished_at"]?.stringValue.flatMap(Timestamp.parse) {
                    intervals.append((start, end))
                }
            }
        }
        return intervals
    }

    /// Triggers `runs` runs of `reports` and `serial` through `apis` (alternating), checks that
    /// `serial` runs waited with a reason, opens the gate in `directory` (written by
    /// ``write(into:width:)``), waits for all, and checks the limits from the times.
    public static func check(
        apis: [Int], directory: TemporaryDirectory, runs: Int = 3, width: Int = 8, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var reports: [String] = []
        var serial: [String] = []
        for index in 0..<runs {
            reports.append(try await ClusterAPI.trigger(api: apis[index % apis.count], workflow: "reports"))
            serial.append(try await ClusterAPI.trigger(api: apis[(index + 1) % apis.count], workflow: "serial"))
        }
        // The later serial runs wait, saying why (UI and API), while the first one is active.
        let page = try await TestServer.send("GET", "http://127.0.0.1:\(apis[0])/runs/\(serial[runs - 1])", body: nil, headers: [:])
        #expect(page.status == 200, sourceLocation: sourceLocation)
        #expect(page.text.contains("max_active_runs 1 reached"), "the UI's run page does not show the waiting reason", sourceLocation: sourceLocation)
        let waiting = try await ClusterAPI.run(api: apis[0], id: serial[runs - 1])
        #expect(waiting["status"]?.stringValue == "pending", sourceLocation: sourceLocation)
        #expect(waiting["waiting_reason"]?.stringValue == "max_active_runs 1 reached", sourceLocation: sourceLocation)
        try directory.write(gateFile, "")

        let finished = try await ClusterAPI.waitForRuns(api: apis[0], ids: reports + serial, timeout: .seconds(90))
        for (id, run) in finished {
            #expect(run["status"]?.stringValue == "success", "run \(id): \(run["status"]?.stringValue ?? "?")", sourceLocation: sourceLocation)
            #expect(run["waiting_reason"] == .null, sourceLocation: sourceLocation)
        }
        let attempts = reports.compactMap { finished[$0] }.flatMap(attemptIntervals)
        #expect(attempts.count == runs * width, sourceLocation: sourceLocation)
        let most = maxOverlap(attempts)
        #expect(most <= 2, "\(most) attempts of queue 'reports' (concurrency 2) ran at once", sourceLocation: sourceLocation)
        #expect(most == 2, "the limit is 2, not 1: two attempts should run at once", sourceLocation: sourceLocation)

        // Serial runs: never two at once, and in creation order.
        let spans = try serial.map { id -> (start: Date, end: Date) in
            let run = try #require(finished[id], sourceLocation: sourceLocation)
            let start = try #require(run["started_at"]?.stringValue.flatMap(Timestamp.parse), sourceLocation: sourceLocation)
            let end = try #require(run["finished_at"]?.stringValue.flatMap(Timestamp.parse), sourceLocation: sourceLocation)
            return (start, end)
        }
        #expect(maxOverlap(spans) == 1, "runs of 'serial' (max_active_runs 1) overlapped: \(spans)", sourceLocation: sourceLocation)
        #expect(spans.map(\.start) == spans.map(\.start).sorted(), "runs of 'serial' did not start in creation order", sourceLocation: sourceLocation)
    }
}
