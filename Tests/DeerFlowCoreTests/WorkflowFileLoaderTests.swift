import Foundation
import Testing

@testable import DeerFlowCore

/// Parses `yaml` expecting failure; returns the errors.
private func errors(_ yaml: String, file: String = "wf.yaml") -> [FileError] {
    do {
        let definition = try WorkflowFileLoader.parse(yaml: yaml, file: file)
        Issue.record("expected errors, got \(definition)")
        return []
    } catch {
        return error.errors
    }
}

/// Parses `yaml` expecting exactly one error.
private func singleError(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> FileError? {
    let found = errors(yaml)
    #expect(found.count == 1, "\(found)", sourceLocation: sourceLocation)
    return found.first
}

/// A temporary directory removed after `body`.
private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
}

private func write(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

@Suite("WorkflowFileLoader")
struct WorkflowFileLoaderTests {
    // MARK: Valid files

    @Test func fullFileRoundTrip() throws {
        let yaml = """
            name: etl
            description: Nightly ETL
            schedule:
              cron: "0 2 * * *"
              timezone: Europe/Berlin
              catchup: all
            params:
              date: {type: string, default: "2024-01-01", description: Day to load, secret: false}
              limit: int
              ratio: {type: float, default: 0.5}
              verbose: {type: bool, default: yes}
              token: {type: string, secret: true}
              options: {type: json, default: {a: [1, two], b: null}}
              count: {type: int, default: 5}
            tasks:
              - id: extract
                type: shell
                command: [echo, hello]
                env: {KEY: value, DEBUG: true}
                workdir: /tmp
                queue: io
                priority: 5
                retries: 3
                retry_delay: 5s
                max_retry_delay: 10m
                timeout: 30s
                description: Pull the data
              - id: transform
                type: shell
                script: |
                  echo hi
                  echo ${HOME}
                depends_on: [extract]
              - id: call
                type: http
                method: post
                url: https://example.com/x
                headers: {X-Token: abc}
                body: {a: 1}
                expect_status: [200, 201]
                depends_on: transform
              - id: wait
                type: sleep
                duration: 1h30m
                depends_on: [call]
              - id: nothing
                type: noop
                depends_on: [wait, extract]
            """
        let workflow = try WorkflowFileLoader.parse(yaml: yaml, file: "workflows/etl.yaml")
        let expected = WorkflowDefinition(
            name: "etl",
            description: "Nightly ETL",
            schedule: ScheduleDefinition(cron: "0 2 * * *", timeZone: "Europe/Berlin", catchup: .all),
            params: [
                ParamDefinition("date", type: .string, default: "2024-01-01", description: "Day to load", secret: false),
                ParamDefinition("limit", type: .int),
                ParamDefinition("ratio", type: .float, default: .double(0.5)),
                ParamDefinition("verbose", type: .bool, default: true),
                ParamDefinition("token", type: .string, secret: true),
                ParamDefinition("options", type: .json, default: ["a": [1, "two"], "b": nil]),
                ParamDefinition("count", type: .int, default: 5),
            ],
            tasks: [
                TaskDefinition(
                    id: "extract",
                    action: .shell(ShellAction(command: ["echo", "hello"], environment: ["KEY": "value", "DEBUG": "true"], workingDirectory: "/tmp")),
                    queue: "io",
                    priority: 5,
                    retry: RetryPolicy(retries: 3, delay: .seconds(5), maxDelay: .seconds(600)),
                    timeout: .seconds(30),
                    description: "Pull the data"
                ),
                TaskDefinition(
                    id: "transform",
                    action: .shell(ShellAction(script: "echo hi\necho ${HOME}\n")),
                    dependsOn: ["extract"]
                ),
                TaskDefinition(
                    id: "call",
                    action: .http(HTTPAction(method: "POST", url: "https://example.com/x", headers: ["X-Token": "abc"], body: #"{"a":1}"#, expectStatus: [200, 201])),
                    dependsOn: ["transform"]
                ),
                TaskDefinition(id: "wait", action: .sleep(.seconds(5400)), dependsOn: ["call"]),
                TaskDefinition(id: "nothing", action: .noop, dependsOn: ["wait", "extract"]),
            ]
        )
        #expect(workflow.name == expected.name)
        #expect(workflow.schedule == expected.schedule)
        #expect(workflow.params == expected.params)
        for (got, want) in zip(workflow.tasks, expected.tasks) {
            #expect(got == want)
        }
        #expect(workflow == expected)
        #expect(workflow.tasks.map(\.type) == ["shell", "shell", "http", "sleep", "noop"])
    }

    @Test func shorthandForms() throws {
        let workflow = try WorkflowFileLoader.parse(
            yaml: """
                schedule: "@daily"
                params:
                  limit: int
                  day: string
                tasks:
                  - {id: a, type: noop}
                  - id: b
                    type: http
                    url: http://localhost:8080/hook
                    depends_on: a
                    expect_status: 204
                    body: plain text
                """,
            file: "dir/nightly.yml"
        )
        #expect(workflow.name == "nightly")
        #expect(workflow.schedule == ScheduleDefinition(cron: "@daily", timeZone: "UTC", catchup: .latest))
        #expect(workflow.params == [ParamDefinition("limit", type: .int), ParamDefinition("day", type: .string)])
        #expect(workflow.params.allSatisfy { $0.isRequired })
        #expect(workflow.tasks[1].dependsOn == ["a"])
        #expect(workflow.tasks[1].action == .http(HTTPAction(method: "POST", url: "http://localhost:8080/hook", body: "plain text", expectStatus: [204])))
    }

    @Test("an http task without method sends POST when it has a body and GET when not; a method given is kept")
    func httpMethodDefault() throws {
        let workflow = try WorkflowFileLoader.parse(
            yaml: """
                tasks:
                  - {id: post, type: http, url: "http://localhost/x", body: {a: 1}}
                  - {id: get, type: http, url: "http://localhost/x"}
                  - {id: put, type: http, url: "http://localhost/x", method: put, body: "x"}
                """,
            file: "calls.yaml")
        func method(_ index: Int) -> String? {
            if case .http(let action) = workflow.tasks[index].action { return action.method }
            return nil
        }
        #expect([method(0), method(1), method(2)] == ["POST", "GET", "PUT"])
        #expect(HTTPAction(url: "http://localhost/x", body: "{}").method == "POST")
        #expect(HTTPAction(url: "http://localhost/x").method == "GET")
    }

    @Test func defaults() throws {
        let workflow = try WorkflowFileLoader.parse(
            yaml: """
                tasks:
                  - id: only
                    type: shell
                    command: ["true"]
                  - id: slow
                    type: noop
                    retry_delay: 10m
                """,
            file: "simple.yaml"
        )
        #expect(workflow.name == "simple")
        #expect(workflow.description == "")
        #expect(workflow.schedule == nil)
        #expect(workflow.params.isEmpty)
        let task = workflow.tasks[0]
        #expect(task.queue == "default")
        #expect(task.priority == 0)
        #expect(task.retry.retries == 0)
        #expect(task.retry.delay == .seconds(1))
        #expect(task.retry.maxDelay == .seconds(300))
        #expect(task.timeout == nil)
        #expect(task.dependsOn.isEmpty)
        #expect(task.action == .shell(ShellAction(command: ["true"])))
        // A retry delay above the default maximum raises the maximum instead of failing validation.
        #expect(workflow.tasks[1].retry.maxDelay == .seconds(600))
    }

    @Test func paramDefaultsFollowTheDeclaredType() throws {
        let workflow = try WorkflowFileLoader.parse(
            yaml: """
                params:
                  n: {type: int, default: 5}
                  s: {type: string, default: "5"}
                  t: {type: string, default: 5}
                  d: {type: string, default: 2024-01-01}
                  f: {type: float, default: 2}
                  j: {type: json, default: "5"}
                  k: {type: json, default: 5}
                  untyped: {default: true}
                tasks: [{id: a, type: noop}]
                """,
            file: "p.yaml"
        )
        #expect(workflow.params.map(\.defaultValue) == [.int(5), .string("5"), .string("5"), .string("2024-01-01"), .double(2), .string("5"), .int(5), .string("true")])
    }

    @Test func mergeKeysAreExpanded() throws {
        let workflow = try WorkflowFileLoader.parse(
            yaml: """
                tasks:
                  - &base {id: a, type: noop, retries: 2, queue: io}
                  - <<: *base
                    id: b
                    retries: 4
                """,
            file: "m.yaml"
        )
        #expect(workflow.tasks[1].id == "b")
        #expect(workflow.tasks[1].queue == "io")
        #expect(workflow.tasks[1].retry.retries == 4)
    }

    // MARK: One test per error kind

    @Test func yamlSyntaxError() throws {
        let error = try #require(singleError("""
            name: etl
            tasks:
              - id: a
                type: noop
                command: [echo, "unterminated
            """))
        #expect(error.file == "wf.yaml")
        #expect(error.line == 5)
        #expect(error.column == 34)
        #expect(error.key == "")
        #expect(error.description == "wf.yaml:5:34: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 5, column 21)")
    }

    @Test func badIndentationIsASyntaxError() throws {
        let error = try #require(singleError("""
            name: etl
            tasks:
              - id: a
                type: noop
               retries: 2
            """))
        #expect(error.line == 5)
        #expect(error.message.hasPrefix("invalid YAML: "))
    }

    @Test func duplicateYAMLKey() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
                retries: 1
                queue: q
                retries: 2
            """))
        #expect(error.line == 6)
        #expect(error.column == 5)
        #expect(error.key == "retries")
        #expect(error.message == "duplicate key 'retries' (first defined at line 4)")
    }

    @Test func topLevelNotAMapping() throws {
        let error = try #require(singleError("- id: a\n  type: noop\n"))
        #expect(error.line == 1)
        #expect(error.key == "")
        #expect(error.message == "a workflow file must be a mapping (name, schedule, params, tasks), got a list")
        #expect(error.description == "wf.yaml:1:1: a workflow file must be a mapping (name, schedule, params, tasks), got a list")
    }

    @Test func emptyFile() throws {
        let error = try #require(singleError("# nothing here\n"))
        #expect(error.line == 1)
        #expect(error.message == "the file is empty; a workflow needs at least a 'tasks' list")
    }

    @Test func unknownKeyWithSuggestion() throws {
        let error = try #require(singleError("""
            name: etl
            tasks:
              - id: a
                type: shell
                comand: [echo, hi]
                script: echo hi
            """))
        #expect(error.line == 5)
        #expect(error.column == 5)
        #expect(error.key == "tasks[0].comand")
        #expect(error.message == "unknown key 'comand' (did you mean 'command'?)")
        #expect(error.description == "wf.yaml:5:5: tasks[0].comand: unknown key 'comand' (did you mean 'command'?)")
    }

    @Test func unknownTopLevelKeyListsTheAllowedOnes() throws {
        let error = try #require(singleError("""
            name: etl
            owner: me
            tasks: [{id: a, type: noop}]
            """))
        #expect(error.line == 2)
        #expect(error.key == "owner")
        #expect(error.message == "unknown key 'owner' (allowed: name, description, schedule, params, tasks, notify, timeout, max_active_runs, triggers)")
    }

    @Test func unknownKeysAreCheckedAtEveryLevel() throws {
        let found = errors("""
            schedule: {cron: "0 2 * * *", timzone: UTC}
            params:
              day: {type: string, defualt: x}
            tasks: [{id: a, type: noop, dependson: b}]
            """)
        #expect(found.map(\.key) == ["schedule.timzone", "params.day.defualt", "tasks[0].dependson"])
        #expect(found.map(\.line) == [1, 3, 4])
        #expect(found.map(\.message) == [
            "unknown key 'timzone' (did you mean 'timezone'?)",
            "unknown key 'defualt' (did you mean 'default'?)",
            "unknown key 'dependson' (did you mean 'depends_on'?)",
        ])
    }

    @Test func keyOfAnotherTaskType() throws {
        let error = try #require(singleError("""
            tasks:
              - id: call
                type: http
                url: https://example.com
                command: [curl]
            """))
        #expect(error.line == 5)
        #expect(error.key == "tasks[0].command")
        #expect(error.message == "'command' is only allowed on shell tasks, not on http tasks")
    }

    @Test func wrongType() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
                retries: three
            """))
        #expect(error.line == 4)
        #expect(error.column == 14)
        #expect(error.key == "tasks[0].retries")
        #expect(error.message == "expected an integer, got 'three'")
        #expect(error.description == "wf.yaml:4:14: tasks[0].retries: expected an integer, got 'three'")
    }

    @Test func wrongCollectionType() throws {
        let found = errors("""
            tasks:
              - id: a
                type: shell
                command: echo hi
              - id: b
                type: noop
                depends_on: {a: 1}
            """)
        #expect(found.map(\.line) == [4, 7])
        #expect(found.map(\.key) == ["tasks[0].command", "tasks[1].depends_on"])
        #expect(found.map(\.message) == [
            "expected a list of arguments (e.g. [echo, hello]), got 'echo hi'; use 'script' for a shell command line",
            "expected a list of strings, got a mapping",
        ])
    }

    @Test func badDuration() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
                timeout: 5x
            """))
        #expect(error.line == 4)
        #expect(error.key == "tasks[0].timeout")
        #expect(error.message == "'5x' is not a duration (use e.g. 30s, 5m, 2h, 1d)")
    }

    @Test func unknownTaskType() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: shel
                command: [ls]
            """))
        #expect(error.line == 3)
        #expect(error.key == "tasks[0].type")
        #expect(error.message == "unknown task type 'shel' (did you mean 'shell'?)")
    }

    @Test func missingRequiredKeys() throws {
        let found = errors("""
            tasks:
              - id: a
              - type: sleep
            """)
        #expect(found.map(\.key) == ["tasks[0].type", "tasks[1].id", "tasks[1].duration"])
        #expect(found.map(\.line) == [2, 3, 3])
        #expect(found.map(\.message) == ["missing required key 'type'", "missing required key 'id'", "missing required key 'duration'"])
        let noTasks = try #require(singleError("name: etl\n"))
        #expect(noTasks.key == "tasks")
        #expect(noTasks.message == "missing required key 'tasks'")
    }

    @Test func emptyTaskList() throws {
        let error = try #require(singleError("name: etl\ntasks: []\n"))
        #expect(error.line == 2)
        #expect(error.key == "tasks")
        #expect(error.message == "a workflow needs at least one task")
    }

    @Test func duplicateTaskID() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
              - id: b
                type: noop
              - id: a
                type: noop
            """))
        #expect(error.line == 6)
        #expect(error.key == "tasks[2].id")
        #expect(error.message == "duplicate task id 'a' (first declared at tasks[0])")
    }

    @Test func unknownDependency() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
              - id: b
                type: noop
                depends_on:
                  - a
                  - c
            """))
        #expect(error.line == 8)
        #expect(error.column == 9)
        #expect(error.key == "tasks[1].depends_on[1]")
        #expect(error.message == "unknown task 'c' in depends_on of 'b'")
    }

    @Test func unknownDependencyInShorthand() throws {
        let error = try #require(singleError("""
            tasks:
              - {id: a, type: noop}
              - {id: b, type: noop,
                 depends_on: x}
            """))
        #expect(error.line == 4)
        #expect(error.key == "tasks[1].depends_on[0]")
    }

    @Test func dependencyCycle() throws {
        let error = try #require(singleError("""
            tasks:
              - id: a
                type: noop
                depends_on: [c]
              - id: b
                type: noop
                depends_on: [a]
              - id: c
                type: noop
                depends_on: [b]
            """))
        #expect(error.key.hasSuffix(".depends_on"))
        #expect(error.message.hasPrefix("dependency cycle: "))
        for id in ["a", "b", "c"] { #expect(error.message.contains(id)) }
        let index = try #require(Int(error.key.dropFirst("tasks[".count).prefix { $0.isNumber }))
        #expect(error.line == [4, 7, 10][index])
    }

    @Test func badCron() throws {
        let error = try #require(singleError("""
            schedule:
              timezone: UTC
              cron: "61 * * * *"
            tasks: [{id: a, type: noop}]
            """))
        #expect(error.line == 3)
        #expect(error.key == "schedule.cron")
        #expect(error.message.hasPrefix("invalid cron expression '61 * * * *': "))
        let shorthand = try #require(singleError("""
            name: x
            schedule: "every day"
            tasks: [{id: a, type: noop}]
            """))
        #expect(shorthand.line == 2)
        #expect(shorthand.column == 11)
        #expect(shorthand.key == "schedule.cron")
    }

    @Test func unknownTimeZone() throws {
        let error = try #require(singleError("""
            schedule:
              cron: "0 2 * * *"
              timezone: Mars/Olympus
            tasks: [{id: a, type: noop}]
            """))
        #expect(error.line == 3)
        #expect(error.key == "schedule.timezone")
        #expect(error.message == "unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Berlin')")
    }

    @Test func unknownCatchupPolicy() throws {
        let error = try #require(singleError("""
            schedule: {cron: "@hourly", catchup: everything}
            tasks: [{id: a, type: noop}]
            """))
        #expect(error.line == 1)
        #expect(error.key == "schedule.catchup")
        #expect(error.message == "unknown catchup policy 'everything' (expected one of: latest, all)")
    }

    @Test func badParams() throws {
        let found = errors("""
            params:
              a: integer
              z: text
              b: {type: int, default: many}
              c: {type: float, default: 1.5}
              bad name: string
            tasks: [{id: t, type: noop}]
            """)
        #expect(found.map(\.line) == [2, 3, 4, 6])
        #expect(found.map(\.key) == ["params.a", "params.z", "params.b.default", "params.bad name"])
        #expect(found[0].message == "unknown parameter type 'integer' (did you mean 'int'?)")
        #expect(found[1].message == "unknown parameter type 'text' (expected one of: string, int, float, bool, json)")
        #expect(found[2].message == "expected an integer, got 'many'")
        #expect(found[3].message == "'bad name' is not a valid parameter name (use letters, digits, '_', '-')")
    }

    @Test func paramDefaultOfWrongTypeFromValidation() throws {
        let error = try #require(singleError("""
            params:
              flag:
                type: bool
                default: ~
            tasks: [{id: t, type: noop}]
            """))
        #expect(error.line == 4)
        #expect(error.key == "params.flag.default")
        #expect(error.message == "default null is not of type bool")
    }

    @Test func shellTaskNeedsExactlyOneOfCommandAndScript() throws {
        let found = errors("""
            tasks:
              - id: neither
                type: shell
              - id: both
                type: shell
                command: [ls]
                script: ls
            """)
        #expect(found.map(\.line) == [2, 7])
        #expect(found.map(\.key) == ["tasks[0]", "tasks[1].script"])
        #expect(found[0].message == "a shell task needs 'command' (argv list) or 'script'")
        #expect(found[1].message == "give either 'command' or 'script', not both")
    }

    @Test func httpTaskProblems() throws {
        let found = errors("""
            tasks:
              - id: call
                type: http
                url: ftp://example.com
                method: "GE T"
                expect_status: [200, 999]
            """)
        #expect(found.map(\.key) == ["tasks[0].url", "tasks[0].method", "tasks[0].expect_status"])
        #expect(found.map(\.line) == [4, 5, 6])
        #expect(found[0].message == "'ftp://example.com' is not an http(s) URL")
    }

    @Test func invalidNamesAndNegativeValues() throws {
        let found = errors("""
            name: "my etl"
            tasks:
              - id: a
                type: noop
                retries: -1
                queue: "bad queue"
                retry_delay: 10s
                max_retry_delay: 5s
            """)
        #expect(found.map(\.key) == ["name", "tasks[0].retries", "tasks[0].queue", "tasks[0].max_retry_delay"])
        #expect(found.map(\.line) == [1, 5, 6, 8])
        #expect(found[1].message == "must be between 0 and 10000, got -1")
        #expect(found[3].message == "must be at least retry_delay (10s)")
    }

    @Test func defaultNameFromAnInvalidFileNameIsReportedAtLineOne() throws {
        let found = errors("tasks: [{id: a, type: noop}]\n", file: "my workflow.yaml")
        #expect(found.map(\.line) == [1])
        #expect(found.map(\.key) == ["name"])
    }

    @Test func allErrorsAreCollectedInLineOrder() throws {
        let found = errors("""
            name: etl
            tasks:
              - id: a
                type: noop
                retries: three
                depends_on: [ghost]
              - id: b
                type: sleep
                duration: soon
                priorty: 1
            """)
        #expect(found.map(\.line) == [5, 6, 9, 10])
        #expect(found.map(\.key) == ["tasks[0].retries", "tasks[0].depends_on[0]", "tasks[1].duration", "tasks[1].priorty"])
        let text = FileErrors(errors: found).description
        #expect(text.split(separator: "\n").count == 4)
        #expect(text.hasPrefix("wf.yaml:5:14: tasks[0].retries: expected an integer, got 'three'\nwf.yaml:6:"))
    }

    // MARK: Files and directories

    @Test func loadFile() throws {
        try withTemporaryDirectory { directory in
            try write("tasks: [{id: a, type: noop}]\n", to: "\(directory)/hello.yaml")
            let workflow = try WorkflowFileLoader.load(file: "\(directory)/hello.yaml")
            #expect(workflow.name == "hello")
            do throws(FileErrors) {
                _ = try WorkflowFileLoader.load(file: "\(directory)/missing.yaml")
                Issue.record("expected an error")
            } catch {
                #expect(error.errors == [FileError(file: "\(directory)/missing.yaml", line: 0, column: 0, message: "no such file")])
                #expect(error.description == "\(directory)/missing.yaml:0:0: no such file")
            }
        }
    }

    @Test func loadDirectory() throws {
        try withTemporaryDirectory { directory in
            try write("tasks: [{id: a, type: noop}]\n", to: "\(directory)/b.yaml")
            try write("name: first\ntasks: [{id: a, type: noop}]\n", to: "\(directory)/a.yml")
            try write("not a workflow", to: "\(directory)/notes.txt")
            try FileManager.default.createDirectory(atPath: "\(directory)/nested", withIntermediateDirectories: true)
            try write("tasks: [{id: a, type: noop}]\n", to: "\(directory)/nested/c.yaml")
            let workflows = try WorkflowFileLoader.loadDirectory(directory)
            #expect(workflows.map(\.name) == ["first", "b"])
        }
    }

    @Test func loadDirectoryReportsDuplicateNames() throws {
        try withTemporaryDirectory { directory in
            try write("name: etl\ntasks: [{id: a, type: noop}]\n", to: "\(directory)/one.yaml")
            try write("description: same name\nname: etl\ntasks: [{id: a, type: noop}]\n", to: "\(directory)/two.yaml")
            do throws(FileErrors) {
                _ = try WorkflowFileLoader.loadDirectory(directory)
                Issue.record("expected an error")
            } catch {
                #expect(error.errors.count == 1)
                let duplicate = try #require(error.errors.first)
                #expect(duplicate.file == "\(directory)/two.yaml")
                #expect(duplicate.line == 2)
                #expect(duplicate.key == "name")
                #expect(duplicate.message.contains("\(directory)/one.yaml"))
                #expect(duplicate.message == "workflow 'etl' is also defined in \(directory)/one.yaml (workflow names must be unique)")
            }
        }
    }

    @Test func loadDirectoryReportsTheBadFileAmongGoodOnes() throws {
        try withTemporaryDirectory { directory in
            try write("tasks: [{id: a, type: noop}]\n", to: "\(directory)/a.yaml")
            try write("tasks:\n  - id: a\n    type: noop\n    retries: many\n", to: "\(directory)/b.yaml")
            try write("tasks: [{id: a, type: noop}]\n", to: "\(directory)/c.yaml")
            try write("tasks: [{id: a, type: nope}]\n", to: "\(directory)/d.yml")
            do throws(FileErrors) {
                _ = try WorkflowFileLoader.loadDirectory(directory)
                Issue.record("expected an error")
            } catch {
                #expect(error.errors.map(\.file) == ["\(directory)/b.yaml", "\(directory)/d.yml"])
                #expect(error.errors.map(\.line) == [4, 1])
                #expect(error.errors.map(\.key) == ["tasks[0].retries", "tasks[0].type"])
            }
        }
    }

    @Test func loadMissingDirectory() throws {
        do {
            _ = try WorkflowFileLoader.loadDirectory("/nonexistent/deerflow/workflows")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/deerflow/workflows:0:0: no such directory")
        }
    }
}

@Suite("YAMLReader")
struct YAMLReaderTests {
    @Test func environmentSubstitution() throws {
        let reader = YAMLReader(file: "metrics.yaml", environment: ["PORT": "9100", "HOST": "0.0.0.0", "EMPTY": ""])
        let root = try #require(reader.read("""
            listen: "${HOST}:${PORT}"
            port: ${PORT}
            path: ${METRICS_PATH:-/metrics}
            fallback: ${EMPTY:-used}
            literal: $HOME and $ alone
            """))
        let mapping = try #require(root.mapping())
        #expect(mapping.string("listen") == "0.0.0.0:9100")
        #expect(mapping.int("port") == 9100)
        #expect(mapping["port"]?.json() == .int(9100))
        #expect(mapping.string("path") == "/metrics")
        #expect(mapping.string("fallback") == "used")
        #expect(mapping.string("literal") == "$HOME and $ alone")
        #expect(reader.errors.isEmpty)
        try reader.throwIfErrors()
    }

    @Test func missingEnvironmentVariable() throws {
        let reader = YAMLReader(file: "logging.yaml", environment: [:])
        let root = try #require(reader.read("level: info\nfile: ${LOG_DIR}/deerflow.log\nbad: ${1X}\n"))
        let mapping = try #require(root.mapping())
        #expect(mapping.string("file") == "/deerflow.log")
        _ = mapping.string("file")
        _ = mapping.string("bad")
        #expect(reader.errors == [
            FileError(file: "logging.yaml", line: 2, column: 7, key: "file", message: "environment variable 'LOG_DIR' is not set"),
            FileError(file: "logging.yaml", line: 3, column: 6, key: "bad", message: "'${1X}' is not a variable reference (write ${NAME} or ${NAME:-default})"),
        ])
        #expect(throws: FileErrors.self) { try reader.throwIfErrors() }
    }

    @Test func wrongTypeAfterSubstitutionShowsBothTexts() throws {
        let reader = YAMLReader(file: "metrics.yaml", environment: ["PORT": "http"])
        let root = try #require(reader.read("port: ${PORT}\n"))
        #expect(root.mapping()?.int("port") == nil)
        #expect(reader.errors.map(\.description) == ["metrics.yaml:1:7: port: expected an integer, got 'http' (from '${PORT}')"])
    }

    @Test func noSubstitutionWithoutEnvironment() throws {
        let reader = YAMLReader(file: "x.yaml")
        let root = try #require(reader.read("script: echo ${HOME}\n"))
        #expect(root.mapping()?.string("script") == "echo ${HOME}")
        #expect(reader.errors.isEmpty)
    }

    @Test func typedAccessors() throws {
        let reader = YAMLReader(file: "c.yaml")
        let root = try #require(reader.read("""
            ratio: 0.25
            enabled: Yes
            interval: 1h30m
            tags: [a, b]
            single: one
            codes: [1, 2]
            headers: {A: 1, B: x}
            level: debg
            nested:
              deep:
                value: 3
            """))
        let mapping = try #require(root.mapping(allowedKeys: ["ratio", "enabled", "interval", "tags", "single", "codes", "headers", "level", "nested"]))
        #expect(mapping.double("ratio") == 0.25)
        #expect(mapping.bool("enabled") == true)
        #expect(mapping.duration("interval") == .seconds(5400))
        #expect(mapping.stringList("tags") == ["a", "b"])
        #expect(mapping.stringList("single", allowSingle: true) == ["one"])
        #expect(mapping.intList("codes") == [1, 2])
        #expect(mapping.stringMap("headers") == ["A": "1", "B": "x"])
        #expect(mapping.string("absent") == nil)
        #expect(reader.errors.isEmpty)

        #expect(mapping.optional("level")?.oneOf(["debug", "info"], what: "log level") == nil)
        #expect(mapping.bool("ratio") == nil)
        #expect(mapping.stringList("single") == nil)
        let deep = mapping.mapping("nested")?.mapping("deep")
        #expect(deep?.string("value") == "3")
        #expect(reader.location(of: "nested.deep.value") == YAMLLocation(line: 11, column: 5))
        // Never-read paths fall back to the nearest recorded parent.
        #expect(reader.location(of: "nested.deep.other[3]") == YAMLLocation(line: 10, column: 3))
        #expect(reader.location(of: "unknown") == YAMLLocation(line: 1, column: 1))
        #expect(reader.errors.map(\.description) == [
            "c.yaml:8:8: level: unknown log level 'debg' (did you mean 'debug'?)",
            "c.yaml:1:8: ratio: expected true or false, got '0.25'",
            "c.yaml:5:9: single: expected a list of strings, got 'one'",
        ])
    }

    @Test func suggestions() {
        #expect(YAMLReader.suggestion(for: "comand", from: ["command", "script"]) == "command")
        #expect(YAMLReader.suggestion(for: "dependsOn", from: ["depends_on", "queue"]) == "depends_on")
        #expect(YAMLReader.suggestion(for: "retires", from: ["retries", "queue"]) == "retries")
        #expect(YAMLReader.suggestion(for: "depends", from: ["depends_on", "queue"]) == "depends_on")
        #expect(YAMLReader.suggestion(for: "owner", from: ["name", "tasks"]) == nil)
        #expect(YAMLReader.suggestion(for: "x", from: ["id"]) == nil)
    }

    @Test func fileErrorDescription() {
        #expect(FileError(file: "a.yaml", line: 3, column: 7, key: "tasks[0].id", message: "boom").description == "a.yaml:3:7: tasks[0].id: boom")
        #expect(FileError(file: "a.yaml", line: 1, column: 1, key: "", message: "boom").description == "a.yaml:1:1: boom")
        let errors = FileErrors(errors: [
            FileError(file: "a.yaml", line: 1, column: 1, message: "one"),
            FileError(file: "b.yaml", line: 2, column: 3, key: "k", message: "two"),
        ])
        #expect(errors.description == "a.yaml:1:1: one\nb.yaml:2:3: k: two")
    }
}

@Suite("Schedule pause and logical time helpers")
struct SchedulePauseFileTests {
    @Test("schedule.paused is read as the initial state; false or absent leaves the version id as it was")
    func pausedKey() throws {
        let plain = try WorkflowFileLoader.parse(yaml: "name: etl\nschedule: {cron: \"0 2 * * *\"}\ntasks: [{id: a, type: noop}]\n", file: "etl.yaml")
        let unpaused = try WorkflowFileLoader.parse(yaml: "name: etl\nschedule: {cron: \"0 2 * * *\", paused: false}\ntasks: [{id: a, type: noop}]\n", file: "etl.yaml")
        let paused = try WorkflowFileLoader.parse(yaml: "name: etl\nschedule: {cron: \"0 2 * * *\", paused: true}\ntasks: [{id: a, type: noop}]\n", file: "etl.yaml")
        #expect(plain.schedule?.paused == false)
        #expect(paused.schedule?.paused == true)
        #expect(plain.versionID == unpaused.versionID)
        #expect(plain.versionID != paused.versionID)
        let decoded = try JSONDecoder().decode(ScheduleDefinition.self, from: JSONEncoder().encode(paused.schedule))
        #expect(decoded == paused.schedule)
        let wrong = errors("name: etl\nschedule: {cron: \"0 2 * * *\", paused: sometimes}\ntasks: [{id: a, type: noop}]\n")
        #expect(wrong.contains { $0.description.contains("schedule.paused") }, "\(wrong)")
    }

    @Test("a backfill bound is a day at 00:00 UTC or an RFC 3339 time; run ids give back their creation time")
    func bounds() {
        #expect(Timestamp.parseDayOrTime("2024-06-01") == Date(timeIntervalSince1970: 1_717_200_000))
        #expect(Timestamp.parseDayOrTime("2024-06-01T02:00:00Z") == Date(timeIntervalSince1970: 1_717_207_200))
        #expect(Timestamp.parseDayOrTime("2024-02-30") == nil)
        #expect(Timestamp.parseDayOrTime("June 1st") == nil)
        #expect(Timestamp.rfc3339Seconds(Date(timeIntervalSince1970: 1_717_207_200.456)) == "2024-06-01T02:00:00Z")
        let created = Date(timeIntervalSince1970: 1_717_207_200.123)
        #expect(RunID.generate(at: created).creationTime == created)
        #expect(RunID(rawValue: "not-an-id!").creationTime == nil)
    }
}
