import FleetCore
import Testing

@Suite("RetryPolicy")
struct RetryPolicyTests {
    @Test("the default backoff doubles from 1 s and is capped at 1 h")
    func defaultBackoff() {
        let policy = RetryPolicy()
        var expected: Duration = .seconds(1)
        for attempt in 1...12 {
            #expect(policy.backoff(afterAttempt: attempt) == expected, "attempt \(attempt)")
            expected *= 2
        }
        #expect(policy.backoff(afterAttempt: 12) == .seconds(2048))
        #expect(policy.backoff(afterAttempt: 13) == .seconds(3600))  // 4096 s, capped
        #expect(policy.backoff(afterAttempt: 50) == .seconds(3600))
        #expect(policy.backoff(afterAttempt: 10_000) == .seconds(3600))  // no overflow
    }

    @Test("backoff grows by the multiplier up to the cap", arguments: [
        (RetryPolicy(baseDelay: .milliseconds(200), multiplier: 3, maxDelay: .seconds(5)),
         [200, 600, 1800, 5000, 5000] as [Int64]),
        (RetryPolicy(baseDelay: .seconds(1), multiplier: 1.5, maxDelay: .seconds(10)),
         [1000, 1500, 2250, 3375, 5062, 7593, 10000]),
        (RetryPolicy(baseDelay: .milliseconds(500), multiplier: 1, maxDelay: .seconds(60)),
         [500, 500, 500]),
        (RetryPolicy(baseDelay: .seconds(10), multiplier: 2, maxDelay: .seconds(15)),
         [10000, 15000, 15000]),
    ])
    func customBackoff(policy: RetryPolicy, milliseconds: [Int64]) {
        for (index, ms) in milliseconds.enumerated() {
            #expect(policy.backoff(afterAttempt: index + 1) == .milliseconds(ms), "attempt \(index + 1)")
        }
    }

    @Test("backoff never decreases from one attempt to the next")
    func monotonic() {
        let policy = RetryPolicy(baseDelay: .milliseconds(150), multiplier: 2.5, maxDelay: .seconds(900))
        var previous: Duration = .zero
        for attempt in 1...40 {
            let b = policy.backoff(afterAttempt: attempt)
            #expect(b >= previous)
            #expect(b <= .seconds(900))
            previous = b
        }
    }

    @Test("jittered delays lie in [100 ms, backoff] and spread over the range", arguments: 1...13)
    func jitterBounds(attempt: Int) {
        let policy = RetryPolicy()
        let upper = policy.backoff(afterAttempt: attempt)
        var generator = SeededGenerator(seed: UInt64(attempt) &* 7919)
        var smallest = upper
        var largest: Duration = .zero
        var totalMs = 0.0
        let draws = 4000
        for _ in 0..<draws {
            let d = policy.delay(afterAttempt: attempt, using: &generator)
            #expect(d >= .milliseconds(100) && d <= upper, "\(d) outside [100 ms, \(upper)]")
            smallest = min(smallest, d)
            largest = max(largest, d)
            totalMs += Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        }
        // Full jitter: uniform over the whole range, not a fixed delay nor a narrow band.
        let upperMs = Double(upper.components.seconds) * 1000
        #expect(smallest < .milliseconds(Int64(100 + (upperMs - 100) * 0.05)))
        #expect(largest > .milliseconds(Int64(100 + (upperMs - 100) * 0.95)))
        let mean = totalMs / Double(draws)
        let expectedMean = (100 + upperMs) / 2
        #expect(abs(mean - expectedMean) < (upperMs - 100) * 0.05 + 1, "mean \(mean) ms, expected about \(expectedMean) ms")
    }

    @Test("the same seed gives the same delays; another seed gives other delays")
    func deterministic() {
        let policy = RetryPolicy()
        var a = SeededGenerator(seed: 1)
        var b = SeededGenerator(seed: 1)
        var c = SeededGenerator(seed: 2)
        let first = (0..<100).map { policy.delay(afterAttempt: 1 + $0 % 10, using: &a) }
        let second = (0..<100).map { policy.delay(afterAttempt: 1 + $0 % 10, using: &b) }
        let third = (0..<100).map { policy.delay(afterAttempt: 1 + $0 % 10, using: &c) }
        #expect(first == second)
        #expect(first != third)
    }

    @Test("without jitter the delay is the backoff itself")
    func noJitter() {
        let policy = RetryPolicy(baseDelay: .milliseconds(300), multiplier: 2, maxDelay: .seconds(2), jitter: false)
        var generator = SeededGenerator(seed: 9)
        for attempt in 1...6 {
            #expect(policy.delay(afterAttempt: attempt, using: &generator) == policy.backoff(afterAttempt: attempt))
        }
        #expect(policy.delay(afterAttempt: 3) == .milliseconds(1200))
    }

    @Test("the system-random delay stays within the bounds too")
    func systemRandom() {
        let policy = RetryPolicy()
        for attempt in 1...8 {
            for _ in 0..<50 {
                let d = policy.delay(afterAttempt: attempt)
                #expect(d >= .milliseconds(100) && d <= policy.backoff(afterAttempt: attempt))
            }
        }
    }

    @Test("shouldRetry: only attempts before the last one are retried", arguments: [
        (5, 1, true), (5, 4, true), (5, 5, false), (5, 6, false), (5, 100, false),
        (1, 1, false), (2, 1, true), (2, 2, false), (10, 9, true), (10, 10, false),
    ])
    func shouldRetry(maxAttempts: Int, attempt: Int, expected: Bool) {
        #expect(RetryPolicy(maxAttempts: maxAttempts).shouldRetry(afterAttempt: attempt) == expected)
    }

    @Test("the default policy allows 5 attempts in all")
    func defaultAttempts() {
        let policy = RetryPolicy()
        #expect((1...10).filter { policy.shouldRetry(afterAttempt: $0) } == [1, 2, 3, 4])
    }
}
