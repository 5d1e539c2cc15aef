import FleetBackoff

/// Decides whether a failed job runs again, and when (swift-jobs' `JobRetryStrategy`): the runtime asks it
/// with the attempt that failed and the error, so a strategy can treat errors differently.
public protocol JobRetryStrategy: Sendable {
    /// Whether attempt `attempt` (counted from 1), which failed with `error`, is retried.
    func shouldRetry(attempt: Int, error: JobError) -> Bool
    /// How long the job waits before attempt `attempt + 1`.
    func delay(afterAttempt attempt: Int, error: JobError) -> Duration
}

/// The default strategy: retryable errors are retried with exponential backoff and full jitter (the fleet's
/// ``Backoff``), for at most `maxAttempts` attempts in all; a delay the error asks for (a `Retry-After`) is
/// honoured when it is longer.
public struct RetryPolicy: JobRetryStrategy, Hashable {
    /// Attempts in all, the first included (1 = never retry).
    public var maxAttempts: Int
    public var baseDelay: Duration
    public var multiplier: Double
    public var maxDelay: Duration
    /// Full jitter picks the delay uniformly in [min(100 ms, backoff), backoff]; without it the delay is the backoff itself.
    public var jitter: Bool

    public init(maxAttempts: Int = 5, baseDelay: Duration = .seconds(1), multiplier: Double = 2,
                maxDelay: Duration = .seconds(3600), jitter: Bool = true) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The backoff this policy draws from.
    public var backoffCurve: Backoff {
        Backoff(base: baseDelay, factor: multiplier, cap: maxDelay, jitter: jitter ? .full(floor: .milliseconds(100)) : .none)
    }

    public func shouldRetry(attempt: Int, error: JobError) -> Bool { error.retryable && attempt < maxAttempts }

    public func delay(afterAttempt attempt: Int, error: JobError) -> Duration {
        let drawn = delay(afterAttempt: attempt)
        guard let asked = error.retryAfter else { return drawn }
        return max(asked, drawn)
    }

    /// Whether a failure of attempt `attempt` (counted from 1) should be retried, whatever the error.
    public func shouldRetry(afterAttempt attempt: Int) -> Bool { attempt < maxAttempts }

    /// The upper bound of the delay after attempt `attempt`: base × multiplier^(attempt-1), capped.
    public func backoff(afterAttempt attempt: Int) -> Duration { backoffCurve.bound(afterAttempt: attempt) }

    /// The delay to wait after attempt `attempt`, jittered when enabled: uniform in
    /// [min(100 ms, backoff), backoff], so that a storm of failures cannot spin.
    public func delay<G: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout G) -> Duration {
        backoffCurve.delay(afterAttempt: attempt, using: &generator)
    }

    public func delay(afterAttempt attempt: Int) -> Duration {
        var g = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &g)
    }
}
