import Foundation

/// The rules of a mapped task's `for_each` text: exactly one `{{ expression }}` (so it gives a
/// JSON value, not text), reading only the run's parameters and the outputs of tasks upstream of
/// the mapped task.
public enum MapExpression {
    /// What is wrong with `text` as the `for_each` of task `task`, or nil.
    public static func problem(_ text: String, task: String, upstream: Set<String>, params: Set<String>) -> String? {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.hasPrefix("{{"), trimmed.hasSuffix("}}"), trimmed.components(separatedBy: "{{").count == 2 else {
            return "for_each must be a single template expression giving a list, e.g. \"{{ tasks.list.output.files }}\"; got '\(text)'"
        }
        let template: Template
        do {
            template = try Template(trimmed)
        } catch {
            return "for_each: \(error.message)"
        }
        for reference in template.references {
            let path = reference.path
            switch path.first {
            case "params":
                if path.count > 1, !params.contains(path[1]) {
                    return "for_each reads params.\(path[1]), which the workflow does not declare"
                }
            case "tasks":
                guard path.count > 1 else { return "for_each must name a task: tasks.<id>.output" }
                if path[1] == task {
                    return "for_each of '\(task)' cannot read its own output"
                }
                if !upstream.contains(path[1]) {
                    return "for_each reads the output of '\(path[1])', which is not upstream of '\(task)'; add it to depends_on"
                }
            case "run":
                break
            default:
                return "for_each can read params, tasks (upstream outputs) and run, not '\(path.first ?? "")'"
            }
        }
        return nil
    }
}
