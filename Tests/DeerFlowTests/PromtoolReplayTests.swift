import DeerFlowAlerting
import Foundation
import Testing
import Yams

/// promtool's own rule tests (`deploy/prometheus/alerts_test.yaml`, which `promtool test rules`
/// passes) replayed through DeerFlow's evaluator: the same series, the same evaluation steps, the
/// same firing alerts with the same labels and rendered annotations at each `eval_time`.
@Suite("promtool rule tests through DeerFlow's evaluator")
struct PromtoolReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("every case of alerts_test.yaml gives promtool's expected alerts")
    func replay() throws {
        let directory = Self.root.appendingPathComponent("deploy/prometheus")
        let tests = try #require(try Yams.load(yaml: String(contentsOf: directory.appendingPathComponent("alerts_test.yaml"), encoding: .utf8)) as? [String: Any])
        let ruleFiles = try #require(tests["rule_files"] as? [String])
        let rules = try RuleFile.load(path: directory.appendingPathComponent(ruleFiles[0]).path)
        let evaluationInterval = try Self.seconds(tests["evaluation_interval"] as? String ?? "1m")
        let cases = try #require(tests["tests"] as? [[String: Any]])
        #expect(cases.count >= 8)
        var checked = 0
        for (number, testCase) in cases.enumerated() {
            let interval = try Self.seconds(testCase["interval"] as? String ?? "1m")
            let series = try (testCase["input_series"] as? [[String: Any]] ?? []).map { item in
                (try Self.selector(item["series"] as? String ?? ""), try Self.values(item["values"] as? String ?? ""))
            }
            let assertions = testCase["alert_rule_test"] as? [[String: Any]] ?? []
            let lastEval = try assertions.map { try Self.seconds($0["eval_time"] as? String ?? "0s") }.max() ?? 0
            let store = SeriesStore(configuration: .init(retention: .seconds(Int64(lastEval) + 3600), maxSeries: 10_000))
            let evaluator = AlertEvaluator(rules: rules, compatibility: .prometheus2)
            var firingAt: [Int: [Alert]] = [:]
            // promtool: samples at every `interval`, rules evaluated at every `evaluation_interval`.
            var time = 0
            while time <= lastEval {
                if time % interval == 0 {
                    let step = time / interval
                    let samples = series.compactMap { (selector, values) -> ExposedSample? in
                        step < values.count ? ExposedSample(name: selector.name, labels: selector.labels, value: values[step]) : nil
                    }
                    _ = store.ingest(samples: samples, at: Date(timeIntervalSince1970: Double(time)))
                }
                if time % evaluationInterval == 0 {
                    evaluator.evaluate(at: Date(timeIntervalSince1970: Double(time)), store: store)
                    firingAt[time] = evaluator.activeAlerts.filter { $0.state == .firing }
                }
                time += min(interval, evaluationInterval)
            }
            for assertion in assertions {
                let at = try Self.seconds(assertion["eval_time"] as? String ?? "0s")
                let name = assertion["alertname"] as? String ?? ""
                let expected = (assertion["exp_alerts"] as? [[String: Any]] ?? []).map { alert in
                    Self.render(
                        labels: (alert["exp_labels"] as? [String: Any] ?? [:]).mapValues { "\($0)" }.merging(["alertname": name]) { first, _ in first },
                        annotations: (alert["exp_annotations"] as? [String: Any] ?? [:]).mapValues { "\($0)" })
                }.sorted()
                let actual = (firingAt[at] ?? []).filter { $0.name == name }.map { Self.render(labels: $0.labels, annotations: $0.annotations) }.sorted()
                #expect(actual == expected, "case \(number + 1), \(name) at \(at)s")
                checked += 1
            }
        }
        #expect(checked >= 8)
    }

    /// An alert as text with its labels and annotations in name order.
    static func render(labels: [String: String], annotations: [String: String]) -> String {
        func pairs(_ map: [String: String]) -> String { map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") }
        return "{\(pairs(labels))} annotations {\(pairs(annotations))}"
    }

    static func seconds(_ text: String) throws -> Int {
        Int(try PrometheusDurationParser.seconds(text))
    }

    /// `name{a="x",b="y"}`.
    static func selector(_ text: String) throws -> (name: String, labels: [String: String]) {
        guard let brace = text.firstIndex(of: "{") else { return (text, [:]) }
        let name = String(text[..<brace])
        var labels: [String: String] = [:]
        let body = text[text.index(after: brace)..<(text.lastIndex(of: "}") ?? text.endIndex)]
        let pattern = try NSRegularExpression(pattern: #"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)""#)
        let string = String(body)
        for match in pattern.matches(in: string, range: NSRange(string.startIndex..., in: string)) {
            guard let key = Range(match.range(at: 1), in: string), let value = Range(match.range(at: 2), in: string) else { continue }
            labels[String(string[key])] = String(string[value])
        }
        return (name, labels)
    }

    /// promtool's expanding notation: `a+bxn`, `a-bxn`, `axn` (n + 1 values), plain numbers.
    static func values(_ text: String) throws -> [Double] {
        var result: [Double] = []
        for token in text.split(separator: " ") {
            let parts = token.split(separator: "x", maxSplits: 1)
            guard parts.count == 2, let times = Int(parts[1]) else {
                guard let value = Double(token) else { throw TestFailure("unsupported value '\(token)' in the replay") }
                result.append(value)
                continue
            }
            let head = String(parts[0])
            var start = head
            var delta = 0.0
            if let sign = head.dropFirst().firstIndex(where: { $0 == "+" || $0 == "-" }) {
                start = String(head[..<sign])
                guard let step = Double(head[sign...]) else { throw TestFailure("unsupported value '\(token)'") }
                delta = step
            }
            guard let first = Double(start) else { throw TestFailure("unsupported value '\(token)'") }
            for index in 0...times { result.append(first + Double(index) * delta) }
        }
        return result
    }
}

/// Prometheus durations such as `1m`, `90s`, `1h30m`.
enum PrometheusDurationParser {
    static func seconds(_ text: String) throws -> Double {
        let units: [String: Double] = ["ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604_800, "y": 31_536_000]
        var total = 0.0
        var number = ""
        var unit = ""
        func flush() throws {
            guard !number.isEmpty else { return }
            guard let value = Double(number), let scale = units[unit] else { throw TestFailure("bad duration '\(text)'") }
            total += value * scale
            number = ""
            unit = ""
        }
        for character in text {
            if character.isNumber {
                if !unit.isEmpty { try flush() }
                number.append(character)
            } else {
                unit.append(character)
            }
        }
        try flush()
        return total
    }
}
