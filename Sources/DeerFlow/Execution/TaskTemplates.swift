import DeerFlowCore
import Foundation

/// Renders a task's templated fields for one attempt, just before it runs: `http` url, headers
/// and body; `shell` env values and command items. Never script text: a value reaches a shell
/// only as an environment variable or an argv item.
enum TaskTemplates {
    /// A template that cannot be rendered for this attempt; it fails the attempt with this message.
    struct RenderError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// The values the templates of `attempt` read: its params, the run, the outputs of the
    /// upstream tasks in `references` (read from the store), the secrets they name, and for an
    /// instance of a mapped task its `item` and `index`.
    static func scope(for attempt: ClaimedAttempt, references: [TemplateReference], engine: DeerFlowEngine) async throws -> TemplateScope {
        var roots: [String: JSONValue] = [
            "params": .object(attempt.params),
            "run": [
                "id": .string(attempt.runID.rawValue),
                "logical_time": .string(Timestamp.rfc3339Seconds(attempt.effectiveLogicalTime)),
                "workflow": .string(attempt.workflow),
            ],
        ]
        var tasks: [String: JSONValue] = [:]
        var secrets: [String: JSONValue] = [:]
        for reference in references where reference.path.count >= 2 {
            let name = reference.path[1]
            switch reference.root {
            case "tasks" where tasks[name] == nil:
                // A task without output (not finished, or skipped) is absent, so the error or
                // `| default(...)` applies.
                if let output = try await engine.store.taskOutput(run: attempt.runID, task: name) {
                    tasks[name] = ["output": output]
                }
            case "secrets":
                guard let value = engine.configuration.secrets[name] else {
                    throw RenderError(message: "secret '\(name)' is not configured: add it under secrets: in deerflow.yaml of the process running this task")
                }
                secrets[name] = .string(value)
            default:
                break
            }
        }
        roots["tasks"] = .object(tasks)
        roots["secrets"] = .object(secrets)
        if let index = attempt.mapIndex {
            // An instance of a mapped task: its position and item.
            roots["index"] = .int(index)
            roots["item"] = attempt.mapItem ?? .null
        }
        return TemplateScope(roots)
    }

    /// `shell` with its command items and env values rendered; the same value when it has no
    /// template (the usual case costs a scan for `{{`).
    static func render(_ shell: ShellAction, for attempt: ClaimedAttempt, engine: DeerFlowEngine) async throws -> ShellAction {
        let rendered = try await values(of: WorkflowDefinition.templatedFields(of: .shell(shell)), for: attempt, engine: engine).mapValues(\.plainText)
        guard !rendered.isEmpty else { return shell }
        var shell = shell
        if let command = shell.command {
            shell.command = command.enumerated().map { rendered["command[\($0.offset)]"] ?? $0.element }
        }
        for key in shell.environment.keys { if let value = rendered["env.\(key)"] { shell.environment[key] = value } }
        return shell
    }

    /// `http` with its url, headers and body rendered; the same value when it has no template.
    static func render(_ http: HTTPAction, for attempt: ClaimedAttempt, engine: DeerFlowEngine) async throws -> HTTPAction {
        let rendered = try await values(of: WorkflowDefinition.templatedFields(of: .http(http)), for: attempt, engine: engine).mapValues(\.plainText)
        guard !rendered.isEmpty else { return http }
        var http = http
        if let url = rendered["url"] {
            guard URL.http(url) != nil else {
                throw RenderError(message: "template in url: rendered '\(url)', which is not an http(s) URL")
            }
            http.url = url
        }
        for key in http.headers.keys { if let value = rendered["headers.\(key)"] { http.headers[key] = value } }
        if http.body != nil, let body = rendered["body"] { http.body = body }
        return http
    }

    /// The value of each field that holds a template, by field name; empty when none does. A
    /// field that is one expression keeps its JSON type (``Template/value(_:)``); as text
    /// (`plainText`) every value is the field's rendering.
    static func values(of fields: [(name: String, text: String)], for attempt: ClaimedAttempt, engine: DeerFlowEngine) async throws -> [String: JSONValue] {
        var templates: [(name: String, template: Template)] = []
        for field in fields where field.text.contains("{{") {
            do {
                templates.append((field.name, try Template(field.text)))
            } catch {
                throw RenderError(message: "template in \(field.name): \(error.message)")
            }
        }
        guard !templates.isEmpty else { return [:] }
        let scope = try await scope(for: attempt, references: templates.flatMap(\.template.references), engine: engine)
        var rendered: [String: JSONValue] = [:]
        for field in templates {
            do {
                rendered[field.name] = try field.template.value(scope)
            } catch {
                throw RenderError(message: "template in \(field.name): \(error.message)")
            }
        }
        return rendered
    }
}
