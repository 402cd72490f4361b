/// How a failed attempt is retried: up to `retries` more attempts, after an exponential backoff
/// starting at `delay`, doubling each time, capped at `maxDelay`, with jitter.
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// Number of retries after the first attempt (0: no retry).
    public var retries: Int
    /// Delay before the first retry.
    public var delay: Duration
    /// Upper bound of the delay.
    public var maxDelay: Duration
    /// Fraction of the delay that is randomised (0: none; 0.5, the default: delay × [0.5, 1.0]).
    public var jitter: Double

    public init(retries: Int, delay: Duration = .seconds(1), maxDelay: Duration = .seconds(300), jitter: Double = 0.5) {
        self.retries = retries
        self.delay = delay
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// No retries.
    public static let none = RetryPolicy(retries: 0)

    /// Whether the attempt numbered `attempt` (1-based) may be followed by another.
    public func allowsRetry(after attempt: Int) -> Bool {
        attempt <= retries
    }

    /// Backoff before attempt `attempt + 1`, given a uniform random number in [0, 1).
    ///
    /// `delay × 2^(attempt-1)`, capped at `maxDelay`, then reduced by up to `jitter` of itself.
    public func backoff(after attempt: Int, random: Double) -> Duration {
        let base = delay.seconds
        let cap = maxDelay.seconds
        let exponent = Double(max(0, attempt - 1))
        let raw = min(cap, base * pow2(exponent))
        let jittered = raw * (1 - jitter * min(max(random, 0), 1))
        // Saturating: definitions are validated against Limits, but a policy built in code or
        // read from an old row must not trap here.
        let milliseconds = (jittered * 1000).rounded()
        guard milliseconds.isFinite, milliseconds < 9e15 else { return .milliseconds(Int64(9e15)) }
        return .milliseconds(Int64(max(0, milliseconds)))
    }

    private func pow2(_ exponent: Double) -> Double {
        exponent >= 62 ? Double.greatestFiniteMagnitude : Double(UInt64(1) << UInt64(exponent))
    }
}
