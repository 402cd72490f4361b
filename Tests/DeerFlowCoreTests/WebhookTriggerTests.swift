import Foundation
import Testing

@testable import DeerFlowCore

/// `triggers: [{webhook: …}]` in workflow files: read, validated with located errors, and hook
/// names unique across the files of a directory.
@Suite("Webhook triggers in workflow files")
struct WebhookTriggerTests {
    static let valid = """
        name: deploy
        params:
          ref: string
          event: {type: string, default: push}
          pr: {type: int, default: 0}
        triggers:
          - webhook:
              name: github-push
              secret_env: GH_SECRET
              delivery_header: X-Request-Id
              params:
                ref: "{{ body.ref }}"
                event: '{{ headers["x-github-event"] }}'
                pr: "{{ body.number | default(0) }}"
        tasks:
          - id: build
            type: noop
        """

    /// The errors of `yaml`, as `line: key: message`.
    static func problems(_ yaml: String) -> [String] {
        do {
            _ = try WorkflowFileLoader.parse(yaml: yaml, file: "wf.yaml")
            return []
        } catch {
            return error.errors.map { "\($0.line): \($0.key): \($0.message)" }
        }
    }

    @Test func readsEveryKey() throws {
        let workflow = try WorkflowFileLoader.parse(yaml: Self.valid, file: "deploy.yaml")
        #expect(workflow.webhooks.count == 1)
        let webhook = try #require(workflow.webhooks.first?.webhook)
        #expect(webhook.name == "github-push")
        #expect(webhook.secretEnvironmentVariable == "GH_SECRET")
        #expect(webhook.deliveryHeader == "X-Request-Id")
        #expect(webhook.params == ["ref": "{{ body.ref }}", "event": "{{ headers[\"x-github-event\"] }}", "pr": "{{ body.number | default(0) }}"])
    }

    @Test func deliveryHeaderDefaultsToGitHubs() throws {
        let yaml = """
            params: {ref: string}
            triggers: [{webhook: {name: hook, secret_env: S, params: {ref: "{{ body.ref }}"}}}]
            tasks: [{id: a, type: noop}]
            """
        let workflow = try WorkflowFileLoader.parse(yaml: yaml, file: "wf.yaml")
        #expect(workflow.webhooks.first?.webhook.deliveryHeader == "X-GitHub-Delivery")
    }

    @Test func aWorkflowWithoutTriggersKeepsItsVersionID() throws {
        let plain = try WorkflowFileLoader.parse(yaml: "tasks: [{id: a, type: noop}]\n", file: "wf.yaml")
        #expect(plain.triggers == nil)
        let encoded = String(decoding: try JSONEncoder().encode(plain), as: UTF8.self)
        #expect(!encoded.contains("triggers"))
    }

    @Test func unknownKeysAreLocated() {
        let yaml = """
            params: {ref: string}
            triggers:
              - webhook:
                  name: hook
                  secret: abc
                  secret_env: S
                  params: {ref: "{{ body.ref }}"}
              - cron: "* * * * *"
            tasks: [{id: a, type: noop}]
            """
        let found = Self.problems(yaml)
        #expect(found.contains("5: triggers[0].webhook.secret: unknown key 'secret' (did you mean 'secret_env'?)"), "\(found)")
        #expect(found.contains { $0.hasPrefix("8: triggers[1].cron: unknown key 'cron'") }, "\(found)")
        #expect(found.contains("8: triggers[1].webhook: missing required key 'webhook'"), "\(found)")
    }

    @Test func requiredKeysAndValues() {
        let found = Self.problems("""
            params: {ref: string}
            triggers:
              - webhook: {params: {ref: "{{ body.ref }}"}}
            tasks: [{id: a, type: noop}]
            """)
        #expect(found.contains("3: triggers[0].webhook.name: missing required key 'name'"), "\(found)")
        #expect(found.contains("3: triggers[0].webhook.secret_env: missing required key 'secret_env'"), "\(found)")
        #expect(Self.problems("triggers: {webhook: {}}\ntasks: [{id: a, type: noop}]\n").contains { $0.hasPrefix("1: triggers: expected a list") })
    }

    @Test func namesSecretsHeadersAndParamsAreChecked() {
        let found = Self.problems("""
            params:
              ref: string
              count: int
            triggers:
              - webhook:
                  name: "bad name"
                  secret_env: "my secret"
                  delivery_header: "X Delivery"
                  params:
                    ref: "{{ body.ref }}"
                    branch: "{{ body.ref }}"
              - webhook:
                  name: other
                  secret_env: S
                  params: {ref: "{{ body.ref }}", count: "{{ body.count }}"}
              - webhook:
                  name: other
                  secret_env: S
                  params: {count: "{{ params.count }}", ref: "{{ body.ref"}
            tasks: [{id: a, type: noop}]
            """)
        #expect(found.contains("6: triggers[0].webhook.name: 'bad name' is not a valid webhook name: start with a letter or digit, then use letters, digits, '_', '-', '.' (at most 128 characters)"), "\(found)")
        #expect(found.contains { $0.hasPrefix("7: triggers[0].webhook.secret_env: 'my secret' is not an environment variable name") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("8: triggers[0].webhook.delivery_header: 'X Delivery' is not an HTTP header name") }, "\(found)")
        #expect(found.contains("11: triggers[0].webhook.params.branch: unknown parameter 'branch' (declared: ref, count)"), "\(found)")
        #expect(found.contains { $0.hasPrefix("9: triggers[0].webhook.params: required parameter 'count' is not mapped") }, "\(found)")
        #expect(found.contains("17: triggers[2].webhook.name: duplicate webhook 'other' (first declared at triggers[1])"), "\(found)")
        // Only body and headers: params of the run do not exist before it.
        #expect(found.contains { $0.hasPrefix("19: triggers[2].webhook.params.count: 'params.count' cannot be used here") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("19: triggers[2].webhook.params.ref:") && $0.contains("{{") }, "\(found)")
    }

    @Test func hookNamesAreUniqueAcrossFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let hook = "triggers: [{webhook: {name: push, secret_env: S}}]\ntasks: [{id: a, type: noop}]\n"
        try ("name: alpha\n" + hook).write(toFile: "\(directory)/a.yaml", atomically: true, encoding: .utf8)
        try ("name: beta\n" + hook).write(toFile: "\(directory)/b.yaml", atomically: true, encoding: .utf8)
        let checked = try WorkflowFileLoader.checkDirectory(directory)
        #expect(checked.workflows.map(\.definition.name) == ["alpha"])
        #expect(checked.errors.map(\.description) == [
            "\(directory)/b.yaml:2:23: triggers[0].webhook.name: webhook 'push' is also defined in \(directory)/a.yaml (workflow 'alpha'); webhook names must be unique across workflows"
        ])
        #expect(throws: FileErrors.self) { try WorkflowFileLoader.loadDirectory(directory) }
    }
}
