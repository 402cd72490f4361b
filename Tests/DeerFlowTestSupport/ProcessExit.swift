public import Foundation
import DeerFlowTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Process {
    /// Waits, polling, until Foundation has seen the process exit or `limit` has passed; returns
    /// whether it exited. Unlike `waitUntilExit()` this cannot block forever: Foundation learns of
    /// an exit when a socket the child inherited closes, so a stray grandchild holding that socket
    /// would keep `waitUntilExit()` (and the Swift concurrency thread calling it) waiting.
    @discardableResult
    public func waitForExit(upTo limit: Duration) -> Bool {
        let deadline = ContinuousClock.now + limit
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Stops the process if it runs: SIGTERM and up to `grace` to exit (none: SIGKILL at once),
    /// then SIGKILL and up to 10 s. Says on stderr when Foundation still has not seen the exit,
    /// and returns anyway.
    public func stop(grace: Duration = .zero) {
        guard isRunning else { return }
        if grace > .zero {
            kill(processIdentifier, SIGTERM)
            if waitForExit(upTo: grace) { return }
        }
        kill(processIdentifier, SIGKILL)
        if !waitForExit(upTo: .seconds(10)) {
            FileHandle.standardError.write(Data(
                "test process \(processIdentifier) (\(executableURL?.lastPathComponent ?? "?")) got SIGKILL but no exit was seen within 10 s; a process it started may still hold its descriptors\n".utf8))
        }
    }
}
