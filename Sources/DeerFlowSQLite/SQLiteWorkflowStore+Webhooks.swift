public import DeerFlow
import DeerFlowCore
import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore: WebhookDeliveryStore {
    /// Records the delivery and inserts its run in one write transaction (the single writer
    /// serializes concurrent repeats: the second finds the first's row).
    public func createRun(_ run: NewRun, delivery: WebhookDelivery) async throws -> DeliveryOutcome {
        let limits = try await currentLimits(now: Date())
        return try await writer.transaction { db in
            let recorded = try await db.rows(
                """
                INSERT INTO webhook_deliveries (hook, delivery_id, run_id, received_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (hook, delivery_id) DO NOTHING RETURNING run_id
                """,
                [.text(delivery.hook), .text(delivery.id), .text(run.id.rawValue), Column.time(delivery.receivedAt)])
            guard recorded.isEmpty else {
                guard let record = try await Self.insert([run], runLimits: limits.runLimits, into: db).first ?? nil else {
                    throw DeerFlowError(.internal, "the run of webhook delivery \(delivery.id) was not inserted")
                }
                return .created(record)
            }
            let earlier = try await db.rows(
                "SELECT run_id FROM webhook_deliveries WHERE hook = ? AND delivery_id = ?", [.text(delivery.hook), .text(delivery.id)])
            return .duplicate(RunID(rawValue: earlier.first?.string("run_id") ?? ""))
        }
    }
}
