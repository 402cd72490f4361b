import Foundation
import PropertyBased
import Testing

@testable import DeerFlowCore

/// What a probe of the release build found accepted silently (issue 19, §4 "Validation" and
/// "Lossy acceptance"): schedules that never fire, names a client cannot use, repeated duration
/// units, NUL characters cut by the process that receives them. Each is a located error now.
@Suite("Input validation")
struct InputValidationTests {
    static func loadErrors(_ yaml: String, file: String = "wf.yaml") -> [FileError] {
        do {
            let definition = try WorkflowFileLoader.parse(yaml: yaml, file: file)
            Issue.record("accepted: \(definition.name)")
            return []
        } catch {
            return error.errors
        }
    }

    // MARK: Schedules that never fire

    @Test("a cron that can never fire is a located error naming the days and months", arguments: [
        ("0 0 30 2 *", "day-of-month 30 never occurs in February (February has at most 29 days)"),
        ("0 0 31 4 *", "day-of-month 31 never occurs in April (April has 30 days)"),
        ("0 0 31 2,4,6 *", "day-of-month 31 never occurs in February, April, June (February has at most 29 days; April has 30 days; June has 30 days)"),
        ("0 0 30,31 FEB */2", "day-of-month 30, 31 never occurs in February (February has at most 29 days)"),
    ])
    func neverFiringCron(cron: String, reason: String) throws {
        for schedule in ["schedule: \"\(cron)\"", "schedule:\n  cron: \"\(cron)\"\n  timezone: Europe/Berlin"] {
            let errors = Self.loadErrors("name: never\n\(schedule)\ntasks: [{id: a, type: noop}]\n")
            #expect(errors.map(\.key) == ["schedule.cron"], "\(errors)")
            #expect(errors.first?.line == (schedule.contains("\n") ? 3 : 2), "\(errors)")
            #expect(errors.first?.message == "cron expression '\(cron)' never fires: \(reason)")
        }
        // A definition built in Swift (the DSL's Workflow(schedule:)) is refused the same way.
        let swift = WorkflowDefinition(name: "never", schedule: ScheduleDefinition(cron: cron), tasks: [TaskDefinition(id: "a", type: "noop", action: .noop)])
        #expect(swift.validationIssues().map(\.path) == ["schedule.cron"])
        // The type itself still represents the schedule: it just has no fire.
        #expect(try CronSchedule(cron).nextFire(after: Date(timeIntervalSince1970: 1_750_000_000)) == nil)
    }

    @Test("rare but real schedules stay valid", arguments: [
        "0 0 29 2 *",      // leap years
        "0 0 31 * *",      // months with a 31st
        "0 0 31 4 5",      // both day fields restricted: every Friday of April
        "0 0 30 2 1-5",    // ... every weekday of February
        "0 0 31 1-12/3 *", // January, July, October have a 31st
        "@yearly",
    ])
    func rareSchedulesAreValid(cron: String) throws {
        let definition = try WorkflowFileLoader.parse(yaml: "name: rare\nschedule: \"\(cron)\"\ntasks: [{id: a, type: noop}]\n", file: "rare.yaml")
        #expect(definition.schedule?.cron == cron)
        #expect(try CronSchedule(cron).neverFiresProblem == nil)
    }

    /// Day fields from values that exist in some months only, so both answers occur.
    static let dayOfMonthField = Gen.oneOf(
        Gen.int(in: 28...31).map { "\($0)" },
        Gen.int(in: 1...31).map { "\($0)" },
        zip(Gen.int(in: 25...31), Gen.int(in: 0...3)).map { "\($0)-\(min($0 + $1, 31))" },
        Gen.always("*"), Gen.always("*/10"))
    static let monthField = Gen.oneOf(
        Gen.int(in: 1...12).map { "\($0)" },
        zip(Gen.int(in: 1...12), Gen.int(in: 1...12)).map { "\($0),\($1)" },
        Gen.always("2,4,6,9,11"), Gen.always("*"), Gen.always("*/2"))
    static let dayOfWeekField = Gen.oneOf(Gen.always("*"), Gen.always("*"), Gen.int(in: 0...6).map { "\($0)" }, Gen.always("*/3"))

