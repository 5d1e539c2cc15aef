/// How a kind's retryable failures are retried: exponential backoff with full jitter, capped, for at
/// most `maxAttempts` attempts in all.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included (1 = never retry).
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var multiplier: Double
    public var maxDelay: Duration
    /// Full jitter picks the delay uniformly in [0, backoff]; without it the delay is the backoff itself.
    public var jitter: Bool

    public init(maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), multiplier: Double = 2,
                maxDelay: Duration = .seconds(3600), jitter: Bool = true) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// Whether a failure of attempt `attempt` (counted from 1) should be retried.
    public func shouldRetry(afterAttempt attempt: Int) -> Bool { attempt < maxAttempts }

    /// The upper bound of the delay after attempt `attempt`: base × multiplier^(attempt-1), capped.
    public func backoff(afterAttempt attempt: Int) -> Duration {
        let base = Double(baseDelay.components.seconds) + Double(baseDelay.components.attoseconds) / 1e18
        let cap = Double(maxDelay.components.seconds) + Double(maxDelay.components.attoseconds) / 1e18
        let value = min(cap, base * pow(multiplier, Double(max(0, attempt - 1))))
        return .milliseconds(Int64(value * 1000))
    }

    /// The delay to wait after attempt `attempt`, jittered when enabled: uniform in
    /// [min(100 ms, backoff), backoff], so that a storm of failures cannot spin.
    public func delay<G: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout G) -> Duration {
        let upper = backoff(afterAttempt: attempt)
        guard jitter else { return upper }
        let ms = upper.components.seconds * 1000 + upper.components.attoseconds / 1_000_000_000_000_000
        return .milliseconds(Int64.random(in: min(100, ms)...ms, using: &generator))
    }

    public func delay(afterAttempt attempt: Int) -> Duration {
        var g = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &g)
    }
}

import Foundation
