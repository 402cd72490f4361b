extension WorkflowDefinition {
    /// What is wrong with `text` as the `for_each` of `task`, or nil: it must be exactly one
    /// `{{ expression }}` (so it gives a JSON value, not text) reading only the run's parameters,
    /// `run` and the outputs of tasks upstream of `task` — not `item` or `index`, which exist
    /// only once the task has expanded.
    func forEachProblem(_ text: String, of task: TaskDefinition, upstream: inout UpstreamIndex) -> String? {
        let template: Template
        do {
            template = try Template(text)
        } catch {
            return "template: \(error.message)"
        }
        guard template.isSingleExpression else {
            return "for_each must be a single template expression giving a list, e.g. \"{{ tasks.list.output.files }}\"; got '\(text)'"
        }
        let declared = Set(params.map(\.name))
        for reference in template.references {
            if reference.root == "item" || reference.root == "index" {
                return "`{{ \(reference) }}`: for_each is evaluated before the instances exist; it cannot read \(reference.root)"
            }
            if let problem = referenceProblem(reference, task: task, declared: declared, upstream: &upstream) {
                return "`{{ \(reference) }}`: \(problem)"
            }
        }
        return nil
    }
}
