import FleetBackoff

extension AMQPIOLoop {
    /// The state of the I/O thread's connection, as one enum: connecting, waiting to reconnect, setting up,
    /// connected, stopping, stopped.
    ///
    /// A value type in the style of async-http-client's state machines: each event is a mutating method that
    /// returns what to do (an action, or the value the caller needs); ``AMQPIOLoop`` performs it. The machine
    /// makes no C call, takes no lock and reads no clock: it is generic over the connection handle and the
    /// held publish, so that the tests drive it with plain values. Like the rest of the loop's state, it is
    /// owned by the I/O thread.
    ///
    /// The transitions:
    /// - `connecting` → logged in → `settingUp` → channel 1, confirms, declarations, consumers → `connected`;
    /// - `connecting` or `settingUp` → connect failed → `waitingToReconnect` → delay elapsed → `connecting`
    ///   (the first connect without `retryUntilConnected`: → `stopping`);
    /// - `settingUp` or `connected` → lost → `connecting` (at once after a connection that was set up);
    /// - any state → stop requested → `stopping` → the loop's next step → `stopped`.
    struct StateMachine<Connection, HeldPublish> {
        /// A live connection and what belongs to it alone: dropped with it when it is lost.
        struct Connected {
            var connection: Connection
            /// The connection's number: 1 for the first, one more for each reconnect. While setting up, the
            /// previous connection's number until the confirms are selected (then this one's).
            var generation: UInt64
            /// Whether channel 2 (declares, passive declares, purges) is open; it opens on first use.
            var controlChannelOpen = false
            /// The broker blocked publishing (connection.blocked, a resource alarm).
            var blocked = false
            /// Publishes requested while blocked, in order: sent on connection.unblocked, failed if the
            /// connection is lost or closed first.
            var held: [HeldPublish] = []
        }

        enum State {
            /// No connection; the next step opens one. `attempt` counts the failed attempts since the last
            /// connection was set up (0 right after a loss: the first reconnect is immediate);
            /// `lastGeneration` is the last connection's generation (0 before the first).
            case connecting(attempt: Int, lastGeneration: UInt64)
            /// A connect failed: answering commands (publishes fail fast) until `until`, then connecting.
            case waitingToReconnect(attempt: Int, until: ContinuousClock.Instant, lastGeneration: UInt64)
            /// Logged in: opening channel 1, selecting confirms, declaring again, restarting consumers.
            case settingUp(Connected, attempt: Int)
            /// Serving commands and the socket.
            case connected(Connected)
            /// Stop requested: the commands of the current pass still run (on the connection, if any); then
            /// the loop closes it and ends.
            case stopping(Connected?)
            /// The loop ended.
            case stopped
            /// Only inside a transition (lets held publishes be appended in place).
            case modifying
        }

        /// What the run loop does next.
        enum LoopAction {
            /// Open a connection (TCP, TLS, login) and set it up.
            case connect
            /// Answer commands until `until`, then report ``reconnectDelayElapsed()``.
            case waitToReconnect(until: ContinuousClock.Instant)
            /// Run the commands, then read the socket of `connection`.
            case service(Connection)
            /// Close `connection` (if any), with the close handshake unless the broker blocked it (a blocked
            /// connection is not read by the broker: the handshake would wait out the RPC timeout), fail
            /// `failHeld` with `.closed`, end.
            case finish(Connection?, closeHandshake: Bool, failHeld: [HeldPublish])
        }

        /// After a failed connect.
        enum ConnectFailedAction {
            /// The first connect failed and must not be retried: give the caller the error and stop.
            /// `tearDown`: a connection that failed while being set up, to drop without the close handshake.
            case failFirstConnect(tearDown: Connection?)
            /// Wait `delayMilliseconds` (until `until`) before attempt number `attempt` + 1.
            case waitToReconnect(tearDown: Connection?, attempt: Int, delayMilliseconds: Int, until: ContinuousClock.Instant)
        }

        /// After the connection was lost.
        enum ConnectionLostAction {
            /// Report the loss of connection `generation`, drop `connection` without the close handshake, fail
            /// the unconfirmed publishes and then `failHeld` with `.connectionLost`.
            case tearDown(Connection, generation: UInt64, reason: String, failHeld: [HeldPublish])
            /// There was no connection to lose.
            case none
        }

        /// For a publish.
        enum PublishAction {
            /// Send it on `connection`.
            case send(Connection, HeldPublish)
            /// The connection is blocked: the machine holds it until unblocked.
            case hold
            /// No connection: fail it with `.notConnected`.
            case failNotConnected(HeldPublish)
        }

        /// For a synchronous broker call (declare, queue status, purge, delete, consume).
        enum SynchronousCallAction {
            case call(Connection)
            /// Stopping or stopped: fail with `.closed`.
            case failClosed
            /// Reconnecting: fail with `.notConnected`.
            case failNotConnected
        }

