import Synchronization

/// Fans `NOTIFY deerflow_work` out to every worker loop of this process that asked for wake-ups
/// (``PostgresWorkflowStore/workAvailable()``). Wake-ups coalesce: a subscriber busy with a claim
/// finds at most one pending wake-up when it looks again.
final class WorkNotifier: Sendable {
    private struct State {
        var subscribers: [Int: AsyncStream<Void>.Continuation] = [:]
        var nextID = 0
        /// The LISTEN connection is opened only once somebody wants wake-ups (processes without
        /// workers never open it).
        var wanted = false
        var wantedWaiter: CheckedContinuation<Void, Never>?
        var closed = false
    }

    private let state = Mutex(State())

    /// A stream that yields when work may have become claimable.
    func subscribe() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let (id, waiter, closed) = state.withLock { state -> (Int, CheckedContinuation<Void, Never>?, Bool) in
            let id = state.nextID
            state.nextID += 1
            if state.closed { return (id, nil, true) }
            state.subscribers[id] = continuation
            state.wanted = true
            defer { state.wantedWaiter = nil }
            return (id, state.wantedWaiter, false)
        }
        if closed {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        waiter?.resume()
        return stream
    }

    /// Wakes every subscriber.
    func broadcast() {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for subscriber in subscribers { subscriber.yield() }
    }

    /// Returns once the first subscriber arrived, or when the task is cancelled.
    func waitUntilWanted() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.wanted || state.closed || Task.isCancelled { return true }
                    state.wantedWaiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.wantedWaiter = nil }
                return state.wantedWaiter
            }
            waiter?.resume()
        }
    }

    /// Ends every stream (the store closes).
    func finish() {
        let (subscribers, waiter) = state.withLock { state -> ([AsyncStream<Void>.Continuation], CheckedContinuation<Void, Never>?) in
            state.closed = true
            defer {
                state.subscribers = [:]
                state.wantedWaiter = nil
            }
            return (Array(state.subscribers.values), state.wantedWaiter)
        }
        for subscriber in subscribers { subscriber.finish() }
        waiter?.resume()
    }
}
