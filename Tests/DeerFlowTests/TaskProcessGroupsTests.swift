@testable import DeerFlow
import DeerFlowTesting
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The record of running task process groups that lets a worker kill what a killed one left.
@Suite("Task process groups")
struct TaskProcessGroupsTests {
    static let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A process group of a shell and a `sleep` it started, recorded in `groups`.
    static func startGroup(_ groups: TaskProcessGroups) throws -> ChildProcess {
        try ChildProcess(argv: ["/bin/sh", "-c", "sleep 300 & wait"], environment: [:], groups: groups) { _, _ in }
    }

    /// The one record in the directory.
    static func record(in directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        return try #require(names.count == 1 ? names.first : nil, "records: \(names)")
    }

    @Test("a group whose owner is gone is killed and forgotten; one whose owner runs, or whose leader's pid now is another process's, is left alone")
    func killsOnlyOrphans() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let groups = TaskProcessGroups(directory: directory.file("groups"))
        let child = try Self.startGroup(groups)
        defer { child.terminate(grace: .zero) }
        let name = try Self.record(in: groups.directory)
        let parts = name.split(separator: ".").map(String.init)
        #expect(parts.count == 4 && parts[0] == "\(getpid())" && parts[2] == "\(child.pid)", "\(name)")

        // Its owner (this process) runs.
        #expect(groups.killOrphans(logger: Self.quiet) == 0)
        #expect(kill(child.pid, 0) == 0)

        // An owner with this pid but another start time is another, ended process; the leader's
        // start time does not match: the pid was reused by a process that is not the task's.
        let reused = "\(parts[0]).1.\(parts[2]).1"
        try FileManager.default.moveItem(atPath: groups.directory + "/" + name, toPath: groups.directory + "/" + reused)
        #expect(groups.killOrphans(logger: Self.quiet) == 0)
        #expect(kill(child.pid, 0) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: groups.directory).isEmpty, "a record of a reused pid is forgotten")

        // The owner gone, the leader's start time right: the whole group is killed.
        let orphan = "\(parts[0]).1.\(parts[2]).\(parts[3])"
        #expect(FileManager.default.createFile(atPath: groups.directory + "/" + orphan, contents: nil))
        #expect(groups.killOrphans(logger: Self.quiet) == 1)
        let status = await child.exit()
        #expect(WaitStatus.signal(status) == SIGKILL)
        #expect(try FileManager.default.contentsOfDirectory(atPath: groups.directory).isEmpty)
    }

    @Test("a task's record goes when its process exits")
    func recordRemovedAtExit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let groups = TaskProcessGroups(directory: directory.file("groups"))
        let go = directory.file("go")
        let child = try ChildProcess(argv: ["/bin/sh", "-c", "while [ ! -e '\(go)' ]; do sleep 0.01; done"], environment: [:], groups: groups) { _, _ in }
        _ = try Self.record(in: groups.directory)
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        #expect(WaitStatus.exitCode(await child.exit()) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: groups.directory).isEmpty)
    }

    @Test("records in a directory others can write to are neither written nor trusted")
    func untrustedDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("groups")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o777)
        let groups = TaskProcessGroups(directory: path)
        #expect(!groups.isUsable())
        let child = try Self.startGroup(groups)
        defer { child.terminate(grace: .zero) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: path).isEmpty, "nothing written")
        // A planted record naming a live group and an owner that is gone.
        #expect(FileManager.default.createFile(atPath: path + "/1.1.\(child.pid).\(TaskProcessGroups.startTime(of: child.pid) ?? 0)", contents: nil))
        #expect(groups.killOrphans(logger: Self.quiet) == 0)
        #expect(kill(child.pid, 0) == 0, "a planted record killed a process group")
    }
}
