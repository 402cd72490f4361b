import DeerFlowCore
import DeerFlowLogging
import DeerFlowNotifications
import Foundation
import PropertyBased
import Testing

@testable import DeerFlowAlerting

/// Every parser of user input, fed mutated seed inputs: none may crash or hang, and every
/// rejection must say where (file, line and column; or the field, column or position inside an
/// expression). Bounded counts here; `DEERFLOW_FUZZ_COUNT=10000 swift test --filter Fuzz` is the
/// long run (README, "Fuzzing").
@Suite("Fuzz: parsers of user input")
struct ParserFuzzTests {
    static let file = "fuzz.yaml"

    /// What is unlocated among a loader's errors, or nil.
    static func unlocated(_ errors: FileErrors) -> Verdict {
        if errors.errors.isEmpty { return "a rejection without any error" }
        guard let bad = errors.errors.first(where: { $0.line < 1 || $0.column < 1 || $0.file != file || $0.message.isEmpty }) else { return .rejected }
        return "unlocated error: \(bad)"
    }

    /// Mutated YAML files of one corpus folder through `parse`.
    static func fuzzFiles(_ folder: String, count: Int, keys: [String], values: [String], _ parse: @escaping (String) -> Verdict) async {
        let seeds = Fuzz.corpus(folder)
        #expect(!seeds.isEmpty, "no seeds in Corpus/\(folder)")
        guard !seeds.isEmpty else { return }
        await propertyCheck(count: Fuzz.count(count), input: Gen.int(in: 0..<seeds.count), Gen.uint64(in: 0...UInt64.max), Gen.int(in: 1...6)) { index, seed, times in
            var mutator = Mutator(seed: seed)
            let input = mutator.mutate(seeds[index], times: times, keys: keys, values: values)
            Fuzz.check(folder, input, parse)
        }
        print(Fuzz.summary(folder))
    }

    static let workflowKeys = [
        "name", "description", "schedule", "params", "tasks", "notify", "timeout", "max_active_runs", "triggers", "id", "type", "command",
        "script", "env", "workdir", "env_passthrough", "depends_on", "queue", "priority", "retries", "retry_delay", "max_retry_delay",
        "for_each", "max_parallel", "method", "url", "headers", "body", "expect_status", "duration", "workflow", "wait", "cron", "timezone",
        "catchup", "paused", "default", "secret", "webhook", "secret_env", "delivery_header", "on_failure", "severity",
    ]
    static let workflowValues = [
        "shell", "http", "noop", "sleep", "workflow", "[a, b]", "[echo, hi]", "5s", "1h30m", "{a: 1}", "https://example.com/x", "\"0 2 * * *\"",
        "\"@daily\"", "Europe/Berlin", "Mars/Olympus", "all", "latest", "int", "json", "\"{{ params.x }}\"", "\"{{ tasks.a.output.list }}\"",
        "[200, 201]", "999", "a", "b", "\"0 0 30 2 *\"", "\"..\"", "\"--help\"", "\"a\\0b\"", "[]", "{}", "10000", "-5", "POST", "get",
    ]

    @Test("workflow files: mutated examples never crash or hang, and every rejection is located")
    func workflowFiles() async {
        await Self.fuzzFiles("workflows", count: 1_000, keys: Self.workflowKeys, values: Self.workflowValues) { text in
            do throws(FileErrors) {
                let definition = try WorkflowFileLoader.parse(yaml: text, file: Self.file)
                let issues = definition.validationIssues()
                return issues.isEmpty ? .accepted : "accepted with validation issues \(issues)"
            } catch {
                return Self.unlocated(error)
            }
        }
    }

