import Foundation
import DeerFlowTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A helper server written in Python (`scripts/*.py`), run with the project's venv on a free
/// loopback port, with its files in a temporary directory. The script prints `listening on PORT`
/// as its first stdout line and stops on SIGTERM.
final class LoopbackScript: Sendable {
    let port: Int
    /// Its files: `stdout.txt`, `stderr.txt` and whatever `arguments` points into.
    let directory: TemporaryDirectory
    private let process: Process
    private let name: String

    /// Starts `script` (relative to the repository root) with the arguments `arguments` makes
    /// for its directory, and waits until it listens (without holding a thread meanwhile).
    init(name: String, script relativePath: String, startupTimeout: Duration, arguments: (TemporaryDirectory) -> [String]) async throws {
        let python = try Self.python()
        let script = Self.repositoryRoot.appendingPathComponent(relativePath).path
        guard FileManager.default.fileExists(atPath: script) else {
            throw ProcessFailure("\(name) script not found at \(script)")
        }
        self.name = name
        directory = try TemporaryDirectory(prefix: relativePath.split(separator: "/").last.map { String($0.split(separator: ".")[0]) } ?? "script")
        let stdoutPath = try directory.write("stdout.txt", "")
        let stderrPath = try directory.write("stderr.txt", "")
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script] + arguments(directory)
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath) ?? .nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath) ?? .nullDevice
        try process.run()

        let deadline = ContinuousClock.now + startupTimeout
        var found: Int?
        while found == nil {
            let text = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, text.contains("\n"),
               line.hasPrefix("listening on "), let number = Int(line.dropFirst("listening on ".count)) {
                found = number
            } else if !process.isRunning {
                let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                let status = process.terminationStatus
                directory.remove()
                throw ProcessFailure("the \(name) (\(python) \(script)) exited (\(status)) before listening:\n\(text)\(stderr)")
            } else if ContinuousClock.now >= deadline {
                process.stop()
                let stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
                directory.remove()
                throw ProcessFailure("the \(name) did not print its port within \(startupTimeout):\n\(text)\(stderr)")
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        port = found ?? 0
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var terminationStatus: Int32 { process.terminationStatus }

    /// What the script wrote to stderr (tracebacks).
    var log: String { (try? String(contentsOfFile: directory.file("stderr.txt"), encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after 5 s; waits for the exit. Idempotent.
    func stop() {
        process.stop(grace: .seconds(5))
    }

    /// The repository root: this file is `<root>/Sources/DeerFlowTesting/LoopbackScript.swift`.
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent() // DeerFlowTesting
            .deletingLastPathComponent() // Sources
            .deletingLastPathComponent()
    }

    /// The Python with the test packages: `DEERFLOW_PYTHON`, else the project's venv.
    static func python() throws -> String {
        if let path = ProcessInfo.processInfo.environment["DEERFLOW_PYTHON"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ProcessFailure("DEERFLOW_PYTHON=\(path) is not an executable")
            }
            return path
        }
        let venv = repositoryRoot.appendingPathComponent(".build/python-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw ProcessFailure(
                "no Python venv at \(venv): run scripts/test, which creates the Python venv "
                    + "(or scripts/ensure-python-venv alone), or set DEERFLOW_PYTHON to a python with opentelemetry-proto and aiosmtpd"
            )
        }
        return venv
    }

    /// Decodes the complete lines (ending in a newline) of a JSON lines file; missing file: none.
    static func decodeLines<T: Decodable>(_ type: T.Type, path: String) throws -> [T] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        var items: [T] = []
        var start = data.startIndex
        while let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = data[start..<newline]
            start = data.index(after: newline)
            if line.isEmpty { continue }
            do {
                items.append(try decoder.decode(T.self, from: Data(line)))
            } catch {
                throw ProcessFailure("cannot decode a line of \(path): \(error)\n\(String(decoding: line, as: UTF8.self))")
            }
        }
        return items
    }
}

/// A real SMTP server for notification tests: `scripts/smtp_sink.py` (aiosmtpd) on a free
/// loopback port. `failFirst` answers the first N messages' DATA with `451` (temporary).
public final class SMTPSink: Sendable {
    /// One message as the server got it.
    public struct Message: Sendable, Decodable {
        public var mailFrom: String
        public var recipients: [String]
        /// The whole message: headers, blank line, body.
        public var data: String
        /// True for a message answered 451 by `failFirst`.
        public var rejected: Bool

        enum CodingKeys: String, CodingKey {
            case data, rejected
            case mailFrom = "mail_from"
            case recipients = "rcpt_tos"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            mailFrom = try container.decode(String.self, forKey: .mailFrom)
            recipients = try container.decode([String].self, forKey: .recipients)
            data = try container.decode(String.self, forKey: .data)
            rejected = try container.decodeIfPresent(Bool.self, forKey: .rejected) ?? false
        }
    }

    private let script: LoopbackScript

    public init(failFirst: Int = 0) async throws {
        script = try await LoopbackScript(name: "SMTP sink", script: "scripts/smtp_sink.py", startupTimeout: .seconds(30)) { directory in
            ["--output", directory.file("messages.jsonl"), "--fail-first", String(failFirst)]
        }
    }

    public var port: Int { script.port }

    /// Every message so far, accepted and rejected, in arrival order.
    public func messages() throws -> [Message] {
        try LoopbackScript.decodeLines(Message.self, path: script.directory.file("messages.jsonl"))
    }

    /// What the server wrote to stderr.
    public var log: String { script.log }

    public func stop() { script.stop() }
}
