public import DeerFlow
import DeerFlowCore
import Foundation
import PostgresNIO

extension PostgresWorkflowStore: WebhookDeliveryStore {
    /// Records the delivery and inserts its run in one transaction. A repeat arriving while the
    /// first is not committed waits on the delivery's primary key, then inserts nothing and reads
    /// the first's run (READ COMMITTED: the next statement sees the committed row).
    public func createRun(_ run: NewRun, delivery: WebhookDelivery) async throws -> DeliveryOutcome {
        let limits = try await currentLimits(now: Date())
        return try await transaction { session in
            let recorded = try await session.rows("""
                INSERT INTO webhook_deliveries (hook, delivery_id, run_id, received_at)
                VALUES (\(delivery.hook), \(delivery.id), \(run.id.rawValue), \(delivery.receivedAt))
                ON CONFLICT (hook, delivery_id) DO NOTHING RETURNING run_id
                """)
            guard recorded.isEmpty else {
                guard let record = try await Self.insert([run], runLimits: limits.runLimits, in: session).first ?? nil else {
                    throw DeerFlowError(.internal, "the run of webhook delivery \(delivery.id) was not inserted")
                }
                return .created(record)
            }
            let earlier = try await session.rows(
                "SELECT run_id FROM webhook_deliveries WHERE hook = \(delivery.hook) AND delivery_id = \(delivery.id)")
            return .duplicate(RunID(rawValue: try earlier.first?.decode(String.self) ?? ""))
        }
    }
}
