import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process groups of running task processes, written down on this machine so that a DeerFlow
/// process started later can stop what a killed one left running.
///
/// A task's process group survives a worker killed with SIGKILL: `setpriv --pdeathsig` kills the
/// process DeerFlow started, but not what that process started in turn (a shell's commands),
/// which live on while the attempt is retried and would then run twice at once. Each task
/// process group is recorded as an empty file, `<owner pid>.<owner start>.<group>.<leader start>`,
/// in one directory per user (start times are the kernel's, from `/proc/PID/stat`, so a pid that
/// was reused is told apart). The file goes when the task's process exits. A worker starting on
/// this machine sends SIGKILL to every recorded group whose owner is gone, before it claims work.
///
/// Linux only (it reads `/proc`); elsewhere nothing is recorded. Processes that left the group
/// (`setsid`, daemons) are not found; neither are groups of a machine that never runs DeerFlow
/// again.
struct TaskProcessGroups: Sendable {
    /// Where the records are: `$TMPDIR/deerflow-task-groups-<uid>`.
    let directory: String

    /// The records of every DeerFlow process of this user on this machine.
    static let standard = TaskProcessGroups(
        directory: FileManager.default.temporaryDirectory.path + "/deerflow-task-groups-\(geteuid())")

    /// This process, as owners are named: `<pid>.<start>`; nil without `/proc`.
    private static let owner: String? = startTime(of: getpid()).map { "\(getpid()).\($0)" }

    /// A recorded group, removed by ``remove()``.
    struct Record: Sendable {
        let path: String

        /// Forgets the group: its task's process exited.
        func remove() {
            unlink(path)
        }
    }

    /// Records the group led by `leader` (a task process just spawned, not yet waited for, so its
    /// `/proc` entry is there); nil when it cannot be recorded (no `/proc`, an unwritable
    /// directory): the task runs anyway.
    func record(leader: pid_t) -> Record? {
        guard let owner = Self.owner, let start = Self.startTime(of: leader), isUsable() else { return nil }
        let path = "\(directory)/\(owner).\(leader).\(start)"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return nil }
        close(descriptor)
        return Record(path: path)
    }

    /// Kills the recorded groups whose owner is gone and forgets them; returns how many groups
    /// still had processes.
    @discardableResult
    func killOrphans(logger: Logger) -> Int {
        // Records are trusted only in a directory no one else can write: another user who could
        // plant one would have this process kill a process group of their choosing.
        guard isUsable() else {
            logger.warning("cannot keep a record of task processes: the directory is not this user's alone, so a killed worker's tasks' children are not stopped at the next start; remove it or set TMPDIR", metadata: [
                "directory": "\(directory)",
            ])
            return 0
        }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return 0 }
        var killed = 0
        for name in names {
            let parts = name.split(separator: ".")
            guard parts.count == 4, let ownerPID = pid_t(parts[0]), let ownerStart = UInt64(parts[1]),
                  let group = pid_t(parts[2]), let leaderStart = UInt64(parts[3]), group > 1
            else { continue }
            // The owner still runs: its tasks are its business.
            if Self.startTime(of: ownerPID) == ownerStart { continue }
            // A leader alive with another start time is a new process that got the pid: not ours.
            // A leader gone while its group lives on cannot have been reused (a pid stays taken
            // while a group carries its number).
            if let start = Self.startTime(of: group), start != leaderStart {
                unlink(directory + "/" + name)
                continue
            }
            if kill(-group, 0) == 0, kill(-group, SIGKILL) == 0 {
                killed += 1
                logger.warning("killed the processes of a task whose worker died without stopping them", metadata: [
                    "process_group": "\(group)", "worker_pid": "\(ownerPID)",
                ])
            }
            unlink(directory + "/" + name)
        }
        return killed
    }

    /// Whether the directory is there (made if missing, mode 0700) as a real directory of this
    /// user's that no one else can write to.
    func isUsable() -> Bool {
        var info = stat()
        if lstat(directory, &info) != 0 {
            guard errno == ENOENT, mkdir(directory, 0o700) == 0 || errno == EEXIST, lstat(directory, &info) == 0 else { return false }
        }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }

    /// The process's start time in clock ticks after boot (`/proc/PID/stat`, field 22); nil when
    /// there is no such process (or no `/proc`).
    static func startTime(of pid: pid_t) -> UInt64? {
        #if os(Linux)
        // Read directly: /proc files report a size of 0.
        let descriptor = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[..<count], as: UTF8.self)
        // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
        guard let nameEnd = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: nameEnd)...].split(separator: " ")
        // fields[0] is field 3, the state (a zombie has ended: no start time); field 22 is fields[19].
        guard fields.count > 19, fields[0] != "Z" else { return nil }
        return UInt64(fields[19])
        #else
        return nil
        #endif
    }
}
