import Synchronization

/// Random numbers for identifiers and jitter: a SplitMix64 sequence seeded from the kernel once
/// per process.
///
/// Written here rather than taken from the standard library: `SystemRandomNumberGenerator` asks
/// the kernel for every number (a `getrandom` system call), and a run id took two, a finished
/// attempt's retry jitter one. The numbers are as unique as ids need (a 64-bit seed per process,
/// a sequence that repeats after 2^64 draws), not secret: never use them for tokens or keys.
///
/// ```swift
/// var random = ProcessRandom()
/// let jitter = Double.random(in: 0..<1, using: &random)
/// ```
public struct ProcessRandom: RandomNumberGenerator {
    private static let state = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    public init() {}

    public mutating func next() -> UInt64 {
        var z = Self.state.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
