import FleetBackoff
import Synchronization

/// A token bucket that hands out sending slots at a ``RateLimit``, per process: up to one second's worth (at
/// least one) at once, then one every `1/rate` seconds. A job past the bucket is given a slot in the future and
/// told how long to wait for it; when it comes back (out of the delay queue) it finds its slot reserved under
/// its key and goes on without taking another. So a burst of N jobs over the rate is spread over N/rate seconds
/// with one wait each, rather than coming back all at once to be turned away again.
///
/// With several worker processes a deferred job may come back to another one, which takes a slot of its own: the
/// slot reserved here then goes unused. Slots not claimed within ``claimWindow`` after their time are given back
/// to the bucket (up to its size), so such holes cost a few seconds of rate, never more than the rate.
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
    /// How long after its time a reserved slot waits for its job before it is given back.
    public let claimWindow: Duration = .seconds(5)
    private struct State {
        var tokens: Double
        var last: ContinuousClock.Instant
        /// Slots handed to jobs that were told to come back, by key.
        var reserved: [String: ContinuousClock.Instant] = [:]
        /// When the reservations were last looked through for unclaimed slots.
        var lastSweep: ContinuousClock.Instant
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
        state = Mutex(State(tokens: max(1, perSecond.rounded(.down)), last: now, lastSweep: now))
    }

    /// Takes a slot for the job `key`.
    public func admit(key: String, now: ContinuousClock.Instant = .now) -> Admission {
        let perSecond = self.perSecond, burst = self.burst, longestWait = self.longestWait, claimWindow = self.claimWindow
        return state.withLock { s in
            if !s.reserved.isEmpty && s.lastSweep.duration(to: now) >= .seconds(1) {
                // Slots their jobs did not come back for (they went to another process): given back.
                s.lastSweep = now
                let cutoff = now.advanced(by: .zero - claimWindow)
                let unclaimed = s.reserved.filter { $0.value < cutoff }
                if !unclaimed.isEmpty {
                    for key in unclaimed.keys { s.reserved.removeValue(forKey: key) }
                    s.tokens = min(burst, s.tokens + Double(unclaimed.count))
                }
            }
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
                s.tokens = min(burst, s.tokens + perSecond * elapsed.seconds)
                s.last = now
            }
            s.tokens -= 1
            if s.tokens >= 0 { return .now }
            // Whole microseconds, so that slots and waits add up exactly.
            let wait = Duration.microseconds(Int64((-s.tokens / perSecond * 1e6).rounded()))
            if wait <= longestWait { return .wait(wait) }
            s.reserved[key] = now.advanced(by: wait)
            return .later(wait)
        }
    }

    /// Slots reserved and not yet claimed.
    public var reservedCount: Int { state.withLock { $0.reserved.count } }
}
