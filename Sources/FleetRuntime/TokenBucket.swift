import Synchronization

/// A token bucket that hands out sending slots at a ``RateLimit``, per process: up to one second's worth (at
/// least one) at once, then one every `1/rate` seconds. A job past the bucket is given a slot in the future and
/// told how long to wait for it; when it comes back (out of the delay queue) it finds its slot reserved under
/// its key and goes on without taking another. So a burst of N jobs over the rate is spread over N/rate seconds
/// with one wait each, rather than coming back all at once to be turned away again.
///
/// Time is passed in (`now`), so that tests drive it.
public final class TokenBucket: Sendable {
    /// What a job should do.
    public enum Admission: Sendable, Hashable {
        /// Go on now.
        case now
        /// The slot is this close: wait for it in process, then go on.
        case wait(Duration)
        /// The slot is later: run again after this long (the slot is kept under the job's key).
        case later(Duration)
    }

    public let rate: RateLimit
    /// Waits up to this long are taken in process; longer ones are deferrals.
    public let longestWait: Duration
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
        /// Slots handed to jobs that were told to come back, by key.
        var reserved: [String: ContinuousClock.Instant] = [:]
    }
    private let state: Mutex<State>
    /// Tokens the bucket holds at most.
    private let burst: Double
    private let perSecond: Double

    public init(rate: RateLimit, longestWait: Duration = .milliseconds(250), now: ContinuousClock.Instant = .now) {
        self.rate = rate
        self.longestWait = longestWait
        perSecond = rate.perSecond
        burst = max(1, perSecond.rounded(.down))
        state = Mutex(State(tokens: max(1, perSecond.rounded(.down)), last: now))
    }

    /// Takes a slot for the job `key`.
    public func admit(key: String, now: ContinuousClock.Instant = .now) -> Admission {
        let perSecond = self.perSecond, burst = self.burst, longestWait = self.longestWait
        return state.withLock { s in
            if let slot = s.reserved.removeValue(forKey: key) {
                // Back for the slot it was given.
                if slot <= now { return .now }
                let left = now.duration(to: slot)
                if left <= longestWait { return .wait(left) }
                s.reserved[key] = slot
                return .later(left)
            }
            let elapsed = s.last.duration(to: now)
            if elapsed > .zero {
                s.tokens = min(burst, s.tokens + perSecond * Self.seconds(elapsed))
                s.last = now
            }
            s.tokens -= 1
            if s.tokens >= 0 { return .now }
            // Whole microseconds, so that slots and waits add up exactly.
            let wait = Duration.microseconds(Int64((-s.tokens / perSecond * 1e6).rounded()))
            if wait <= longestWait { return .wait(wait) }
            if s.reserved.count > 100_000 { Self.prune(&s, now: now) }
            s.reserved[key] = now.advanced(by: wait)
            return .later(wait)
        }
    }

    /// Slots reserved and not yet claimed.
    public var reservedCount: Int { state.withLock { $0.reserved.count } }

    /// Forgets slots more than ten minutes past (their jobs went to another worker or were cancelled).
    private static func prune(_ s: inout State, now: ContinuousClock.Instant) {
        let cutoff = now.advanced(by: .seconds(-600))
        s.reserved = s.reserved.filter { $0.value >= cutoff }
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
