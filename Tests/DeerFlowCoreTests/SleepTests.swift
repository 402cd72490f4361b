import DeerFlowCore
import Foundation
import Testing

@Suite("Sleep")
struct SleepTests {
    @Test("sleeps at least its duration")
    func duration() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await Sleep.for(.milliseconds(50))
        #expect(clock.now - start >= .milliseconds(50))
        try await Sleep.until(clock.now - .seconds(1))  // a past deadline returns at once
    }

    @Test("a cancelled sleep throws CancellationError at once, also when cancelled before it began")
    func cancellation() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let sleeping = Task { try await Sleep.for(.seconds(3600)) }
        try await Task.sleep(for: .milliseconds(20))
        sleeping.cancel()
        await #expect(throws: CancellationError.self) { try await sleeping.value }
        #expect(clock.now - start < .seconds(600))

        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await Sleep.for(.seconds(3600))
        }
        await #expect(throws: CancellationError.self) { try await cancelledFirst.value }
    }

    @Test("cancelled sleeps leave no timer behind (Task.sleep keeps each one's memory)")
    func noLeak() async throws {
        let before = Sleep.liveTimers
        for _ in 0..<2_000 {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Sleep.for(.seconds(3600)) }
                await Task.yield()
                group.cancelAll()
            }
        }
        // Other tests' sleeps may be live meanwhile: wait until none of these is.
        let deadline = ContinuousClock.now + .seconds(60)
        while Sleep.liveTimers > before + 10 {
            try #require(ContinuousClock.now < deadline, "\(Sleep.liveTimers - before) cancelled sleep timers still live")
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test("DeerFlow's sources sleep with Sleep, never Task.sleep")
    func noTaskSleepInSources() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var offenders: [String] = []
        for case let file as URL in files where file.pathExtension == "swift" && file.lastPathComponent != "Sleep.swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            if text.contains("Task.sleep(") { offenders.append(file.lastPathComponent) }
        }
        #expect(offenders.isEmpty, "Task.sleep in \(offenders)")
    }
}
