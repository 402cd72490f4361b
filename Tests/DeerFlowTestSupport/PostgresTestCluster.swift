import Foundation
import DeerFlowTesting

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL server for tests that must stop and start the database itself (the
/// shared server of `scripts/test`, `DEERFLOW_TEST_POSTGRES_URL`, must stay up for the other
/// suites). It runs as the `postgres` user when the tests run as root (PostgreSQL refuses root),
/// in a temp directory, on a free loopback port, with password authentication over TCP.
///
/// ```swift
/// let cluster = try await PostgresTestCluster.start()
/// defer { cluster.destroy() }
/// let url = cluster.url(database: "postgres")
/// try await cluster.stop()        // pg_ctl stop -m fast
/// try await cluster.restart()     // pg_ctl start, same port and data
/// ```
public final class PostgresTestCluster: Sendable {
    /// Directory holding `data/`, the socket and the server log.
    public let directory: String
    public let port: Int
    public let user = "deerflow"
    public let password: String
    /// Directory of `initdb`, `pg_ctl` and `postgres`.
    public let binaries: String

    private init(directory: String, port: Int, password: String, binaries: String) {
        self.directory = directory
        self.port = port
        self.password = password
        self.binaries = binaries
    }

    /// `postgres://deerflow:PASSWORD@127.0.0.1:PORT/DATABASE`.
    public func url(database: String = "postgres") -> String {
        "postgres://\(user):\(password)@127.0.0.1:\(port)/\(database)"
    }

    /// The server's log so far (for failure messages).
    public var log: String {
        (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
    }

    /// The PostgreSQL binaries: `DEERFLOW_TEST_POSTGRES_BIN`, else the newest
    /// `/usr/lib/postgresql/*/bin`, else `initdb` on the PATH.
    public static func findBinaries() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let directory = environment["DEERFLOW_TEST_POSTGRES_BIN"], !directory.isEmpty { return directory }
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [])
            .compactMap { Int($0) }.sorted()
        if let newest = versions.last, FileManager.default.isExecutableFile(atPath: "\(base)/\(newest)/bin/initdb") {
            return "\(base)/\(newest)/bin"
        }
        for directory in (environment["PATH"] ?? "").split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(directory)/initdb") {
            return String(directory)
        }
        throw ProcessFailure("PostgreSQL server binaries not found: install the Debian package 'postgresql' (scripts/test does) or set DEERFLOW_TEST_POSTGRES_BIN to the directory of initdb and pg_ctl")
    }

    /// Creates and starts a cluster.
    public static func start() async throws -> PostgresTestCluster {
        let binaries = try findBinaries()
        let directory = NSTemporaryDirectory() + "deerflow-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let password = "pw" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16)
        try password.write(toFile: directory + "/password", atomically: true, encoding: .utf8)
        if getuid() == 0 {
            for path in [directory, directory + "/password"] {
                try FileManager.default.setAttributes([.ownerAccountName: "postgres"], ofItemAtPath: path)
            }
        }
        let cluster = PostgresTestCluster(directory: directory, port: try freePort(), password: password, binaries: binaries)
        do {
            try await cluster.run("initdb", [
                "-D", directory + "/data", "-U", "deerflow", "--pwfile=" + directory + "/password",
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync",
            ])
            try await cluster.restart()
        } catch {
            cluster.destroy()
            throw error
        }
        return cluster
    }

    /// Starts the (stopped) server again on the same port and data.
    public func restart() async throws {
        try await run("pg_ctl", [
            "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
            "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        ])
    }

    /// Stops the server: `pg_ctl stop -m fast` (sessions are terminated, connections dropped).
    public func stop(mode: String = "fast") async throws {
        try await run("pg_ctl", ["-D", directory + "/data", "-m", mode, "-w", "-t", "60", "stop"])
    }

    /// The postmaster's PID while it runs.
    public var pid: Int32? {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8),
              let first = text.split(separator: "\n").first else { return nil }
        return Int32(first)
    }

    /// Stops the server if it runs (by PID, fast shutdown) and removes its directory.
    public func destroy() {
        if let pid {
            kill(pid, SIGINT)
            let deadline = Date().addingTimeInterval(30)
            while kill(pid, 0) == 0 && Date() < deadline { usleep(50_000) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root) and waits for it. Spawned and
    /// reaped here with posix_spawn and waitpid: Foundation's `Process` can miss the exit of a
    /// child whose own child (the postmaster `pg_ctl` starts) lives on, and would wait forever.
    private func run(_ tool: String, _ arguments: [String]) async throws {
        var command = [binaries + "/" + tool] + arguments
        if getuid() == 0 { command = ["/usr/sbin/runuser", "-u", "postgres", "--"] + command }
        let output = directory + "/\(tool).out"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw ProcessFailure("cannot start \(command[0]): errno \(spawned)") }
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { throw ProcessFailure("waitpid(\(tool)) failed: errno \(errno)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Exited normally with status 0: WIFEXITED and WEXITSTATUS as the C macros compute them.
        let exitedCleanly = (status & 0x7f) == 0 && ((status >> 8) & 0xff) == 0
        guard exitedCleanly else {
            let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw ProcessFailure("\(tool) \(arguments.joined(separator: " ")) failed (wait status \(status)):\n\(printed)\n\(log)")
        }
    }

    /// A loopback TCP port nobody listens on right now.
    public static func freePort() throws -> Int { try FreePort.find() }
}
