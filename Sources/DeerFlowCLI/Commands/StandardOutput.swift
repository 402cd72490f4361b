// C's `stdout` is a global variable: its module is imported @preconcurrency so the one reference
// below compiles in Swift 6 mode (it runs once, before any concurrency starts).
#if canImport(Glibc)
@preconcurrency import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output as the commands write it.
enum StandardOutput {
    /// Makes standard output line-buffered also when it is a pipe or a file (`| tee`, CI logs):
    /// C stdio, which `print` writes through, would otherwise hold up to 4 KiB (a progress line
    /// of `run --wait`, everything of a command stopped by a timeout) until the buffer fills or
    /// the process exits.
    static func flushEachLine() {
        setvbuf(stdout, nil, _IOLBF, 0)
    }
}
