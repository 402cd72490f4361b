import DeerFlowCore
import Testing

private let scope = TemplateScope([
    "params": ["day": "2026-12-06", "limit": 5, "config": "{\"a\": [1, 2]}", "empty": .null],
    "tasks": ["extract": ["output": ["rows": 42, "files": ["a.csv", "b.csv"], "odd key": true]]],
    "run": ["id": "r1", "logical_time": "2026-12-06T00:00:00Z", "workflow": "etl"],
])

private func render(_ text: String) throws -> String {
    try Template(text).render(scope)
}

private func failure(_ text: String) -> String? {
    do {
        _ = try Template(text).value(scope)
        return nil
    } catch {
        return error.message
    }
}

@Suite("Templates")
struct TemplateTests {
    @Test("paths, indexes and quoted keys render into text; text without braces is left alone")
    func rendering() throws {
        #expect(try render("https://x/{{ params.day }}/{{tasks.extract.output.rows}}") == "https://x/2026-12-06/42")
        #expect(try render("{{ tasks.extract.output.files[1] }} {{ tasks.extract.output.files[-1] }}") == "b.csv b.csv")
        #expect(try render(#"{{ tasks.extract.output["odd key"] }}"#) == "true")
        #expect(try render("{{ tasks.extract.output.files }}") == #"["a.csv","b.csv"]"#)
        #expect(try render("{{ params.empty }}|") == "|")
        #expect(try render("no braces: $HOME { } }") == "no braces: $HOME { } }")
        #expect(try Template("plain").isTemplated == false)
    }

    @Test("braces that are not DeerFlow expressions stay text: JSON bodies, Go templates, a lone }}")
    func otherBraces() throws {
        #expect(try render(#"{"blocks":[{"text":{"a":1}}]}"#) == #"{"blocks":[{"text":{"a":1}}]}"#)
        #expect(try render("{{.State.Running}} {{ .ID }} {{- x }}") == "{{.State.Running}} {{ .ID }} {{- x }}")
        #expect(try render(#"{"q":{"day":"{{ params.day }}"}}"#) == #"{"q":{"day":"2026-12-06"}}"#)
        #expect(try Template("{{.ID}}").isTemplated == false)
        #expect(try render("{{ .unclosed") == "{{ .unclosed")
    }

    @Test("a text that is one expression keeps its JSON type; mixed text is a string")
    func values() throws {
        #expect(try Template("{{ tasks.extract.output.files }}").value(scope) == ["a.csv", "b.csv"])
        #expect(try Template(" {{ params.limit }}").value(scope) == " 5")
        #expect(try Template("{{ params.limit }}").value(scope) == 5)
    }

    @Test("default, json and tojson")
    func filters() throws {
        #expect(try render("{{ params.missing | default(100) }}") == "100")
        #expect(try render("{{ params.empty | default('none') }}") == "none")
        #expect(try render("{{ params.day | default('x') }}") == "2026-12-06")
        #expect(try Template("{{ params.config | json }}").value(scope) == ["a": [1, 2]])
        #expect(try render("{{ tasks.extract.output | tojson }}") == #"{"files":["a.csv","b.csv"],"odd key":true,"rows":42}"#)
        #expect(try render(#"{{ "{{" }}"#) == "{{")
        #expect(try render("https://x/{{ 'evil.com/#a b?c=d&e' | urlencode }}") == "https://x/evil.com%2F%23a%20b%3Fc%3Dd%26e")
    }

    @Test("evaluation errors say what is missing and what is there")
    func evaluationErrors() {
        #expect(failure("{{ tasks.extract.output.cols }}")?.contains("tasks.extract.output has no key 'cols'") == true)
        #expect(failure("{{ tasks.extract.output.cols }}")?.contains("files, odd key, rows") == true)
        #expect(failure("{{ tasks.extract.output.files[5] }}") == "tasks.extract.output.files[5] is out of range: the array has 2 items")
        #expect(failure("{{ params.day.year }}") == "params.day is a string, not an object, so it has no key 'year'")
        #expect(failure("{{ body.ref }}")?.hasPrefix("unknown name 'body'") == true)
        #expect(failure("{{ params.day | json }}")?.contains("not JSON text") == true)
    }

