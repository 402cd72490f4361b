@testable import DeerFlow
import Testing

@Suite("Task log buffer")
struct TaskLogTests {
    @Test("text the store did not take goes back ahead of newer lines, and nothing is dropped for it")
    func restoreKeepsOrder() {
        let log = TaskLog(limit: 8)
        log.append("first\n")
        let taken = log.drain()
        #expect(taken == "first\n")
        log.append("next\n")
        log.restore(taken ?? "")
        #expect(log.drain() == "first\nnext\n")
        #expect(log.drain() == nil)
    }

    @Test("the last line for error messages survives a flush")
    func lastLineAfterDrain() {
        let log = TaskLog(limit: 1000)
        log.append("working\ndisk full\n\n")
        _ = log.drain()
        #expect(log.lastLine == "disk full")
        log.append("partial")
        #expect(log.lastLine == "partial")
    }

    @Test("beyond the limit, lines are dropped and a marker says how many bytes")
    func limitMarker() {
        let log = TaskLog(limit: 6)
        log.append("12345\n")
        log.append("more\n")
        #expect(log.drain() == "12345\n[deerflow] log truncated: 5 more bytes dropped (limit 6 bytes per attempt)\n")
    }
}
