import DeerFlowCore
import Testing

@Suite("for_each and max_parallel in workflow files")
struct FanOutDefinitionTests {
    private func messages(_ yaml: String) -> [String] {
        do {
            _ = try WorkflowFileLoader.parse(yaml: yaml, file: "wf.yaml")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("a mapped task reads for_each and max_parallel; item and index are usable in its templates")
    func reads() throws {
        let definition = try WorkflowFileLoader.parse(yaml: """
            name: wf
            tasks:
              - id: list
                type: noop
              - id: process
                type: shell
                depends_on: [list]
                for_each: "{{ tasks.list.output.files }}"
                max_parallel: 4
                command: [echo, "{{ item }}", "{{ index }}"]
            """, file: "wf.yaml")
        #expect(definition.task("process")?.map == MapDefinition(forEach: "{{ tasks.list.output.files }}", maxParallel: 4))
        #expect(definition.task("list")?.map == nil)
    }

    @Test("bad for_each and max_parallel are located errors that say what to write")
    func locatedErrors() {
        let found = messages("""
            name: wf
            params: {day: {type: string}}
            tasks:
              - id: list
                type: noop
              - id: a
                type: noop
                for_each: "files: {{ tasks.list.output.files }}"
                depends_on: [list]
              - id: b
                type: noop
                for_each: "{{ tasks.list.output.files }}"
              - id: c
                type: noop
                depends_on: [list]
                for_each: "{{ tasks.list.output.files }}"
                max_parallel: 0
              - id: d
                type: noop
                max_parallel: 3
              - id: e
                type: shell
                command: [echo, "{{ item }}"]
              - id: f
                type: noop
                for_each: "{{ params.month }}"
            """)
        #expect(found.count == 6, "\(found)")
        #expect(found.contains { $0.hasPrefix("wf.yaml:8:") && $0.contains("single template expression") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:12:") && $0.contains("not upstream of 'b'") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:17:") && $0.contains("between 1 and 100000, got 0") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:20:") && $0.contains("only applies to a task with for_each") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:23:") && $0.contains("only in a mapped task") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:26:") && $0.contains("no parameter 'month'") })
    }

    @Test("instances numbered in blocks per mapped task; each one that ends frees a place; the last one completes the task")
    func progressRules() {
        #expect(MapProgress.base(of: 0) == 1_000_000)
        #expect(MapProgress.base(of: MapProgress.maxMappedPosition) + Limits.mapInstances.upperBound - 1 <= Int(Int32.max))
        var progress = MapProgress(count: 5, maxParallel: 2)
        #expect(progress.released == 2)
        progress.succeeded = 1
        #expect(progress.step(justFinished: 1) == .init(queue: 2..<3, completes: false))
        progress.succeeded = 3
        progress.failed = 1
        #expect(progress.step(justFinished: 3) == .init(queue: 3..<5, completes: false))
        progress.succeeded = 4
        #expect(progress.step(justFinished: 1) == .init(queue: 5..<5, completes: true))
        #expect(MapProgress(count: 3).released == 3)
        #expect(MapProgress.failureMessage(failedIndexes: [1, 7], count: 10) == "2 of 10 instances failed (indexes 1, 7); see their logs")
        #expect(MapProgress.limitProblem(count: 10_001, limit: 10_000)?.contains("max_map_instances") == true)
    }
}
