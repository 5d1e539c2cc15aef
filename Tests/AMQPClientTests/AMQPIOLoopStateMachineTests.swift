@testable import AMQPClient
import Testing

/// The I/O loop's connection state machine, driven with plain values (an Int for the connection, a String for
/// a publish): no broker, no thread, no clock.
///
/// Mutating calls cannot sit inside `#expect`, so each is made first, in a `do` block.
@Suite struct AMQPIOLoopStateMachineTests {
    typealias Machine = AMQPIOLoop.StateMachine<Int, String>

    /// A fixed instant: deadlines are compared against it, never against the clock.
    static let now = ContinuousClock.now

    static func machine(retry: Bool = true, initial: Duration = .milliseconds(200), max: Duration = .seconds(1)) -> Machine {
        Machine(retryFirstConnect: retry, reconnectInitialDelay: initial, reconnectMaxDelay: max)
    }

    /// Logs in on `connection` and sets it up: connected. Returns the generation.
    @discardableResult
    static func connect(_ m: inout Machine, _ connection: Int) -> UInt64 {
        m.connectionOpened(connection)
        let selected = m.confirmsSelected()
        let generation = m.connectSucceeded()
        #expect(selected == generation)
        return generation
    }

    /// A small deterministic generator (SplitMix64), so that backoff draws repeat from run to run.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // MARK: - Connecting and the backoff

