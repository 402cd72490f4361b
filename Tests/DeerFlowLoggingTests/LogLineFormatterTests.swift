import DeerFlowCore
import Foundation
import Logging
import Testing

@testable import DeerFlowLogging

@Suite("Line formats")
struct LogLineFormatterTests {
    struct Port: CustomStringConvertible, Sendable {
        var number: Int
        var description: String { "port \(number)" }
    }

    @Test("a JSON line parses back with every field, nested metadata included")
    func jsonParsesBack() throws {
        let line = LogLineFormatter.json(record(
            "Starting task processing", level: .info, label: "deerflow.worker",
            metadata: [
                "workflow": "daily_etl", "workflow_id": "wf_1", "run_id": "run_1", "task_id": "extract", "execution_id": "exe_1",
                "attempt": "2", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
                "params": ["date": "2024-06-01", "tables": ["a", "b"], "options": ["deep": ["er": "x"]]],
                "empty_list": [], "empty_map": [:],
                "port": .stringConvertible(Port(number: 5432)),
                "count": .stringConvertible(42),
            ]))
        #expect(!line.contains("\n"))
        let object = try parseJSON(line)
        #expect(object["timestamp"] as? String == "2024-06-01T12:00:00.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "deerflow.worker")
        #expect(object["message"] as? String == "Starting task processing")
        #expect(object["workflow"] as? String == "daily_etl")
        #expect(object["workflow_id"] as? String == "wf_1")
        #expect(object["run_id"] as? String == "run_1")
        #expect(object["task_id"] as? String == "extract")
        #expect(object["execution_id"] as? String == "exe_1")
        #expect(object["attempt"] as? String == "2")
        #expect(object["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(object["span_id"] as? String == "00f067aa0ba902b7")
        let params = try #require(object["params"] as? [String: Any])
        #expect(params["date"] as? String == "2024-06-01")
        #expect(params["tables"] as? [String] == ["a", "b"])
        #expect((params["options"] as? [String: Any])?["deep"] as? [String: String] == ["er": "x"])
        #expect((object["empty_list"] as? [Any])?.isEmpty == true)
        #expect((object["empty_map"] as? [String: Any])?.isEmpty == true)
        #expect(object["port"] as? String == "port 5432")
        #expect(object["count"] as? String == "42")
        #expect(object.count == 17)
    }

    @Test("fixed fields first, then task keys in order, then the rest sorted")
    func keyOrder() {
        let line = LogLineFormatter.json(record(
            "m", metadata: ["zeta": "z", "alpha": "a", "span_id": "s", "run_id": "r", "workflow": "w", "attempt": "1"]))
        #expect(line == #"{"timestamp":"2024-06-01T12:00:00.123Z","level":"info","logger":"deerflow.test","message":"m","workflow":"w","run_id":"r","attempt":"1","span_id":"s","alpha":"a","zeta":"z"}"#)
    }

    @Test("levels are swift-log's lowercase names", arguments: Logger.Level.allCases)
    func levels(level: Logger.Level) throws {
        let object = try parseJSON(LogLineFormatter.json(record("m", level: level)))
        #expect(object["level"] as? String == level.rawValue)
        #expect(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level.rawValue))
    }

    @Test("escaping: quotes, backslashes, control characters, unicode", arguments: [
        "say \"hi\"", #"C:\path\to"#, "line1\nline2\r\n\ttabbed", "bell\u{07} nul\u{00} esc\u{1B} del\u{7F}",
        "naïve café ☕️ 日本語 🚀", "separators \u{2028} and \u{2029}", "</script>", "",
    ])
    func escaping(text: String) throws {
        let line = LogLineFormatter.json(record(text, metadata: ["k\"ey\n": .string(text), "nested": [.string(text)]]))
        #expect(!line.contains("\n"))
        #expect(!line.contains("\u{2028}"))
        let object = try parseJSON(line)
        #expect(object["message"] as? String == text)
        #expect(object["k\"ey\n"] as? String == text)
        #expect(object["nested"] as? [String] == [text])
    }

