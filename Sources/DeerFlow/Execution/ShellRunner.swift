import DeerFlowCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `shell` tasks: a process whose stdout and stderr become the task log; exit code 0 is
/// success. Parameters reach it only as environment variables, never spliced into the command.
/// Cancellation sends SIGTERM, then SIGKILL after a grace period.
enum ShellRunner {
    /// DeerFlow's variables of a shell task: `DEERFLOW_PARAM_<NAME>` per parameter and the
    /// attempt's ids (the rest of its environment: ``run(_:environment:passthrough:user:log:killGracePeriod:)``).
    static func environment(for attempt: ClaimedAttempt) -> [String: String] {
        var environment: [String: String] = [
            "DEERFLOW_WORKFLOW": attempt.workflow,
            "DEERFLOW_RUN_ID": attempt.runID.rawValue,
            "DEERFLOW_TASK_ID": attempt.taskID,
            "DEERFLOW_ATTEMPT": String(attempt.number),
            "DEERFLOW_EXECUTION_ID": "\(attempt.runID):\(attempt.taskID):\(attempt.number)",
            "DEERFLOW_LOGICAL_TIME": Timestamp.rfc3339Seconds(attempt.effectiveLogicalTime),
        ]
        if let index = attempt.mapIndex {
            // An instance of a mapped task: its position and item (text as it is, else JSON).
            environment["DEERFLOW_MAP_INDEX"] = String(index)
            environment["DEERFLOW_MAP_ITEM"] = attempt.mapItem?.plainText ?? ""
        }
        for (name, value) in attempt.params {
            environment["DEERFLOW_PARAM_\(parameterVariable(name))"] = value.plainText
        }
        return environment
    }

    /// Whether util-linux's `setpriv` is there to start task processes.
    static let hasSetpriv = FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

    /// The program that starts task processes, with its arguments: as `user` when given (which
    /// needs `setpriv`; the process checks at start).
    static func launcher(as user: TaskUser?) -> [String] {
        #if os(Linux)
        if hasSetpriv {
            var argv = ["/usr/bin/setpriv"]
            if let user { argv += ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups"] }
            return argv + ["--pdeathsig", "KILL", "--", "/usr/bin/env"]
        }
        #endif
        return ["/usr/bin/env"]
    }

    /// `my-param.x` → `MY_PARAM_X`.
    static func parameterVariable(_ name: String) -> String {
        String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// - Parameters:
    ///   - passthrough: variables of this process's environment the task inherits besides the
    ///     base ones (``TaskEnvironment``).
    ///   - user: the user the task runs as; nil: this process's.
    static func run(
        _ action: ShellAction, environment extra: [String: String], passthrough: [String], user: TaskUser?, log: TaskLog,
        killGracePeriod: Duration
    ) async throws -> JSONValue {
        var environment = TaskEnvironment.inherited(from: ProcessInfo.processInfo.environment, passthrough: passthrough + action.environmentPassthrough)
        if let user {
            environment["HOME"] = user.home
            environment["USER"] = user.name
            environment["LOGNAME"] = user.name
        }
        for (key, value) in action.environment { environment[key] = value }
        for (key, value) in extra { environment[key] = value }
        // `env` finds the program on PATH, as a shell would, without a shell parsing anything.
        // `setpriv --pdeathsig KILL` (util-linux) makes the task die with the worker: a worker killed
        // with SIGKILL leaves no task running on behind its back while the attempt is retried.
        var argv = launcher(as: user)
        if let directory = action.workingDirectory {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ShellTaskError(message: "working directory '\(directory)' does not exist")
            }
            // GNU env changes directory before running the command.
            argv.append("--chdir=\(directory)")
        }
        argv += action.argv
        let child: ChildProcess
        do {
            child = try ChildProcess(argv: argv, environment: environment) { log.append($0) }
        } catch {
            throw ShellTaskError(message: "\(error)")
        }
        let stopped = Atomic<Bool>(false)
        let status = await withTaskCancellationHandler {
            await child.exit()
        } onCancel: {
            stopped.store(true, ordering: .relaxed)
            child.terminate(grace: killGracePeriod)
        }
        // A background child may keep the output open: take what comes within a second, then stop.
        await child.outputClosed(timeout: .seconds(1))
        if stopped.load(ordering: .relaxed) { throw CancellationError() }
        if !WaitStatus.exited(status) {
            throw ShellTaskError(message: "killed by signal \(WaitStatus.signal(status))" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        let code = WaitStatus.exitCode(status)
        guard code == 0 else {
            throw ShellTaskError(message: "exited with code \(code)" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        return ["exit_code": .int(Int(code))]
    }
}

/// A shell task that could not start or did not exit with 0.
struct ShellTaskError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
