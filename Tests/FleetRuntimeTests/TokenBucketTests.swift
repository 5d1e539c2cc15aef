import FleetRuntime
import Testing

/// The token bucket behind `FLEET_EMAIL_SMTP_RATE`, on a time the test gives.
@Suite("Token bucket and rate limits")
struct TokenBucketTests {
    @Test("N/s, N/m, N/h parse; anything else is refused")
    func parsing() {
        #expect(RateLimit(parsing: "50/s") == RateLimit(count: 50, intervalSeconds: 1))
        #expect(RateLimit(parsing: "3000/m") == RateLimit(count: 3000, intervalSeconds: 60))
        #expect(RateLimit(parsing: " 100000/hour ") == RateLimit(count: 100_000, intervalSeconds: 3600))
        #expect(RateLimit(parsing: "3600/h")?.perSecond == 1)
        for bad in ["", "50", "0/s", "-1/s", "50/d", "1.5/s", "/s", "50/", "a/s"] {
            #expect(RateLimit(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test("a second's worth at once, then one slot per 1/rate: short waits in process, longer ones deferred to their slot")
    func slots() {
        let t0 = ContinuousClock.now
        let bucket = TokenBucket(rate: RateLimit(count: 50, intervalSeconds: 1), longestWait: .milliseconds(250), now: t0)
        for i in 0..<50 { #expect(bucket.admit(key: "j\(i)", now: t0) == .now) }
        // The 51st waits 20 ms, the 62nd 240 ms (in process); the 63rd 260 ms: deferred.
        #expect(bucket.admit(key: "j50", now: t0) == .wait(.milliseconds(20)))
        for i in 51..<61 { _ = bucket.admit(key: "j\(i)", now: t0) }
        #expect(bucket.admit(key: "j61", now: t0) == .wait(.milliseconds(240)))
        #expect(bucket.admit(key: "j62", now: t0) == .later(.milliseconds(260)))
        #expect(bucket.admit(key: "j63", now: t0) == .later(.milliseconds(280)))
        #expect(bucket.reservedCount == 2)
        // Back at its slot: goes on without taking another slot.
        #expect(bucket.admit(key: "j62", now: t0 + .milliseconds(260)) == .now)
        // Back early (by more than the in-process wait): its slot is kept.
        #expect(bucket.admit(key: "j63", now: t0) == .later(.milliseconds(280)))
        #expect(bucket.admit(key: "j63", now: t0 + .milliseconds(200)) == .wait(.milliseconds(80)))
        #expect(bucket.reservedCount == 0)
        // A newcomer queues behind every slot given out: the 65th slot is at 300 ms.
        #expect(bucket.admit(key: "new", now: t0 + .milliseconds(200)) == .wait(.milliseconds(100)))
    }

    @Test("over a long run the bucket hands out rate × time slots, plus the first second's burst")
    func longRun() {
        let t0 = ContinuousClock.now
        let bucket = TokenBucket(rate: RateLimit(count: 10, intervalSeconds: 1), now: t0)
        var admitted = 0
        // A job every 10 ms for 10 s, each going on only when admitted now.
        for i in 0..<1000 {
            if bucket.admit(key: "k\(i)", now: t0 + .milliseconds(10 * i)) == .now { admitted += 1 }
        }
        #expect(admitted <= 10 + 100)
        #expect(admitted >= 10)
    }

    @Test("slots whose jobs never came back (another process took them) are given back after the claim window")
    func unclaimedSlotsGivenBack() {
        let t0 = ContinuousClock.now
        let bucket = TokenBucket(rate: RateLimit(count: 10, intervalSeconds: 1), now: t0)
        // 100 jobs at once: 10 now, a few waits, the rest deferred to slots up to 9 s ahead.
        for i in 0..<100 { _ = bucket.admit(key: "k\(i)", now: t0) }
        #expect(bucket.reservedCount > 80)
        // 7 s later none came back here. Without giving back, a newcomer would queue behind every slot handed out
        // (2.1 s ahead); with the slots more than 5 s past given back (those before 2 s), well under a second.
        let admission = bucket.admit(key: "new", now: t0 + .seconds(7))
        switch admission {
        case .now: break
        case .wait(let d), .later(let d): #expect(d < .seconds(1), "\(admission)")
        }
        #expect(bucket.reservedCount < 80)
        // A job that does come back in time still finds its slot.
        let late = TokenBucket(rate: RateLimit(count: 1, intervalSeconds: 1), now: t0)
        _ = late.admit(key: "a", now: t0)
        #expect(late.admit(key: "b", now: t0) == .later(.seconds(1)))
        #expect(late.admit(key: "b", now: t0 + .seconds(3)) == .now)
    }

    @Test("per hour: one at once, the next an hour / N later")
    func perHour() {
        let t0 = ContinuousClock.now
        let bucket = TokenBucket(rate: RateLimit(count: 60, intervalSeconds: 3600), now: t0)
        #expect(bucket.admit(key: "a", now: t0) == .now)
        #expect(bucket.admit(key: "b", now: t0) == .later(.seconds(60)))
    }
}
