import DeerFlow
import Foundation
import NIOSSL
import PostgresNIO

extension PostgresWorkflowStore {
    /// Where the PostgreSQL store connects and how, read from a database URL.
    ///
    /// ```swift
    /// let configuration = try PostgresWorkflowStore.Configuration(url: "postgres://deerflow:secret@db:5432/deerflow?sslmode=require")
    /// print(configuration.redactedURL)   // postgres://deerflow:***@db:5432/deerflow?sslmode=require
    /// ```
    ///
    /// URL parameters (all optional):
    /// - `sslmode`: `disable`, `prefer` (default: TLS when the server offers it, unverified),
    ///   `require` (TLS, unverified), `verify-ca` (TLS, certificate chain checked) or `verify-full`
    ///   (TLS, chain and host name checked), as libpq defines them.
    /// - `sslrootcert`: PEM file of the certificate authorities for `verify-ca` / `verify-full`
    ///   (default: the system's trust store).
    /// - `host`: a directory with the server's Unix socket (`?host=/var/run/postgresql`).
    /// - `pool_size`: connections per process (default 16).
    /// - `connect_timeout`: seconds to wait for a connection (default 10).
    /// - `application_name`: shown in `pg_stat_activity` (default `deerflow`).
    public struct Configuration: Sendable {
        /// How TLS is used, with libpq's `sslmode` names.
        public enum TLSMode: String, Sendable, CaseIterable {
            case disable
            case prefer
            case require
            case verifyCA = "verify-ca"
            case verifyFull = "verify-full"
        }

        /// Host name or address; ignored when `unixSocketDirectory` is set.
        public var host: String
        public var port: Int
        public var username: String
        /// Never logged: messages use ``redactedURL``.
        public var password: String?
        public var database: String
        public var tls: TLSMode
        /// PEM file of trusted certificate authorities (`sslrootcert`).
        public var rootCertificatePath: String?
        /// Directory of the server's Unix socket (`host=/dir` parameter).
        public var unixSocketDirectory: String?
        /// Connections per process; default 16.
        public var poolSize: Int
        /// How long to wait for a new connection; default 10 s.
        public var connectTimeout: Duration
        /// How long a store call waits for a connection of the pool before it fails as
        /// unavailable (an API request then answers 503 with `Retry-After`); default 5 s. While
        /// PostgreSQL is down no connection comes, and without this bound a call would wait for
        /// the whole outage.
        public var poolTimeout: Duration
        /// `application_name` of the sessions; default `deerflow`.
        public var applicationName: String
        /// How often the store checks whether a hot table has doubled and needs `ANALYZE`
        /// (``PostgresWorkflowStore/analyzeGrownTables()``); nil: never (tests that call it).
        package var growthCheckInterval: Duration? = .seconds(1)

        /// The URL with the password replaced by `***`, safe for logs and error messages.
        public let redactedURL: String

        /// Parameters a URL may carry.
        static let parameters = ["sslmode", "sslrootcert", "host", "pool_size", "pool_timeout", "connect_timeout", "application_name"]

