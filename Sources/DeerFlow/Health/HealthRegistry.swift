public import DeerFlowCore
import Foundation
import Synchronization

/// Health of one check or of the whole process.
public enum HealthStatus: String, Sendable, Hashable, Codable, Comparable {
    case healthy, degraded, unhealthy

    private var rank: Int {
        switch self {
        case .healthy: return 0
        case .degraded: return 1
        case .unhealthy: return 2
        }
    }

    public static func < (lhs: HealthStatus, rhs: HealthStatus) -> Bool { lhs.rank < rhs.rank }

    /// The `deerflow_health_check_status` value: 1 healthy, 0.5 degraded, 0 unhealthy.
    public var gaugeValue: Double {
        switch self {
        case .healthy: return 1
        case .degraded: return 0.5
        case .unhealthy: return 0
        }
    }
}

/// What a health check reports: a status and details (observed values, thresholds, errors).
public struct HealthCheckResult: Sendable, Hashable {
    public var status: HealthStatus
    public var details: [String: JSONValue]

    public init(_ status: HealthStatus, _ details: [String: JSONValue] = [:]) {
        self.status = status
        self.details = details
    }
}

/// The result of all checks.
public struct HealthReport: Sendable, Hashable {
    /// The worst status of all checks.
    public var status: HealthStatus
    public var checks: [String: HealthCheckResult]
}

/// Health checks behind `/health`: the built-in `database`, `queue` and `scheduler` checks and any
/// registered by the application.
///
/// ```swift
/// engine.health.register("warehouse", timeout: .seconds(2)) {
///     try await warehouse.ping()
///     return HealthCheckResult(.healthy, ["tables": 42])
/// }
/// ```
///
/// Each check runs with its timeout; a check that throws or hangs is reported unhealthy and never
/// holds up the endpoint. `latency_ms` is added to every result that does not set it.
public final class HealthRegistry: Sendable {
    struct Check: Sendable {
        var timeout: Duration
        var critical = false
        var run: @Sendable () async throws -> HealthCheckResult
    }

    private let checks = Mutex<[(name: String, check: Check)]>([])

    public init() {}

    /// Registers (or replaces) a check.
    ///
    /// - Parameters:
    ///   - name: key in the `/health` JSON and the `check` label of `deerflow_health_check_status`.
    ///   - timeout: after this, the check counts as unhealthy; default 2 s.
    ///   - critical: unhealthy also fails `/health/ready`, like the database.
    ///   - check: returns the status and details; throwing means unhealthy with the error as detail.
    public func register(
        _ name: String, timeout: Duration = .seconds(2), critical: Bool = false, _ check: @escaping @Sendable () async throws -> HealthCheckResult
    ) {
        checks.withLock { checks in
            checks.removeAll { $0.name == name }
            checks.append((name, Check(timeout: timeout, critical: critical, run: check)))
        }
    }

    /// Names of the registered checks, in registration order.
    public var names: [String] { checks.withLock { $0.map(\.name) } }

    /// Names of the checks registered as critical.
    public var criticalNames: [String] { checks.withLock { $0.filter(\.check.critical).map(\.name) } }

    /// Runs every check (or the named ones) concurrently, each bounded by its timeout.
    public func evaluate(only names: Set<String>? = nil) async -> HealthReport {
        let current = checks.withLock { $0 }.filter { names?.contains($0.name) ?? true }
        var results: [String: HealthCheckResult] = [:]
        await withTaskGroup(of: (String, HealthCheckResult).self) { group in
            for (name, check) in current {
                group.addTask { (name, await Self.run(check)) }
            }
            for await (name, result) in group { results[name] = result }
        }
        let worst = results.values.map(\.status).max() ?? .healthy
        return HealthReport(status: worst, checks: results)
    }

    /// Runs one check in its own unstructured task, so a check that ignores cancellation cannot
    /// hold up the caller past the timeout.
    private static func run(_ check: Check) async -> HealthCheckResult {
        let pending = Mutex<CheckedContinuation<HealthCheckResult, Never>?>(nil)
        let finish: @Sendable (HealthCheckResult) -> Void = { result in
            let continuation = pending.withLock { pending -> CheckedContinuation<HealthCheckResult, Never>? in
                defer { pending = nil }
                return pending
            }
            continuation?.resume(returning: result)
        }
        let clock = ContinuousClock()
        let started = clock.now
        return await withCheckedContinuation { (continuation: CheckedContinuation<HealthCheckResult, Never>) in
            pending.withLock { $0 = continuation }
            let timer = Task {
                try? await Sleep.for(check.timeout)
                if Task.isCancelled { return }
                finish(HealthCheckResult(.unhealthy, ["error": .string("check timed out after \(DurationText.format(check.timeout))")]))
            }
            Task {
                defer { timer.cancel() }
                do {
                    var result = try await check.run()
                    if result.details["latency_ms"] == nil {
                        result.details["latency_ms"] = .double(((clock.now - started).seconds * 1000 * 100).rounded() / 100)
                    }
                    finish(result)
                } catch {
                    finish(HealthCheckResult(.unhealthy, [
                        "error": .string(String(describing: error)),
                        "latency_ms": .double(((clock.now - started).seconds * 1000 * 100).rounded() / 100),
                    ]))
                }
            }
        }
    }
}
