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

extension Process {
    /// Runs `command` (its first word found on `PATH`) with `input` on its stdin, to completion;
    /// its stdout and exit status. The input is written from another thread, so a tool that
    /// answers more than a pipe holds before it has read everything cannot block the two.
    public static func output(of command: [String], input: Data) throws -> (status: Int32, stdout: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        guard process.waitForExit(upTo: .seconds(60)) else {
            process.stop()
            throw ProcessFailure("\(command.joined(separator: " ")) closed its output but did not exit within 60 s")
        }
        return (process.terminationStatus, data)
    }
}
