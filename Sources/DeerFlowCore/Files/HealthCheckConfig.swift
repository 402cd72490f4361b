import Foundation

/// A health check of `deerflow.yaml`'s `health_checks:`, shown in `/health` beside the built-in
/// ones and in `deerflow_health_check_status{check}`:
///
/// ```yaml
/// health_checks:
///   - name: warehouse
///     http: {url: http://warehouse:8080/ping, expect_status: [200, 204]}   # default: any 2xx
///     critical: true        # unhealthy also fails /health/ready; default false
///   - name: redis
///     tcp: redis.internal:6379
///     timeout: 1s           # default 2s
///   - name: scratch-disk
///     command: [test, -w, /data/scratch]   # exit 0 is healthy
///     interval: 5m          # probed at most this often; default 30s
/// ```
public struct HealthCheckDefinition: Sendable, Hashable {
    /// What a check probes.
    public enum Probe: Sendable, Hashable {
        /// A GET; healthy when the status is expected (default any 2xx).
        case http(url: String, expectStatus: [Int])
        /// A TCP connection that opens.
        case tcp(host: String, port: Int)
        /// A program (argv, found on PATH) that exits with 0.
        case command([String])
    }

    public var name: String
    public var probe: Probe
    /// Longest a probe may take; past it the check is unhealthy. Default 2 s.
    public var timeout: Duration = .seconds(2)
    /// A result is reused for this long, so `/health` and scrapes do not probe on every request. Default 30 s.
    public var interval: Duration = .seconds(30)
    /// Unhealthy fails `/health/ready` too (the process is taken out of load balancing).
    public var critical: Bool = false

    public init(name: String, probe: Probe, timeout: Duration = .seconds(2), interval: Duration = .seconds(30), critical: Bool = false) {
        self.name = name
        self.probe = probe
        self.timeout = timeout
        self.interval = interval
        self.critical = critical
    }

    /// Names of DeerFlow's own checks, which a configured check may not take.
    public static let builtinNames = ["database", "queue", "scheduler"]

    /// Reads the `health_checks:` section; nil when there is none.
    static func section(of top: YAMLMapping) -> [HealthCheckDefinition]? {
        guard let list = top.sequence("health_checks") else { return nil }
        var checks: [HealthCheckDefinition] = []
        var seen: Set<String> = []
        for item in list {
            guard let entry = item.mapping(allowedKeys: ["name", "http", "tcp", "command", "timeout", "interval", "critical"]) else { continue }
            guard let nameNode = entry.require("name"), let name = nameNode.string() else { continue }
            if !WorkflowDefinition.isValidName(name) {
                nameNode.fail("'\(name)' is not a valid check name (letters, digits, '_', '-', '.')")
                continue
            }
            if Self.builtinNames.contains(name) {
                nameNode.fail("'\(name)' is a built-in check; choose another name")
                continue
            }
            if !seen.insert(name).inserted {
                nameNode.fail("a check named '\(name)' is already configured")
                continue
            }
            let given = ["http", "tcp", "command"].filter { entry.optional($0) != nil }
            guard given.count == 1 else {
                item.fail(given.isEmpty ? "a health check needs one of http, tcp or command" : "give one of http, tcp or command, not \(given.joined(separator: " and "))")
                continue
            }
            var probe: Probe?
            if let http = entry.mapping("http", allowedKeys: ["url", "expect_status"]) {
                if let urlNode = http.require("url"), let url = urlNode.string() {
                    if URL.http(url) != nil {
                        let expected = http.intList("expect_status", allowSingle: true) ?? []
                        if let bad = expected.first(where: { !(100...599).contains($0) }) {
                            http.node.fail("\(bad) is not an HTTP status")
                        } else {
                            probe = .http(url: url, expectStatus: expected)
                        }
                    } else {
                        urlNode.fail("'\(url)' is not an http(s) URL")
                    }
                }
            } else if let node = entry.optional("tcp"), let address = node.string() {
                if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65_535).contains(port),
                   colon != address.startIndex {
                    probe = .tcp(host: String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port)
                } else {
                    node.fail("'\(address)' is not host:port (e.g. redis.internal:6379)")
                }
            } else if let node = entry.optional("command"), let argv = node.stringList() {
                if argv.isEmpty { node.fail("must not be empty") } else { probe = .command(argv) }
            }
            guard let probe else { continue }
            var check = HealthCheckDefinition(name: name, probe: probe, critical: entry.bool("critical") ?? false)
            if let timeout = entry.optional("timeout")?.duration(in: Limits.healthCheckTimeout) { check.timeout = timeout }
            if let interval = entry.optional("interval")?.duration(in: Limits.healthCheckInterval) { check.interval = interval }
            checks.append(check)
        }
        return checks
    }
}
