import Dispatch
import Synchronization

/// `Task.sleep` without its leak: DeerFlow's code sleeps through this.
///
/// A `Task.sleep` cancelled before its deadline keeps its timer's memory for good (about 370
/// bytes each, not freed at the deadline either: 18 MB after 50,000 cancelled sleeps in a
/// standalone program on Swift 6.3, swiftlang/swift#60441). DeerFlow races a sleep against work
/// on every PostgreSQL connection lease (the pool timeout), every task attempt (its log flush and
/// timeout) and every early wake-up of a waiting loop, so a PostgreSQL server grew by about 1.5 KB
/// per run, for as long as it ran. Here the timer is a Dispatch timer source, cancelled and freed
/// with the sleep (0.7 MB after the same 50,000).
///
/// ```swift
/// try await Sleep.for(.milliseconds(500))      // throws CancellationError when cancelled
/// try? await Sleep.until(.now + .seconds(5))
/// ```
public enum Sleep {
    /// Suspends for `duration`; throws `CancellationError` as soon as the task is cancelled.
    public static func `for`(_ duration: Duration) async throws {
        try await until(.now + duration)
    }

    /// Suspends until `deadline`; throws `CancellationError` as soon as the task is cancelled.
    public static func until(_ deadline: ContinuousClock.Instant) async throws {
        let timer = SleepTimer()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                timer.start(until: deadline, continuation: continuation)
            }
        } onCancel: {
            timer.cancel()
        }
    }

    /// Sleep timers not yet freed (tests check that cancelled sleeps leave none behind).
    package static var liveTimers: Int { SleepTimer.live.load(ordering: .relaxed) }
}

/// One sleep's timer: resumes its continuation once, at the deadline or on cancellation, and
/// cancels its Dispatch source either way.
private final class SleepTimer: Sendable {
    static let live = Atomic<Int>(0)

    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, any Error>, TimerSource)
        case cancelled
        case finished
    }

    /// Dispatch sources are thread-safe; their type is not marked `Sendable`.
    private struct TimerSource: @unchecked Sendable {
        let source: any DispatchSourceTimer
    }

    private let state = Mutex(State.idle)

    init() {
        Self.live.add(1, ordering: .relaxed)
    }

    deinit {
        Self.live.subtract(1, ordering: .relaxed)
    }

    func start(until deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Void, any Error>) {
        let timer = state.withLock { state -> TimerSource? in
            guard case .idle = state else { return nil }
            let timer = TimerSource(source: DispatchSource.makeTimerSource(queue: .global()))
            state = .waiting(continuation, timer)
            return timer
        }
        guard let timer else {
            // Cancelled before the continuation existed.
            continuation.resume(throwing: CancellationError())
            return
        }
        // Activated even when a cancellation cancelled it meanwhile: Dispatch traps when an
        // inactive source is released.
        timer.source.setEventHandler { self.finish(throwing: nil) }
        timer.source.schedule(deadline: Self.dispatchTime(of: deadline))
        timer.source.activate()
    }

    func cancel() {
        finish(throwing: CancellationError())
    }

    private func finish(throwing error: (any Error)?) {
        let waiting = state.withLock { state -> (CheckedContinuation<Void, any Error>, TimerSource)? in
            switch state {
            case .waiting(let continuation, let source):
                state = error == nil ? .finished : .cancelled
                return (continuation, source)
            case .idle:
                if error != nil { state = .cancelled }
                return nil
            case .cancelled, .finished:
                return nil
            }
        }
        guard let (continuation, timer) = waiting else { return }
        // Cancelling the source releases its handler, and with it this timer.
        timer.source.cancel()
        if let error { continuation.resume(throwing: error) } else { continuation.resume() }
    }

    /// `deadline` on Dispatch's clock; far deadlines (beyond a century) never fire.
    private static func dispatchTime(of deadline: ContinuousClock.Instant) -> DispatchTime {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { return .now() }
        guard remaining < .seconds(100 * 365 * 86_400) else { return .distantFuture }
        let (seconds, attoseconds) = remaining.components
        return .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}
