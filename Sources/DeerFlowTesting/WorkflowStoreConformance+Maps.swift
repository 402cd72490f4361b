import DeerFlow
import DeerFlowCore
import Foundation
import Testing

/// Dynamic fan-out (`for_each`): expansions, instances, `max_parallel`, and the mapped task's end.
extension WorkflowStoreConformance {
    static let mapChecks: [Check<any WorkflowStore>] = [
        Check(name: "a mapped task expands into instances, at most max_parallel at once, and its dependent gets their outputs in order", run: mapExpansion),
        Check(name: "a failing instance is retried; one failing for good fails the mapped task naming it, and its dependents", run: mapFailure),
        Check(name: "a mapped task over an empty list succeeds at once with []", run: mapEmpty),
        Check(name: "cancelling a run cancels its mapped task and waiting instances", run: mapCancel),
        Check(name: "retrying a run with a failed mapped task expands it again", run: mapRetry),
    ]

    /// Claims `list`, completes it, claims the mapped task's expansion attempt and reports `items`.
    static func expand(_ store: any WorkflowStore, items: [JSONValue], maxParallel: Int?, at now: Date) async throws {
        let list = try await claim(store, at: now)
        #expect(list.map(\.taskID) == ["list"])
        _ = try await complete(store, list, .success(output: .array(items)), at: now)
        let mapped = try await claim(store, at: now)
        #expect(mapped.map(\.taskID) == ["process"])
        #expect(mapped.first?.mapIndex == nil)
        let completions = mapped.map { AttemptCompletion.expansion(attemptID: $0.id, items: items, maxParallel: maxParallel, finishedAt: now) }
        _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: now))
    }

    static func instances(_ detail: RunDetail) -> [TaskRecord] {
        detail.tasks.filter { $0.mapParent != nil }.sorted { ($0.mapIndex ?? 0) < ($1.mapIndex ?? 0) }
    }

    static func mapExpansion(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("list", []), ("process", ["list"]), ("sum", ["process"])], at: now)
        _ = try await store.createRun(run)
        let items: [JSONValue] = (0..<7).map { .string("file-\($0)") }
        try await expand(store, items: items, maxParallel: 3, at: now)
        var detail = try await detail(store, run.id)
        #expect(statuses(detail)["process"] == .running)
        #expect(detail.tasks.first { $0.id == "process" }?.map == MapProgress(count: 7, maxParallel: 3))
        #expect(instances(detail).map(\.id) == (0..<7).map { "process[\($0)]" })
        #expect(instances(detail).filter { $0.status == .queued }.count == 3)
        #expect(detail.run.progress.total == 3)

        // Instances run with their index and item; never more than 3 queued or running.
        var seen: [Int] = []
        while seen.count < 7 {
            let claimed = try await claim(store, limit: 2, at: now)
            if claimed.isEmpty { break }
            for attempt in claimed {
                #expect(attempt.mapItem == attempt.mapIndex.flatMap { items.indices.contains($0) ? items[$0] : nil })
                #expect(attempt.taskID == "process[\(attempt.mapIndex ?? -1)]")
                #expect(attempt.definitionID == "process")
            }
            seen += claimed.compactMap(\.mapIndex)
            detail = try await self.detail(store, run.id)
            let active = instances(detail).filter { $0.status == .queued || $0.status == .running }.count
            #expect(active <= 3)
            for attempt in claimed.reversed() {
                _ = try await complete(store, [attempt], .success(output: .object(["n": .int((attempt.mapIndex ?? 0) * 10)])), at: now)
            }
        }
        #expect(seen.sorted() == Array(0..<7))
        detail = try await self.detail(store, run.id)
        #expect(statuses(detail)["process"] == .success)
        #expect(statuses(detail)["sum"] == .queued)
        let expected = JSONValue.array((0..<7).map { .object(["n": .int($0 * 10)]) })
        #expect(try await store.taskOutput(run: run.id, task: "process") == expected)
        #expect(detail.tasks.first { $0.id == "process" }?.map?.succeeded == 7)
        // Instance logs are found by the instance's id.
        #expect(try await store.taskLogs(run: run.id, task: "process[4]", attempt: nil)?.count == 1)
        // The UI's grid shows the mapped task once, not its instances.
        #expect(try await store.taskStates(runs: [run.id])[run.id]?.map(\.id) == ["list", "process", "sum"])
        try await finishAll(store, at: now)
        #expect(try await self.detail(store, run.id).run.status == .success)
    }

    static func mapFailure(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("list", []), ("process", ["list"]), ("sum", ["process"])], retries: 1, retryDelay: .seconds(1), at: now)
        _ = try await store.createRun(run)
        try await expand(store, items: [1, 2, 3], maxParallel: nil, at: now)
        let first = try await claim(store, at: now)
        #expect(first.count == 3)
        _ = try await complete(store, first.filter { $0.mapIndex != 1 }, .success(output: .int(1)), at: now)
        _ = try await complete(store, first.filter { $0.mapIndex == 1 }, .failure(message: "boom"), at: now)
        var detail = try await detail(store, run.id)
        #expect(statuses(detail)["process"] == .running)
        #expect(statuses(detail)["process[1]"] == .queued)
        let later = now.addingTimeInterval(5)
        let retry = try await claim(store, at: later)
        #expect(retry.map(\.taskID) == ["process[1]"])
        #expect(retry.first?.number == 2)
        _ = try await complete(store, retry, .failure(message: "boom again"), at: later)
        detail = try await self.detail(store, run.id)
        #expect(statuses(detail)["process[1]"] == .failed)
        #expect(statuses(detail)["process"] == .failed)
        #expect(statuses(detail)["sum"] == .upstreamFailed)
        #expect(detail.run.status == .failed)
        let error = detail.tasks.first { $0.id == "process" }?.attempts.last?.error ?? ""
        #expect(error.contains("1 of 3 instances failed (index 1)"))
    }

    static func mapEmpty(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("list", []), ("process", ["list"]), ("sum", ["process"])], at: now)
        _ = try await store.createRun(run)
        try await expand(store, items: [], maxParallel: 2, at: now)
        let detail = try await detail(store, run.id)
        #expect(statuses(detail)["process"] == .success)
        #expect(statuses(detail)["sum"] == .queued)
        #expect(instances(detail).isEmpty)
        #expect(try await store.taskOutput(run: run.id, task: "process") == .array([]))
    }

    static func mapCancel(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("list", []), ("process", ["list"])], at: now)
        _ = try await store.createRun(run)
        try await expand(store, items: [1, 2, 3, 4], maxParallel: 1, at: now)
        let running = try await claim(store, at: now)
        #expect(running.count == 1)
        _ = try await store.cancelRun(run.id, at: now)
        _ = try await complete(store, running, .cancelled(message: "run cancelled"), at: now)
        let detail = try await detail(store, run.id)
        #expect(detail.run.status == .cancelled)
        #expect(statuses(detail)["process"] == .cancelled)
        #expect(instances(detail).allSatisfy { $0.status == .cancelled })
    }

    static func mapRetry(_ store: any WorkflowStore) async throws {
        let now = Date()
        let run = newRun(tasks: [("list", []), ("process", ["list"]), ("sum", ["process"])], at: now)
        _ = try await store.createRun(run)
        try await expand(store, items: [1, 2], maxParallel: nil, at: now)
        let first = try await claim(store, at: now)
        _ = try await complete(store, first, .failure(message: "boom"), at: now)
        #expect(try await detail(store, run.id).run.status == .failed)
        _ = try retried(try await store.retryRun(run.id, tasks: nil, at: now))
        var detail = try await detail(store, run.id)
        #expect(statuses(detail)["process"] == .queued)
        #expect(instances(detail).isEmpty, "the last try's instances are gone")
        let again = try await claim(store, at: now)
        #expect(again.map(\.taskID) == ["process"])
        #expect(again.first?.number == 2)
        let completions = again.map { AttemptCompletion.expansion(attemptID: $0.id, items: [10, 20, 30], maxParallel: nil, finishedAt: now) }
        _ = try await store.exchange(ExchangeRequest(completions: completions, claim: nil, now: now))
        let instancesRun = try await claim(store, at: now)
        #expect(instancesRun.map(\.number) == [1, 1, 1])
        _ = try await complete(store, instancesRun, .success(output: .bool(true)), at: now)
        detail = try await self.detail(store, run.id)
        #expect(statuses(detail)["process"] == .success)
        #expect(try await store.taskOutput(run: run.id, task: "process") == .array([true, true, true]))
        try await finishAll(store, at: now)
        #expect(try await self.detail(store, run.id).run.status == .success)
    }
}
