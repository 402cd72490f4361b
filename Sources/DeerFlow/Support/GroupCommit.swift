import Synchronization

/// Coalesces concurrent requests into batches, as databases do with group commit: the first
/// caller to find no batch in flight runs `flush` for everything queued, repeatedly, until the
/// queue is empty; everyone else waits for their own result. Under load, one transaction serves
/// many callers; alone, a caller pays for one transaction of its own.
package final class GroupCommit<Input: Sendable, Output: Sendable>: Sendable {
    private let state = Mutex<(queue: [(Input, ResultSlot<Output>)], flushing: Bool)>(([], false))
    private let maxBatch: Int
    private let flush: @Sendable ([Input]) async throws -> [Output]

    /// - Parameters:
    ///   - maxBatch: largest batch handed to `flush`.
    ///   - flush: processes a batch and returns one output per input, in order.
    package init(maxBatch: Int = 500, flush: @escaping @Sendable ([Input]) async throws -> [Output]) {
        self.maxBatch = maxBatch
        self.flush = flush
    }

    /// Submits one input and waits for its output.
    package func submit(_ input: Input) async throws -> Output {
        let slot = ResultSlot<Output>()
        let leads = state.withLock { state -> Bool in
            state.queue.append((input, slot))
            if state.flushing { return false }
            state.flushing = true
            return true
        }
        if leads { await drain() }
        return try await slot.value()
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [(Input, ResultSlot<Output>)] in
                let count = min(maxBatch, state.queue.count)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                if batch.isEmpty { state.flushing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let outputs = try await flush(batch.map(\.0))
                for ((_, slot), output) in zip(batch, outputs) { slot.set(.success(output)) }
            } catch {
                for (_, slot) in batch { slot.set(.failure(error)) }
            }
        }
    }
}

/// A result delivered once, awaited once.
final class ResultSlot<Value: Sendable>: Sendable {
    private let state = Mutex<(result: Result<Value, any Error>?, waiter: CheckedContinuation<Value, any Error>?)>((nil, nil))

    func set(_ result: Result<Value, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<Value, any Error>? in
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<Value, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
