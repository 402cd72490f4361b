import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Alert templates")
struct TemplateTests {
    private func render(_ text: String, value: Double = 0, labels: [String: String] = [:]) throws -> String {
        try AlertTemplate(parsing: text).render(labels: labels, value: value)
    }

    @Test(arguments: [
        (1500.0, "1500"), (0.1, "0.1"), (1e6, "1e+06"), (123456.7, "123456.7"), (1234567.5, "1.2345675e+06"),
        (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"), (0, "0"), (1e21, "1e+21"), (100000, "100000"),
        (Double.nan, "NaN"), (Double.infinity, "+Inf"), (-Double.infinity, "-Inf"),
    ])
    func valuePrintsLikeGo(value: Double, expected: String) throws {
        #expect(try render("{{ $value }}", value: value) == expected)
        #expect(try render("{{ .Value }}", value: value) == expected)
    }

    @Test(arguments: [
        (0.0, "0"), (1.0, "1"), (999.0, "999"), (1000.0, "1k"), (1234.0, "1.234k"), (1234567.0, "1.235M"),
        (-1500.0, "-1.5k"), (2.5e9, "2.5G"), (0.5, "500m"), (0.001234, "1.234m"), (0.000001234, "1.234u"),
        (12.3456, "12.35"), (Double.nan, "NaN"), (Double.infinity, "+Inf"), (1e30, "1e+06Y"),
    ])
    func humanize(value: Double, expected: String) throws {
        #expect(try render("{{ $value | humanize }}", value: value) == expected)
        #expect(try render("{{ humanize $value }}", value: value) == expected)
    }

    @Test(arguments: [
        (0.1234, "12.34%"), (0.15, "15%"), (1.0 / 3, "33.33%"), (0.0, "0%"), (2.0, "200%"), (0.000012345, "0.001234%"),
    ])
    func humanizePercentage(value: Double, expected: String) throws {
        #expect(try render("{{ $value | humanizePercentage }}", value: value) == expected)
        #expect(try render("{{ humanizePercentage $value }}", value: value) == expected)
    }

    @Test func otherFunctions() throws {
        #expect(try render("{{ humanizeDuration $value }}", value: 3725) == "1h 2m 5s")
        #expect(try render("{{ $value | humanizeDuration }}", value: 90061) == "1d 1h 1m 1s")
        #expect(try render("{{ humanizeDuration $value }}", value: 1.5) == "1.5s")
        #expect(try render("{{ humanizeDuration $value }}", value: 0.25) == "250ms")
        #expect(try render("{{ humanize1024 $value }}", value: 2048) == "2ki")
        #expect(try render("{{ $labels.queue | toUpper }}", labels: ["queue": "etl"]) == "ETL")
        #expect(try render("{{ humanize \"1500\" }}") == "1.5k")
    }

    @Test func labels() throws {
        let labels = ["queue": "default", "worker": "w-1"]
        #expect(try render("queue {{ $labels.queue }} on {{ .Labels.worker }}", labels: labels) == "queue default on w-1")
        #expect(try render("[{{ $labels.missing }}]", labels: labels) == "[]")
        #expect(try render("{{ index $labels \"queue\" }}", labels: labels) == "default")
        #expect(try render("{{ $labels }}", labels: labels) == "map[queue:default worker:w-1]")
    }

    @Test func trimMarkersAndComments() throws {
        #expect(try render("a  {{- $value -}}  b", value: 1) == "a1b")
        #expect(try render("a {{/* note */}}b") == "a b")
        #expect(try render("no actions at all") == "no actions at all")
    }

    @Test func chapterAnnotations() throws {
        #expect(try render("Failure rate is {{ $value | humanizePercentage }}", value: 0.2) == "Failure rate is 20%")
        #expect(try render("{{ $value }} tasks in queue", value: 1500) == "1500 tasks in queue")
        #expect(try render("Lag is {{ $value }} seconds", value: 73.25) == "Lag is 73.25 seconds")
    }

    @Test(arguments: [
        ("{{ if $value }}x{{ end }}", "template action 'if' is not supported"),
        ("{{ range $labels }}{{ end }}", "template action 'range' is not supported"),
        ("{{ $value | printf \"%f\" }}", "function \"printf\" not defined or not supported"),
        ("{{ query \"up\" }}", "function \"query\" not defined or not supported"),
        ("{{ $foo }}", "undefined variable \"$foo\""),
        ("{{ $value ", "unclosed action"),
        ("{{ humanize }}", "wrong number of args for humanize: want 1"),
        ("{{ $value $value }}", "can't give argument to non-function $value"),
    ])
    func unsupportedTemplatesFailToParse(text: String, messagePrefix: String) {
        do {
            _ = try AlertTemplate(parsing: text)
            Issue.record("expected an error for \(text)")
        } catch {
            #expect(error.message.hasPrefix(messagePrefix), "\(error.message)")
        }
    }

    @Test func runtimeErrorsRenderLikePrometheus() throws {
        #expect(try render("{{ humanize $labels.x }}", labels: ["x": "abc"])
            == "<error expanding template: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax>")
    }
}
