public import DeerFlow
import DeerFlowCore
public import Foundation
import PostgresNIO

extension PostgresWorkflowStore {
    static let outboxColumns = "id, key, channel, payload, status, attempts, created_at, next_attempt_at, delivered_at, last_error"

    public func enqueue(_ messages: [NewOutboxMessage]) async throws -> Int {
        guard !messages.isEmpty else { return 0 }
        let rows = try await session { session in
            try await session.rows("""
                INSERT INTO notification_outbox (key, channel, payload, created_at, next_attempt_at)
                SELECT key, channel, payload, created_at, created_at
                FROM unnest(\(messages.map(\.key))::text[], \(messages.map(\.channel))::text[], \(messages.map(\.payload))::text[],
                            \(messages.map(\.createdAt))::timestamptz[]) AS m(key, channel, payload, created_at)
                ON CONFLICT (key) DO NOTHING RETURNING id
                """)
        }
        return rows.count
    }

    /// `FOR UPDATE SKIP LOCKED`: dispatchers in several processes never take the same message.
    public func claimOutbox(now: Date, limit: Int, lease: Duration) async throws -> [OutboxMessage] {
        let until = now.adding(lease)
        let rows = try await session { session in
            try await session.rows("""
                UPDATE notification_outbox SET claimed_until = \(until)
                WHERE id IN (
                    SELECT id FROM notification_outbox
                    WHERE status = 'pending' AND next_attempt_at <= \(now) AND (claimed_until IS NULL OR claimed_until <= \(now))
                    ORDER BY next_attempt_at, id LIMIT \(max(1, limit)) FOR UPDATE SKIP LOCKED)
                RETURNING \(unescaped: Self.outboxColumns)
                """)
        }
        return try rows.map(Self.outboxMessage).sorted { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }
    }

    public func settleOutbox(_ id: Int64, outcome: OutboxOutcome, at now: Date) async throws {
        try await session { session in
            switch outcome {
            case .delivered:
                try await session.execute("""
                    UPDATE notification_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = \(now),
                        claimed_until = NULL, last_error = NULL WHERE id = \(id)
                    """)
            case .retry(let at, let error):
                try await session.execute("""
                    UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = \(at), claimed_until = NULL,
                        last_error = \(error) WHERE id = \(id)
                    """)
            case .failed(let error):
                try await session.execute("""
                    UPDATE notification_outbox SET status = 'failed', attempts = attempts + 1, claimed_until = NULL,
                        last_error = \(error) WHERE id = \(id)
                    """)
            }
        }
    }

    public func outbox(status: OutboxStatus?, limit: Int) async throws -> [OutboxMessage] {
        let rows = try await session { session in
            try await session.rows("""
                SELECT \(unescaped: Self.outboxColumns) FROM notification_outbox
                WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                ORDER BY id DESC LIMIT \(max(1, limit))
                """)
        }
        return try rows.map(Self.outboxMessage)
    }

    public func saveState(_ value: String?, forKey key: String) async throws {
        try await session { session in
            if let value {
                try await session.execute("""
                    INSERT INTO deerflow_state (key, value, updated_at) VALUES (\(key), \(value), now())
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """)
            } else {
                try await session.execute("DELETE FROM deerflow_state WHERE key = \(key)")
            }
        }
    }

    public func state(forKey key: String) async throws -> String? {
        let rows = try await session { session in try await session.rows("SELECT value FROM deerflow_state WHERE key = \(key)") }
        return try rows.first?.decode(String.self)
    }

    static func outboxMessage(_ row: PostgresRow) throws -> OutboxMessage {
        let (id, key, channel, payload, status, attempts, createdAt, nextAttemptAt, deliveredAt, lastError) =
            try row.decode((Int64, String, String, String, String, Int, Date, Date, Date?, String?).self)
        return OutboxMessage(
            id: id, key: key, channel: channel, payload: payload, status: OutboxStatus(rawValue: status) ?? .pending, attempts: attempts,
            createdAt: createdAt, nextAttemptAt: nextAttemptAt, deliveredAt: deliveredAt, lastError: lastError)
    }
}
