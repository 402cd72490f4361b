import Foundation
import Testing

@testable import DeerFlowCore

/// `type: workflow` tasks: reading them, and the checks across workflows (unknown names, cycles,
/// parameters) with errors located in their files.
@Suite("Sub-workflows: loading and validation")
struct SubWorkflowTests {
    static func directory(_ files: [String: String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-sub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: "\(path)/\(name)", atomically: true, encoding: .utf8) }
        return path
    }

    /// Loads a directory and runs the cross-workflow checks.
    static func crossErrors(_ files: [String: String], complete: Bool = true) throws -> [FileError] {
        let path = try directory(files)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let checked = try WorkflowFileLoader.checkDirectory(path)
        #expect(checked.errors.isEmpty, "\(checked.errors)")
        return WorkflowFileLoader.checkSubWorkflows(checked.workflows, complete: complete).map { error in
            var relative = error
            relative.file = URL(fileURLWithPath: error.file).lastPathComponent
            return relative
        }
    }

    @Test("a workflow task reads workflow, params (any YAML value) and wait (default true)")
    func reads() throws {
        let definition = try WorkflowFileLoader.parse(yaml: """
            name: parent
            params:
              day: string
            tasks:
              - id: child
                type: workflow
                workflow: report
                params: {day: "{{ params.day }}", limit: 10, tags: [a, b]}
              - id: fire
                type: workflow
                workflow: report
                wait: false
            """, file: "parent.yaml")
        #expect(definition.tasks[0].type == "workflow")
        #expect(definition.tasks[0].action == .workflow(SubWorkflowAction(
            workflow: "report", params: ["day": "{{ params.day }}", "limit": 10, "tags": ["a", "b"]], wait: true)))
        #expect(definition.tasks[1].action == .workflow(SubWorkflowAction(workflow: "report", wait: false)))
    }

    @Test("a workflow task without workflow, with another type's key, or starting itself is a located error")
    func locatedErrors() throws {
        let errors: [FileError]
        do {
            _ = try WorkflowFileLoader.parse(yaml: """
                name: loop
                tasks:
                  - id: a
                    type: workflow
                    script: echo hi
                  - id: b
                    type: workflow
                    workflow: loop
                """, file: "loop.yaml")
            Issue.record("expected errors")
            return
        } catch {
            errors = error.errors
        }
        #expect(errors.map(\.description) == [
            "loop.yaml:3:5: tasks[0].workflow: missing required key 'workflow'",
            "loop.yaml:5:5: tasks[0].script: 'script' is only allowed on shell tasks, not on workflow tasks",
            "loop.yaml:8:5: tasks[1].workflow: workflow 'loop' starts itself: a sub-workflow cycle loop → loop never ends",
        ], "\(errors)")
    }

    @Test("unknown child workflows are errors when every workflow is loaded, naming the known ones")
    func unknownWorkflow() throws {
        let files = [
            "a.yaml": "name: a\ntasks:\n  - id: call\n    type: workflow\n    workflow: reprot\n",
            "report.yaml": "name: report\ntasks:\n  - id: x\n    type: noop\n",
        ]
        let errors = try Self.crossErrors(files)
        #expect(errors.map(\.description) == ["a.yaml:5:5: tasks[0].workflow: unknown workflow 'reprot' (known: a, report)"], "\(errors)")
        #expect(try Self.crossErrors(files, complete: false).isEmpty, "a partial set may name workflows defined elsewhere")
    }

    @Test("a cycle of workflows starting each other is an error naming the chain")
    func cycle() throws {
        let errors = try Self.crossErrors([
            "a.yaml": "name: a\ntasks:\n  - id: to-b\n    type: workflow\n    workflow: b\n",
            "b.yaml": "name: b\ntasks:\n  - id: to-c\n    type: workflow\n    workflow: c\n",
            "c.yaml": "name: c\ntasks:\n  - id: noop\n    type: noop\n  - id: back\n    type: workflow\n    workflow: a\n    wait: false\n",
        ])
        #expect(errors.map(\.description) == [
            "a.yaml:5:5: tasks[0].workflow: sub-workflow cycle: a → b → c → a (each run would start another without end)",
        ], "\(errors)")
    }

    @Test("params are checked against the child's declaration where literal: unknown names, missing required ones, wrong types")
    func params() throws {
        let child = """
            name: child
            params:
              day: string
              limit: int
              verbose: {type: bool, default: false}
            tasks:
              - id: x
                type: noop
            """
        let errors = try Self.crossErrors([
            "child.yaml": child,
            "p1.yaml": "name: p1\ntasks:\n  - id: call\n    type: workflow\n    workflow: child\n    params: {day: x, limit: many, colour: red}\n",
            "p2.yaml": "name: p2\ntasks:\n  - id: call\n    type: workflow\n    workflow: child\n",
            "p3.yaml": "name: p3\nparams:\n  day: string\n  n: int\ntasks:\n  - id: call\n    type: workflow\n    workflow: child\n    params: {day: '{{ params.day }}', limit: '{{ params.n }}', verbose: 'yes'}\n",
        ])
        #expect(errors.map(\.description) == [
            "p1.yaml:6:35: tasks[0].params.colour: workflow 'child' has no parameter 'colour' (declared: day, limit, verbose)",
            "p1.yaml:6:22: tasks[0].params.limit: parameter 'limit' of workflow 'child' is of type int, got \"many\"",
            "p2.yaml:5:5: tasks[0].workflow: workflow 'child' requires parameters 'day', 'limit'; give them in params",
        ], "templated values wait for the run; 'yes' reads as a bool: \(errors)")
    }

    @Test("the longest chain of waiting sub-workflows: the slots a run needs")
    func longestChain() {
        func call(_ id: String, _ workflow: String, wait: Bool = true) -> TaskDefinition {
            TaskDefinition(id: id, action: .workflow(SubWorkflowAction(workflow: workflow, wait: wait)))
        }
        let definitions = [
            WorkflowDefinition(name: "a", tasks: [call("x", "b"), call("y", "c", wait: false)]),
            WorkflowDefinition(name: "b", tasks: [call("x", "c")]),
            WorkflowDefinition(name: "c", tasks: [TaskDefinition(id: "x", action: .noop)]),
        ]
        let longest = SubWorkflowGraph.longestWaitingChain(definitions)
        #expect(longest.depth == 2 && longest.chain == ["a", "b", "c"], "\(longest)")
        #expect(SubWorkflowGraph.longestWaitingChain([definitions[2]]).depth == 0)
    }

    @Test("templates in params are checked like other task templates: declared params, upstream tasks only, no secrets")
    func templatedParams() throws {
        do {
            _ = try WorkflowFileLoader.parse(yaml: """
                name: parent
                params:
                  day: string
                tasks:
                  - id: list
                    type: noop
                  - id: call
                    type: workflow
                    workflow: child
                    params:
                      day: "{{ params.dya }}"
                      files: "{{ tasks.list.output }}"
                      token: "{{ secrets.TOKEN }}"
                """, file: "parent.yaml")
            Issue.record("expected errors")
        } catch {
            let messages = error.errors.map(\.description)
            #expect(messages.contains { $0.hasPrefix("parent.yaml:11:7: tasks[1].params.day: `{{ params.dya }}`") }, "\(messages)")
            #expect(messages.contains { $0.hasPrefix("parent.yaml:12:7: tasks[1].params.files: `{{ tasks.list.output }}`") }, "list is not upstream: \(messages)")
            #expect(messages.contains("parent.yaml:13:7: tasks[1].params.token: a secret would be stored as a parameter of the child run; secrets are never stored: let the child's tasks read {{ secrets.NAME }} themselves"), "\(messages)")
        }
    }
}
