import Foundation
import PropertyBased
import Testing

@testable import DeerFlowCore

/// Counts and durations are bounded where they enter, and no value that passes can overflow the
/// time arithmetic behind it.
@Suite("Limits")
struct LimitsTests {
    static func loadErrors(_ yaml: String) -> [FileError] {
        do {
            _ = try WorkflowFileLoader.parse(yaml: yaml, file: "rdonly.yaml")
            return []
        } catch {
            return error.errors
        }
    }

    @Test("the file that crash-looped the server is rejected with file, line and key")
    func crashLoopFileIsRejected() {
        let errors = Self.loadErrors("""
            name: rdonly
            tasks:
              - id: a
                type: shell
                script: exit 1
                retries: 2
                retry_delay: 99999999999d
            """)
        #expect(errors.count == 1, "\(errors)")
        let error = errors.first
        #expect(error?.file == "rdonly.yaml")
        #expect(error?.line == 7)
        #expect(error?.key == "tasks[0].retry_delay")
        #expect(error?.message == "must be between 0s and 365d, got 99999999999d")
    }

    @Test("retries, priority and durations outside their ranges are located errors", arguments: [
        ("retries: 9223372036854775807", "tasks[0].retries", "must be between 0 and 10000, got 9223372036854775807"),
        ("retries: -1", "tasks[0].retries", "must be between 0 and 10000, got -1"),
        ("priority: 99999999999", "tasks[0].priority", "must be between -1000000 and 1000000, got 99999999999"),
        ("timeout: 366d", "tasks[0].timeout", "must be between 0s and 365d, got 366d"),
        ("max_retry_delay: 400d", "tasks[0].max_retry_delay", "must be between 0s and 365d, got 400d"),
        ("retry_delay: 99999999999999999999d", "tasks[0].retry_delay", "'99999999999999999999d' is too long (at most 365d)"),
        ("retry_delay: 9999999999999999d", "tasks[0].retry_delay", "'9999999999999999d' is too long (at most 365d)"),
        ("retry_delay: 5000d", "tasks[0].retry_delay", "must be between 0s and 365d, got 5000d"),
    ])
    func outOfRange(line: String, key: String, message: String) {
        let errors = Self.loadErrors("""
            name: bounds
            tasks:
              - id: a
                type: noop
                \(line)
            """)
        #expect(errors.map(\.key) == [key], "\(errors)")
        #expect(errors.first?.message == message)
        #expect(errors.first?.line == 5)
    }

    @Test("a workflow's run timeout is read, and bounded like a task's", arguments: [
        ("timeout: 366d", "must be between 0s and 365d, got 366d"),
        ("timeout: 0s", "must be positive"),
        ("timeout: soon", "'soon' is not a duration (use e.g. 30s, 5m, 2h, 1d)"),
    ])
    func runTimeout(line: String, message: String) throws {
        let errors = Self.loadErrors("""
            name: bounds
            \(line)
            tasks:
              - id: a
                type: noop
            """)
        #expect(errors.map(\.key) == ["timeout"], "\(errors)")
        #expect(errors.first?.message == message)
        #expect(errors.first?.line == 2)
        let loaded = try WorkflowFileLoader.parse(yaml: "name: fine\ntimeout: 1h30m\ntasks: [{id: a, type: noop}]\n", file: "fine.yaml")
        #expect(loaded.timeout == .seconds(5400))
    }

    @Test("max_active_runs is read, bounded and located")
    func maxActiveRuns() throws {
        let definition = try WorkflowFileLoader.parse(yaml: "name: etl\nmax_active_runs: 2\ntasks: [{id: a, type: noop}]\n", file: "etl.yaml")
        #expect(definition.maxActiveRuns == 2)
        #expect(try WorkflowFileLoader.parse(yaml: "name: etl\ntasks: [{id: a, type: noop}]\n", file: "etl.yaml").maxActiveRuns == nil)
        for (value, message) in [("0", "must be between 1 and 10000, got 0"), ("20000", "must be between 1 and 10000, got 20000")] {
            let errors = Self.loadErrors("name: etl\nmax_active_runs: \(value)\ntasks: [{id: a, type: noop}]\n")
            #expect(errors.map(\.key) == ["max_active_runs"], "\(errors)")
            #expect(errors.first?.line == 2)
            #expect(errors.first?.message == message)
        }
        // A definition built in Swift is checked the same way.
        let swift = WorkflowDefinition(name: "etl", tasks: [TaskDefinition(id: "a", type: "noop", action: .noop)], maxActiveRuns: 0)
        #expect(swift.validationIssues().map(\.path) == ["max_active_runs"])
    }