    @Test("each failed connect waits for the next attempt: attempts count up, the equal-jitter delay doubles up to the cap")
    func connectFailuresBackOff() {
        var m = Self.machine(initial: .milliseconds(200), max: .seconds(1))
        var random = SeededGenerator(state: 42)
        do { let next = m.nextLoopAction(); #expect(next == .connect) }
        // Exponential 200, 400, 800, then capped at 1000: each delay is half of it plus up to the other half.
        for attempt in 1...40 {
            let action = m.connectFailed(now: Self.now, using: &random)
            guard case .waitToReconnect(nil, attempt, let delay, let until) = action else {
                Issue.record("attempt \(attempt): \(action)")
                return
            }
            let exponential = attempt <= 3 ? 200 << (attempt - 1) : 1000
            #expect(delay >= exponential / 2 && delay <= exponential, "attempt \(attempt): delay \(delay) ms")
            #expect(until == Self.now + .milliseconds(delay))
            #expect(m.state == .waitingToReconnect(attempt: attempt, until: until, lastGeneration: 0))
            do { let next = m.nextLoopAction(); #expect(next == .waitToReconnect(until: until)) }
            m.reconnectDelayElapsed()
            #expect(m.state == .connecting(attempt: attempt, lastGeneration: 0))
            do { let next = m.nextLoopAction(); #expect(next == .connect) }
        }
    }

    @Test("the jitter spreads delays over the whole upper half, not one point")
    func jitterSpreads() {
        var random = SeededGenerator(state: 7)
        var delays: Set<Int> = []
        for _ in 0..<200 {
            var m = Self.machine(initial: .seconds(10), max: .seconds(10))
            if case .waitToReconnect(_, _, let delay, _) = m.connectFailed(now: Self.now, using: &random) { delays.insert(delay) }
        }
        #expect(delays.allSatisfy { (5_000...10_000).contains($0) })
        #expect(delays.count > 100, "\(delays.count) distinct delays of 200")
        #expect(delays.contains { $0 < 6_000 } && delays.contains { $0 > 9_000 })
    }

    @Test("without retryUntilConnected the first failed connect is final: fail the caller, then finish")
    func firstConnectFailureIsFinal() {
        var m = Self.machine(retry: false)
        var random = SeededGenerator(state: 1)
        do { let action = m.connectFailed(now: Self.now, using: &random); #expect(action == .failFirstConnect(tearDown: nil)) }
        #expect(m.state == .stopping(nil))
        #expect(m.synchronousCall == .failClosed)
        do { let next = m.nextLoopAction(); #expect(next == .finish(nil, closeHandshake: true, failHeld: [])) }
        #expect(m.state == .stopped)
    }

    @Test("without retryUntilConnected, a first connect that fails while being set up drops its connection and is final")
    func firstConnectSetUpFailure() {
        var random = SeededGenerator(state: 1)
        // The broker closed the connection during channel.open: lost (reported with generation 0), then failed.
        var lost = Self.machine(retry: false)
        lost.connectionOpened(7)
        do {
            let action = lost.connectionLost(reason: "channel.open: refused")
            #expect(action == .tearDown(7, generation: 0, reason: "channel.open: refused", failHeld: []))
        }
        do { let action = lost.connectFailed(now: Self.now, using: &random); #expect(action == .failFirstConnect(tearDown: nil)) }
        // A failure that did not lose the connection: the connect's failure drops it.
        var failed = Self.machine(retry: false)
        failed.connectionOpened(8)
        do { let action = failed.connectFailed(now: Self.now, using: &random); #expect(action == .failFirstConnect(tearDown: 8)) }
        #expect(failed.connection == nil)
    }

    @Test("once connected, a failed reconnect always retries, even without retryUntilConnected")
    func reconnectsAlwaysRetry() {
        var m = Self.machine(retry: false)
        var random = SeededGenerator(state: 3)
        #expect(Self.connect(&m, 1) == 1)
        do { let action = m.connectionLost(reason: "gone"); #expect(action == .tearDown(1, generation: 1, reason: "gone", failHeld: [])) }
        // The first reconnect is immediate.
        #expect(m.state == .connecting(attempt: 0, lastGeneration: 1))
        do { let next = m.nextLoopAction(); #expect(next == .connect) }
        let action = m.connectFailed(now: Self.now, using: &random)
        guard case .waitToReconnect(nil, 1, _, _) = action else {
            Issue.record("\(action)")
            return
        }
    }

    @Test("generations count connections; the attempts of a connect lost while being set up go on counting")
    func generationsAndAttempts() {
        var m = Self.machine()
        var random = SeededGenerator(state: 5)
        _ = m.connectFailed(now: Self.now, using: &random)
        m.reconnectDelayElapsed()
        // Logged in, then lost while redeclaring: attempt 1 failed again.
        m.connectionOpened(10)
        #expect(m.live?.generation == 0)
        #expect(m.synchronousCall == .call(10))
        do { let generation = m.confirmsSelected(); #expect(generation == 1) }
        do { let action = m.connectionLost(reason: "declare"); #expect(action == .tearDown(10, generation: 1, reason: "declare", failHeld: [])) }
        #expect(m.state == .connecting(attempt: 1, lastGeneration: 1))
        guard case .waitToReconnect(nil, 2, _, _) = m.connectFailed(now: Self.now, using: &random) else {
            Issue.record("not the second attempt: \(m.state)")
            return
        }
        m.reconnectDelayElapsed()
        #expect(Self.connect(&m, 11) == 2)
        #expect(m.live?.connection == 11 && m.live?.generation == 2)
        do { let next = m.nextLoopAction(); #expect(next == .service(11)) }
        // A connection that was set up resets the attempts: the next loss reconnects at once.
        _ = m.connectionLost(reason: "gone")
        #expect(m.state == .connecting(attempt: 0, lastGeneration: 2))
        #expect(Self.connect(&m, 12) == 3)
    }

    // MARK: - Blocked, held publishes

    @Test("blocked: publishes are held; unblocked releases them in order, and later publishes go out at once")
    func blockedHoldsUnblockedReleases() {
        var m = Self.machine()
        Self.connect(&m, 1)
        do { let action = m.publishRequested("a"); #expect(action == .send(1, "a")) }
        m.blocked()
        for publish in ["b", "c", "d"] {
            do { let action = m.publishRequested(publish); #expect(action == .hold) }
        }
        guard case .connected(let connected) = m.state else {
            Issue.record("\(m.state)")
            return
        }
        #expect(connected.blocked && connected.held == ["b", "c", "d"])
        do { let released = m.unblocked(); #expect(released == ["b", "c", "d"]) }
        do { let action = m.publishRequested("e"); #expect(action == .send(1, "e")) }
        do { let released = m.unblocked(); #expect(released == []) }
        #expect(m.state == .connected(.init(connection: 1, generation: 1)))
    }

    @Test("lost while blocked: the held publishes fail; the next connection starts unblocked")
    func lostWhileBlockedFailsHeld() {
        var m = Self.machine()
        Self.connect(&m, 1)
        m.blocked()
        _ = m.publishRequested("a")
        _ = m.publishRequested("b")
        do {
            let action = m.connectionLost(reason: "heartbeat timeout")
            #expect(action == .tearDown(1, generation: 1, reason: "heartbeat timeout", failHeld: ["a", "b"]))
        }
        // Reconnecting: publishes fail fast; a second loss report has nothing to tear down.
        do { let action = m.publishRequested("c"); #expect(action == .failNotConnected("c")) }
        do { let action = m.connectionLost(reason: "again"); #expect(action == ConnectionLost.none) }
        Self.connect(&m, 2)
        do { let action = m.publishRequested("d"); #expect(action == .send(2, "d")) }
    }

    typealias ConnectionLost = Machine.ConnectionLostAction

    // MARK: - The control channel

    @Test("the control channel opens on demand, closes on a channel error, and is closed on a new connection")
    func controlChannel() {
        var m = Self.machine()
        #expect(m.synchronousCall == .failNotConnected)
        #expect(!m.controlChannelOpen)
        Self.connect(&m, 1)
        #expect(m.synchronousCall == .call(1))
        #expect(!m.controlChannelOpen)
        m.controlChannelOpened()
        #expect(m.controlChannelOpen)
        m.controlChannelClosed()
        #expect(!m.controlChannelOpen)
        m.controlChannelOpened()
        _ = m.connectionLost(reason: "gone")
        #expect(!m.controlChannelOpen)
        m.controlChannelOpened()  // without a connection: nothing to open
        Self.connect(&m, 2)
        #expect(!m.controlChannelOpen)
    }

    // MARK: - Stopping

    @Test("stop while waiting to reconnect: no further attempt; the loop finishes without a connection")
    func stopWhileWaiting() {
        var m = Self.machine()
        var random = SeededGenerator(state: 9)
        _ = m.connectFailed(now: Self.now, using: &random)
        m.stopRequested()
        #expect(m.state == .stopping(nil))
        // The rest of the pass: calls fail with .closed, publishes with .notConnected (no connection).
        #expect(m.synchronousCall == .failClosed)
        do { let action = m.publishRequested("late"); #expect(action == .failNotConnected("late")) }
        m.reconnectDelayElapsed()
        do { let next = m.nextLoopAction(); #expect(next == .finish(nil, closeHandshake: true, failHeld: [])) }
        #expect(m.state == .stopped)
        m.stopRequested()
        #expect(m.state == .stopped)
    }

    @Test("stop before the first connect succeeded (retryUntilConnected): the loop finishes")
    func stopDuringFirstConnectAttempts() {
        var m = Self.machine(retry: true)
        m.stopRequested()
        do { let next = m.nextLoopAction(); #expect(next == .finish(nil, closeHandshake: true, failHeld: [])) }
    }

    @Test("stop while connected: the pass goes on (publishes sent or held, calls fail .closed); then close (no handshake while blocked), failing the held")
    func stopWhileConnected() {
        var m = Self.machine()
        Self.connect(&m, 1)
        m.blocked()
        _ = m.publishRequested("a")
        m.stopRequested()
        #expect(m.synchronousCall == .failClosed)
        #expect(m.live?.connection == 1 && m.live?.generation == 1)
        do { let action = m.publishRequested("b"); #expect(action == .hold) }
        do { let next = m.nextLoopAction(); #expect(next == .finish(1, closeHandshake: false, failHeld: ["a", "b"])) }
        #expect(m.state == .stopped)
        #expect(m.connection == nil)

        var unblocked = Self.machine()
        Self.connect(&unblocked, 2)
        unblocked.stopRequested()
        do { let action = unblocked.publishRequested("c"); #expect(action == .send(2, "c")) }
        do { let next = unblocked.nextLoopAction(); #expect(next == .finish(2, closeHandshake: true, failHeld: [])) }
    }

    @Test("lost after the stop was requested: torn down as lost, then the loop finishes without a connection")
    func lostWhileStopping() {
        var m = Self.machine()
        Self.connect(&m, 1)
        m.blocked()
        _ = m.publishRequested("a")
        m.stopRequested()
        do {
            let action = m.connectionLost(reason: "ack failed")
            #expect(action == .tearDown(1, generation: 1, reason: "ack failed", failHeld: ["a"]))
        }
        #expect(m.state == .stopping(nil))
        do { let next = m.nextLoopAction(); #expect(next == .finish(nil, closeHandshake: true, failHeld: [])) }
    }
}
