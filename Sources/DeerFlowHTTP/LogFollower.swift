import DeerFlow
import DeerFlowCore

/// Streams a task's log while it runs (`?follow=true`): what each attempt has written so far,
/// then new text as workers store it, until the task has finished and every line was sent.
///
/// An `AsyncSequence` of chunks: the store is polled only while the response is being sent, and a
/// client that goes away ends the polling with the response.
struct LogFollower: AsyncSequence, Sendable {
    typealias Element = ArraySlice<UInt8>

    let store: any WorkflowStore
    let run: RunID
    let task: String
    let attempt: Int?
    var pollInterval: Duration = .milliseconds(250)

    func makeAsyncIterator() -> Iterator { Iterator(follower: self) }

    struct Iterator: AsyncIteratorProtocol {
        let follower: LogFollower
        var sent: [Int: Int] = [:]
        var headed: Set<Int> = []
        var finished = false

        mutating func next() async throws -> ArraySlice<UInt8>? {
            let store = follower.store
            while !finished {
                try Task.checkCancellation()
                let logs = try await store.taskLogs(run: follower.run, task: follower.task, attempt: follower.attempt) ?? []
                var chunk = newText(in: logs)
                // Done when the task is final: no attempt queued or running (a retry may still
                // come while one is queued).
                let status = try await store.run(follower.run)?.tasks.first { $0.id == follower.task }?.status
                if let status, status.isFinished, logs.allSatisfy({ $0.status.isFinished }) {
                    // One more read picks up text stored together with the completion.
                    let final = try await store.taskLogs(run: follower.run, task: follower.task, attempt: follower.attempt) ?? []
                    chunk += newText(in: final)
                    finished = true
                }
                if !chunk.isEmpty { return ArraySlice(chunk) }
                if !finished { try await Sleep.for(follower.pollInterval) }
            }
            return nil
        }

        /// The text not sent yet, each attempt headed once by `=== attempt N ===`.
        private mutating func newText(in logs: [AttemptLog]) -> [UInt8] {
            var chunk: [UInt8] = []
            for log in logs {
                if !headed.contains(log.attempt) {
                    chunk += Array("=== attempt \(log.attempt) ===\n".utf8)
                    headed.insert(log.attempt)
                }
                let already = sent[log.attempt, default: 0]
                let bytes = Array(log.text.utf8)
                if bytes.count > already {
                    chunk += bytes[already...]
                    sent[log.attempt] = bytes.count
                }
            }
            return chunk
        }
    }
}
