import DeerFlowCore
import DeerFlowNotifications
import Foundation
import Testing

@testable import DeerFlowAlerting

/// Inputs the fuzzing found crashing, kept as tests (their files are in `Corpus/` too, so every
/// fuzz run starts from them).
@Suite("Fuzz: regressions")
struct FuzzRegressionTests {
    static func promQLError(_ text: String) -> PromQLError? {
        do throws(PromQLError) {
            _ = try PromQLExpression(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    @Test("20,000 unary minus signs are refused with a position instead of overflowing the stack")
    func deepUnaryMinus() throws {
        let crashing = try #require(Fuzz.corpus("promql").first { $0.hasPrefix("count(m) without (instance) >=---") })
        let error = Self.promQLError(crashing)
        #expect(error?.code == .unsupported)
        #expect(error?.message == "expression nested more than 100 levels deep; split it into several rules")
        #expect(error?.position?.line == 1)
        #expect(Self.promQLError(String(repeating: "(", count: 50_000) + "1" + String(repeating: ")", count: 50_000))?.position != nil)
        #expect(Self.promQLError(Array(repeating: "2", count: 100_000).joined(separator: " ^ "))?.position != nil)
    }

    @Test("long chains of binary operators are refused; rules of ordinary size still parse")
    func longOperatorChains() {
        let error = Self.promQLError(Array(repeating: "m", count: 20_000).joined(separator: " + "))
        #expect(error?.message == "expression has more than 500 binary operators; split it into several rules")
        #expect(error?.position?.column == 2 + 500 * 4 + 1)
        #expect(Self.promQLError(Array(repeating: "m", count: 500).joined(separator: " + ")) == nil)
        #expect(Self.promQLError(String(repeating: "-(", count: 49) + "m" + String(repeating: ")", count: 49)) == nil)
    }

    @Test("humanizeDuration of a value past Int64 renders instead of trapping", arguments: [1e300, -1e300, 9.3e18, Double.greatestFiniteMagnitude])
    func humanizeDurationOfHugeValues(value: Double) throws {
        let text = try #require(Fuzz.corpus("alert-templates").first { $0 == "{{ $value | humanizeDuration }}" })
        let rendered = try AlertTemplate(parsing: text).render(labels: [:], value: value)
        #expect(rendered.hasPrefix(value < 0 ? "-106751991167300d" : "106751991167300d"), "\(rendered)")
    }

    @Test("YAML nested just inside libyaml's limit is read on a test thread without exhausting its stack, and beyond it is a located error")
    func deepYAML() throws {
        for depth in [990, 5_000] {
            let nested = String(repeating: "{a: ", count: depth) + "x" + String(repeating: "}", count: depth)
            let workflow = "name: deep\ntasks:\n  - id: a\n    type: workflow\n    workflow: b\n    params: {x: \(nested)}\n"
            do {
                _ = try WorkflowFileLoader.parse(yaml: workflow, file: "deep.yaml")
                #expect(depth < 1_000)
            } catch {
                #expect(depth >= 1_000, "\(error)")
                #expect(error.errors.allSatisfy { $0.line == 6 && $0.column > 0 }, "\(error)")
            }
            do {
                _ = try NotificationsConfigFile.parse(yaml: "notifications:\n  channels: \(nested)\n", file: "n.yaml", environment: [:])
            } catch {
                #expect(error.errors.allSatisfy { $0.line == 2 && $0.column > 0 }, "\(error)")
            }
            do throws(RuleFileError) {
                _ = try RuleFile.parse(yaml: "groups:\n  - name: g\n    rules: \(nested)\n", file: "r.yaml")
            } catch {
                #expect(error.line == 3, "\(error)")
            }
        }
    }
}
