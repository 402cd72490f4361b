import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TCP listener a DeerFlow process opens.
struct Listener: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case api, metrics

        /// What listens, in messages.
        var name: String { self == .api ? "API" : "metrics endpoint" }
        /// The flag and file setting that choose the port.
        var settings: String { self == .api ? "--api-port or api.port in deerflow.yaml" : "--metrics-port or metrics.port in metrics.yaml" }
    }

    var kind: Kind
    var host: String
    var port: Int
}

/// A listener that cannot open: which one, where, why, and the setting that changes its port.
public struct ListenerUnavailable: Error, CustomStringConvertible {
    let listener: Listener
    /// Why, in words: `the port is in use`.
    let reason: String

    public var description: String {
        var text = "the \(listener.kind.name) cannot listen on \(listener.host):\(listener.port): \(reason)."
        if listener.kind == .metrics && listener.port == 9090 {
            text += " 9090 is also Prometheus' own default port: a Prometheus on this machine may hold it."
        }
        text += " Choose another port with \(listener.kind.settings) (0 picks a free one)."
        return text
    }
}

/// Checks, before any service starts, that each listener can open: a port in use stops the start
/// with one message naming the listener, its port and the setting that changes it, instead of
/// the first server's "listening" line, the bind error of the second and the shutdown of the rest.
package enum ListenerCheck {
    /// Throws for the first listener that cannot open (port 0, "any free port", always can).
    static func ensureAvailable(_ listeners: [Listener]) async throws {
        var seen: [Int: Listener] = [:]
        for listener in listeners where listener.port != 0 {
            if let other = seen[listener.port] {
                throw ListenerUnavailable(listener: listener, reason: "the \(other.kind.name) is configured on the same port")
            }
            seen[listener.port] = listener
            if let reason = await problem(host: listener.host, port: listener.port) {
                throw ListenerUnavailable(listener: listener, reason: reason)
            }
        }
    }

    /// Why a TCP listener on `host:port` cannot open, or nil when it can. Binds and closes at
    /// once, with the socket options the servers use (`SO_REUSEADDR`, so connections of an earlier
    /// process in TIME_WAIT do not count).
    package static func problem(host: String, port: Int) async -> String? {
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port)
                .get()
            try? await channel.close()
            return nil
        } catch let error as IOError {
            switch error.errnoCode {
            case EADDRINUSE: return "the port is in use by another process"
            case EACCES: return "permission denied (ports below 1024 need privileges)"
            case EADDRNOTAVAIL: return "\(host) is not an address of this machine"
            default: return String(cString: strerror(error.errnoCode))
            }
        } catch {
            return "\(error)"
        }
    }
}
