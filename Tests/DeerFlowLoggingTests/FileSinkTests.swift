import DeerFlowCore
import Foundation
import Logging
import Testing

@testable import DeerFlowLogging

@Suite("File sink")
struct FileSinkTests {
    func makeSink(
        _ directory: TemporaryDirectory, path: String? = nil, clock: ManualClock, rotation: LoggingConfigFile.File.Rotation = .daily,
        retention: Duration? = nil, maxFiles: Int? = nil, bufferSize: Int = 64 * 1024, recorder: Recorder = Recorder()
    ) -> FileSink {
        FileSink(
            path: path ?? directory.file("app.log"), rotation: rotation, retention: retention, maxFiles: maxFiles, level: nil, format: .json,
            name: "file", bufferSize: bufferSize, clock: { clock.now }, onDropped: { recorder.dropped($0, $1) },
            report: { recorder.report($0) })
    }

    func write(_ sink: FileSink, _ line: String, level: Logger.Level = .info) {
        sink.write(line, record: record(line, level: level))
    }

    @Test("daily rotation at midnight UTC: app.log becomes app-<day>.log")
    func dailyRotation() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualClock("2024-06-01T23:59:59.500Z")
        let sink = makeSink(directory, clock: clock)
        write(sink, "before midnight 1")
        write(sink, "before midnight 2")
        clock.set("2024-06-02T00:00:00.100Z")
        write(sink, "after midnight")
        sink.flush()
        #expect(directory.names() == ["app-2024-06-01.log", "app.log"])
        #expect(directory.lines("app-2024-06-01.log") == ["before midnight 1", "before midnight 2"])
        #expect(directory.lines("app.log") == ["after midnight"])
        // Days without lines: the file is named after the day its lines were written.
        clock.set("2024-06-05T10:00:00Z")
        write(sink, "days later")
        sink.close()
        #expect(directory.names() == ["app-2024-06-01.log", "app-2024-06-02.log", "app.log"])
        #expect(directory.lines("app-2024-06-02.log") == ["after midnight"])
        #expect(directory.lines("app.log") == ["days later"])
    }

    @Test("retention deletes rotated files older than it, across midnight, and nothing else")
    func retention() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        for name in [
            "app-2024-04-30.log", "app-2024-05-01.1.log", "app-2024-05-02.log", "app-2024-05-03.log", "app-2024-05-20T10-00-00.000Z.log",
            "app-notes.log", "app-2024-13-01.log", "other.log", "backup-2024-01-01.log", "app-2024-01-01.txt",
        ] { directory.write(name) }
        let clock = ManualClock("2024-06-01T23:59:59Z")
        let sink = makeSink(directory, clock: clock, retention: .seconds(30 * 86400))
        write(sink, "first") // opening applies retention: files whose last day ended before 2024-05-02T23:59:59 go
        #expect(directory.names() == [
            "app-2024-01-01.txt", "app-2024-05-02.log", "app-2024-05-03.log", "app-2024-05-20T10-00-00.000Z.log", "app-2024-13-01.log",
            "app-notes.log", "app.log", "backup-2024-01-01.log", "other.log",
        ])
        clock.set("2024-06-02T00:00:01Z")
        write(sink, "second") // rotation applies it again: 2024-05-02 ended 30 days and 1 second ago
        sink.close()
        #expect(directory.names() == [
            "app-2024-01-01.txt", "app-2024-05-03.log", "app-2024-05-20T10-00-00.000Z.log", "app-2024-06-01.log", "app-2024-13-01.log",
            "app-notes.log", "app.log", "backup-2024-01-01.log", "other.log",
        ])
        #expect(directory.lines("app-2024-06-01.log") == ["first"])
    }

    @Test("max_files keeps the newest rotated files")
    func maxFiles() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        for name in ["app-2024-05-28.log", "app-2024-05-29.log", "app-2024-05-30.log", "app-2024-05-30.1.log", "app-2024-05-31.log"] {
            directory.write(name)
        }
        let clock = ManualClock("2024-06-01T08:00:00Z")
        let sink = makeSink(directory, clock: clock, maxFiles: 3)
        write(sink, "x")
        #expect(directory.names() == ["app-2024-05-30.1.log", "app-2024-05-30.log", "app-2024-05-31.log", "app.log"])
        clock.set("2024-06-02T08:00:00Z")
        write(sink, "y")
        sink.close()
        #expect(directory.names() == ["app-2024-05-30.1.log", "app-2024-05-31.log", "app-2024-06-01.log", "app.log"])
    }

    @Test("size rotation: no file grows past max_size, no line is lost")
    func sizeRotation() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualClock("2024-06-01T12:00:00.000Z")
        let sink = makeSink(directory, clock: clock, rotation: .size(maxBytes: 100))
        let lines = (0..<10).map { "line \($0) " + String(repeating: "x", count: 22) } // 30 bytes + newline
        for line in lines {
            write(sink, line)
            clock.advance(by: 0.001)
        }
        sink.close()
        let names = directory.names()
        #expect(names == [
            "app-2024-06-01T12-00-00.003Z.log", "app-2024-06-01T12-00-00.006Z.log", "app-2024-06-01T12-00-00.009Z.log", "app.log",
        ])
        for name in names {
            let size = (try? FileManager.default.attributesOfItem(atPath: directory.file(name))[.size] as? NSNumber)?.intValue ?? 0
            #expect(size <= 100)
        }
        #expect(names.flatMap { directory.lines($0) } == lines)
    }

    @Test("two size rotations in the same millisecond get distinct names")
    func sizeRotationCollision() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualClock("2024-06-01T12:00:00.000Z")
        let sink = makeSink(directory, clock: clock, rotation: .size(maxBytes: 10))
        for index in 0..<4 { write(sink, "line-\(index)-xx") }
        sink.close()
        #expect(directory.names() == ["app-2024-06-01T12-00-00.000Z.1.log", "app-2024-06-01T12-00-00.000Z.2.log", "app-2024-06-01T12-00-00.000Z.log", "app.log"])
        #expect(directory.lines("app.log") == ["line-3-xx"])
        #expect(FileSink.parseStamp("2024-06-01T12-00-00.000Z.2")?.sequence == 2)
    }

    @Test("a file left by an earlier process on an earlier day is rotated on opening")
    func staleFile() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        directory.write("app.log", "from an earlier run\n")
        let twoDaysAgo = Date().addingTimeInterval(-2 * 86400)
        try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: directory.file("app.log"))
        let sink = FileSink(path: directory.file("app.log"), retention: nil)
        sink.write("today", record: record("today"))
        sink.close()
        let rotated = "app-\(FileSink.dayStamp(FileSink.day(of: twoDaysAgo))).log"
        #expect(directory.names() == [rotated, "app.log"])
        #expect(directory.lines(rotated) == ["from an earlier run"])
        #expect(directory.lines("app.log") == ["today"])
    }

    @Test("an unwritable path is reported once, dropped lines are counted, writing resumes when it can")
    func unwritablePath() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        directory.write("blocked") // a file where the log directory should be
        let recorder = Recorder()
        let clock = ManualClock("2024-06-01T12:00:00Z")
        let sink = makeSink(directory, path: directory.file("blocked/logs/app.log"), clock: clock, recorder: recorder)
        for index in 0..<5 { write(sink, "line \(index)") }
        sink.flush()
        clock.advance(by: 1)
        write(sink, "line 5", level: .error)
        sink.close()
        #expect(recorder.messages.count == 1)
        #expect(recorder.messages.first?.contains("blocked/logs/app.log") == true)
        #expect(recorder.messages.first?.contains("cannot create directory") == true)
        #expect(recorder.messages.first?.contains("deerflow_log_lines_dropped_total") == true)
        #expect(sink.droppedLines == 6)
        #expect(recorder.droppedTotal == 6)
        #expect(recorder.droppedNames == ["file"])

        // The obstacle goes; after the retry interval the sink opens the file and says so.
        try FileManager.default.removeItem(atPath: directory.file("blocked"))
        clock.advance(by: 2)
        write(sink, "still dropped") // retried at most every 5 seconds
        #expect(sink.droppedLines == 7)
        clock.advance(by: 5)
        write(sink, "back")
        sink.close()
        #expect(recorder.messages.count == 2)
        #expect(recorder.messages.last?.contains("again; 7 lines were dropped") == true)
        #expect(directory.lines("blocked/logs/app.log") == ["back"])
        #expect(recorder.droppedTotal == 7)
    }

    @Test("a write that fails is reported once and its lines counted")
    func failingWrite() throws {
        // /dev/full accepts open and refuses every write (ENOSPC).
        guard FileManager.default.isWritableFile(atPath: "/dev/full") else { return }
        let recorder = Recorder()
        let clock = ManualClock("2024-06-01T12:00:00Z")
        let sink = FileSink(
            path: "/dev/full", rotation: .daily, retention: nil, maxFiles: nil, level: nil, format: .json, name: "file", bufferSize: 64 * 1024,
            clock: { clock.now }, onDropped: { recorder.dropped($0, $1) }, report: { recorder.report($0) })
        for index in 0..<3 { sink.write("line \(index)", record: record("x")) }
        sink.flush()
        clock.advance(by: 10) // the file opens again, and the write fails again: still one report
        sink.write("line 3", record: record("x", level: .error))
        sink.close()
        #expect(recorder.messages.count == 1)
        #expect(recorder.messages.first?.contains("No space left on device") == true)
        #expect(sink.droppedLines == 4)
        #expect(recorder.droppedTotal == 4)
    }

    @Test("lines are buffered until flush, a full buffer, an error record, or a second's age")
    func buffering() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualClock("2024-06-01T12:00:00Z")
        let sink = makeSink(directory, clock: clock)
        write(sink, "one")
        write(sink, "two")
        #expect(directory.lines("app.log") == [])
        write(sink, "three", level: .error)
        #expect(directory.lines("app.log") == ["one", "two", "three"])
        write(sink, "four")
        clock.advance(by: 1.5)
        write(sink, "five")
        #expect(directory.lines("app.log").count == 5)
        write(sink, "six")
        sink.flush()
        #expect(directory.lines("app.log").count == 6)
        let small = makeSink(directory, path: directory.file("small.log"), clock: clock, bufferSize: 10)
        small.write("0123456789", record: record("x"))
        #expect(directory.lines("small.log") == ["0123456789"])
        small.close()
    }

    @Test("concurrent writers: every line arrives whole")
    func concurrentWriters() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let sink = FileSink(path: directory.file("app.log"), bufferSize: 4096)
        DispatchQueue.concurrentPerform(iterations: 8) { writer in
            for index in 0..<2000 {
                let line = LogLineFormatter.json(record("writer \(writer) line \(index)"))
                sink.write(line, record: record("x"))
            }
        }
        sink.close()
        let lines = directory.lines("app.log")
        #expect(lines.count == 16000)
        var seen = Set<String>()
        for line in lines { seen.insert(try parseJSON(line)["message"] as? String ?? "") }
        #expect(seen.count == 16000)
    }

    @Test("rotated file names parse back")
    func stamps() throws {
        #expect(FileSink.parseStamp("2024-06-01")?.end == Timestamp.parse("2024-06-02T00:00:00Z"))
        #expect(FileSink.parseStamp("2024-06-01.3")?.sequence == 3)
        let end = try #require(FileSink.parseStamp("2024-06-01T12-30-45.123Z")?.end)
        #expect(abs(end.timeIntervalSince(Timestamp.parse("2024-06-01T12:30:45.123Z")!)) < 0.0001)
        #expect(FileSink.parseStamp("2024-6-01") == nil)
        #expect(FileSink.parseStamp("2024-06-01.x") == nil)
        #expect(FileSink.parseStamp("2024-06-01.0") == nil)
        #expect(FileSink.parseStamp("notes") == nil)
        #expect(FileSink.timeStamp(Timestamp.parse("2024-06-01T12:30:45.123Z")!) == "2024-06-01T12-30-45.123Z")
        #expect(FileSink.dayStamp(FileSink.day(of: Timestamp.parse("2024-02-29T23:59:59.999Z")!)) == "2024-02-29")
        #expect(FileSink.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(FileSink.daysFromCivil(year: 2024, month: 6, day: 1) == 19875)
    }

    @Test("a path without an extension rotates too")
    func noExtension() {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let clock = ManualClock("2024-06-01T23:00:00Z")
        let sink = makeSink(directory, path: directory.file("deerflow"), clock: clock, retention: .seconds(86400))
        write(sink, "a")
        clock.set("2024-06-02T01:00:00Z")
        write(sink, "b")
        sink.close()
        #expect(directory.names() == ["deerflow", "deerflow-2024-06-01"])
    }
}
