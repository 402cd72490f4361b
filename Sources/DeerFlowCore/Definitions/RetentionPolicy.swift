/// How long finished runs and their task logs are kept (`retention:` of `deerflow.yaml`); nil
/// keeps them forever. Defaults: runs 90 days, task logs 30 days.
///
/// ```yaml
/// retention:
///   runs: 30d        # finished runs, with their tasks, attempts and logs
///   task_logs: 7d    # what tasks printed, of finished runs
/// ```
public struct RetentionPolicy: Sendable, Hashable {
    /// Finished runs older than this (by their finish time) are deleted with everything of them.
    public var runs: Duration?
    /// Task logs of runs finished longer ago than this are deleted; the runs stay.
    public var taskLogs: Duration?

    public init(runs: Duration? = .seconds(90 * 86_400), taskLogs: Duration? = .seconds(30 * 86_400)) {
        self.runs = runs
        self.taskLogs = taskLogs
    }

    /// The word that keeps history forever: `runs: forever`.
    public static let foreverWord = "forever"
}
