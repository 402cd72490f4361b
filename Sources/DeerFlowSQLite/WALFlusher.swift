#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DeerFlowCore
import Logging
import NIOPosix
import Synchronization

/// Writes the write-ahead log's newly committed frames to disk soon after each commit, on a
/// thread of its own, so that the checkpoint a commit runs finds almost nothing left to sync.
///
/// With `synchronous=NORMAL` SQLite syncs the WAL only when it checkpoints, in the commit that
/// takes the WAL past `wal_autocheckpoint` pages. At SQLite's default of 1,000 that `fdatasync`
/// had to write out the ~4 MB appended since the previous checkpoint and held the committing
/// request for 3–5 ms: one trigger in about 60 of a sequential client, all of its p99.
///
/// SQLite has no setting to sync the WAL anywhere but in the committing connection (a checkpoint
/// on another connection cannot finish while writes go on: the committing connection's own
/// checkpoint still finds frames to copy and syncs all of them), so the store syncs the file
/// itself: `fdatasync` writes out the file, whichever descriptor asks. SQLite takes no locks on
/// the WAL file (they are on the database and `-shm` files), so the descriptor held here cannot
/// release one of SQLite's POSIX locks when it closes.
///
/// Idle, the flusher waits without waking; under load it syncs at most once per `interval`.
package final class WALFlusher: Sendable {
    /// The `-wal` file beside the database.
    let path: String
    private let interval: Duration
    /// Signalled by every commit; a commit while a sync runs makes the next wait return at once.
    private let commits = Wakeup()
    private let completed = Atomic<Int>(0)

    init(databasePath: String, interval: Duration = .milliseconds(5)) {
        self.path = databasePath + "-wal"
        self.interval = interval
    }

    /// Flushes that reached the disk (tests check that commits are followed by one).
    package var flushes: Int { completed.load(ordering: .relaxed) }

    /// Waiting for a commit, with none since the last sync (tests wait for this before checking
    /// that an idle store does not wake).
    package var isIdle: Bool { commits.isWaiting }

    /// Called after every write transaction's `COMMIT`; cheap (a lock, rarely a resume).
    func committed() {
        commits.signal()
    }

    /// Syncs the WAL after commits until the task is cancelled.
    func run(logger: Logger) async {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        var file = WALFile(path: path)
        var warned = false
        while true {
            await commits.wait()
            if Task.isCancelled { break }
            do {
                file = try await thread.runIfActive { [file] in
                    var file = file
                    try file.sync()
                    return file
                }
                completed.add(1, ordering: .relaxed)
            } catch is CancellationError {
                // Stopping: the loop ends at the next wait.
            } catch {
                // Nothing is lost: SQLite's checkpoint syncs the file in any case.
                if !warned {
                    logger.warning("cannot sync the SQLite WAL file in the background; checkpoints will take longer", metadata: ["path": "\(path)", "error": "\(error)"])
                    warned = true
                }
            }
            try? await Sleep.for(interval)
        }
        file.release()
        try? await thread.shutdownGracefully()
    }
}

/// The WAL file, opened read-only on first use and kept open.
private struct WALFile: Sendable {
    let path: String
    var descriptor: Int32 = -1

    init(path: String) {
        self.path = path
    }

    mutating func sync() throws {
        if descriptor < 0 {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw SyncError(operation: "open", code: errno) }
        }
        guard fdatasync(descriptor) == 0 else { throw SyncError(operation: "fdatasync", code: errno) }
    }

    func release() {
        if descriptor >= 0 { _ = close(descriptor) }
    }

    struct SyncError: Error, CustomStringConvertible {
        let operation: String
        let code: Int32
        var description: String { "\(operation): \(String(cString: strerror(code)))" }
    }
}
