import AsyncHTTPClient
public import DeerFlowCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

extension HealthRegistry {
    /// Registers the checks of `deerflow.yaml`'s `health_checks:`. Each probes at most once per
    /// `interval` (requests and scrapes in between get the last result), within its `timeout`.
    public func register(_ definitions: [HealthCheckDefinition]) {
        for definition in definitions {
            let probe = CachedProbe(definition)
            // The registry's own timeout is the backstop: the probe bounds itself a little earlier.
            register(definition.name, timeout: definition.timeout + .milliseconds(250), critical: definition.critical) {
                await probe.result()
            }
        }
    }
}

/// One configured check with its last result.
final class CachedProbe: Sendable {
    let definition: HealthCheckDefinition
    private struct State {
        var last: (result: HealthCheckResult, at: ContinuousClock.Instant)?
        /// The probe under way: callers meanwhile wait for it rather than start another.
        var running: Task<HealthCheckResult, Never>?
    }
    private let state = Mutex(State())

    init(_ definition: HealthCheckDefinition) {
        self.definition = definition
    }

    func result() async -> HealthCheckResult {
        let now = ContinuousClock.now
        let task = state.withLock { state -> Task<HealthCheckResult, Never>? in
            if let last = state.last, now - last.at < definition.interval { return nil }
            if let running = state.running { return running }
            let running = Task { [self] in
                var result = await probe()
                result.details["probed_at"] = .string(Timestamp.rfc3339(Date()))
                if definition.critical { result.details["critical"] = true }
                let finished = result
                self.state.withLock { current in
                    current.last = (finished, ContinuousClock.now)
                    current.running = nil
                }
                return result
            }
            state.running = running
            return running
        }
        guard let task else { return state.withLock { $0.last?.result } ?? HealthCheckResult(.unhealthy, ["error": "not probed yet"]) }
        return await task.value
    }

    private func probe() async -> HealthCheckResult {
        let started = ContinuousClock.now
        func elapsed() -> JSONValue { .double(((ContinuousClock.now - started).seconds * 1000 * 100).rounded() / 100) }
        do {
            switch definition.probe {
            case .http(let url, let expected):
                var request = HTTPClientRequest(url: url)
                request.method = .GET
                let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(definition.timeout.nanoseconds)))
                let status = Int(response.status.code)
                let accepted = expected.isEmpty ? (200..<300).contains(status) : expected.contains(status)
                let details: [String: JSONValue] = ["url": .string(url), "status_code": .int(status), "latency_ms": elapsed()]
                guard accepted else {
                    let wanted = expected.isEmpty ? "2xx" : expected.map(String.init).joined(separator: ", ")
                    return HealthCheckResult(.unhealthy, details.merging(["error": .string("answered \(status), expected \(wanted)")]) { _, new in new })
                }
                return HealthCheckResult(.healthy, details)
            case .tcp(let host, let port):
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.nanoseconds(Int64(definition.timeout.nanoseconds)))
                    .connect(host: host, port: port).get()
                try? await channel.close()
                return HealthCheckResult(.healthy, ["address": .string("\(host):\(port)"), "latency_ms": elapsed()])
            case .command(let argv):
                let status = try await Self.run(argv, timeout: definition.timeout)
                guard status.code == 0 else {
                    return HealthCheckResult(.unhealthy, [
                        "command": .string(argv.joined(separator: " ")), "exit_code": .int(Int(status.code)),
                        "error": .string(status.lastLine.map { "exited with \(status.code): \($0)" } ?? "exited with \(status.code)"), "latency_ms": elapsed(),
                    ])
                }
                return HealthCheckResult(.healthy, ["command": .string(argv.joined(separator: " ")), "latency_ms": elapsed()])
            }
        } catch {
            return HealthCheckResult(.unhealthy, ["error": .string(Self.describe(error, probe: definition.probe)), "latency_ms": elapsed()])
        }
    }

    /// Runs a check's program with the base environment of tasks (nothing of DeerFlow's secrets),
    /// killed at the timeout.
    private static func run(_ argv: [String], timeout: Duration) async throws -> (code: Int32, lastLine: String?) {
        let output = Mutex("")
        let environment = TaskEnvironment.inherited(from: ProcessInfo.processInfo.environment, passthrough: [])
        let child = try ChildProcess(argv: ["/usr/bin/env"] + argv, environment: environment) { _, text in
            output.withLock { $0 = String(($0 + text).suffix(2000)) }
        }
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await child.exit() }
            group.addTask {
                try? await Sleep.for(timeout)
                return nil
            }
            let first = await group.next() ?? nil
            if first == nil { child.terminate(grace: .milliseconds(100)) }
            group.cancelAll()
            return first
        }
        guard let status else { throw ProbeTimeout(timeout: timeout) }
        await child.outputClosed(timeout: .milliseconds(200))
        let last = output.withLock { $0 }.split(whereSeparator: \.isNewline).last.map { String($0.prefix(300)) }
        return (WaitStatus.exited(status) ? WaitStatus.exitCode(status) : 128 + WaitStatus.signal(status), last)
    }

    private static func describe(_ error: any Error, probe: HealthCheckDefinition.Probe) -> String {
        let target: String
        switch probe {
        case .http(let url, _): target = url
        case .tcp(let host, let port): target = "\(host):\(port)"
        case .command(let argv): target = argv.joined(separator: " ")
        }
        if let timeout = error as? ProbeTimeout { return "\(target): no answer within \(DurationText.format(timeout.timeout))" }
        return "\(target): \(error)"
    }
}

struct ProbeTimeout: Error {
    let timeout: Duration
}
