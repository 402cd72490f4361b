import Synchronization

/// Counts log lines that sinks could not write, and forwards them to the metrics once those
/// exist (logging starts before the metrics registry).
package final class DroppedLinesCounter: Sendable {
    private let state = Mutex<(pending: [String: Int], forward: (@Sendable (String, Int) -> Void)?, total: Int)>(([:], nil, 0))

    /// Everything counted since the process started.
    package var total: Int { state.withLock { $0.total } }

    package func add(_ sink: String, _ count: Int) {
        let forward = state.withLock { state -> (@Sendable (String, Int) -> Void)? in
            state.total += count
            if state.forward == nil { state.pending[sink, default: 0] += count }
            return state.forward
        }
        forward?(sink, count)
    }

    /// From now on, counts go to `forward`; what was counted before is handed over first.
    package func attach(_ forward: @escaping @Sendable (String, Int) -> Void) {
        let pending = state.withLock { state -> [String: Int] in
            state.forward = forward
            defer { state.pending = [:] }
            return state.pending
        }
        for (sink, count) in pending { forward(sink, count) }
    }
}
