public import Foundation
public import DeerFlowTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real Prometheus server started by a test: loopback, a free port, data in a temp directory,
/// stopped by PID.
public final class PrometheusServer: Sendable {
    public let port: Int
    public let directory: TemporaryDirectory
    private let process: Process

    /// Starts `prometheus` with `config` (and the given extra files, e.g. rule files, next to it).
    /// `openMetrics`: samples with timestamps (OpenMetrics text, ending in `# EOF`) turned into TSDB
    /// blocks with `promtool tsdb create-blocks-from openmetrics` before the start, so queries at
    /// past times see exactly these samples.
    public init(config: String, files: [String: String] = [:], openMetrics: String? = nil) throws {
        let binary = try PrometheusTool.path("prometheus")
        directory = try TemporaryDirectory(prefix: "prometheus")
        for (name, text) in files { try directory.write(name, text) }
        let configPath = try directory.write("prometheus.yml", config)
        if let openMetrics {
            let input = try directory.write("input.om", openMetrics)
            let imported = try PrometheusTool.execute("promtool", ["tsdb", "create-blocks-from", "openmetrics", "--quiet", input, directory.file("data")])
            guard imported.status == 0 else {
                directory.remove()
                throw ProcessFailure("promtool tsdb create-blocks-from openmetrics failed (\(imported.status)): \(imported.output)")
            }
        }
        port = try FreePort.find()
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--config.file=\(configPath)", "--storage.tsdb.path=\(directory.file("data"))",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn", "--web.enable-lifecycle",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        let log = FileHandle(forWritingAtPath: try directory.write("prometheus.log", "")) ?? .nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// What Prometheus logged.
    public var log: String { (try? String(contentsOfFile: directory.file("prometheus.log"), encoding: .utf8)) ?? "" }

    /// Waits until `/-/ready` answers 200.
    public func waitUntilReady(timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning { throw ProcessFailure("prometheus exited (\(process.terminationStatus)):\n\(log)") }
            if let answer = try? await TestServer.send("GET", url + "/-/ready", body: nil, headers: [:]), answer.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessFailure("prometheus not ready after \(timeout):\n\(log)")
    }

    /// Evaluates an instant query (now, or at `time`); returns the result series, or throws
    /// Prometheus' error.
    public func query(_ expression: String, at time: Date? = nil) async throws -> [[String: Any]] {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let at = time.map { "&time=" + String(format: "%.3f", $0.timeIntervalSince1970) } ?? ""
        let answer = try await TestServer.send("GET", url + "/api/v1/query?query=\(encoded)\(at)", body: nil, headers: [:])
        guard let object = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any] else {
            throw ProcessFailure("prometheus answered \(answer.status): \(answer.text)")
        }
        guard object["status"] as? String == "success", let data = object["data"] as? [String: Any] else {
            throw ProcessFailure("query failed: \(expression): \(object["error"] ?? answer.text)")
        }
        if data["resultType"] as? String == "scalar" { return [["value": data["result"] ?? []]] }
        return data["result"] as? [[String: Any]] ?? []
    }

    /// Stops the server (SIGTERM, then SIGKILL) and removes its data.
    public func stop() {
        process.stop(grace: .seconds(10))
        directory.remove()
    }
}

/// A TCP port free on 127.0.0.1 at the time of the call.
public enum FreePort {
    public static func find() throws -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw ProcessFailure("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw -> Int32 in
                guard bind(descriptor, raw, length) == 0 else { return -1 }
                return getsockname(descriptor, raw, &length)
            }
        }
        guard bound == 0 else { throw ProcessFailure("bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Runs a command-line tool of the Prometheus project (prometheus, promtool, amtool) from the
/// Debian packages scripts/test installs.
public enum PrometheusTool {
    /// Where the tool is installed.
    public static func path(_ name: String) throws -> String {
        guard let path = ["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw ProcessFailure("\(name) not found: scripts/test installs it (Debian packages prometheus and prometheus-alertmanager)")
        }
        return path
    }

    /// Runs the tool to completion; returns its exit status and its stdout and stderr together.
    public static func execute(_ name: String, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        guard process.waitForExit(upTo: .seconds(60)) else {
            process.stop()
            throw ProcessFailure("\(name) \(arguments.joined(separator: " ")) closed its output but did not exit within 60 s")
        }
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
