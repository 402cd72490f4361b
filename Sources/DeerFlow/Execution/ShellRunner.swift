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
    ///   - outputLimit: the largest JSON the task may write to `$DEERFLOW_OUTPUT`, in bytes.
    ///   - forwarder: also gets every output line, for the process's log handlers.
    ///   - applyMetrics: applies what the task wrote to `$DEERFLOW_METRICS` (after it exits,
    ///     whatever its exit code); returns the rejected lines' messages, which go to the task log.
    /// - Returns: the JSON the task wrote to `$DEERFLOW_OUTPUT`, else `{"exit_code": 0}`.
    static func run(
        _ action: ShellAction, environment extra: [String: String], passthrough: [String], user: TaskUser?, log: TaskLog,
        killGracePeriod: Duration, outputLimit: Int, forwarder: TaskOutputForwarder? = nil,
        applyMetrics: (@Sendable (String) -> [String])? = nil
    ) async throws -> JSONValue {
        let output = try TaskOutputFile(user: user)
        defer { output.remove() }
        var extra = extra
        extra["DEERFLOW_OUTPUT"] = output.path
        // Always set, so `>> "$DEERFLOW_METRICS"` works in any task; applied only with metrics to update.
        extra["DEERFLOW_METRICS"] = output.metricsPath
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
            child = try ChildProcess(argv: argv, environment: environment, groups: .standard) { stream, text in
                log.append(text)
                forwarder?.append(stream, text)
            }
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
        forwarder?.finish()
        let updates = output.metricUpdates()
        if let problem = updates.problem { log.append("[deerflow] \(problem)\n") }
        if let text = updates.text {
            if let applyMetrics {
                for problem in applyMetrics(text) { log.append("[deerflow] $DEERFLOW_METRICS \(problem); the line was not applied\n") }
            } else {
                log.append("[deerflow] $DEERFLOW_METRICS was written, but metrics.yaml declares no custom_metrics; nothing was applied\n")
            }
        }
        if stopped.load(ordering: .relaxed) { throw CancellationError() }
        if !WaitStatus.exited(status) {
            throw ShellTaskError(message: "killed by signal \(WaitStatus.signal(status))" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        let code = WaitStatus.exitCode(status)
        guard code == 0 else {
            throw ShellTaskError(message: "exited with code \(code)" + (log.lastLine.map { ": \($0)" } ?? ""))
        }
        return try output.read(limit: outputLimit, redact: log.redact) ?? ["exit_code": .int(Int(code))]
    }
}

/// The file a shell task names its output in (`$DEERFLOW_OUTPUT`): in a directory of its own
/// (mode 0700, owned by the task's user), removed after the attempt.
struct TaskOutputFile {
    let directory: String
    /// The user the task runs as, who owns the directory and must own what is read from it.
    let owner: uid_t
    static let outputName = "output.json"
    static let metricsName = "metrics.txt"
    var path: String { directory + "/" + Self.outputName }
    /// `$DEERFLOW_METRICS`.
    var metricsPath: String { directory + "/" + Self.metricsName }
    /// Bytes of `$DEERFLOW_METRICS` read at most.
    static let metricsLimit = 1 << 20

    init(user: TaskUser?) throws {
        var template = Array((FileManager.default.temporaryDirectory.path + "/deerflow-task-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
        }
        guard let made else {
            throw ShellTaskError(message: "cannot create a directory for the task's output in \(FileManager.default.temporaryDirectory.path): \(String(cString: strerror(errno)))")
        }
        directory = made
        owner = user?.uid ?? geteuid()
        if let user, chown(directory, user.uid, user.gid) != 0 {
            let reason = String(cString: strerror(errno))
            remove()
            throw ShellTaskError(message: "cannot give the output directory to user \(user.name): \(reason)")
        }
    }

    /// The JSON the task wrote; nil when it wrote nothing.
    /// - Parameter redact: applied to the file's text before an excerpt of it goes into an error.
    /// - Throws: when the file is larger than `limit` bytes, is not JSON, or is not a regular
    ///   file of the task's own (a symbolic link, a FIFO), saying what to do.
    func read(limit: Int, redact: (String) -> String) throws -> JSONValue? {
        guard let data = try Self.readRegularFile(path, owner: owner, limit: limit + 1, name: "$DEERFLOW_OUTPUT") else { return nil }
        if data.count > limit {
            throw ShellTaskError(message: "the output in $DEERFLOW_OUTPUT is more than the limit of \(Self.bytes(limit)): put large data in storage and output its location")
        }
        let text = String(decoding: data, as: UTF8.self)
        guard !text.allSatisfy(\.isWhitespace) else { return nil }
        do {
            return try JSONValue(parsing: text)
        } catch {
            // Redacted whole, then cut: a cut secret would no longer be found.
            let redacted = redact(text).trimmingCharacters(in: .whitespacesAndNewlines)
            let excerpt = redacted.count > 80 ? "\(redacted.prefix(80))…" : redacted
            throw ShellTaskError(message: "the output in $DEERFLOW_OUTPUT is not JSON (\(excerpt)): write one JSON value, e.g. echo '{\"rows\": 3}' > \"$DEERFLOW_OUTPUT\"")
        }
    }

    /// What the task wrote to `$DEERFLOW_METRICS`: its complete lines within the first MiB (a
    /// line cut by the limit is left out rather than applied half), and a problem to log.
    func metricUpdates() -> (text: String?, problem: String?) {
        let data: Data?
        do {
            data = try Self.readRegularFile(metricsPath, owner: owner, limit: Self.metricsLimit + 1, name: "$DEERFLOW_METRICS")
        } catch {
            return (nil, "\(error)")
        }
        guard let data, !data.isEmpty else { return (nil, nil) }
        guard data.count > Self.metricsLimit else { return (String(decoding: data, as: UTF8.self), nil) }
        let complete = data.prefix(Self.metricsLimit)
        let end = complete.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? complete.startIndex
        return (String(decoding: complete[..<end], as: UTF8.self), "$DEERFLOW_METRICS is longer than \(Self.bytes(Self.metricsLimit)); the rest was not applied")
    }

    /// At most `limit` bytes of the file at `path`, read only when it is a regular file owned by
    /// `owner`: not through a symbolic link (a task running as another user must not make
    /// DeerFlow read a file it may not), and never blocking on a FIFO. nil when there is no file.
    static func readRegularFile(_ path: String, owner: uid_t, limit: Int, name: String) throws -> Data? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw ShellTaskError(message: "\(name) is a symbolic link; write into the file itself") }
            throw ShellTaskError(message: "cannot read \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw ShellTaskError(message: "\(name) is not a regular file; write into the file itself")
        }
        guard status.st_uid == owner else {
            throw ShellTaskError(message: "\(name) belongs to another user; write into the file itself")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while data.count < limit {
            let count = Glibc.read(descriptor, &buffer, min(buffer.count, limit - data.count))
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return data
    }

    /// Removes the directory: the two files by name through the directory (not following a link
    /// put in its place), then whatever else the task left, without following links.
    func remove() {
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = unlinkat(directoryDescriptor, Self.outputName, 0)
            _ = unlinkat(directoryDescriptor, Self.metricsName, 0)
            close(directoryDescriptor)
        }
        if rmdir(directory) != 0 {
            // Something else is in it: FileManager removes symbolic links themselves, not their targets.
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    static func bytes(_ count: Int) -> String {
        count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / Double(1 << 20)) : (count >= 1024 ? "\(count / 1024) KiB" : "\(count) bytes")
    }
}

/// A shell task that could not start or did not exit with 0.
struct ShellTaskError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