    @Test("every character that needs an escape gets one, wherever it stands (the text is checked a word of 8 bytes at a time)")
    func escapingAtEveryPosition() throws {
        let specials = ["\"", "\\", "\n", "\u{01}", "\u{1F}", "\u{7F}", "\u{2028}", "\u{2029}", "é", "☕️", "\u{2027}", " "]
        for special in specials {
            for length in 1...20 {
                for position in 0..<length {
                    let text = String(repeating: "a", count: position) + special + String(repeating: "b", count: length - position - 1)
                    let line = LogLineFormatter.json(record(text, metadata: ["k": .string(text)]))
                    #expect(!line.contains("\n") && !line.contains("\u{2028}") && !line.contains("\u{2029}") && !line.contains("\u{01}"), "\(line)")
                    let object = try parseJSON(line)
                    #expect(object["message"] as? String == text)
                    #expect(object["k"] as? String == text)
                    let plain = LogLineFormatter.text(record(text))
                    #expect(plain.hasSuffix("] " + text.replacingOccurrences(of: "\n", with: #"\n"#).replacingOccurrences(of: "\u{01}", with: #"\u0001"#)
                        .replacingOccurrences(of: "\u{1F}", with: #"\u001f"#).replacingOccurrences(of: "\u{2028}", with: #"\u2028"#)
                        .replacingOccurrences(of: "\u{2029}", with: #"\u2029"#)), "\(plain)")
                }
            }
        }
    }

    @Test("task keys have their rank; other keys, of the same lengths too, come after them")
    func taskKeyRanks() {
        for (rank, key) in LogRecord.taskKeys.enumerated() {
            #expect(LogRecord.taskKeyRank(key) == rank, "\(key)")
        }
        for key in ["run_ix", "Run_id", "task_ix", "attempts", "workflows", "workflow_ix", "execution_ix", "trace_ix", "span_ix", "", "w"] {
            #expect(LogRecord.taskKeyRank(key) == .max, "\(key)")
        }
        for key in ["timestamp", "level", "logger", "message"] { #expect(LogLineFormatter.isReserved(key)) }
        for key in ["timestampx", "Level", "loggers", "messages", "run_id"] { #expect(!LogLineFormatter.isReserved(key)) }
    }

    @Test("control characters use short escapes or \\u00XX")
    func escapeSpelling() {
        let line = LogLineFormatter.json(record("a\nb\u{01}c\"d\\e\u{2028}"))
        #expect(line.contains(#""message":"a\nb\u0001c\"d\\e\u2028""#))
    }

    @Test("metadata named like a fixed field does not shadow it")
    func reservedKeys() throws {
        let object = try parseJSON(LogLineFormatter.json(record("real", metadata: ["message": "fake", "level": "x", "timestamp": "t", "logger": "l"])))
        #expect(object["message"] as? String == "real")
        #expect(object["level"] as? String == "info")
        #expect(object["metadata.message"] as? String == "fake")
        #expect(object["metadata.level"] as? String == "x")
        #expect(object["metadata.timestamp"] as? String == "t")
        #expect(object["metadata.logger"] as? String == "l")
    }

    @Test("text format for terminals")
    func text() {
        let line = LogLineFormatter.text(record(
            "Task completed", level: .warning, label: "deerflow.worker",
            metadata: ["run_id": "r1", "note": "two words", "empty": "", "params": ["a": ["1", "2"]], "eq": "a=b", "n": .stringConvertible(3)]))
        #expect(line == #"2024-06-01T12:00:00.123Z WARNING [deerflow.worker] Task completed run_id=r1 empty="" eq="a=b" n=3 note="two words" params={"a":["1","2"]}"#)
        #expect(LogLineFormatter.text(record("plain", level: .info)) == "2024-06-01T12:00:00.123Z INFO [deerflow.test] plain")
        #expect(LogLineFormatter.text(record("multi\nline")) == #"2024-06-01T12:00:00.123Z INFO [deerflow.test] multi\nline"#)
        #expect(LogLineFormatter.format(record("x"), as: .text).hasSuffix("INFO [deerflow.test] x"))
    }

    @Test("time stamps are UTC with milliseconds")
    func timestamps() throws {
        let line = LogLineFormatter.json(LogRecord(timestamp: Date(timeIntervalSince1970: 1_717_243_199.9996), level: .info, label: "l", message: "m"))
        #expect(try parseJSON(line)["timestamp"] as? String == "2024-06-01T11:59:59.999Z")
    }

    @Test("record fields: one per key, the last one appended wins, in output order")
    func fieldOrder() {
        var fields = [
            LogRecord.Field(key: "b", value: "1"), LogRecord.Field(key: "run_id", value: "old"), LogRecord.Field(key: "a", value: "x"),
            LogRecord.Field(key: "b", value: "2"), LogRecord.Field(key: "run_id", value: "new"), LogRecord.Field(key: "workflow", value: "w"),
        ]
        LogRecord.order(&fields)
        #expect(fields.map(\.key) == ["workflow", "run_id", "a", "b"])
        #expect(fields.map(\.value) == ["w", "new", "x", "2"])
        let merged = LogRecord.merge(
            [LogRecord.Field(key: "run_id", value: "r"), LogRecord.Field(key: "task_id", value: "t"), LogRecord.Field(key: "m", value: "1")],
            overriding: [LogRecord.Field(key: "task_id", value: "t2"), LogRecord.Field(key: "a", value: "2"), LogRecord.Field(key: "z", value: "3")])
        #expect(merged.map(\.key) == ["run_id", "task_id", "a", "m", "z"])
        #expect(merged[1].value == "t2")
    }
}