        /// Reads `postgres://user:password@host:port/database?sslmode=...` (`postgresql://` too).
        ///
        /// - Throws: ``DeerFlowError`` `.badRequest` naming what is wrong (the message never shows the password).
        public init(url: String) throws {
            let redacted = Self.redact(url)
            redactedURL = redacted
            func problem(_ message: String) -> DeerFlowError {
                DeerFlowError(.badRequest, "database URL '\(redacted)': \(message)")
            }
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"), let components = URLComponents(string: url) else {
                throw problem("not a PostgreSQL URL; use postgres://user:password@host:5432/database")
            }
            host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
            port = components.port ?? 5432
            guard (1...65535).contains(port) else { throw problem("port \(port) is out of range") }
            let user = components.user.flatMap { $0.removingPercentEncoding ?? $0 } ?? ""
            username = user.isEmpty ? (ProcessInfo.processInfo.environment["USER"] ?? "postgres") : user
            password = components.password.map { $0.removingPercentEncoding ?? $0 }
            var path = components.path
            if path.hasPrefix("/") { path.removeFirst() }
            path = path.removingPercentEncoding ?? path
            guard !path.contains("/") else { throw problem("the path must be a database name, not '\(path)'") }
            database = path.isEmpty ? username : path
            tls = .prefer
            rootCertificatePath = nil
            unixSocketDirectory = nil
            poolSize = 16
            connectTimeout = .seconds(10)
            poolTimeout = .seconds(5)
            applicationName = "deerflow"
            for item in components.queryItems ?? [] {
                let value = item.value ?? ""
                switch item.name {
                case "sslmode":
                    guard let mode = TLSMode(rawValue: value) else {
                        throw problem("sslmode '\(value)' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    tls = mode
                case "sslrootcert":
                    rootCertificatePath = value
                case "host":
                    guard value.hasPrefix("/") else { throw problem("host parameter '\(value)' must be a socket directory (an absolute path)") }
                    unixSocketDirectory = value
                case "pool_size":
                    guard let size = Int(value), size >= 1 else { throw problem("pool_size '\(value)' must be a whole number of at least 1") }
                    poolSize = size
                case "pool_timeout":
                    guard let seconds = Int(value), seconds >= 1 else { throw problem("pool_timeout '\(value)' must be a whole number of seconds, at least 1") }
                    poolTimeout = .seconds(seconds)
                case "connect_timeout":
                    guard let seconds = Int(value), seconds >= 1 else { throw problem("connect_timeout '\(value)' must be a whole number of seconds, at least 1") }
                    connectTimeout = .seconds(seconds)
                case "application_name":
                    applicationName = value
                default:
                    throw problem("unknown parameter '\(item.name)'; known: \(Self.parameters.joined(separator: ", "))")
                }
            }
            if rootCertificatePath != nil && !(tls == .verifyCA || tls == .verifyFull) {
                throw problem("sslrootcert needs sslmode=verify-ca or sslmode=verify-full")
            }
        }

        /// `scheme://user:***@rest`: the password of a URL masked (also in URLs that do not parse).
        public static func redact(_ url: String) -> String {
            guard let schemeEnd = url.range(of: "://") else { return url }
            let rest = url[schemeEnd.upperBound...]
            // The authority ends at the first '/', '?' or '#'; its credentials at the last '@' in it.
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            guard let at = authority.lastIndex(of: "@") else { return url }
            let credentials = authority[..<at]
            guard let colon = credentials.firstIndex(of: ":") else { return url }
            return String(url[..<schemeEnd.upperBound]) + credentials[..<colon] + ":***" + rest[at...]
        }

        /// The NIOSSL configuration for the TLS mode, nil for `disable`.
        func tlsConfiguration() throws -> TLSConfiguration? {
            var configuration = TLSConfiguration.makeClientConfiguration()
            switch tls {
            case .disable:
                return nil
            case .prefer, .require:
                // libpq's prefer and require encrypt without checking the certificate.
                configuration.certificateVerification = .none
            case .verifyCA:
                configuration.certificateVerification = .noHostnameVerification
            case .verifyFull:
                configuration.certificateVerification = .fullVerification
            }
            if let rootCertificatePath {
                guard FileManager.default.isReadableFile(atPath: rootCertificatePath) else {
                    throw DeerFlowError(.badRequest, "database URL '\(redactedURL)': sslrootcert '\(rootCertificatePath)' is not a readable file")
                }
                configuration.trustRoots = .file(rootCertificatePath)
            }
            return configuration
        }

        /// Settings of the connection pool.
        func clientConfiguration() throws -> PostgresClient.Configuration {
            var configuration: PostgresClient.Configuration
            if let directory = unixSocketDirectory {
                configuration = PostgresClient.Configuration(
                    unixSocketPath: socketPath(directory), username: username, password: password, database: database)
            } else {
                let mode: PostgresClient.Configuration.TLS
                switch (tls, try tlsConfiguration()) {
                case (.disable, _), (_, nil): mode = .disable
                case (.prefer, let settings?): mode = .prefer(settings)
                case (_, let settings?): mode = .require(settings)
                }
                configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: mode)
                configuration.options.tlsServerName = Self.isAddress(host) ? nil : host
            }
            configuration.options.maximumConnections = poolSize
            // postgres-nio's pool times a connection's idle periods with `ContinuousClock.sleep`,
            // cancelled when the connection is leased again, and a cancelled sleep keeps its
            // memory for good (see `Sleep`): two timers per lease, about 0.9 KB per run. The
            // first connections stay open (the pool hands out the lowest free one first, and
            // DeerFlow's heartbeats and ticks keep them in use), so they need no idle timer; the
            // pool's keep-alive query is left out, and PostgreSQL's TCP keepalives (below) keep
            // an idle connection's path through a NAT or load balancer open instead.
            configuration.options.minimumConnections = min(Self.persistentConnections, poolSize)
            configuration.options.keepAliveBehavior = nil
            configuration.options.connectTimeout = connectTimeout
            configuration.options.additionalStartupParameters = [
                ("application_name", applicationName),
                // A process frozen inside a transaction (SIGSTOP, a paused VM) would hold its row
                // locks for as long as it is frozen, and the leader's reclaim (`FOR UPDATE SKIP
                // LOCKED`) would pass over its expired attempts. PostgreSQL ends such a session
                // after this long idle in a transaction; DeerFlow's transactions never wait
                // between statements. Found by scripts/chaos.
                ("idle_in_transaction_session_timeout", Self.idleInTransactionTimeout),
            ] + Self.tcpKeepalives
            return configuration
        }

