import Foundation
import Testing
@testable import DeerFlowAlerting

@Suite("Exposition format 0.0.4")
struct ExpositionTests {
    @Test func parsesHelpTypeAndLabelledSamples() throws {
        let text = """
        # HELP deerflow_tasks_total Task attempts finished.
        # TYPE deerflow_tasks_total counter
        deerflow_tasks_total{type="shell",status="success"} 42
        deerflow_tasks_total{type="http",status="failed"} 3

        # TYPE deerflow_tasks_queued gauge
        deerflow_tasks_queued 7
        """
        let samples = try ExpositionParser.parse(text)
        #expect(samples == [
            ExposedSample(name: "deerflow_tasks_total", labels: ["type": "shell", "status": "success"], value: 42),
            ExposedSample(name: "deerflow_tasks_total", labels: ["type": "http", "status": "failed"], value: 3),
            ExposedSample(name: "deerflow_tasks_queued", value: 7),
        ])
    }

    @Test func parsesHistogramWithInfBucket() throws {
        let text = """
        # TYPE deerflow_task_duration_seconds histogram
        deerflow_task_duration_seconds_bucket{type="shell",le="0.005"} 0
        deerflow_task_duration_seconds_bucket{type="shell",le="+Inf"} 3
        deerflow_task_duration_seconds_sum{type="shell"} 1.25e-1
        deerflow_task_duration_seconds_count{type="shell"} 3
        """
        let samples = try ExpositionParser.parse(text)
        #expect(samples.count == 4)
        #expect(samples[1].labels["le"] == "+Inf")
        #expect(samples[2].value == 0.125)
    }

    @Test func parsesSpecialValuesAndTimestamps() throws {
        let samples = try ExpositionParser.parse("a +Inf\nb -Inf\nc NaN\nd 1.5 1700000000000\ne 0x10\n")
        #expect(samples[0].value == .infinity)
        #expect(samples[1].value == -.infinity)
        #expect(samples[2].value.isNaN)
        #expect(samples[3].value == 1.5)
        #expect(samples[4].value == 16)
    }

    @Test func unescapesLabelValues() throws {
        let samples = try ExpositionParser.parse(#"m{path="C:\\dir",msg="say \"hi\"\nbye",other="a\tb",} 1"#)
        #expect(samples[0].labels == ["path": #"C:\dir"#, "msg": "say \"hi\"\nbye", "other": #"a\tb"#])
    }

    @Test func emptyLabelValueMeansAbsent() throws {
        let samples = try ExpositionParser.parse(#"m{a="",b="x"} 1"#)
        #expect(samples[0].labels == ["b": "x"])
    }

    @Test(arguments: [
        ("m{a=\"1\"} 1\nm{a=\"x} 2\n", 2, "unterminated label value"),
        ("ok 1\nm{a=\"1\",a=\"2\"} 1", 2, "duplicate label name \"a\""),
        ("m 1\n\nm abc", 3, "invalid value \"abc\" for metric \"m\""),
        ("# TYPE m countr\n", 1, "invalid metric type \"countr\" in # TYPE line"),
        ("m{1a=\"x\"} 1", 1, "expected a label name"),
        ("m", 1, "missing value for metric \"m\""),
        ("m 1 12x", 1, "invalid timestamp \"12x\" for metric \"m\""),
    ])
    func reportsMalformedLinesWithLineNumbers(text: String, line: Int, message: String) {
        #expect(throws: ExpositionError.self) { try ExpositionParser.parse(text) }
        do {
            _ = try ExpositionParser.parse(text)
        } catch {
            #expect(error.line == line)
            #expect(error.message == message)
        }
    }
}
