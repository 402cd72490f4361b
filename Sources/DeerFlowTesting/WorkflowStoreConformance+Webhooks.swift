import DeerFlow
import DeerFlowCore
import Foundation
import Testing

extension WorkflowStoreConformance {
    /// A delivery id is recorded with its run: a repeat (also ten at once) creates nothing and
    /// answers the first run; another hook or id is a new delivery; the purge forgets deliveries
    /// received before its cutoff, so a repeat after that creates a run again.
    static func webhookDeliveries(_ store: any ServerStore) async throws {
        let now = Date()
        let delivery = WebhookDelivery(hook: "push", id: "d-1", receivedAt: now)
        let first = newRun(tasks: [("a", [])], at: now)
        guard case .created(let record) = try await store.createRun(first, delivery: delivery) else {
            Issue.record("the first delivery created no run")
            return
        }
        #expect(record.id == first.id)
        // Ten repeats at the same time: none creates a run, all answer the first.
        let outcomes = try await withThrowingTaskGroup(of: DeliveryOutcome.self) { group in
            for _ in 0..<10 {
                group.addTask { try await store.createRun(newRun(tasks: [("a", [])], at: now), delivery: delivery) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.allSatisfy { $0 == .duplicate(first.id) }, "\(outcomes)")
        #expect(try await store.runs(RunQuery()).runs.map(\.id) == [first.id])
        #expect(try await claim(store).count == 1)

        // Ten new deliveries at the same time, each its own run.
        let fresh = try await withThrowingTaskGroup(of: DeliveryOutcome.self) { group in
            for index in 0..<10 {
                group.addTask {
                    try await store.createRun(newRun(tasks: [("a", [])], at: now), delivery: WebhookDelivery(hook: "push", id: "n-\(index)", receivedAt: now))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(fresh.compactMap { if case .created(let run) = $0 { run.id } else { nil } }).count == 10)
        // The same id for another hook is another delivery.
        let otherHook = try await store.createRun(newRun(tasks: [("a", [])], at: now), delivery: WebhookDelivery(hook: "release", id: "d-1", receivedAt: now))
        if case .duplicate = otherHook { Issue.record("a delivery id of another hook was taken for a repeat") }

        // Deliveries older than the purge's cutoff are forgotten; newer ones stay.
        let old = WebhookDelivery(hook: "push", id: "old", receivedAt: now.addingTimeInterval(-86_400 * 10))
        let oldRun = newRun(tasks: [("a", [])], at: old.receivedAt)
        _ = try await store.createRun(oldRun, delivery: old)
        #expect(try await store.purgeSettledRecords(before: now.addingTimeInterval(-86_400)) >= 1)
        let again = try await store.createRun(newRun(tasks: [("a", [])], at: now), delivery: old)
        if case .duplicate = again { Issue.record("a purged delivery still counted as seen") }
        #expect(try await store.createRun(newRun(tasks: [("a", [])], at: now), delivery: delivery) == .duplicate(first.id))
    }
}
