import DeerFlowCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit of open files (`ulimit -n`) against `api.max_connections`.
enum FileDescriptorLimit {
    /// Descriptors kept for the store, logs, tasks' pipes and the metrics listener's connections.
    static let reserve = 256

    /// A warning when the soft limit of open files leaves less than `api.max_connections` for
    /// the API's connections; nil when it does not, or the limit cannot be read.
    static func warning(for limits: ConnectionLimits) -> String? {
        var limit = rlimit()
        #if canImport(Glibc)
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        #else
        guard getrlimit(RLIMIT_NOFILE, &limit) == 0 else { return nil }
        #endif
        // RLIM_INFINITY is the largest value: never below the need.
        let soft = UInt64(limit.rlim_cur)
        guard soft < UInt64(limits.maxConnections + reserve) else { return nil }
        return "this process may open \(soft) files (ulimit -n) but api.max_connections is \(limits.maxConnections): "
            + "past about \(max(0, Int(soft) - reserve)) connections new ones fail instead of waiting; raise the limit "
            + "(systemd LimitNOFILE=, ulimit -n) to at least \(limits.maxConnections + reserve), or lower api.max_connections"
    }
}
