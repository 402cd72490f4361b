import DeerFlow
import DeerFlowCore
import DeerFlowTesting
import Foundation
import Synchronization
import Testing

@Suite("Dynamic fan-out in the Swift DSL")
struct SwiftMapTests {
    @Test("map runs the body once per item of its over closure; the dependent reads the outputs in index order")
    func swiftMap() async throws {
        let flow = Workflow(name: "swiftmap")
        flow.task(id: "list") { _ in ["a", "b", "c", "d"] }
        let seen = Mutex<[Int]>([])
        flow.map(id: "process", dependsOn: ["list"], over: { context in
            try await context.output(of: "list", as: [String].self)
        }, maxParallel: 2) { context in
            let item: String = try context.map?.item() ?? "?"
            let index = context.map?.index ?? -1
            seen.withLock { $0.append(index) }
            return "\(item.uppercased())\(index)"
        }
        flow.task(id: "report", dependsOn: ["process"]) { context in
            let results: [String] = try await context.output(of: "process")
            return results.joined(separator: ",")
        }
        #expect(flow.definition.task("process")?.map == MapDefinition(forEach: nil, maxParallel: 2))
        try await withEngine(workflows: [flow]) { engine in
            let run = try await engine.trigger("swiftmap")
            let detail = try await engine.waitForRun(run.id, pollInterval: .milliseconds(50))
            #expect(detail.run.status == .success)
            #expect(detail.tasks.first { $0.id == "report" }?.output == .string("A0,B1,C2,D3"))
            #expect(seen.withLock { $0.sorted() } == [0, 1, 2, 3])
            #expect(detail.groupedTasks.map(\.task.id) == ["list", "process", "report"])
            #expect(detail.groupedTasks[1].summary?.succeeded == 4)
        }
    }
}
