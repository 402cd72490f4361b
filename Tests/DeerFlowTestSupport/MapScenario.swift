import DeerFlowCore
public import DeerFlowTesting
import Foundation
public import Testing

/// Dynamic fan-out through a real server (`for_each`), shared by the SQLite and PostgreSQL
/// suites: 1,000 instances whose outputs reach the downstream task in order, `max_parallel`,
/// an instance failing once then retried, the instance limit, and an empty list.
public enum MapScenario {
    /// `deerflow.yaml`: 16 slots, at most 1,000 instances per mapped task.
    public static let config = "worker:\n  slots: 16\n  max_map_instances: 1000\n"

    /// `mapped.yaml` (list → process ×count → collect) and `limited.yaml` (6 sleeping instances,
    /// 2 at a time). Marks of the instance that fails once go into `marks`.
    public static func workflows(marks: String) -> [String: String] {
        let mapped = #"""
            name: mapped
            params:
              count: {type: int, default: 1000}
              fail_index: {type: int, default: -1}
            tasks:
              - id: list
                type: shell
                script: seq 0 $((DEERFLOW_PARAM_COUNT - 1)) | sed 's/.*/"f&"/' | paste -sd, - | sed 's/.*/{"items":[&]}/' > "$DEERFLOW_OUTPUT"
              - id: process
                type: shell
                depends_on: [list]
                for_each: "{{ tasks.list.output.items }}"
                retries: 1
                retry_delay: 100ms
                env: {ITEM: "{{ item }}", INDEX: "{{ index }}", MARK: "MARKS/{{ run.id }}"}
                script: |
                  if [ "$INDEX" = "$DEERFLOW_PARAM_FAIL_INDEX" ] && [ ! -e "$MARK" ]; then
                    touch "$MARK"; echo "instance $INDEX fails once"; exit 1
                  fi
                  printf '{"i": %s, "item": "%s"}' "$INDEX" "$ITEM" > "$DEERFLOW_OUTPUT"
              - id: collect
                type: shell
                depends_on: [process]
                env: {ALL: "{{ tasks.process.output }}"}
                script: printf '%s' "$ALL" > "$DEERFLOW_OUTPUT"
            """#.replacingOccurrences(of: "MARKS", with: marks)
        let limited = """
            name: limited
            tasks:
              - id: make
                type: shell
                script: |
                  echo '{"items": [1, 2, 3, 4, 5, 6]}' > "$DEERFLOW_OUTPUT"
              - id: nap
                type: sleep
                duration: 300ms
                depends_on: [make]
                for_each: "{{ tasks.make.output.items }}"
                max_parallel: 2
            """
        return ["mapped.yaml": mapped, "limited.yaml": limited]
    }

    /// Writes the workflows (into `workflows/`) and the config (`config/deerflow.yaml`).
    public static func write(into directory: TemporaryDirectory) throws {
        try directory.write("marks/.keep", "")
        for (name, text) in workflows(marks: directory.file("marks")) { try directory.write("workflows/\(name)", text) }
        try directory.write("config/deerflow.yaml", config)
    }

    static func task(_ run: [String: JSONValue], _ id: String) -> [String: JSONValue]? {
        guard case .array(let tasks)? = run["tasks"] else { return nil }
        for case .object(let task) in tasks where task["id"]?.stringValue == id { return task }
        return nil
    }

    static func instances(_ task: [String: JSONValue]?) -> [[String: JSONValue]] {
        guard case .object(let map)? = task?["map"], case .array(let instances)? = map["instances"] else { return [] }
        return instances.compactMap { if case .object(let instance) = $0 { return instance } else { return nil } }
    }

    /// Runs every case against the server on `api`; returns the id of the 1,000-instance run.
    @discardableResult
    public static func check(api: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        // 1,000 instances, one of them failing once: the downstream gets 1,000 outputs in order.
        let big = try await ClusterAPI.trigger(api: api, workflow: "mapped", params: #"{"count": 1000, "fail_index": 7}"#)
        // The limit (1,000 in this config) and an empty list.
        let over = try await ClusterAPI.trigger(api: api, workflow: "mapped", params: #"{"count": 1001}"#)
        let empty = try await ClusterAPI.trigger(api: api, workflow: "mapped", params: #"{"count": 0}"#)
        let limited = try await ClusterAPI.trigger(api: api, workflow: "limited")
        let runs = try await ClusterAPI.waitForRuns(api: api, ids: [big, over, empty, limited], timeout: .seconds(300))

        let run = try #require(runs[big], sourceLocation: sourceLocation)
        #expect(run["status"]?.stringValue == "success", sourceLocation: sourceLocation)
        let expected = JSONValue.array((0..<1000).map { .object(["i": .int($0), "item": .string("f\($0)")]) })
        #expect(task(run, "process")?["output"] == expected, sourceLocation: sourceLocation)
        #expect(task(run, "collect")?["output"] == expected, "the downstream task reads the mapped task's list of outputs", sourceLocation: sourceLocation)
        let process = task(run, "process")
        guard case .object(let map)? = process?["map"] else {
            Issue.record("the mapped task has no map: \(String(describing: process))", sourceLocation: sourceLocation)
            return big
        }
        #expect(map["count"] == 1000 && map["succeeded"] == 1000 && map["failed"] == 0, "\(map.filter { $0.key != "instances" })", sourceLocation: sourceLocation)
        let all = instances(process)
        #expect(all.count == 1000, sourceLocation: sourceLocation)
        #expect(all.map { $0["index"] } == (0..<1000).map { JSONValue.int($0) }, sourceLocation: sourceLocation)
        guard case .array(let retried)? = all.first(where: { $0["index"] == 7 })?["attempts"] else {
            Issue.record("instance 7 has no attempts", sourceLocation: sourceLocation)
            return big
        }
        #expect(retried.count == 2, "instance 7 failed once and was retried", sourceLocation: sourceLocation)
        // Its log is the task log of `process[7]`.
        let log = try await TestServer.send("GET", "http://127.0.0.1:\(api)/api/v1/runs/\(big)/tasks/process%5B7%5D/log?attempt=1", body: nil, headers: [:])
        #expect(log.status == 200, sourceLocation: sourceLocation)
        #expect(log.text.contains("instance 7 fails once"), "\(log.text.prefix(300))", sourceLocation: sourceLocation)

        // The run page: the mapped task is one node with its counts; its instances are listed with log links.
        let page = try await TestServer.send("GET", "http://127.0.0.1:\(api)/runs/\(big)", body: nil, headers: [:])
        #expect(page.status == 200, sourceLocation: sourceLocation)
        #expect(page.text.contains("process ×1000 1000✓ 0✗"), sourceLocation: sourceLocation)
        #expect(page.text.contains("1000 instances: 1000 succeeded, 0 failed"), sourceLocation: sourceLocation)
        #expect(page.text.contains("?task=process%5B7%5D#log"), sourceLocation: sourceLocation)
        #expect(!page.text.contains(">process[7]</text>"), "instances are not DAG nodes", sourceLocation: sourceLocation)
        let instancePage = try await TestServer.send("GET", "http://127.0.0.1:\(api)/runs/\(big)?task=process%5B7%5D&attempt=1", body: nil, headers: [:])
        #expect(instancePage.text.contains("instance 7 fails once"), sourceLocation: sourceLocation)

        let overRun = try #require(runs[over], sourceLocation: sourceLocation)
        #expect(overRun["status"]?.stringValue == "failed", sourceLocation: sourceLocation)
        guard case .array(let overAttempts)? = task(overRun, "process")?["attempts"], case .object(let first)? = overAttempts.first else {
            Issue.record("the over-limit task has no attempt", sourceLocation: sourceLocation)
            return big
        }
        #expect(first["error"]?.stringValue?.contains("for_each gave 1001 items, more than the limit of 1000") == true, "\(first)", sourceLocation: sourceLocation)

        let emptyRun = try #require(runs[empty], sourceLocation: sourceLocation)
        #expect(emptyRun["status"]?.stringValue == "success", sourceLocation: sourceLocation)
        #expect(task(emptyRun, "process")?["output"] == .array([]), sourceLocation: sourceLocation)
        #expect(task(emptyRun, "collect")?["output"] == .array([]), sourceLocation: sourceLocation)

        // max_parallel 2: never more than 2 instances running at any moment.
        let limitedRun = try #require(runs[limited], sourceLocation: sourceLocation)
        #expect(limitedRun["status"]?.stringValue == "success", sourceLocation: sourceLocation)
        var spans: [(Date, Date)] = []
        for instance in instances(task(limitedRun, "nap")) {
            guard case .array(let attempts)? = instance["attempts"] else { continue }
            for case .object(let attempt) in attempts {
                if let start = attempt["started_at"]?.stringValue.flatMap(Timestamp.parse), let end = attempt["finished_at"]?.stringValue.flatMap(Timestamp.parse) {
                    spans.append((start, end))
                }
            }
        }
        #expect(spans.count == 6, sourceLocation: sourceLocation)
        let busiest = spans.map { span in spans.count { $0.0 <= span.0 && span.0 < $0.1 } }.max() ?? 0
        #expect(busiest <= 2, "at most 2 instances at once, saw \(busiest)", sourceLocation: sourceLocation)
        return big
    }
}