    @Test("syntax errors name the column and the problem")
    func syntaxErrors() {
        #expect(failure("abc {{ params.day") == "column 5: `{{` is not closed by `}}`")
        #expect(failure("{{ }}")?.contains("an empty expression") == true)
        #expect(failure("{{ params.day | upper }}")?.contains("unknown filter 'upper'") == true)
        #expect(failure("{{ params[day] }}")?.contains("inside `[ ]`") == true)
        #expect(failure("{{ params.day extra }}")?.contains("unexpected `extra`") == true)
        #expect(failure("x }}") == nil, "a `}}` alone is text")
    }

    @Test("references list the paths read, for checks before a run")
    func references() throws {
        let template = try Template("{{ params.day }}-{{ tasks.extract.output.files[0] }}-{{ 'lit' }}-{{ params.x | default(1) }}")
        #expect(template.references.map(\.description) == ["params.day", "tasks.extract.output.files[0]", "params.x"])
        #expect(template.references.map(\.hasDefault) == [false, false, true])
    }
}

@Suite("Template checks of workflow files")
struct TemplateCheckTests {
    private func messages(_ yaml: String) -> [String] {
        do {
            _ = try WorkflowFileLoader.parse(yaml: yaml, file: "wf.yaml")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("undeclared params, non-upstream tasks, unknown names and bad syntax are located errors")
    func locatedErrors() {
        let found = messages("""
            name: wf
            params: {day: {type: string}}
            tasks:
              - id: a
                type: shell
                command: [echo, "{{ params.month }}"]
              - id: b
                type: http
                url: "https://example.com/{{ tasks.c.output.x }}"
              - id: c
                type: shell
                depends_on: [a]
                command: [env]
                env: {X: "{{ tasks.a.output.rows }}", Y: "{{ nope.x }}", Z: "{{ params.day"}
            """)
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.hasPrefix("wf.yaml:6:") && $0.contains("no parameter 'month'") && $0.contains("declared: day") })
        #expect(found.contains { $0.hasPrefix("wf.yaml:9:") && $0.contains("task 'c' is not upstream of 'b'") })
        #expect(found.contains { $0.contains("unknown name 'nope'") })
        #expect(found.contains { $0.contains("is not closed") })
    }

    @Test("a parent's secret parameter may go only to a secret parameter of a child")
    func secretParamsToChildren() {
        let child = WorkflowDefinition(name: "child", params: [ParamDefinition("token", type: .string), ParamDefinition("key", type: .string, secret: true)], tasks: [TaskDefinition(id: "a", action: .noop)])
        let parent = WorkflowDefinition(
            name: "parent", params: [ParamDefinition("token", type: .string, secret: true)],
            tasks: [TaskDefinition(id: "call", action: .workflow(SubWorkflowAction(workflow: "child", params: ["token": "{{ params.token }}", "key": "{{ params.token }}"])))])
        let issues = SubWorkflowGraph.issues([parent, child]).map(\.message)
        #expect(issues.count == 1, "\(issues)")
        #expect(issues.first?.contains("'token' of workflow 'child' is not: declare it secret: true there") == true, "\(issues)")
    }

    @Test("workflows written before templates load as they did: JSON bodies and Go templates in argv")
    func earlierWorkflowsLoad() {
        #expect(messages("""
            tasks:
              - id: notify
                type: http
                url: https://hooks.example.com/x
                body: '{"blocks":[{"text":{"type":"mrkdwn"}}]}'
              - id: inspect
                type: shell
                command: [docker, inspect, -f, "{{.State.Running}}", web]
            """).isEmpty)
    }

    @Test("a DeerFlow template in script text is refused with the way to do it instead; other braces pass")
    func scriptTemplates() {
        let found = messages("""
            tasks:
              - id: a
                type: shell
                script: echo {{ params.day }}
            """)
        #expect(found.count == 1)
        #expect(found.first?.contains("templates are not expanded in 'script'") == true)
        #expect(found.first?.contains("env:") == true)
        #expect(messages("""
            tasks:
              - id: a
                type: shell
                script: docker ps --format '{{.ID}}'
            """).isEmpty)
    }
}
