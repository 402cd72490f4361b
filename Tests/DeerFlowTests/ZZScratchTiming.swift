import DeerFlow
import DeerFlowCore
import DeerFlowTesting
import Foundation
import Testing

@Suite("ZZScratch")
struct ZZScratch {
    @Test(arguments: ["echo a; echo b >&2; echo c", "echo a; echo b >&2; exit 3", "echo a", "echo a >&2", "echo a; echo b"])
    func timing(_ script: String) async throws {
        let flow = TaskExecutionTests.flow("t", TaskExecutionTests.shell(script: script))
        let clock = ContinuousClock()
        let t0 = clock.now
        try await withEngine(workflows: [flow]) { engine in
            let t1 = clock.now
            let detail = try await TaskExecutionTests.runToEnd(engine, "t")
            let t2 = clock.now
            let a = detail.tasks[0].attempts[0]
            print("SCRATCH \(script): setup \(t1 - t0) run \(t2 - t1) attempt \(a.finishedAt!.timeIntervalSince(a.startedAt!))")
        }
        print("SCRATCH \(script): total \(clock.now - t0)")
    }
}