        private(set) var state: State
        /// Without it, a failed first connect is final (the caller gets the error).
        let retryFirstConnect: Bool
        /// The reconnect backoff: the first delay, doubling each failed attempt up to `reconnectMaxDelay`.
        let reconnectInitialDelay: Duration
        let reconnectMaxDelay: Duration

        init(retryFirstConnect: Bool, reconnectInitialDelay: Duration, reconnectMaxDelay: Duration) {
            self.state = .connecting(attempt: 0, lastGeneration: 0)
            self.retryFirstConnect = retryFirstConnect
            self.reconnectInitialDelay = reconnectInitialDelay
            self.reconnectMaxDelay = reconnectMaxDelay
        }

        // MARK: - What the loop reads

        /// The connection, when there is one (setting up, connected, or stopping with one).
        var connection: Connection? { live?.connection }

        /// The connection and its generation, when there is one.
        var live: (connection: Connection, generation: UInt64)? {
            switch state {
            case .settingUp(let c, _), .connected(let c), .stopping(let c?): (c.connection, c.generation)
            case .connecting, .waitingToReconnect, .stopping(nil), .stopped, .modifying: nil
            }
        }

        /// Whether the control channel of the connection is open.
        var controlChannelOpen: Bool {
            switch state {
            case .settingUp(let c, _), .connected(let c), .stopping(let c?): c.controlChannelOpen
            case .connecting, .waitingToReconnect, .stopping(nil), .stopped, .modifying: false
            }
        }

        /// Where a synchronous call goes: `.closed` once a stop was requested, even with a connection.
        var synchronousCall: SynchronousCallAction {
            switch state {
            case .settingUp(let c, _), .connected(let c): .call(c.connection)
            case .stopping, .stopped: .failClosed
            case .connecting, .waitingToReconnect, .modifying: .failNotConnected
            }
        }

        /// The next step of the run loop. From `stopping` it is ``LoopAction/finish(_:closeHandshake:failHeld:)``,
        /// once, and the machine is `stopped`.
        mutating func nextLoopAction() -> LoopAction {
            switch state {
            case .connecting: return .connect
            case .waitingToReconnect(_, let until, _): return .waitToReconnect(until: until)
            case .connected(let c): return .service(c.connection)
            case .stopping(let c):
                state = .stopped
                return .finish(c?.connection, closeHandshake: !(c?.blocked ?? false), failHeld: c?.held ?? [])
            case .stopped: return .finish(nil, closeHandshake: true, failHeld: [])
            case .settingUp, .modifying: preconditionFailure("the loop asked for its next step in state \(state)")
            }
        }

        // MARK: - Connecting

        /// Logged in on a new connection: set it up next.
        mutating func connectionOpened(_ connection: Connection) {
            guard case .connecting(let attempt, let lastGeneration) = state else {
                preconditionFailure("a connection was opened in state \(state)")
            }
            state = .settingUp(Connected(connection: connection, generation: lastGeneration), attempt: attempt)
        }

        /// Publisher confirms are on: the connection gets its generation, returned.
        mutating func confirmsSelected() -> UInt64 {
            guard case .settingUp(var c, let attempt) = state else {
                preconditionFailure("confirms were selected in state \(state)")
            }
            c.generation += 1
            state = .settingUp(c, attempt: attempt)
            return c.generation
        }

        /// Set up (declarations made, consumers started): connected. Returns the generation to announce.
        mutating func connectSucceeded() -> UInt64 {
            guard case .settingUp(let c, _) = state else {
                preconditionFailure("a connect succeeded in state \(state)")
            }
            state = .connected(c)
            return c.generation
        }

        /// A connect failed (before the login, or while setting up). The first connect is final without
        /// `retryFirstConnect`; otherwise the machine waits: the equal-jitter backoff of `attempt` (counting
        /// this failure) is half `min(max, initial × 2^(attempt−1))` plus a random share of the other half,
        /// drawn from `generator`, so that a fleet does not reconnect in lock step.
        mutating func connectFailed(now: ContinuousClock.Instant, using generator: inout some RandomNumberGenerator) -> ConnectFailedAction {
            let attempt: Int
            let lastGeneration: UInt64
            let tearDown: Connection?
            switch state {
            case .connecting(let a, let g):
                (attempt, lastGeneration, tearDown) = (a, g, nil)
            case .settingUp(let c, let a):
                // Failed without losing the connection (otherwise it is connecting already): drop it.
                (attempt, lastGeneration, tearDown) = (a, c.generation, c.connection)
            case .waitingToReconnect, .connected, .stopping, .stopped, .modifying:
                preconditionFailure("a connect failed in state \(state)")
            }
            if lastGeneration == 0 && !retryFirstConnect {
                state = .stopping(nil)
                return .failFirstConnect(tearDown: tearDown)
            }
            let next = attempt + 1
            // The fleet's one backoff (FleetBackoff), with equal jitter.
            let backoff = Backoff(base: reconnectInitialDelay, cap: reconnectMaxDelay, jitter: .equal)
            let delay = Int(backoff.delay(afterAttempt: next, using: &generator).milliseconds)
            let until = now + .milliseconds(delay)
            state = .waitingToReconnect(attempt: next, until: until, lastGeneration: lastGeneration)
            return .waitToReconnect(tearDown: tearDown, attempt: next, delayMilliseconds: delay, until: until)
        }