    @Test("deerflow.yaml's queue concurrency limits are read, bounded and located")
    func queueConcurrency() throws {
        let file = try ServerConfigFile.parse(yaml: "queues:\n  reports: {concurrency: 2}\n  etl:\n    concurrency: 5\n", file: "deerflow.yaml", environment: [:])
        #expect(file.queueConcurrency == ["reports": 2, "etl": 5])
        #expect(try ServerConfigFile.parse(yaml: "worker: {slots: 2}\n", file: "deerflow.yaml", environment: [:]).queueConcurrency == nil)
        #expect(try ServerConfigFile.parse(yaml: "queues: {}\n", file: "deerflow.yaml", environment: [:]).queueConcurrency == [:])
        for (yaml, key) in [
            ("queues:\n  reports: {concurrency: 0}", "queues.reports.concurrency"),
            ("queues:\n  reports: {limit: 2}", "queues.reports.limit"),
            ("queues:\n  reports: {}", "queues.reports.concurrency"),
        ] {
            do {
                _ = try ServerConfigFile.parse(yaml: yaml, file: "deerflow.yaml", environment: [:])
                Issue.record("\(yaml) was accepted")
            } catch {
                #expect(error.errors.first?.key == key, "\(error.errors)")
                #expect(error.errors.first?.line == 2)
            }
        }
    }

    @Test("a sleep task's duration is bounded too")
    func sleepDuration() {
        let errors = Self.loadErrors("""
            name: bounds
            tasks:
              - id: a
                type: sleep
                duration: 1000d
            """)
        #expect(errors.map(\.key) == ["tasks[0].duration"])
    }

    @Test("deerflow.yaml's worker and scheduler settings are bounded", arguments: [
        ("worker:\n  slots: 0", "worker.slots"),
        ("worker:\n  slots: 9223372036854775807", "worker.slots"),
        ("worker:\n  lease: 99999999999d", "worker.lease"),
        ("worker:\n  lease: 500ms", "worker.lease"),
        ("worker:\n  poll_interval: 1ms", "worker.poll_interval"),
        ("worker:\n  drain_timeout: 2d", "worker.drain_timeout"),
        ("scheduler:\n  worker_timeout: 30d", "scheduler.worker_timeout"),
    ])
    func serverConfig(yaml: String, key: String) {
        do {
            _ = try ServerConfigFile.parse(yaml: yaml, file: "deerflow.yaml", environment: [:])
            Issue.record("\(yaml) was accepted")
        } catch {
            #expect(error.errors.map(\.key) == [key], "\(error.errors)")
            #expect(error.errors.first?.line == 2)
        }
    }

    static let durationFields = ["retry_delay", "max_retry_delay", "timeout"]
    static let units = ["ms", "s", "m", "h", "d"]

