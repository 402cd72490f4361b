import DeerFlowCore
import Dispatch
import Synchronization

/// Where a worker's loop waits: finished attempts from its slots, wake-ups from new work, and
/// shutdown. Level-triggered: a wake that arrives while the loop is busy is not lost.
///
/// A wait is one continuation; its timeout comes from a timer shared by successive waits. (A task
/// group racing a sleep against the signal, the obvious form, creates two tasks per wait, and the
/// loop waits twice per attempt: their scheduling was a tenth of the server's CPU per run.) The
/// timer is a `DispatchQueue` deadline, which cannot be cancelled, so it is armed only when no
/// armed one comes due first; a timer that finds the waiter's deadline later arms the next one.
final class Mailbox<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var woken = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Identifies the current wait (a cancellation handler must not end a later one).
        var waiterID: UInt64 = 0
        var waiterDeadline: ContinuousClock.Instant?
        /// The earliest deadline a timer is armed for.
        var armedDeadline: ContinuousClock.Instant?

        var ready: Bool { !items.isEmpty || woken }

        /// Ends the wait, returning its continuation to resume (outside the lock).
        mutating func release() -> CheckedContinuation<Void, Never>? {
            defer {
                waiter = nil
                waiterDeadline = nil
            }
            return waiter
        }
    }

    private let state = Mutex(State())

    /// Delivers an item and wakes the loop.
    func post(_ item: Item) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(item)
            return state.release()
        }
        waiter?.resume()
    }

    /// Wakes the loop without an item (new work may be ready).
    func wake() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.woken = true
            return state.release()
        }
        waiter?.resume()
    }

    /// Marks the mailbox closed (shutdown) and wakes the loop.
    func close() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.closed = true
            return state.release()
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

    /// Waits until an item, a wake-up or close arrives, `timeout` passes or the task is cancelled.
    /// Once closed, only items and wake-ups end the wait (a draining loop must not spin on the
    /// closed flag).
    func wait(timeout: Duration) async {
        guard let (id, deadline) = begin(timeout: timeout) else { return }
        await withTaskCancellationHandler {
            await suspend(id: id, until: deadline, endOnCancellation: true)
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.waiterID == id ? state.release() : nil
            }
            waiter?.resume()
        }
    }

    /// Like `wait(timeout:)`, for a task that is already cancelled (where `wait` would return at once).
    func waitIgnoringCancellation(timeout: Duration) async {
        guard let (id, deadline) = begin(timeout: timeout) else { return }
        await suspend(id: id, until: deadline, endOnCancellation: false)
    }

    /// A new wait's id and deadline; nil when an item or wake-up is already there.
    private func begin(timeout: Duration) -> (id: UInt64, deadline: ContinuousClock.Instant)? {
        let deadline = ContinuousClock.now + timeout
        return state.withLock { state in
            guard !state.ready else { return nil }
            state.waiterID &+= 1
            return (state.waiterID, deadline)
        }
    }

    private func suspend(id: UInt64, until deadline: ContinuousClock.Instant, endOnCancellation: Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, arm) = state.withLock { state -> (Bool, Bool) in
                if state.ready || state.waiterID != id || (endOnCancellation && Task.isCancelled) { return (true, false) }
                state.waiter = continuation
                state.waiterDeadline = deadline
                if let armed = state.armedDeadline, armed <= deadline { return (false, false) }
                state.armedDeadline = deadline
                return (false, true)
            }
            if resumeNow {
                continuation.resume()
            } else if arm {
                armTimer(for: deadline)
            }
        }
    }

    private func armTimer(for deadline: ContinuousClock.Instant) {
        let delay = max(.zero, deadline - .now)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(delay.nanoseconds))) {
            self.timerFired(armedFor: deadline)
        }
    }

    private func timerFired(armedFor deadline: ContinuousClock.Instant) {
        let (waiter, rearm) = state.withLock { state -> (CheckedContinuation<Void, Never>?, ContinuousClock.Instant?) in
            if state.armedDeadline == deadline { state.armedDeadline = nil }
            guard let due = state.waiterDeadline else { return (nil, nil) }
            if due <= .now { return (state.release(), nil) }
            // The current wait ends later than this timer: make sure a timer comes for it.
            if let armed = state.armedDeadline, armed <= due { return (nil, nil) }
            state.armedDeadline = due
            return (nil, due)
        }
        waiter?.resume()
        if let rearm { armTimer(for: rearm) }
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
