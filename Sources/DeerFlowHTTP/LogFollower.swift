import DeerFlow
import DeerFlowCore
import Hummingbird
import NIOCore

/// Streams a task's log while it runs (`?follow=true`): what each attempt has written so far,
/// then new text as workers store it, until the task has finished and every line was sent.
struct LogFollower: Sendable {
    let store: any WorkflowStore
    let run: RunID
    let task: String
    let attempt: Int?
    var pollInterval: Duration = .milliseconds(250)

    func stream(to writer: inout any ResponseBodyWriter) async throws {
        var sent: [Int: Int] = [:]
        var headed: Set<Int> = []
        while !Task.isCancelled {
            let logs = try await store.taskLogs(run: run, task: task, attempt: attempt) ?? []
            var chunk = ""
            for log in logs {
                if !headed.contains(log.attempt) {
                    chunk += "=== attempt \(log.attempt) ===\n"
                    headed.insert(log.attempt)
                }
                let already = sent[log.attempt, default: 0]
                let bytes = Array(log.text.utf8)
                if bytes.count > already {
                    chunk += String(decoding: bytes[already...], as: UTF8.self)
                    sent[log.attempt] = bytes.count
                }
            }
            if !chunk.isEmpty { try await writer.write(ByteBuffer(string: chunk)) }
            // Done when the task is final: no attempt queued or running (a retry may still come
            // while one is queued).
            let status = try await store.run(run)?.tasks.first { $0.id == task }?.status
            if let status, status.isFinished, logs.allSatisfy({ $0.status.isFinished }) {
                // One more read picks up text stored together with the completion.
                let final = try await store.taskLogs(run: run, task: task, attempt: attempt) ?? []
                var rest = ""
                for log in final {
                    let bytes = Array(log.text.utf8)
                    let already = sent[log.attempt, default: 0]
                    if !headed.contains(log.attempt) { rest += "=== attempt \(log.attempt) ===\n" }
                    if bytes.count > already { rest += String(decoding: bytes[already...], as: UTF8.self) }
                }
                if !rest.isEmpty { try await writer.write(ByteBuffer(string: rest)) }
                break
            }
            try await Task.sleep(for: pollInterval)
        }
        try await writer.finish(nil)
    }
}
