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
    /// Environment of a shell task: the process's own, plus `DEERFLOW_PARAM_<NAME>` per parameter
    /// and the attempt's ids.
    static func environment(for attempt: ClaimedAttempt) -> [String: String] {
        var environment: [String: String] = [
            "DEERFLOW_WORKFLOW": attempt.workflow,
            "DEERFLOW_RUN_ID": attempt.runID.rawValue,
            "DEERFLOW_TASK_ID": attempt.taskID,
            "DEERFLOW_ATTEMPT": String(attempt.number),
            "DEERFLOW_EXECUTION_ID": "\(attempt.runID):\(attempt.taskID):\(attempt.number)",
        ]
        for (name, value) in attempt.params {
            environment["DEERFLOW_PARAM_\(parameterVariable(name))"] = value.plainText
        }
        return environment
    }

    /// The program that starts task processes, with its arguments.
    static let launcher: [String]? = {
        #if os(Linux)
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
            return ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "/usr/bin/env"]
        }
        #endif
        return nil
    }()

    /// `my-param.x` → `MY_PARAM_X`.
    static func parameterVariable(_ name: String) -> String {
        String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static func run(_ action: ShellAction, environment extra: [String: String], log: TaskLog, killGracePeriod: Duration) async throws -> JSONValue {
        let process = Process()
        // `env` finds the program on PATH, as a shell would, without a shell parsing anything.
        // `setpriv --pdeathsig KILL` (util-linux) makes the task die with the worker: a worker killed
        // with SIGKILL leaves no task running on behind its back while the attempt is retried.
        if let launcher = launcher {
            process.executableURL = URL(fileURLWithPath: launcher[0])
            process.arguments = Array(launcher.dropFirst()) + action.argv
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = action.argv
        }
        var environment = ProcessInfo.processInfo.environment
        for (key, value) in action.environment { environment[key] = value }
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        if let directory = action.workingDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice

        let events = AsyncStream<Bool>.makeStream()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                events.continuation.yield(false)
            } else {
                log.append(String(decoding: data, as: UTF8.self))
            }
        }
        process.terminationHandler = { _ in events.continuation.yield(true) }
        do {
            try process.run()
        } catch {
            pipe.fileHandleForReading.readabilityHandler = nil
            throw ShellTaskError(message: "could not start \(action.argv.first ?? "process"): \(error)")
        }
        let pid = process.processIdentifier
        try? pipe.fileHandleForWriting.close()

        let stopped = Atomic<Bool>(false)
        await withTaskCancellationHandler {
            var exited = false
            var outputClosed = false
            for await event in events.stream {
                if event {
                    exited = true
                    if !outputClosed {
                        // A background child may keep the pipe open: wait for the rest of the output
                        // for at most a second after the process exited.
                        Task.detached {
                            try? await Task.sleep(for: .seconds(1))
                            events.continuation.yield(false)
                        }
                    }
                } else {
                    outputClosed = true
                }
                if exited && outputClosed { break }
            }
        } onCancel: {
            stopped.store(true, ordering: .relaxed)
            kill(pid, SIGTERM)
            let grace = killGracePeriod
            // A detached timer: the SIGKILL must happen even though the awaiting task is cancelled.
            Task.detached {
                try? await Task.sleep(for: grace)
                if process.isRunning { kill(pid, SIGKILL) }
            }
        }
        if process.isRunning { process.waitUntilExit() }
        pipe.fileHandleForReading.readabilityHandler = nil
        if stopped.load(ordering: .relaxed) { throw CancellationError() }
        let status = process.terminationStatus
        if process.terminationReason == .uncaughtSignal {
            throw ShellTaskError(message: "killed by signal \(status)" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        guard status == 0 else {
            throw ShellTaskError(message: "exited with code \(status)" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        return ["exit_code": .int(Int(status))]
    }
}

/// A shell task that could not start or did not exit with 0.
struct ShellTaskError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
