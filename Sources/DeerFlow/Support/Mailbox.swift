import DeerFlowCore
import Dispatch
import Synchronization

/// Where a worker's loop waits: finished attempts from its slots, wake-ups from new work, and
/// shutdown. Level-triggered: a wake that arrives while the loop is busy is not lost.
final class Mailbox<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var woken = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
        var waiterID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Delivers an item and wakes the loop.
    func post(_ item: Item) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(item)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Wakes the loop without an item (new work may be ready).
    func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.woken = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Marks the mailbox closed (shutdown) and wakes the loop.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Takes every delivered item and whether a wake-up arrived since the last call.
    func take() -> (items: [Item], woken: Bool) {
        state.withLock { state in
            defer {
                state.items.removeAll(keepingCapacity: true)
                state.woken = false
            }
            return (state.items, state.woken)
        }
    }

    /// Waits until an item, a wake-up or close arrives, or `timeout` passes. Once closed, only items
    /// and wake-ups end the wait (a draining loop must not spin on the closed flag).
    func wait(timeout: Duration) async {
        if state.withLock({ !$0.items.isEmpty || $0.woken }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Like `wait(timeout:)`, for a task that is already cancelled (where `Task.sleep` returns at once).
    func waitIgnoringCancellation(timeout: Duration) async {
        if state.withLock({ !$0.items.isEmpty || $0.woken }) { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let registered = state.withLock { state -> Bool in
                guard state.waiter == nil else { return false }
                state.waiterID &+= 1
                state.waiter = continuation
                return true
            }
            guard registered else {
                continuation.resume()
                return
            }
            let id = state.withLock { $0.waiterID }
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout.milliseconds))) {
                let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard state.waiterID == id else { return nil }
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume()
            }
        }
    }

    private func waitForSignal() async {
        let id = state.withLock { state -> UInt64 in
            state.waiterID &+= 1
            return state.waiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if !state.items.isEmpty || state.woken || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard state.waiterID == id else { return nil }
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}

/// Why a running attempt is asked to stop.
enum StopReason: Sendable {
    /// Its run was cancelled.
    case cancelled
    /// Its run passed the workflow's run timeout (seen by this process; others see `cancelled`).
    case runTimedOut
    /// The worker is shutting down and releases it for another worker.
    case released
}

/// A one-shot signal asking one running attempt to stop.
final class StopSignal: Sendable {
    private let state = Mutex<(reason: StopReason?, waiter: CheckedContinuation<StopReason?, Never>?)>((nil, nil))

    func fire(_ reason: StopReason) {
        let waiter = state.withLock { state -> CheckedContinuation<StopReason?, Never>? in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: reason)
    }

    var reason: StopReason? { state.withLock { $0.reason } }

    /// Returns the reason once fired; nil if the waiting task is cancelled first.
    func wait() async -> StopReason? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<StopReason?, Never>) in
                let immediate = state.withLock { state -> StopReason?? in
                    if let reason = state.reason { return .some(reason) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<StopReason?, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