        /// Pool connections kept open for the life of the process.
        static let persistentConnections = 2

        /// PostgreSQL's TCP keepalives for the session (ignored on Unix sockets): a probe after
        /// 60 s without traffic, every 10 s, 6 unanswered end the connection. Network devices
        /// that forget idle connections (NAT gateways after 4–20 minutes) see traffic, and a
        /// vanished client's session ends within 2 minutes.
        static let tcpKeepalives = [("tcp_keepalives_idle", "60"), ("tcp_keepalives_interval", "10"), ("tcp_keepalives_count", "6")]

        /// How long a pooled session may sit idle inside a transaction (PostgreSQL's setting).
        static let idleInTransactionTimeout = "10s"

        /// Settings of a single connection (the first contact, the LISTEN connection); `purpose`
        /// is appended to the application name.
        func connectionConfiguration(purpose: String) throws -> PostgresConnection.Configuration {
            var configuration: PostgresConnection.Configuration
            if let directory = unixSocketDirectory {
                configuration = PostgresConnection.Configuration(
                    unixSocketPath: socketPath(directory), username: username, password: password, database: database)
            } else {
                let mode: PostgresConnection.Configuration.TLS
                if let settings = try tlsConfiguration() {
                    let context = try NIOSSLContext(configuration: settings)
                    mode = tls == .prefer ? .prefer(context) : .require(context)
                } else {
                    mode = .disable
                }
                configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password, database: database, tls: mode)
                configuration.options.tlsServerName = Self.isAddress(host) ? nil : host
            }
            configuration.options.connectTimeout = .seconds(connectTimeout.components.seconds)
            configuration.options.additionalStartupParameters = [("application_name", applicationName + purpose)]
            return configuration
        }

        /// Where the store connects, for messages: `host:port` or the socket path.
        var endpoint: String {
            unixSocketDirectory.map(socketPath) ?? "\(host):\(port)"
        }

        private func socketPath(_ directory: String) -> String {
            (directory as NSString).appendingPathComponent(".s.PGSQL.\(port)")
        }

        private static func isAddress(_ host: String) -> Bool {
            host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        }
    }
}
