import DeerFlow
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a process running tasks does to keep them from reading its secrets.
package enum ProcessHardening {
    /// Marks the process not dumpable (`prctl(PR_SET_DUMPABLE, 0)`): its `/proc/<pid>/environ`,
    /// `cmdline` and memory are then closed to processes of the same user that are not root,
    /// such as the tasks it starts. Linux only; elsewhere it does nothing.
    ///
    /// Called by `deerflow server`, `worker` and `demo`, not by the library: a test process that
    /// embeds DeerFlow stays attachable by its debugger.
    package static func closeProcFiles() {
        #if os(Linux)
        _ = prctl?(4 /* PR_SET_DUMPABLE */, 0, 0, 0, 0)
        #endif
    }

    #if os(Linux)
    /// prctl is variadic in C, which Swift cannot call: its fixed-argument form is looked up
    /// instead (glibc's callers pass five words), as `ChildProcess` does with closefrom.
    private typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    private static let prctl: Prctl? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl").map { unsafeBitCast($0, to: Prctl.self) }
    #endif

    /// The user `worker.run_as` names, for shell tasks to run as.
    ///
    /// - Throws: a message saying what to do when the user does not exist, this process cannot
    ///   switch users (it is not root), or `setpriv` (util-linux) is missing.
    static func taskUser(named name: String) throws -> TaskUser {
        guard let entry = getpwnam(name) else {
            throw DeerFlowError(.badRequest, "worker.run_as: there is no user '\(name)' on this machine (create it, e.g. useradd --system \(name))")
        }
        let user = TaskUser(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: String(cString: entry.pointee.pw_dir))
        guard geteuid() == 0 else {
            throw DeerFlowError(.badRequest, "worker.run_as: running tasks as '\(name)' needs DeerFlow to run as root (it runs as uid \(geteuid())); remove worker.run_as or start DeerFlow as root")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            throw DeerFlowError(.badRequest, "worker.run_as needs /usr/bin/setpriv (Debian package util-linux) to start tasks as '\(name)'")
        }
        return user
    }
}
