import Foundation
import DeerFlowTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `deerflow` process started by a test, with its output captured.
public final class ServerProcess: Sendable {
    private let process: Process
    private let output = OutputBuffer()
    public let arguments: [String]

    /// The built `deerflow` executable: `DEERFLOW_BINARY`, else the one next to the test bundle.
    public static var executable: String {
        if let path = ProcessInfo.processInfo.environment["DEERFLOW_BINARY"], !path.isEmpty { return path }
        return builtExecutable("deerflow") ?? ".build/debug/deerflow"
    }

    /// An executable built next to the test bundle (the same build directory), if there is one.
    public static func builtExecutable(_ name: String) -> String? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// Starts `deerflow` (or another executable) with arguments, in `directory` (default: this
    /// process's); stdout and stderr are captured together.
    public init(_ arguments: [String], executable: String = ServerProcess.executable, environment: [String: String] = [:], directory: String? = nil) throws {
        self.arguments = arguments
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // The output is read with blocking reads on a thread of its own, not through
        // `FileHandle.readabilityHandler`: that runs on a libdispatch read source, and clearing it
        // from inside the handler (the only way to stop it at end of file) is a pattern that has
        // crashed libdispatch's event loop in this test process (SIGSEGV in
        // `_dispatch_event_loop_drain` while tests stopped their children). The thread ends at end
        // of file, when the child and everything it started have closed the pipe (`run()` closes
        // this process's copy of the writing end).
        let output = self.output
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    output.append(bytes: buffer[0..<count])
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            withExtendedLifetime(pipe) {}
        }
        reader.name = "test-output-\(process.processIdentifier)"
        reader.start()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    /// Everything the process printed so far.
    public var log: String { output.text }

    /// Waits until the output contains a match of `pattern` and returns its first capture group.
    public func waitFor(_ pattern: String, timeout: Duration = .seconds(60)) async throws -> String {
        let expression = try NSRegularExpression(pattern: pattern)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = log
            let range = NSRange(text.startIndex..., in: text)
            if let match = expression.firstMatch(in: text, range: range) {
                let group = match.numberOfRanges > 1 ? match.range(at: 1) : match.range
                if let swiftRange = Range(group, in: text) { return String(text[swiftRange]) }
            }
            if !process.isRunning && !log.isEmpty && expression.firstMatch(in: log, range: NSRange(log.startIndex..., in: log)) == nil {
                throw ProcessFailure("deerflow \(arguments.joined(separator: " ")) exited (\(process.terminationStatus)) before printing /\(pattern)/:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessFailure("timed out waiting for /\(pattern)/ from deerflow \(arguments.joined(separator: " ")):\n\(log)")
    }

    /// The API port, from the `API listening` log line.
    public func apiPort() async throws -> Int {
        try await port(of: "API listening")
    }

    /// The metrics port, from the `metrics listening` log line.
    public func metricsPort() async throws -> Int {
        try await port(of: "metrics listening")
    }

    /// The `port` metadata of the first log line containing `message` (text or JSON log format).
    private func port(of message: String) async throws -> Int {
        let line = try await waitFor("([^\\n]*\(message)[^\\n]*)")
        let expression = try NSRegularExpression(pattern: "\"?port\"?[=:]\"?([0-9]+)")
        guard let match = expression.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)),
              let range = Range(match.range(at: 1), in: line), let port = Int(line[range])
        else { throw ProcessFailure("no port in log line: \(line)") }
        return port
    }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit and returns its status.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                signal(SIGKILL)
                throw ProcessFailure("deerflow \(arguments.joined(separator: " ")) did not exit in time:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Kills the process if it still runs (test clean-up).
    public func stop() {
        process.stop()
    }
}

/// A test process that misbehaved.
public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The child's output so far. Kept as bytes, so a UTF-8 character split across two reads is
/// decoded whole.
final class OutputBuffer: Sendable {
    private let storage = Mutex<[UInt8]>([])
    func append(bytes: ArraySlice<UInt8>) { storage.withLock { $0 += bytes } }
    var text: String { storage.withLock { String(decoding: $0, as: UTF8.self) } }
}
