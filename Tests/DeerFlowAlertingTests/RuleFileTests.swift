import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Rule files")
struct RuleFileTests {
    private func failure(_ yaml: String) -> RuleFileError? {
        do {
            _ = try RuleFile.parse(yaml: yaml, file: "alerts.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesGroupsRulesAndDurations() throws {
        let rules = try RuleFile.parse(yaml: """
        groups:
          - name: deerflow
            interval: 30s
            labels:
              team: core
            rules:
              - alert: Backlog
                expr: deerflow_tasks_queued > 1000
                for: 1h30m
                keep_firing_for: 2m
                labels:
                  severity: warning
                annotations:
                  summary: "{{ $value }} queued"
          - name: other
            rules: []
        """, file: "alerts.yaml")
        #expect(rules.groups.map(\.name) == ["deerflow", "other"])
        let group = rules.groups[0]
        #expect(group.interval == .seconds(30))
        #expect(group.labels == ["team": "core"])
        let rule = group.rules[0]
        #expect(rule.name == "Backlog")
        #expect(rule.expression.text == "deerflow_tasks_queued > 1000")
        #expect(rule.holdDuration == .seconds(5_400))
        #expect(rule.keepFiringFor == .seconds(120))
        #expect(rule.labels == ["severity": "warning"])
        #expect(rule.annotations == ["summary": "{{ $value }} queued"])
        #expect(rules.groups[1].interval == nil)
    }

    @Test func emptyFileHasNoGroups() throws {
        #expect(try RuleFile.parse(yaml: "", file: "a.yaml").groups.isEmpty)
        #expect(try RuleFile.parse(yaml: "groups:\n", file: "a.yaml").groups.isEmpty)
    }

    @Test func unknownKeyNamesLineAndKey() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                severity: critical
        """)
        #expect(error?.code == .schema)
        #expect(error?.line == 6)
        #expect(error?.column == 9)
        #expect(error?.key == "groups[0].rules[0].severity")
        #expect(error?.description == "alerts.yaml:6:9: groups[0].rules[0].severity: unknown key 'severity' (allowed: alert, record, expr, for, keep_firing_for, labels, annotations)")
    }

    @Test func missingExprIsReportedAtTheRule() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                for: 5m
        """)
        #expect(error?.code == .schema)
        #expect(error?.line == 4)
        #expect(error?.key == "groups[0].rules[0].expr")
        #expect(error?.message == "field 'expr' must be set in rule")
    }