    @Test("property: any value of any count or duration field is rejected with a location or is safe to run")
    func extremeValues() async {
        let fields = ["retries", "priority"] + Self.durationFields + ["duration"]
        let magnitudes = Gen<Int64>.oneOf(
            Gen.int64(in: Int64.min...Int64.max),
            Gen.int64(in: -2...400),
            Gen.int64(in: 1...1_000_000_000),
            Gen.always(Int64.max), Gen.always(Int64.min), Gen.always(9_999_999_999))
        await propertyCheck(count: 400, input: Gen.int(in: 0..<fields.count), magnitudes, Gen.int(in: 0..<Self.units.count)) { fieldIndex, value, unitIndex in
            let field = fields[fieldIndex]
            let isCount = field == "retries" || field == "priority"
            let text = isCount ? "\(value)" : "\(value)\(Self.units[unitIndex])"
            let yaml = """
                name: extreme
                tasks:
                  - id: a
                    type: \(field == "duration" ? "sleep" : "noop")
                    \(field): \(text)
                """
            do throws(FileErrors) {
                let definition = try WorkflowFileLoader.parse(yaml: yaml, file: "extreme.yaml")
                let task = definition.tasks[0]
                #expect(Limits.retries.contains(task.retry.retries))
                #expect(Limits.priority.contains(task.priority))
                #expect(Limits.taskDuration.contains(task.retry.delay))
                #expect(Limits.taskDuration.contains(task.retry.maxDelay))
                Self.expectRetryTimesStorable(task.retry)
            } catch {
                #expect(error.errors.count == 1, "\(field): \(text): \(error.errors)")
                #expect(error.errors.first?.line == 5, "\(text): \(error.errors)")
                #expect(error.errors.first?.key.hasPrefix("tasks[0].") == true, "\(text): \(error.errors)")
            }
        }
    }

    /// Every retry time the policy can produce is inside what a store holds.
    static func expectRetryTimesStorable(_ policy: RetryPolicy, sourceLocation: SourceLocation = #_sourceLocation) {
        let now = Date()
        for used in Set([0, 1, 30, 62, 63, 64, policy.retries - 1, policy.retries]) where used >= 0 {
            for random in [0.0, 0.5, 0.999] {
                let resolution = AttemptResolution.resolve(
                    .failure(message: "x"), attempt: used &+ 1, retriesUsed: used, interruptions: 0, policy: policy,
                    runIsActive: true, now: now, random: random)
                if let retryAt = resolution.retryAt {
                    #expect(Limits.storableTime.contains(retryAt), sourceLocation: sourceLocation)
                    #expect(retryAt >= now, sourceLocation: sourceLocation)
                }
            }
        }
    }

    @Test("property: parsing any duration text never traps, and parses exactly when it fits")
    func durationParsing() async {
        await propertyCheck(count: 1000, input: Gen.uint64(in: 0...UInt64.max), Gen.int(in: 0..<Self.units.count), Gen.int(in: 1...3)) { value, unitIndex, parts in
            let unit = Self.units[unitIndex]
            let text = String(repeating: "\(value)\(unit)", count: parts)
            let perUnit: [String: Double] = ["ms": 1, "s": 1e3, "m": 6e4, "h": 3.6e6, "d": 8.64e7]
            let milliseconds = Double(value) * (perUnit[unit] ?? 1)
            guard parts == 1 else {
                // A unit given twice (`1h1h`) is not a duration, however small.
                #expect(DurationText.parse(text) == nil, "\(text) parsed")
                #expect(!DurationText.isWellFormed(text))
                return
            }
            if let parsed = DurationText.parse(text) {
                #expect(milliseconds < 9.3e18)
                #expect(abs(Double(parsed.milliseconds) - milliseconds) <= milliseconds * 1e-12 + 1)
            } else {
                #expect(milliseconds > 9.2e18, "\(text) did not parse")
                #expect(DurationText.isWellFormed(text))
            }
        }
    }

    @Test("saturating time arithmetic stays storable; policies built in code cannot trap")
    func saturation() {
        let latest = Limits.storableTime.upperBound
        #expect(Date().adding(.seconds(Int64.max)) == latest)
        #expect(Date().adding(.zero - .seconds(Int64.max)) == Limits.storableTime.lowerBound)
        #expect(Date(timeIntervalSince1970: .infinity).storable == latest)
        #expect(Date(timeIntervalSince1970: .nan).storable == Limits.storableTime.lowerBound)
        let absurd = RetryPolicy(retries: Int.max, delay: .seconds(Int64.max), maxDelay: .seconds(Int64.max))
        Self.expectRetryTimesStorable(absurd)
    }
}
