public import DeerFlow
import DeerFlowCore
public import Foundation
import SQLiteNIO

extension SQLiteWorkflowStore {
    public func enqueue(_ messages: [NewOutboxMessage]) async throws -> Int {
        guard !messages.isEmpty else { return 0 }
        return try await writer.transaction { db in
            var added = 0
            for message in messages {
                let rows = try await db.rows(
                    """
                    INSERT INTO notification_outbox (key, channel, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (key) DO NOTHING RETURNING id
                    """,
                    [.text(message.key), .text(message.channel), .text(message.payload), Column.time(message.createdAt), Column.time(message.createdAt)])
                added += rows.count
            }
            return added
        }
    }

    public func claimOutbox(now: Date, limit: Int, lease: Duration) async throws -> [OutboxMessage] {
        try await writer.transaction { db in
            let rows = try await db.rows(
                """
                SELECT * FROM notification_outbox
                WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                ORDER BY next_attempt_at, id LIMIT CAST(? AS INTEGER)
                """, [Column.time(now), Column.time(now), .integer(max(1, limit))])
            guard !rows.isEmpty else { return [] }
            let messages = rows.map(Self.outboxMessage)
            _ = try await db.rows(
                "UPDATE notification_outbox SET claimed_until = ? WHERE id IN (\(placeholders(messages.count)))",
                [Column.time(now.adding(lease))] + messages.map { .integer(Int($0.id)) })
            return messages
        }
    }

    public func settleOutbox(_ id: Int64, outcome: OutboxOutcome, at now: Date) async throws {
        _ = try await writer.transaction { db in
            switch outcome {
            case .delivered:
                try await db.rows(
                    "UPDATE notification_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, claimed_until = NULL, last_error = NULL WHERE id = ?",
                    [Column.time(now), .integer(Int(id))])
            case .retry(let at, let error):
                try await db.rows(
                    "UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = ?, claimed_until = NULL, last_error = ? WHERE id = ?",
                    [Column.time(at), .text(error), .integer(Int(id))])
            case .failed(let error):
                try await db.rows(
                    "UPDATE notification_outbox SET status = 'failed', attempts = attempts + 1, claimed_until = NULL, last_error = ? WHERE id = ?",
                    [.text(error), .integer(Int(id))])
            }
        }
    }

    public func outbox(status: OutboxStatus?, limit: Int) async throws -> [OutboxMessage] {
        let rows = try await reader.exclusive { db in
            if let status {
                return try await db.rows("SELECT * FROM notification_outbox WHERE status = ? ORDER BY id DESC LIMIT CAST(? AS INTEGER)", [.text(status.rawValue), .integer(max(1, limit))])
            }
            return try await db.rows("SELECT * FROM notification_outbox ORDER BY id DESC LIMIT CAST(? AS INTEGER)", [.integer(max(1, limit))])
        }
        return rows.map(Self.outboxMessage)
    }

    public func saveState(_ value: String?, forKey key: String) async throws {
        _ = try await writer.transaction { db in
            if let value {
                try await db.rows(
                    "INSERT INTO deerflow_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    [.text(key), .text(value), Column.time(Date())])
            } else {
                try await db.rows("DELETE FROM deerflow_state WHERE key = ?", [.text(key)])
            }
        }
    }

    public func state(forKey key: String) async throws -> String? {
        try await reader.exclusive { db in
            try await db.rows("SELECT value FROM deerflow_state WHERE key = ?", [.text(key)]).first?.optionalString("value")
        }
    }

    static func outboxMessage(_ row: ResultRow) -> OutboxMessage {
        OutboxMessage(
            id: Int64(row.int("id")), key: row.string("key"), channel: row.string("channel"), payload: row.string("payload"),
            status: OutboxStatus(rawValue: row.string("status")) ?? .pending, attempts: row.int("attempts"),
            createdAt: row.date("created_at") ?? Date(timeIntervalSince1970: 0), nextAttemptAt: row.date("next_attempt_at") ?? Date(timeIntervalSince1970: 0),
            deliveredAt: row.date("delivered_at"), lastError: row.optionalString("last_error"))
    }
}