        /// The backoff delay passed: connect again.
        mutating func reconnectDelayElapsed() {
            guard case .waitingToReconnect(let attempt, _, let lastGeneration) = state else { return }
            state = .connecting(attempt: attempt, lastGeneration: lastGeneration)
        }

        // MARK: - Losing the connection

        /// The connection died (a failed call or read, a close from the broker). Its held publishes fail;
        /// the next step reconnects at once (the attempts of a connect being set up go on counting).
        mutating func connectionLost(reason: String) -> ConnectionLostAction {
            switch state {
            case .settingUp(let c, let attempt):
                state = .connecting(attempt: attempt, lastGeneration: c.generation)
                return .tearDown(c.connection, generation: c.generation, reason: reason, failHeld: c.held)
            case .connected(let c):
                state = .connecting(attempt: 0, lastGeneration: c.generation)
                return .tearDown(c.connection, generation: c.generation, reason: reason, failHeld: c.held)
            case .stopping(let c?):
                state = .stopping(nil)
                return .tearDown(c.connection, generation: c.generation, reason: reason, failHeld: c.held)
            case .connecting, .waitingToReconnect, .stopping(nil), .stopped, .modifying:
                return .none
            }
        }

        // MARK: - Events of a live connection

        /// connection.blocked: publishes are held from now on.
        mutating func blocked() {
            modifyConnected { $0.blocked = true }
        }

        /// connection.unblocked: returns the held publishes, in the order they were requested, to send now.
        mutating func unblocked() -> [HeldPublish] {
            modifyConnected { c in
                c.blocked = false
                defer { c.held.removeAll() }
                return c.held
            } ?? []
        }

        mutating func controlChannelOpened() {
            modifyConnected { $0.controlChannelOpen = true }
        }

        /// Channel 2 was closed by the broker (a failed declare, say); the next synchronous call reopens it.
        mutating func controlChannelClosed() {
            modifyConnected { $0.controlChannelOpen = false }
        }

        /// A publish: sent, held while the broker blocks the connection, or failed without a connection.
        /// (Stopping with a connection still publishes: the commands of the pass that asked to stop run.)
        mutating func publishRequested(_ publish: HeldPublish) -> PublishAction {
            let action: PublishAction? = modifyConnected { c in
                guard c.blocked else { return .send(c.connection, publish) }
                c.held.append(publish)
                return .hold
            }
            return action ?? .failNotConnected(publish)
        }

        // MARK: - Stopping

        /// Stop: the loop finishes after the current pass (a connect being waited for ends at once).
        mutating func stopRequested() {
            switch state {
            case .connecting, .waitingToReconnect: state = .stopping(nil)
            case .settingUp(let c, _), .connected(let c): state = .stopping(c)
            case .stopping, .stopped, .modifying: break
            }
        }

        // MARK: - Helpers

        /// Changes the live connection's state in place (no copy of its held publishes).
        private mutating func modifyConnected<T>(_ body: (inout Connected) -> T) -> T? {
            switch state {
            case .settingUp(var c, let attempt):
                state = .modifying
                defer { state = .settingUp(c, attempt: attempt) }
                return body(&c)
            case .connected(var c):
                state = .modifying
                defer { state = .connected(c) }
                return body(&c)
            case .stopping(var c?):
                state = .modifying
                defer { state = .stopping(c) }
                return body(&c)
            case .connecting, .waitingToReconnect, .stopping(nil), .stopped, .modifying:
                return nil
            }
        }

    }
}

extension AMQPIOLoop.StateMachine.LoopAction: Equatable where Connection: Equatable, HeldPublish: Equatable {}
extension AMQPIOLoop.StateMachine.ConnectFailedAction: Equatable where Connection: Equatable {}
extension AMQPIOLoop.StateMachine.ConnectionLostAction: Equatable where Connection: Equatable, HeldPublish: Equatable {}
extension AMQPIOLoop.StateMachine.PublishAction: Equatable where Connection: Equatable, HeldPublish: Equatable {}
extension AMQPIOLoop.StateMachine.SynchronousCallAction: Equatable where Connection: Equatable {}
extension AMQPIOLoop.StateMachine.Connected: Equatable where Connection: Equatable, HeldPublish: Equatable {}
extension AMQPIOLoop.StateMachine.State: Equatable where Connection: Equatable, HeldPublish: Equatable {}
