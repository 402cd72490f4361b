import DeerFlow
import DeerFlowCore
import DeerFlowSQLite
import DeerFlowTesting
import Foundation
import Testing

/// How the SQLite store keeps its write-ahead log's checkpoints out of the requests' way.
@Suite("SQLite write-ahead log")
struct SQLiteWALTests {
    @Test("a running store syncs the WAL after commits, and does not wake while nothing is written")
    func backgroundSync() async throws {
        try await SQLiteStoreTests.withStore { store in
            let flusher = store.walFlusher
            _ = try await store.createRuns([WorkflowStoreConformance.newRun(tasks: [("a", [])])])
            try await eventually("a sync followed the first commit") { flusher.flushes >= 1 }

            // Idle: no commit, no sync (over 100 of its 5 ms intervals).
            try await eventually("the flusher waits for a commit") { flusher.isIdle }
            let idle = flusher.flushes
            try await Task.sleep(for: .milliseconds(500))
            #expect(flusher.flushes == idle)
            #expect(flusher.isIdle)

            _ = try await store.createRuns([WorkflowStoreConformance.newRun(tasks: [("a", [])])])
            try await eventually("a sync followed the next commit") { flusher.flushes > idle }
        }
    }

    @Test("commits checkpoint the WAL every 4,000 pages, not SQLite's 1,000")
    func checkpointInterval() async throws {
        try await SQLiteStoreTests.onFreshStore { store in
            func walSize() throws -> Int {
                try (FileManager.default.attributesOfItem(atPath: store.path + "-wal")[.size] as? Int) ?? 0
            }
            func writeBatch() async throws {
                _ = try await store.createRuns((0..<20).map { _ in WorkflowStoreConformance.newRun(tasks: [("a", []), ("b", ["a"])]) })
            }
            // Past 2,000 pages (8 MB): with SQLite's default the WAL would restart at 1,000.
            var batches = 0
            var size = try walSize()
            while size <= 8 << 20 {
                try #require(batches < 2_000, "the WAL never grew past 8 MB: \(size) bytes after \(batches) batches")
                try await writeBatch()
                batches += 1
                size = try walSize()
            }
            // Then three times as much again: checkpoints restart the WAL, which stays near
            // 4,000 pages (16 MB) plus one transaction.
            for _ in 0..<(3 * batches) { try await writeBatch() }
            size = try walSize()
            #expect(size < 20 << 20, "\(size) bytes")
        }
    }
}
