/// How long an HTTP listener waits for a client, and how many connections it holds open:
/// `api.header_timeout`, `api.body_timeout`, `api.idle_timeout` and `api.max_connections` of
/// `deerflow.yaml`. They apply to the API listener and to the metrics listener.
///
/// ```yaml
/// api:
///   header_timeout: 10s    # a new connection's first request head must arrive within this
///   body_timeout: 30s      # a request's body must arrive within this after its head
///   idle_timeout: 75s      # a kept-alive connection's next request head must arrive within this
///   max_connections: 1024  # past this, new connections wait in the listen backlog
/// ```
///
/// A connection that misses a deadline is closed. While a request is being answered (a long
/// `?follow=true` log, a slow store) no deadline runs: these bound what a client sends, not what
/// the server does.
public struct ConnectionLimits: Sendable, Hashable {
    /// Time from the opening of a connection to the end of its first request's head; default
    /// 10 s, far more than any client on a working network needs, and it frees a slot held by a
    /// client sending its headers a byte at a time within seconds.
    public var headerTimeout: Duration = .seconds(10)
    /// Time from the end of a request's head to the end of its body; default 30 s, so the largest
    /// accepted body (1 MiB) needs about 35 KB/s.
    public var bodyTimeout: Duration = .seconds(30)
    /// Time from the end of a response to the end of the next request's head on the same
    /// connection; default 75 s, longer than the 60 s idle timeout of common load balancers
    /// (AWS ALB, Google Cloud), so the proxy, not DeerFlow, closes an idle pooled connection and
    /// never sends a request on one DeerFlow is closing.
    public var idleTimeout: Duration = .seconds(75)
    /// Connections open at once; default 1,024. Past it the listener stops accepting, and new
    /// connections wait in the kernel's backlog until one closes (the timeouts close stuck ones).
    /// Each connection is a file descriptor: keep the process's limit (`ulimit -n`, systemd's
    /// `LimitNOFILE`) well above it.
    public var maxConnections: Int = 1024

    public init() {}
}

extension Limits {
    /// `api.header_timeout`, `api.body_timeout` and `api.idle_timeout`.
    public static let connectionTimeout: ClosedRange<Duration> = .milliseconds(100) ... .seconds(3_600)
    /// `api.max_connections`.
    public static let connections: ClosedRange<Int> = 1...1_000_000
}
