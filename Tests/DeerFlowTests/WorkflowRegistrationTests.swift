import DeerFlow
import DeerFlowCore
import Testing

/// A workflow written in Swift is refused at registration for what a file is refused for.
@Suite("Swift workflow registration")
struct WorkflowRegistrationTests {
    static func issues(_ workflow: Workflow) -> [ValidationIssue] {
        do {
            _ = try WorkflowRegistry([workflow])
            Issue.record("'\(workflow.definition.name)' was registered")
            return []
        } catch let error as WorkflowValidationError {
            return error.issues
        } catch {
            Issue.record("unexpected \(error)")
            return []
        }
    }

    @Test("a schedule that never fires, and names a client cannot use, are refused with their paths")
    func refused() {
        let never = Workflow(name: "reports", schedule: "0 0 31 4 *")
        never.task(id: "a") { _ in }
        let issues = Self.issues(never)
        #expect(issues.map(\.path) == ["schedule.cron"])
        #expect(issues.first?.message == "cron expression '0 0 31 4 *' never fires: day-of-month 31 never occurs in April (April has 30 days)")

        let dots = Workflow(name: "..")
        dots.task(id: "--help") { _ in }
        #expect(Self.issues(dots).map(\.path) == ["name", "tasks[0].id"])

        let fine = Workflow(name: "leap-day", schedule: "0 0 29 2 *")
        fine.task(id: "a") { _ in }
        #expect(throws: Never.self) { try WorkflowRegistry([fine]) }
    }
}
