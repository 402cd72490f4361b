public import DeerFlowCore

/// A task of a run as the API and UI show it: a mapped task (`for_each`) groups its instances.
public struct GroupedTask: Sendable, Hashable {
    public var task: TaskRecord
    /// The instances of a mapped task, in index order; empty for any other task.
    public var instances: [TaskRecord]
    /// The instances' counts, for a mapped task that expanded; nil otherwise.
    public var summary: MapSummary?
}

/// Where the instances of a mapped task stand.
public struct MapSummary: Sendable, Hashable {
    public var count: Int
    public var maxParallel: Int
    public var succeeded: Int
    /// Instances that ended without success (failed for good, timed out, cancelled).
    public var failed: Int
    public var running: Int
    /// Waiting for a worker, retries in backoff included.
    public var queued: Int
    /// Not released yet because of `max_parallel`.
    public var waiting: Int

    /// The counts of `instances` of a task whose counters are `progress`.
    public init(progress: MapProgress, instances: [TaskRecord]) {
        count = progress.count
        maxParallel = progress.maxParallel
        succeeded = instances.count { $0.status == .success }
        failed = instances.count { $0.status.isFinished && $0.status != .success }
        running = instances.count { $0.status == .running }
        queued = instances.count { $0.status == .queued }
        waiting = instances.count { $0.status == .pending }
    }
}

extension RunDetail {
    /// The run's declared tasks in order, each mapped task with its instances and their counts.
    public var groupedTasks: [GroupedTask] {
        var instances: [Int: [TaskRecord]] = [:]
        for task in tasks { if let parent = task.mapParent { instances[parent, default: []].append(task) } }
        return tasks.filter { $0.mapParent == nil }.map { task in
            let own = (instances[task.index] ?? []).sorted { ($0.mapIndex ?? 0) < ($1.mapIndex ?? 0) }
            return GroupedTask(task: task, instances: own, summary: task.map.map { MapSummary(progress: $0, instances: own) })
        }
    }
}
