import Foundation
import Logging
import Testing

@testable import DeerFlowLogging

@Suite("Console sink")
struct ConsoleSinkTests {
    @Test("writes whole lines, in the sink's format, as they come")
    func writes() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let fd = open(directory.file("out.log"), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer { _ = close(fd) }
        let recorder = Recorder()
        let console = ConsoleSink(
            name: "console", fileDescriptor: fd, level: .info, format: .text, onDropped: { recorder.dropped($0, $1) },
            report: { recorder.report($0) })
        let backend = LoggingBackend(level: .debug, sinks: [console], clock: { Date(timeIntervalSince1970: 1_717_243_200.5) })
        let logger = Logger(label: "deerflow") { backend.makeHandler(label: $0) }
        logger.debug("below the sink's level")
        logger.info("server started", metadata: ["port": "8080"])
        #expect(directory.lines("out.log") == ["2024-06-01T12:00:00.500Z INFO [deerflow] server started port=8080"])
        #expect(recorder.messages.isEmpty)
    }

    @Test("a failing output is reported once and its lines counted")
    func failing() {
        let recorder = Recorder()
        let console = ConsoleSink(
            name: "console", fileDescriptor: -1, level: nil, format: .json, onDropped: { recorder.dropped($0, $1) },
            report: { recorder.report($0) })
        for index in 0..<3 { console.write("line \(index)", record: record("x")) }
        #expect(recorder.messages.count == 1)
        #expect(recorder.messages.first?.contains("cannot write log lines to console") == true)
        #expect(console.droppedLines == 3)
        #expect(recorder.droppedTotal == 3)
        #expect(recorder.droppedNames == ["console"])
    }
}
