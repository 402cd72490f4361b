import DeerFlowCore
import Foundation

/// Metric updates a shell task writes, one per line, to the file `$DEERFLOW_METRICS` names;
/// the worker applies them after the task exits (whether it succeeded or not) to the metrics
/// declared in `metrics.yaml`'s `custom_metrics`:
///
/// ```text
/// # comments and blank lines are skipped
/// data_processed_bytes +1024 table=events    counter: add (`+` optional; a counter never goes down)
/// queue_depth 17                             gauge: set
/// queue_depth -2                             gauge: add a signed amount (`+3`, `-2`)
/// processing_latency 0.42                    histogram: observe
/// ```
///
/// Labels are `name=value` (`name="a value"` with spaces). A declared `workflow` or `task` label
/// is filled in with the task's; every other declared label must be given. A line that cannot be
/// applied is skipped with a line in the task log and counted in
/// `deerflow_task_metric_updates_rejected_total`; it never fails the task.
public struct TaskMetricUpdate: Sendable, Hashable {
    public enum Change: Sendable, Hashable {
        /// A value without sign: set a gauge, observe a histogram, add to a counter.
        case value(Double)
        /// A signed amount (`+3`, `-2`): add to a gauge or a counter.
        case signed(Double)
    }

    public var name: String
    public var change: Change
    public var labels: [String: String]

    /// Labels DeerFlow fills in.
    public static let automaticLabels = ["workflow", "task"]

    /// Parses one line; nil for blank lines and comments.
    /// - Throws: a message saying what is wrong with the line.
    public static func parse(_ line: Substring) throws(TaskMetricUpdateError) -> TaskMetricUpdate? {
        let trimmed = Substring(line.trimmingCharacters(in: .whitespaces))
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        var words = try Self.words(trimmed)
        guard words.count >= 2 else { throw TaskMetricUpdateError("expected `name value [label=value ...]`") }
        let name = words.removeFirst()
        let valueText = words.removeFirst()
        let signed = valueText.hasPrefix("+") || valueText.hasPrefix("-")
        guard let number = Double(valueText.hasPrefix("+") ? String(valueText.dropFirst()) : valueText), number.isFinite else {
            throw TaskMetricUpdateError("'\(valueText)' is not a number")
        }
        var labels: [String: String] = [:]
        for word in words {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                throw TaskMetricUpdateError("'\(word)' is not a label (name=value)")
            }
            let key = String(word[..<equals])
            guard labels[key] == nil else { throw TaskMetricUpdateError("label '\(key)' given twice") }
            labels[key] = String(word[word.index(after: equals)...])
        }
        return TaskMetricUpdate(name: name, change: signed ? .signed(number) : .value(number), labels: labels)
    }

    /// Words separated by spaces; `"..."` keeps spaces (after `=`, in label values).
    private static func words(_ text: Substring) throws(TaskMetricUpdateError) -> [String] {
        var words: [String] = []
        var current = ""
        var quoted = false
        for character in text {
            if character == "\"" {
                quoted.toggle()
            } else if (character == " " || character == "\t") && !quoted {
                if !current.isEmpty { words.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if quoted { throw TaskMetricUpdateError("a quote is not closed") }
        if !current.isEmpty { words.append(current) }
        return words
    }
}

/// A line of `$DEERFLOW_METRICS` that cannot be applied.
public struct TaskMetricUpdateError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension MetricsRegistry {
    /// Applies the lines of a `$DEERFLOW_METRICS` file to the metrics in `writable` (the names
    /// `metrics.yaml` declares; DeerFlow's own metrics are not a task's to change), with the
    /// task's `workflow` and `task` labels; returns the rejected lines' messages
    /// (`line 3: ...`) and counts them.
    func apply(taskMetrics text: String, writable: Set<String>, workflow: String, task: String) -> [String] {
        var rejected: [String] = []
        // Lines end with "\n" or "\r\n" (one Character, which a split on "\n" would not find).
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
        // The registry's metrics, once per file rather than once per line.
        let descriptors = Dictionary(descriptors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, line) in lines.enumerated() {
            do throws(TaskMetricUpdateError) {
                guard let update = try TaskMetricUpdate.parse(line) else { continue }
                try apply(update, descriptors: descriptors, writable: writable, workflow: workflow, task: task)
            } catch {
                rejected.append("line \(index + 1): \(error.message)")
            }
        }
        if !rejected.isEmpty {
            try? counter(named: BuiltinMetric.taskMetricUpdatesRejected.rawValue).labels(["workflow": workflow]).inc(Double(rejected.count))
        }
        return rejected
    }

    private func apply(
        _ update: TaskMetricUpdate, descriptors: [String: MetricDescriptor], writable: Set<String>, workflow: String, task: String
    ) throws(TaskMetricUpdateError) {
        let exposed = writable.contains(update.name) ? update.name : (writable.contains(update.name + "_total") ? update.name + "_total" : nil)
        guard let exposed, let descriptor = descriptors[exposed] ?? descriptors[exposed + "_total"] else {
            let known = writable.sorted().joined(separator: ", ")
            throw TaskMetricUpdateError("no metric '\(update.name)' in metrics.yaml's custom_metrics" + (known.isEmpty ? " (it declares none)" : " (declared: \(known))"))
        }
        var labels = update.labels
        for key in labels.keys.sorted() {
            if TaskMetricUpdate.automaticLabels.contains(key) {
                throw TaskMetricUpdateError("label '\(key)' is set by DeerFlow (the task's); leave it out")
            }
            if !descriptor.labels.contains(key) {
                let declared = descriptor.labels.filter { !TaskMetricUpdate.automaticLabels.contains($0) }
                throw TaskMetricUpdateError("metric '\(update.name)' has no label '\(key)'" + (declared.isEmpty ? "" : " (its labels: \(declared.joined(separator: ", ")))"))
            }
        }
        if descriptor.labels.contains("workflow") { labels["workflow"] = workflow }
        if descriptor.labels.contains("task") { labels["task"] = task }
        let missing = descriptor.labels.filter { labels[$0] == nil }
        guard missing.isEmpty else { throw TaskMetricUpdateError("metric '\(update.name)' needs label\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", "))") }
        if descriptor.kind == .counter, case .signed(let amount) = update.change, amount < 0 {
            throw TaskMetricUpdateError("counter '\(update.name)' only goes up; \(amount) is negative (use a gauge for values that go down)")
        }
        do throws(MetricsError) {
            switch (descriptor.kind, update.change) {
            case (.counter, .value(let amount)), (.counter, .signed(let amount)):
                try counter(named: exposed).labels(labels).inc(amount)
            case (.gauge, .value(let value)):
                try gauge(named: exposed).labels(labels).set(value)
            case (.gauge, .signed(let amount)):
                try gauge(named: exposed).labels(labels).inc(amount)
            case (.histogram, .value(let value)), (.histogram, .signed(let value)):
                try histogram(named: exposed).labels(labels).observe(value)
            }
        } catch {
            throw TaskMetricUpdateError(error.message)
        }
    }
}