    @Test func invalidDurationNamesTheKey() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                for: 5 minutes
        """)
        #expect(error?.code == .schema)
        #expect(error?.line == 6)
        #expect(error?.key == "groups[0].rules[0].for")
        #expect(error?.message == "not a valid duration string: \"5 minutes\" (use e.g. 30s, 5m, 1h30m)")
    }

    @Test func promQLErrorInABlockScalarPointsAtTheFileLine() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: |
                  sum(rate(x[5m]))
                  / topk(1, y)
        """)
        #expect(error?.code == .unsupported)
        #expect(error?.line == 7)
        #expect(error?.column == 13)
        #expect(error?.key == "groups[0].rules[0].expr")
        #expect(error?.message == "alert 'A': aggregation 'topk' is not supported (supported: sum, avg, max, min, count)")
    }

    @Test func promQLErrorInAPlainScalarPointsAtTheColumn() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: foo offset 5m
        """)
        #expect(error?.code == .unsupported)
        #expect(error?.line == 5)
        #expect(error?.column == 19)
        #expect(error?.message == "alert 'A': offset modifier is not supported")
    }

    @Test func promQLSyntaxErrorIsAnExpressionError() {
        let error = failure("groups: [{name: g, rules: [{alert: A, expr: 'sum(up'}]}]")
        #expect(error?.code == .expression)
        #expect(error?.line == 1)
    }

    @Test func recordingRulesAreRejected() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - record: job:up:sum
                expr: sum(up)
        """)
        #expect(error?.code == .unsupported)
        #expect(error?.line == 4)
        #expect(error?.key == "groups[0].rules[0].record")
        #expect(error?.message.hasPrefix("recording rules are not supported by the embedded evaluator (rule 'job:up:sum')") == true)
    }

    @Test func ruleNeedsExactlyOneOfAlertAndRecord() {
        #expect(failure("groups: [{name: g, rules: [{expr: up}]}]")?.message == "one of 'record' or 'alert' must be set")
        #expect(failure("groups: [{name: g, rules: [{alert: A, record: b, expr: up}]}]")?.message == "only one of 'record' and 'alert' must be set")
    }

    @Test func repeatedGroupNameIsAnError() {
        let error = failure("""
        groups:
          - name: g
            rules: []
          - name: g
            rules: []
        """)
        #expect(error?.line == 4)
        #expect(error?.message == "groupname: \"g\" is repeated in the same file")
    }

    @Test func unsupportedGroupKeysAreNamed() {
        let error = failure("groups:\n  - name: g\n    query_offset: 1m\n    rules: []\n")
        #expect(error?.code == .unsupported)
        #expect(error?.line == 3)
        #expect(error?.key == "groups[0].query_offset")
    }

    @Test func invalidLabelAndAnnotationNames() {
        #expect(failure("groups: [{name: g, rules: [{alert: A, expr: up, labels: {'bad-name': x}}]}]")?.message == "invalid label name: bad-name")
        #expect(failure("groups: [{name: g, rules: [{alert: A, expr: up, annotations: {'1x': x}}]}]")?.message == "invalid annotation name: 1x")
    }

    @Test func templateErrorsNameTheAnnotation() {
        let error = failure("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                annotations:
                  description: "{{ if $value }}down{{ end }}"
        """)
        #expect(error?.code == .template)
        #expect(error?.line == 7)
        #expect(error?.key == "groups[0].rules[0].annotations.description")
        #expect(error?.message.hasPrefix("template: template action 'if' is not supported") == true)
    }

    @Test func templateErrorOnALaterLineOfABlockScalarPointsAtThatLine() {
        let yaml = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      description: |\n        Instance down.\n        {{ if $value }}x{{ end }}\n"
        let error = failure(yaml)
        #expect(error?.code == .template)
        #expect(error?.line == 9)
        #expect(error?.column == 9)
        #expect(error?.key == "groups[0].rules[0].annotations.description")
    }

    @Test func malformedYAMLReportsTheLine() {
        let error = failure("groups:\n  - name: g\n    rules: [\n      - alert: A\n")
        #expect(error?.code == .yaml)
        #expect((error?.line ?? 0) >= 3)
    }

    @Test func duplicateKeysAreRejected() {
        let error = failure("groups:\n  - name: g\n    name: h\n    rules: []\n")
        #expect(error?.code == .schema)
        #expect(error?.line == 3, "the repeated key, as for every other DeerFlow file")
        #expect(error?.key == "name")
        #expect(error?.message == "duplicate key 'name' (first defined at line 2)")
    }

    @Test func wrongTypesAreRejected() {
        #expect(failure("groups: {name: g}")?.message == "must be a list of groups")
        #expect(failure("groups: [{name: g, rules: {alert: A}}]")?.message == "must be a list of rules")
        #expect(failure("groups: [{name: [g], rules: []}]")?.message == "must be a string")
        #expect(failure("groups: [{rules: []}]")?.message == "group name must not be empty")
    }

    @Test func loadReadsAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-rules-\(UUID().uuidString).yaml").path
        try "groups: [{name: g, rules: [{alert: A, expr: 'up == 0'}]}]".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try RuleFile.load(path: path).groups.first?.rules.first?.name == "A")
        #expect(throws: RuleFileError.self) { try RuleFile.load(path: path + ".missing") }
    }
}