    /// A workflow file built from the loader's vocabulary: 1–8 tasks with ids (sometimes unsafe
    /// or repeated), types, dependencies (sometimes unknown, later or cyclic), and fields with
    /// plausible and hostile values. Far more of these pass the YAML than mutated files do, so
    /// they reach validation.
    static func generatedWorkflow(_ random: inout Mutator) -> String {
        // Each choice is a valid value, or one time in sixteen a hostile one.
        func pick(_ good: [String], _ bad: [String]) -> String {
            (random.int(16) == 0 ? random.element(bad) : random.element(good)) ?? ""
        }
        let badIDs = ["..", ".", "-x", "--help", "_p", "a b", "é", ""]
        var lines = ["name: \"\(pick(["gen", "etl.v2", "9am-report"], badIDs))\""]
        if random.int(3) == 0 {
            lines.append("schedule: \"\(pick(["0 2 * * *", "0 0 29 2 *", "@daily", "0 0 31 * MON", "0 0 31 1,4 *"], ["0 0 30 2 *", "0 0 31 4,6 *", "*/0 * * * *", "61 * * * *"]))\"")
        }
        if random.int(3) == 0 {
            lines += ["params:", "  day: \(pick(["{type: string, default: \"x\"}", "{type: int, default: 5}", "{type: json, default: [1]}"], ["{type: bogus}", "{type: string, default: \"a\\0b\"}", "{type: int, default: x}"]))"]
        }
        if random.int(4) == 0 { lines.append("timeout: \(pick(["1h", "1h30m", "1d12h"], ["1h1h", "0s", "366d", "30m1h"]))") }
        lines.append("tasks:")
        var declared: [String] = []
        for _ in 0..<(random.int(8) + 1) {
            let id = pick(["t\(declared.count)", "t\(declared.count)", "extract.\(declared.count)"], badIDs + ["t0"])
            let type = pick(["shell", "http", "noop", "sleep", "noop"], ["workflow", "bogus"])
            lines += ["  - id: \"\(id)\"", "    type: \(type)"]
            if !declared.isEmpty, random.int(3) != 0 {
                let dependencies = (0..<(random.int(2) + 1)).map { _ in pick(declared, ["missing", id, "t7"]) }
                lines.append("    depends_on: [\(dependencies.map { "\"\($0)\"" }.joined(separator: ", "))]")
            }
            switch type {
            case "shell":
                if random.int(2) == 0 {
                    lines.append("    script: \"\(pick(["echo hi", "exit 1", "echo $DAY"], ["echo a\\0b", "echo {{ params.day }}"]))\"")
                } else {
                    lines.append("    command: [echo, \"\(pick(["x", "{{ run.id }}"], ["{{ tasks.t0.output.x }}", "a\\0b", "{{ nope }}", "{{"]))\"]")
                }
                if random.int(3) == 0 { lines.append("    env: {K: \"\(pick(["v", "{{ run.id }}", "{{ secrets.TOKEN }}"], ["a\\0", "{{ run.nope }}"]))\"}") }
            case "http":
                lines.append("    url: \(pick(["https://example.com/x", "http://127.0.0.1:9/{{ run.id }}"], ["ftp://x", "\"https://h/\\0\""]))")
                if random.int(3) == 0 { lines.append("    expect_status: \(pick(["[200]", "201", "[200, 204]"], ["99", "[600]"]))") }
            case "sleep":
                lines.append("    duration: \(pick(["1s", "1m30s", "0"], ["1h1h", "400d", "5x"]))")
            case "workflow":
                lines.append("    workflow: \(pick(["other"], ["..", "--help"]))")
            default:
                break
            }
            if random.int(4) == 0 { lines.append("    retry_delay: \(pick(["5s", "1m30s"], ["30s1m", "5s5s", "99999999999999999999d"]))") }
            if random.int(8) == 0 { lines.append("    for_each: \"\(pick(["{{ params.day }}"], ["{{ item }}", "x", "{{ tasks.t9.output.list }}"]))\"") }
            declared.append(id)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("generated workflow files: what is accepted holds every invariant, and every rejection is located")
    func generatedWorkflowFiles() async {
        await propertyCheck(count: Fuzz.count(1_000), input: Gen.uint64(in: 0...UInt64.max)) { seed in
            var random = Mutator(seed: seed)
            Fuzz.check("generated-workflows", Self.generatedWorkflow(&random)) { text in
                let definition: WorkflowDefinition
                do throws(FileErrors) {
                    definition = try WorkflowFileLoader.parse(yaml: text, file: Self.file)
                } catch {
                    return Self.unlocated(error)
                }
                let ids = definition.tasks.map(\.id)
                if !WorkflowDefinition.isSafeName(definition.name) || !ids.allSatisfy(WorkflowDefinition.isSafeName) { return "accepted an unsafe name" }
                if Set(ids).count != ids.count { return "accepted a repeated task id" }
                if definition.tasks.contains(where: { $0.dependsOn.contains { !ids.contains($0) } }) { return "accepted an unknown dependency" }
                if definition.dependencyCycle() != nil { return "accepted a cycle" }
                if let cron = definition.schedule.flatMap({ try? CronSchedule($0.cron) }), cron.neverFiresProblem != nil { return "accepted a schedule that never fires" }
                // The generator writes `\0` only where a NUL must be refused.
                if text.contains("\\0") { return "accepted a NUL" }
                if text.contains("1h1h") || text.contains("5s5s") || text.contains("30s1m") { return "accepted a repeated or out-of-order duration unit" }
                return .accepted
            }
        }
        print(Fuzz.summary("generated-workflows"))
    }

    /// The config files `deerflow validate` and the server read, by the corpus folder of their seeds.
    static let configParsers: [String: @Sendable (String) throws(FileErrors) -> Void] = [
        "deerflow": { text throws(FileErrors) in _ = try ServerConfigFile.parse(yaml: text, file: file, environment: ["HOME": "/tmp", "TOKEN": "t"]) },
        "metrics": { text throws(FileErrors) in _ = try MetricsConfigFile.parse(yaml: text, file: file, environment: [:]) },
        "tracing": { text throws(FileErrors) in _ = try TracingConfigFile.parse(yaml: text, file: file, environment: [:]) },
        "logging": { text throws(FileErrors) in _ = try LoggingConfigFile.parse(yaml: text, file: file, environment: [:], checkPaths: false) },
        "notifications": { text throws(FileErrors) in
            _ = try NotificationsConfigFile.parse(yaml: text, file: file, environment: ["PAGERDUTY_KEY": "0123456789abcdef0123456789abcdef"])
        },
    ]

    static let configKeys = [
        "api", "host", "port", "tokens", "database", "url", "path", "worker", "slots", "lease", "poll_interval", "queues", "concurrency",
        "scheduler", "worker_timeout", "secrets", "env", "file", "health_checks", "http", "interval", "timeout", "retention", "runs",
        "task_logs", "metrics", "name", "type", "help", "labels", "buckets", "tracing", "endpoint", "protocol", "sampler", "ratio",
        "logging", "level", "format", "handlers", "filters", "patterns", "action", "notifications", "channels", "routing", "match",
        "match_regex", "templates", "repeat_interval", "group_wait", "slack", "webhook", "pagerduty", "service_key", "email", "smtp_host",
        "to", "from", "alerting", "alertmanagers", "static_configs", "targets", "rules", "max_map_instances",
    ]
    static let configValues = [
        "8080", "0", "-1", "99999", "127.0.0.1", "sqlite:///tmp/x.db", "postgres://u:p@h/db", "5s", "30d", "forever", "[a, b]",
        "{concurrency: 2}", "counter", "gauge", "histogram", "[0.1, 1, 10]", "http://localhost:4318", "grpc", "debug", "json", "redact",
        "[\"secret.*\"]", "\"(\"", "{env: TOKEN}", "{file: /nonexistent}", "${TOKEN}", "${MISSING}", "[slack]", "{severity: critical}",
        "\"{{ .AlertName }}\"", "\"{{ .Nope }}\"", "https://hooks.slack.com/x", "oncall@example.com",
    ]

    @Test("config files: mutated examples never crash or hang, and every rejection is located", arguments: ["deerflow", "metrics", "tracing", "logging", "notifications"])
    func configFiles(kind: String) async {
        guard let parse = Self.configParsers[kind] else { return }
        await Self.fuzzFiles(kind, count: 300, keys: Self.configKeys, values: Self.configValues) { text in
            do throws(FileErrors) {
                try parse(text)
                return .accepted
            } catch {
                return Self.unlocated(error)
            }
        }
    }

    @Test("alert rule files: mutated rules never crash or hang, and every rejection is located")
    func alertRuleFiles() async {
        let keys = ["groups", "name", "interval", "rules", "alert", "expr", "for", "keep_firing_for", "labels", "annotations", "record", "limit", "query_offset"]
        let values = ["5m", "1h1h", "up == 0", "\"sum(rate(m[5m])) > 1\"", "\"{{ $value }}\"", "\"{{ $labels.x \"", "critical", "[a]", "{a: b}", "\"topk(1, m)\""]
        await Self.fuzzFiles("alerts", count: 300, keys: keys, values: values) { text in
            do throws(RuleFileError) {
                _ = try RuleFile.parse(yaml: text, file: Self.file)
                return .accepted
            } catch {
                return error.line >= 1 && error.column >= 1 && error.file == Self.file ? .rejected : "unlocated error: \(error)"
            }
        }
    }

    /// Mutated one-line inputs of one corpus folder, with `tokens` of their language.
    static func fuzzExpressions(_ folder: String, count: Int, tokens: [String], _ parse: @escaping (String) -> Verdict) async {
        let seeds = Fuzz.corpus(folder)
        #expect(!seeds.isEmpty, "no seeds in Corpus/\(folder)")
        guard !seeds.isEmpty else { return }
        await propertyCheck(count: Fuzz.count(count), input: Gen.int(in: 0..<seeds.count), Gen.uint64(in: 0...UInt64.max), Gen.int(in: 1...4)) { index, seed, times in
            var mutator = Mutator(seed: seed)
            let input = mutator.mutate(seeds[index], times: times, tokens: tokens + Mutator.yamlTokens.prefix(12))
            Fuzz.check(folder, input, parse)
        }
        print(Fuzz.summary(folder))
    }

    static let cronFieldNames = ["minute: ", "hour: ", "day-of-month: ", "month: ", "day-of-week: "]

    @Test("cron expressions: never crash or hang, every rejection names its field, and a schedule that never fires is recognised")
    func cronExpressions() async {
        let tokens = ["*", "/", "-", ",", " ", "0", "7", "23", "31", "59", "60", "MON", "sun", "JAN", "dec", "L", "W", "#", "?", "@daily", "@", "*/", "99999999999999999999", "-1", "\t"]
        let after = Date(timeIntervalSince1970: 1_750_000_000)
        await Self.fuzzExpressions("cron", count: 1_000, tokens: tokens) { text in
            do throws(CronSchedule.ParseError) {
                let cron = try CronSchedule(text, timeZone: TimeZone(identifier: "America/New_York") ?? .gmt)
                let next = cron.nextFire(after: after)
                if cron.neverFiresProblem != nil, next != nil { return "judged never to fire, but fires at \(String(describing: next))" }
                return .accepted
            } catch {
                let message = error.message
                let whole = message.hasPrefix("expected 5 fields") || message.hasPrefix("unsupported macro") || message.contains("must be the whole expression")
                return whole || Self.cronFieldNames.contains(where: message.hasPrefix) ? .rejected : "rejection names no field: \(message)"
            }
        }
    }

    @Test("durations: never crash, parse exactly the well-formed ones in range, and every rejection quotes the text or the range")
    func durations() async {
        let tokens = ["ms", "s", "m", "h", "d", "0", "1", "9", "99999999999999999999", ".", "-", " ", "1h", "30m"]
        await Self.fuzzExpressions("durations", count: 1_000, tokens: tokens) { text in
            switch Limits.duration(text, in: Limits.anyDuration) {
            case .success(let duration):
                if !Limits.anyDuration.contains(duration) { return "accepted \(duration) outside the range" }
                if text.trimmingCharacters(in: .whitespaces) != "0", DurationText.parse(DurationText.format(duration)) != duration {
                    return "\(duration) does not survive format and parse"
                }
                return .accepted
            case .failure(let problem):
                return problem.message.contains("'\(text)'") || problem.message.hasPrefix("must be between") ? .rejected : "rejection without the text: \(problem.message)"
            }
        }
    }

    @Test("PromQL rule expressions: never crash or hang, and every rejection has a position")
    func promQL() async {
        let tokens = [
            "(", ")", "{", "}", "[", "]", "[5m]", "[5m:1m]", ",", "=", "=~", "!=", "!~", "\"", "'", "`", "+", "-", "*", "/", "%", "^", "==", ">=",
            " bool ", " by (a)", " without (a)", " on(a) ", " ignoring(a) ", " group_left ", " offset 5m", " @ 100", "sum(", "rate(", "topk(1,",
            "histogram_quantile(0.9,", "1e309", "0x1F", "NaN", "Inf", "-Inf", "m", "a_b:c", "__name__", "#", "\\",
        ]
        await Self.fuzzExpressions("promql", count: 1_000, tokens: tokens) { text in
            do throws(PromQLError) {
                _ = try PromQLExpression(parsing: text)
                return .accepted
            } catch {
                guard let position = error.position else { return "rejection without a position: \(error.message)" }
                return position.line >= 1 && position.column >= 1 && position.offset >= 0 ? .rejected : "bad position \(position): \(error.message)"
            }
        }
    }

    static let alert = NotificationAlert(
        name: "HighFailureRate", labels: ["severity": "critical", "workflow": "etl"], annotations: ["summary": "s", "description": "d"],
        value: 0.25, startsAt: Date(timeIntervalSince1970: 1_750_000_000))

    @Test("notification templates: never crash or hang, and every rejection has a line and column")
    func notificationTemplates() async {
        let tokens = ["{{", "}}", "{{-", "-}}", "{{/*", "*/}}", ".", ".AlertName", ".Labels.", ".Annotations.x", ".Value", " ", "|", "$value", "if", "range", "\n"]
        await Self.fuzzExpressions("notification-templates", count: 1_000, tokens: tokens) { text in
            do throws(NotificationTemplateError) {
                let template = try NotificationTemplate(text)
                _ = template.render([Self.alert, Self.alert])
                return .accepted
            } catch {
                return error.line >= 1 && error.column >= 1 ? .rejected : "bad location \(error)"
            }
        }
    }

    @Test("alert rule templates: never crash or hang, and every rejection has an offset in the text")
    func alertTemplates() async {
        let tokens = ["{{", "}}", "{{-", "-}}", "{{/*", "*/}}", "$labels", "$value", "$externalLabels", ".", "|", "humanize", "index", "printf", "\"", "`", "1e309", " ", "(", ")"]
        await Self.fuzzExpressions("alert-templates", count: 1_000, tokens: tokens) { text in
            do throws(DeerFlowAlerting.TemplateError) {
                let template = try AlertTemplate(parsing: text)
                _ = template.render(labels: ["workflow": "etl", "instance": "a"], value: .nan)
                _ = template.render(labels: [:], value: 1e300)
                return .accepted
            } catch {
                return (0...text.unicodeScalars.count).contains(error.offset) || (0...text.utf8.count).contains(error.offset) ? .rejected : "offset \(error.offset) outside the text: \(error.message)"
            }
        }
    }

    @Test("task templates: never crash or hang, and every rejection names its column")
    func taskTemplates() async {
        let tokens = ["{{", "}}", ".", "[", "]", "[0]", "[\"k\"]", "|", " default(", ")", "json", "tojson", "urlencode", "\"", "'", "params", "tasks", "item", "99999999999999999999"]
        let scope = TemplateScope([
            "params": .object(["day": .string("2024-01-01"), "x": .int(1)]),
            "tasks": .object(["a": .object(["output": .object(["x": .array([.int(1)])])])]),
            "run": .object(["id": .string("r")]),
        ])
        await Self.fuzzExpressions("task-templates", count: 1_000, tokens: tokens) { text in
            let template: Template
            do throws(DeerFlowCore.TemplateError) {
                template = try Template(text)
            } catch {
                return error.message.hasPrefix("column ") ? .rejected : "rejection without a column: \(error.message)"
            }
            _ = try? template.render(scope)
            return .accepted
        }
    }
}
