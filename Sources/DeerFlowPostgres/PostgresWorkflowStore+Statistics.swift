import DeerFlowCore
import Foundation
import PostgresNIO
import Synchronization

extension PostgresWorkflowStore {
    /// The tables every hot statement reads (``StoreStatement``).
    static let hotTables = ["attempts", "runs", "tasks"]

    /// A table this small is analyzed only by autovacuum: any plan reads it quickly (16 pages of
    /// 8 KB, about 600 runs).
    static let smallestAnalyzedPages = 16

    /// Analyzes each hot table whose size has doubled since its statistics were taken (by this
    /// store, by autovacuum or by anyone), and returns their names.
    ///
    /// PostgreSQL keeps a prepared statement's generic plan until the statistics of a table it
    /// reads change, and autovacuum analyzes a table only after 10 % of its rows changed, at its
    /// next round (every minute): a plan made when the database was fresh, which reads a table
    /// whole because it had a few pages, would go on reading it whole for up to a minute of
    /// growth, at thousands of runs a second. `ANALYZE` makes every session plan the statements
    /// reading the table again, with the table's current size. At most once per doubling of a
    /// table: logarithmic in the store's growth. When another process analyzes the same table
    /// at the same moment, this one waits for it (at most 0.2 s, then it tries at the next check).
    @discardableResult
    func analyzeGrownTables() async throws -> [String] {
        let rows = try await session { session in
            try await session.rows("""
                SELECT c.relname::text, c.relpages, pg_relation_size(c.oid) / current_setting('block_size')::bigint
                FROM pg_class c WHERE c.oid = ANY(\(Self.hotTables)::regclass[])
                """)
        }
        var grown: [String: Int] = [:]
        for row in rows {
            let (name, analyzedPages, pages) = try row.decode((String, Int, Int).self)
            let known = max(analyzedPages, tableGrowth.withLock { $0[name] ?? 0 })
            // Only names of the list are written into the ANALYZE below.
            guard pages >= max(2 * known, Self.smallestAnalyzedPages), Self.hotTables.contains(name) else { continue }
            grown[name] = pages
        }
        guard !grown.isEmpty else { return [] }
        let names = grown.keys.sorted().joined(separator: ", ")
        try await transaction { session in
            // A table another process is analyzing (or autovacuum is vacuuming) at this moment
            // fails the lock within 0.2 s, and is tried again at the next check.
            try await session.execute("SET LOCAL lock_timeout = '200ms'")
            try await session.execute(PostgresQuery(unsafeSQL: "ANALYZE \(names)"))
        }
        // Remembered here too: a role that may not analyze the table (PostgreSQL skips it with
        // a warning) is not made to try again every second.
        tableGrowth.withLock { known in known.merge(grown) { _, new in new } }
        logger.debug("analyzed grown tables", metadata: ["tables": "\(names)"])
        return grown.keys.sorted()
    }

    /// Checks the hot tables' growth every `Configuration.growthCheckInterval` (1 s) until
    /// cancelled (``run()``).
    func keepStatistics() async {
        guard let interval = configuration.growthCheckInterval else { return }
        do {
            try await poolStarted.wait()
            while true {
                try await Sleep.for(interval)
                do {
                    try await analyzeGrownTables()
                } catch is CancellationError {
                    return
                } catch {
                    logger.debug("could not check the tables' growth; trying again shortly", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            return
        }
    }
}
