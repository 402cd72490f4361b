import DeerFlowCore
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A task's process: spawned with `posix_spawn` in a process group of its own, with a clean
/// signal mask and default signal dispositions (Swift's threads block signals, and children
/// would inherit that), stdout and stderr on pipes of their own, stdin from /dev/null.
///
/// Output is read and the exit is awaited on plain threads, not on Swift concurrency's few
/// threads, so a task that floods its output or a group that ignores signals never starves the
/// engine. Stopping signals the whole group: SIGTERM, then SIGKILL after a grace period.
final class ChildProcess: Sendable {
    /// Which of the process's outputs a chunk came from.
    enum Stream: String, Sendable {
        case stdout, stderr
    }

    let pid: pid_t
    /// The read ends of the stdout and stderr pipes.
    private let outputDescriptors: [Int32]
    private let exitStatus = Mutex<(status: Int32?, waiter: CheckedContinuation<Int32, Never>?)>((nil, nil))
    private let readerDone = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    private let stopReading = Atomic<Bool>(false)
    /// The group's record in ``TaskProcessGroups``, removed when the process exits.
    private let record: TaskProcessGroups.Record?

    /// Spawns `argv[0]` (an absolute path) with `argv`; `onOutput` receives output chunks, with
    /// the stream each came from. With `groups`, the process group is recorded there while the
    /// process runs, so that a worker starting after this one was killed stops it.
    init(
        argv: [String], environment: [String: String], groups: TaskProcessGroups? = nil,
        onOutput: @escaping @Sendable (Stream, String) -> Void
    ) throws {
        var ends: [(read: Int32, write: Int32)] = []
        for _ in 0..<2 {
            var fds: [Int32] = [0, 0]
            guard pipe(&fds) == 0 else {
                let reason = String(cString: strerror(errno))
                for end in ends { close(end.read); close(end.write) }
                throw ChildProcessError(message: "pipe() failed: \(reason)")
            }
            // Neither end leaks into processes other threads spawn meanwhile (dup2 below clears
            // the flag on the child's stdout and stderr).
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            ends.append((fds[0], fds[1]))
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[0].write, 1)
        posix_spawn_file_actions_adddup2(&actions, ends[1].write, 2)
        InheritedDescriptors.closeAbove2(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let arguments = argv.map { strdup($0) } + [nil]
        let variables = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in variables { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, argv[0], &actions, &attributes, arguments, variables)
        for end in ends { close(end.write) }
        guard result == 0 else {
            for end in ends { close(end.read) }
            throw ChildProcessError(message: "could not start \(argv.first ?? "process"): \(String(cString: strerror(result)))")
        }
        pid = child
        outputDescriptors = ends.map(\.read)
        // Before the waiting thread starts: the process cannot have been reaped yet.
        record = groups?.record(leader: child)

        let startReader = Thread { [self] in self.readOutput(onOutput) }
        startReader.name = "deerflow-task-output"
        startReader.start()
        let startWaiter = Thread { [self] in self.waitForExit() }
        startWaiter.name = "deerflow-task-wait"
        startWaiter.start()
    }

    /// Waits for the process to exit; returns its `waitpid` status.
    func exit() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = exitStatus.withLock { state -> Int32? in
                if let status = state.status { return status }
                state.waiter = continuation
                return nil
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Waits until the output pipe is closed by every process holding it, or `timeout` passes
    /// (a background child may keep it open); then stops reading.
    func outputClosed(timeout: Duration) async {
        let closed = readerDone.withLock { $0.done }
        if closed { return }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.milliseconds))
        DispatchQueue.global().asyncAfter(deadline: deadline) { [self] in
            stopReading.store(true, ordering: .relaxed)
        }
        await withCheckedContinuation { continuation in
            let done = readerDone.withLock { state -> Bool in
                if state.done { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// SIGTERM to the whole process group, then SIGKILL after `grace` if any of it still runs.
    func terminate(grace: Duration) {
        kill(-pid, SIGTERM)
        let nanoseconds = Int(grace.nanoseconds)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [pid] in
            // The group outlives its leader when children remain; kill(-pgid, 0) tells.
            if kill(-pid, 0) == 0 { kill(-pid, SIGKILL) }
        }
    }

    private func readOutput(_ onOutput: @Sendable (Stream, String) -> Void) {
        let streams: [Stream] = [.stdout, .stderr]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        // A closed pipe's entry gets fd -1, which poll ignores.
        var descriptors = outputDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var pending: [[UInt8]] = [[], []]
        var draining = false
        var drainReads = 0
        reading: while descriptors.contains(where: { $0.fd >= 0 }) {
            // Told to stop (a background child keeps a pipe open): still take everything already
            // in the pipes, which a starved reader thread may not have read yet, then stop.
            if !draining && stopReading.load(ordering: .relaxed) { draining = true }
            let ready = poll(&descriptors, nfds_t(descriptors.count), draining ? 0 : 100)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 {
                if draining { break }
                continue
            }
            if draining {
                // A background child writing without end must not keep us here: at most 4 MiB.
                drainReads += 1
                if drainReads > 64 { break }
            }
            for index in descriptors.indices where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
                let count = read(descriptors[index].fd, &buffer, buffer.count)
                if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if count <= 0 {
                    close(descriptors[index].fd)
                    descriptors[index].fd = -1
                    continue
                }
                pending[index] += buffer[0..<count]
                // Hand over whole UTF-8 sequences only.
                var cut = pending[index].count
                while cut > 0 && cut > pending[index].count - 4 && (pending[index][cut - 1] & 0xC0) == 0x80 { cut -= 1 }
                if cut > 0 && pending[index][cut - 1] >= 0xC0 { cut -= 1 }
                if cut == 0 && pending[index].count >= 4 { cut = pending[index].count }
                if cut > 0 {
                    onOutput(streams[index], String(decoding: pending[index][0..<cut], as: UTF8.self))
                    pending[index].removeFirst(cut)
                }
                if draining { continue reading }
            }
        }
        for index in pending.indices where !pending[index].isEmpty {
            onOutput(streams[index], String(decoding: pending[index], as: UTF8.self))
        }
        for descriptor in descriptors where descriptor.fd >= 0 { close(descriptor.fd) }
        let waiter = readerDone.withLock { state -> CheckedContinuation<Void, Never>? in
            state.done = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func waitForExit() {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        record?.remove()
        let waiter = exitStatus.withLock { state -> CheckedContinuation<Int32, Never>? in
            state.status = status
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: status)
    }
}

/// Keeps a task process from inheriting DeerFlow's descriptors: its listening sockets, database
/// files and connections, and pipes of other processes. A task that leaves a daemon behind would
/// otherwise keep DeerFlow's ports bound after it exits, and hold pipes and sockets open whose
/// closing others wait for (Foundation's `Process` notices a child's exit that way).
enum InheritedDescriptors {
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc 2.34+ closes every descriptor from 3 up in the child, atomically with the spawn;
    /// Swift's Glibc module does not declare it, so it is looked up at run time.
    private static let closeFrom: CloseFrom? = {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
        #else
        return nil
        #endif
    }()

    /// Adds closing every descriptor above stderr to `actions` (after their dup2s).
    static func closeAbove2(_ actions: inout posix_spawn_file_actions_t) {
        if let closeFrom, closeFrom(&actions, 3) == 0 { return }
        // Older C libraries: close what is open now (descriptors opened by other threads from
        // here to the spawn are close-on-exec when they come from DeerFlow, NIO or SQLite).
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in listed.compactMap({ Int32($0) }) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }
}

/// A task process that could not be started.
struct ChildProcessError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Decoding `waitpid` statuses (the C macros are not available in Swift).
enum WaitStatus {
    static func exited(_ status: Int32) -> Bool { status & 0x7f == 0 }
    static func exitCode(_ status: Int32) -> Int32 { (status >> 8) & 0xff }
    static func signal(_ status: Int32) -> Int32 { status & 0x7f }
}
