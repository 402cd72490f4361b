import Synchronization

/// Wakes a loop that sleeps until there is work: a wait ends on a signal, at its deadline, or when
/// the task is cancelled; a signal given while nobody waits ends the next wait at once.
public final class Wakeup: Sendable {
    public init() {}

    private let state = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Waits for a signal (or the task's cancellation).
    public func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.signalled {
                        state.signalled = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            self.signal()
        }
    }

    /// Waits for a signal, the deadline or the task's cancellation, whichever comes first.
    public func wait(until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await Sleep.until(deadline)
                    self.signal()
                } catch {}
            }
            await wait()
            group.cancelAll()
        }
    }

    /// Someone waits and no signal is pending (tests wait for this before checking that an idle
    /// loop does not wake).
    package var isWaiting: Bool {
        state.withLock { $0.waiter != nil }
    }
}