    @Test("property: the static never-fires check agrees with the search for the next fire")
    func neverFiresAgreesWithNextFire() async {
        let start = Date(timeIntervalSince1970: 1_750_000_000)
        await propertyCheck(count: 500, input: Self.dayOfMonthField, Self.monthField, Self.dayOfWeekField) { day, month, weekday in
            let expression = "0 0 \(day) \(month) \(weekday)"
            guard let cron = try? CronSchedule(expression) else { return }
            if cron.neverFiresProblem != nil {
                #expect(cron.nextFire(after: start) == nil, "\(expression) fires")
            } else if weekday == "*" {
                // With any weekday allowed, a day that exists comes within the search's 8 years.
                #expect(cron.nextFire(after: start) != nil, "\(expression) was judged able to fire")
            }
        }
    }

    // MARK: Names

    @Test("workflow names and task ids a client cannot use are located errors", arguments: ["..", ".", "-", "--help", "_private", ".hidden", "-rf"])
    func unsafeNames(name: String) {
        let quoted = "'\(name)'"
        let workflow = Self.loadErrors("name: \(quoted)\ntasks: [{id: a, type: noop}]\n")
        #expect(workflow.map(\.key) == ["name"], "\(workflow)")
        #expect(workflow.first?.line == 1)
        #expect(workflow.first?.message == "'\(name)' is not a valid workflow name: start with a letter or digit, then use letters, digits, '_', '-', '.' (at most 128 characters)")

        let task = Self.loadErrors("name: ok\ntasks:\n  - id: a\n    type: noop\n  - id: \(quoted)\n    type: noop\n")
        #expect(task.map(\.key) == ["tasks[1].id"], "\(task)")
        #expect(task.first?.line == 5)
        #expect(task.first?.message.hasPrefix("'\(name)' is not a valid task id: start with a letter or digit") == true)

        let child = Self.loadErrors("name: ok\ntasks:\n  - id: a\n    type: workflow\n    workflow: \(quoted)\n")
        #expect(child.map(\.key) == ["tasks[0].workflow"], "\(child)")
        #expect(child.first?.line == 5)

        let hook = Self.loadErrors("name: ok\ntriggers:\n  - webhook: {name: \(quoted), secret_env: GH_SECRET}\ntasks: [{id: a, type: noop}]\n")
        #expect(hook.map(\.key) == ["triggers[0].webhook.name"], "\(hook)")
        #expect(hook.first?.line == 3)
    }

    @Test("names made of the documented characters stay valid")
    func safeNames() throws {
        for name in ["etl", "9am-report", "etl.v2", "a_b-c.d", "A", String(repeating: "x", count: 128)] {
            let definition = try WorkflowFileLoader.parse(yaml: "name: \(name)\ntasks: [{id: \(name), type: noop}]\n", file: "x.yaml")
            #expect(definition.name == name)
        }
        #expect(!WorkflowDefinition.isSafeName(String(repeating: "x", count: 129)))
        #expect(!WorkflowDefinition.isSafeName("é"))
        #expect(!WorkflowDefinition.isSafeName(""))
    }

    @Test("a workflow named after its file says so when the file name is not a valid name")
    func nameFromFileName() {
        let errors = Self.loadErrors("tasks: [{id: a, type: noop}]\n", file: "workflows/-dry-run.yaml")
        #expect(errors.map(\.key) == ["name"], "\(errors)")
        #expect(errors.first?.file == "workflows/-dry-run.yaml")
        #expect(errors.first?.message.contains("without a 'name:' key the name is the file's name") == true, "\(errors)")
    }

    // MARK: Durations

    @Test("a duration repeating a unit or giving a larger unit after a smaller one is refused", arguments: [
        ("1h1h", "'1h1h' gives the unit 'h' twice; write each unit once, largest first (e.g. 1h30m)"),
        ("5s5s", "'5s5s' gives the unit 's' twice; write each unit once, largest first (e.g. 1h30m)"),
        ("30m1h", "'30m1h' gives 'h' after the smaller unit 'm'; write the units largest first (d, h, m, s, ms), e.g. 1h30m"),
        ("500ms1s", "'500ms1s' gives 's' after the smaller unit 'ms'; write the units largest first (d, h, m, s, ms), e.g. 1h30m"),
    ])
    func repeatedUnits(text: String, message: String) {
        #expect(DurationText.parse(text) == nil)
        #expect(!DurationText.isWellFormed(text))
        let errors = Self.loadErrors("name: d\ntasks:\n  - id: a\n    type: noop\n    retry_delay: \(text)\n")
        #expect(errors.map(\.key) == ["tasks[0].retry_delay"], "\(errors)")
        #expect(errors.first?.line == 5)
        #expect(errors.first?.message == message)
    }

