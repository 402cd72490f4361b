/// Where the instances of a mapped task (`for_each:`) stand, as the counters on its task row
/// hold them, and the rules both stores apply to them: which instances to queue next and when
/// the mapped task is done.
///
/// A mapped task's first attempt is its expansion: it evaluates `for_each` and the store inserts
/// one task row per item, numbered from ``base(of:)``, queuing the first `maxParallel` of them.
/// Each instance that ends for good (succeeded, or failed after its retries) queues the next
/// waiting one; when the last one ends the mapped task succeeds with the list of the instances'
/// outputs, in index order, or fails naming the failed indexes.
public struct MapProgress: Sendable, Hashable {
    /// Instances the task expanded into.
    public var count: Int
    /// Instances queued or running at once at most.
    public var maxParallel: Int
    /// Instances that succeeded.
    public var succeeded: Int
    /// Instances that failed for good.
    public var failed: Int

    public init(count: Int, maxParallel: Int? = nil, succeeded: Int = 0, failed: Int = 0) {
        self.count = count
        self.maxParallel = max(1, min(maxParallel ?? count, count))
        self.succeeded = succeeded
        self.failed = failed
    }

    /// Instances that ended for good.
    public var finished: Int { succeeded + failed }

    /// Instances released to the queue so far (the first `released` indexes).
    public var released: Int { min(count, maxParallel + finished) }

    /// Whether every instance ended.
    public var isComplete: Bool { finished >= count }

    /// Numbering of instance rows: the instances of the task at `parent` are the task indexes
    /// `base(of: parent) + index`. Blocks of ``Limits/mapInstances``' upper bound, so the rows of
    /// two mapped tasks never meet and stay above every declared task.
    public static func base(of parent: Int) -> Int { (parent + 1) * Limits.mapInstances.upperBound }

    /// The highest task position that may be mapped: instance indexes must fit a 32-bit column.
    public static let maxMappedPosition = Int(Int32.max) / Limits.mapInstances.upperBound - 2

    /// The task id of an instance: `process[3]`.
    public static func instanceID(_ parent: String, index: Int) -> String { "\(parent)[\(index)]" }

    /// What a store does after `justFinished` instances ended and it added them to the counters
    /// (`self` is the state after the addition).
    public func step(justFinished: Int) -> Step {
        var before = self
        before.succeeded = max(0, finished - justFinished)
        before.failed = 0
        let queue = before.released..<released
        let completes = isComplete && before.finished < count
        return Step(queue: queue, completes: completes)
    }

    /// The effect of instances ending (``step(justFinished:)``).
    public struct Step: Sendable, Hashable {
        /// Instance indexes to queue now (each one that ended frees a place).
        public var queue: Range<Int>
        /// Whether the last instance just ended: the mapped task finishes now.
        public var completes: Bool

        public init(queue: Range<Int>, completes: Bool) {
            self.queue = queue
            self.completes = completes
        }
    }

    /// The failure message of a mapped task whose instances at `failedIndexes` failed.
    public static func failureMessage(failedIndexes: [Int], count: Int) -> String {
        let shown = failedIndexes.prefix(20).map(String.init).joined(separator: ", ")
        let more = failedIndexes.count > 20 ? " and \(failedIndexes.count - 20) more" : ""
        return "\(failedIndexes.count) of \(count) instances failed (index\(failedIndexes.count == 1 ? "" : "es") \(shown)\(more)); see their logs"
    }

    /// Why `count` items are too many for a mapped task, or nil.
    public static func limitProblem(count: Int, limit: Int) -> String? {
        guard count > limit else { return nil }
        return "for_each gave \(count) items, more than the limit of \(limit) instances per mapped task; "
            + "split the list, or raise max_map_instances in deerflow.yaml (at most \(Limits.mapInstances.upperBound))"
    }
}
