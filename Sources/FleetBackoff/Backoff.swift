/// Exponential backoff with jitter: the fleet's one implementation, for job retries (FleetCore's `RetryPolicy`)
/// and for reconnecting to the broker (AMQPClient).
///
/// After attempt `n` (counted from 1) the bound is `base × factor^(n−1)`, capped at `cap`; the delay is drawn
/// under that bound by the ``Jitter`` mode, so that many clients failing together do not retry in lock step.
public struct Backoff: Sendable, Hashable {
    /// How the delay is drawn under the bound `b`.
    public enum Jitter: Sendable, Hashable {
        /// Exactly `b`.
        case none
        /// Uniform in [min(floor, b), b] ("full jitter"; the floor keeps a storm of failures from spinning).
        case full(floor: Duration)
        /// `b/2` plus uniform in [0, b/2] ("equal jitter": never less than half the bound).
        case equal
    }

    public var base: Duration
    public var factor: Double
    public var cap: Duration
    public var jitter: Jitter

    public init(base: Duration, factor: Double = 2, cap: Duration, jitter: Jitter) {
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
    }

    /// The bound after attempt `attempt`: `base × factor^(attempt−1)`, capped, in whole milliseconds.
    public func bound(afterAttempt attempt: Int) -> Duration {
        let capMs = Double(cap.milliseconds)
        var value = Double(base.milliseconds)
        // Grows until the cap; a factor of 1 or less does not grow, so it needs no more steps than that.
        var steps = factor > 1 ? max(0, attempt - 1) : 0
        while steps > 0 && value < capMs {
            value *= factor
            steps -= 1
        }
        return .milliseconds(Int64(min(value, capMs)))
    }

    /// The delay after attempt `attempt`, drawn with `generator`.
    public func delay<G: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout G) -> Duration {
        let b = bound(afterAttempt: attempt)
        let ms = b.milliseconds
        switch jitter {
        case .none:
            return b
        case .full(let floor):
            return .milliseconds(Int64.random(in: min(floor.milliseconds, ms)...ms, using: &generator))
        case .equal:
            return .milliseconds(ms / 2 + Int64.random(in: 0...(ms - ms / 2), using: &generator))
        }
    }

    /// The delay after attempt `attempt`, drawn with the system's generator.
    public func delay(afterAttempt attempt: Int) -> Duration {
        var g = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &g)
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a `Double`.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