    @Test("combined durations in order still parse")
    func orderedDurations() {
        #expect(DurationText.parse("1d12h") == .seconds(129_600))
        #expect(DurationText.parse("1h30m") == .seconds(5_400))
        #expect(DurationText.parse("1m30s250ms") == .milliseconds(90_250))
        #expect(DurationText.parse("2h0m5s") == .seconds(7_205))
    }

    // MARK: NUL characters

    @Test("a NUL in what a task hands to a process or a request is a located error", arguments: [
        ("type: shell\n    script: \"echo a\\0b\"", "tasks[0].script", 5),
        ("type: shell\n    command: [echo, \"a\\0b\"]", "tasks[0].command[1]", 5),
        ("type: shell\n    command: [echo]\n    env: {KEY: \"a\\0b\"}", "tasks[0].env.KEY", 6),
        ("type: shell\n    command: [echo]\n    env: {\"K\\0\": b}", "tasks[0].env.K\u{0}", 6),
        ("type: shell\n    command: [pwd]\n    workdir: \"/tmp\\0/x\"", "tasks[0].workdir", 6),
        ("type: http\n    url: https://example.com/\n    headers: {X-A: \"a\\0\"}", "tasks[0].headers.X-A", 6),
    ])
    func nulCharacters(task: String, key: String, line: Int) {
        let errors = Self.loadErrors("name: nul\ntasks:\n  - id: a\n    \(task)\n")
        #expect(errors.map(\.key) == [key], "\(errors)")
        #expect(errors.first?.line == line, "\(errors)")
        #expect(errors.first?.message.contains("NUL character") == true)
    }

    @Test("a NUL in a string parameter's default or given value is refused, naming the parameter")
    func nulInParameters() {
        let errors = Self.loadErrors("name: nul\nparams:\n  day: {type: string, default: \"a\\0b\"}\ntasks: [{id: a, type: noop}]\n")
        #expect(errors.map(\.key) == ["params.day.default"], "\(errors)")
        #expect(errors.first?.line == 3)
        let definition = WorkflowDefinition(name: "p", params: [ParamDefinition("day", type: .string), ParamDefinition("doc", type: .json)], tasks: [TaskDefinition(id: "a", action: .noop)])
        do {
            _ = try definition.resolveParams(["day": .string("a\u{0}b"), "doc": .string("x")])
            Issue.record("a NUL in a parameter was accepted")
        } catch {
            #expect(error.problems == ["parameter 'day' contains a NUL character (\\u0000), which no task can receive; remove it"])
        }
        #expect((try? definition.resolveParams(["day": .string("ab"), "doc": .object(["k": .string("v")])])) != nil)
    }

    // MARK: Size

    static func chain(_ count: Int) -> WorkflowDefinition {
        var tasks = [TaskDefinition(id: "t0", type: "noop", action: .noop)]
        for index in 1..<count {
            var task = TaskDefinition(id: "t\(index)", type: "shell", action: .shell(ShellAction(command: ["echo", "{{ tasks.t\(index - 1).output.x }}"])))
            task.dependsOn = ["t\(index - 1)"]
            tasks.append(task)
        }
        return WorkflowDefinition(name: "chain", tasks: tasks)
    }

    /// How the time grows with the length is a measured figure (README, "Limits"), not asserted
    /// here: a timed ratio fails on a loaded machine and proves nothing on a fast one.
    @Test("a 20,000-task chain validates without issues, and a cycle at the end of a 100,001-task ring is found without a call stack per task")
    func longChainsValidate() {
        #expect(Self.chain(20_000).validationIssues().isEmpty)
        // A cycle at the end of a long chain is found without recursing once per task.
        var tasks = (0..<100_000).map { TaskDefinition(id: "t\($0)", type: "noop", action: .noop, dependsOn: $0 == 0 ? ["t99999"] : ["t\($0 - 1)"]) }
        tasks.append(TaskDefinition(id: "last", type: "noop", action: .noop))
        #expect(WorkflowDefinition(name: "ring", tasks: tasks).dependencyCycle()?.count == 100_001)
    }
}
