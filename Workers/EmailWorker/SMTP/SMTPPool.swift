import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The SMTP sessions of one worker process, reused across jobs. The pool follows the work: a message that
/// finds no free session opens one, up to ``SMTPSettings/poolSize`` at once; a session idle for
/// ``SMTPSettings/idleTimeoutSeconds`` is closed; one that carried ``SMTPSettings/maxMessagesPerSession``
/// messages is closed and replaced on demand (the relay's per-connection cap, met before the relay says so); one
/// that failed (closed, timed out, 421) is dropped. When the relay answers 421 or refuses a connection, the most
/// sessions drops to half of those open (at least one) for ``SMTPSettings/backoffSeconds``, then grows back by one
/// a second: back-pressure rather than a storm of new connections against a relay that is shedding load, and a
/// pool that settles under a relay's cap on connections per client.
///
/// A class over a mutex rather than an actor: taking and giving back a free session are a lock each, with no
/// hop to another executor. (Measured only together with the other changes of that step, grouped replies and the
/// message written from the event loop: worker CPU per mail to smtp-sink went from 369 to 292 µs.) Only a message
/// that finds no session and may not open one suspends.
public final class SMTPPool: Sendable {
    public let settings: SMTPSettings
    private let group: any EventLoopGroup
    /// The TLS context of every session (nil: STARTTLS is off), or why it could not be built.
    private let tls: Result<NIOSSLContext, SMTPError>?
    private let logger: Logger
    /// The time of the idle and back-off timers (a test moves it).
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state: Mutex<State>

    private struct State {
        /// Free sessions, the most recently used last (taken first, so that the others age out when the work drops).
        var idle: [(connection: SMTPConnection, since: ContinuousClock.Instant)] = []
        /// Sessions open or being opened, in use or idle.
        var open = 0
        /// Messages waiting for a session, by ticket (a cancelled one leaves the line).
        var waiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var nextTicket: UInt64 = 0
        var closed = false
        /// The lowered maximum after a 421 or a refused connection, and until when it holds.
        var reduced: (limit: Int, until: ContinuousClock.Instant)?
        /// Whether the pool said that a session went on in clear (once per pool, not per session).
        var warnedInClear = false
        var statistics = Statistics()
    }

    /// What the pool did, since it started.
    public struct Statistics: Sendable, Hashable {
        public var opened = 0
        public var closedIdle = 0
        public var closedAtCap = 0
        public var backoffs = 0
        /// The most sessions open at once.
        public var peakOpen = 0
    }

    public init(settings: SMTPSettings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "fleet.email.smtp"), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.settings = settings
        self.now = now
        self.group = group
        self.logger = logger
        state = Mutex(State())
        if settings.startTLS == .off {
            tls = nil
        } else {
            do throws(SMTPError) { tls = .success(try SMTPTLS.makeContext(settings)) } catch { tls = .failure(error) }
        }
    }

    /// The relay's final reply, when it arrived, and whether the session ran under TLS.
    public struct Accepted: Sendable {
        public var reply: SMTPReply
        public var at: ContinuousClock.Instant
        public var tls: Bool
    }

    /// Counters for `fleet bench email` and the tests: sessions opened, closed for being idle, closed at the
    /// message cap, back-offs, the most open at once.
    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// The most sessions open at once now: ``SMTPSettings/poolSize``, or less during a back-off.
    var limit: Int { state.withLock { limit(of: $0, at: now()) } }

    /// Sessions open now (in use or idle).
    var openSessions: Int { state.withLock { $0.open } }

    /// During a back-off, the lowered maximum; after it, that maximum grows back by one session a second (so that
    /// a relay's cap on connections is approached again slowly, not met by all sessions at once).
    private func limit(of s: State, at t: ContinuousClock.Instant) -> Int {
        guard let reduced = s.reduced else { return settings.poolSize }
        if t < reduced.until { return reduced.limit }
        let grown = reduced.limit + Int(reduced.until.duration(to: t).components.seconds)
        return min(grown, settings.poolSize)
    }

    /// Sends one message through a pooled session. Throws ``SMTPError``.
    public func send(from: String, to: String, message: [UInt8], beforeCommit: @escaping @Sendable () async throws -> Void) async throws -> Accepted {
        let connection = try await acquire()
        do {
            let reply = try await connection.transaction(from: from, to: to, message: message, beforeCommit: beforeCommit)
            let at = ContinuousClock.now
            release(connection)
            return Accepted(reply: reply, at: at, tls: connection.isSecure)
        } catch {
            if let error = error as? SMTPError, error.replyCode == 421 { backOff("the relay answered 421") }
            release(connection)
            throw error
        }
    }

    /// What a message does to get a session.
    private enum Take {
        case use(SMTPConnection)
        case connect
        case wait
        case closed
    }

    private func acquire() async throws -> SMTPConnection {
        while true {
            var stale: [SMTPConnection] = []
            let t = now()
            let take = state.withLock { s -> Take in
                if s.closed { return .closed }
                stale = expire(&s, at: t)
                while let (c, _) = s.idle.popLast() {
                    if c.isUsable { return .use(c) }
                    stale.append(c)
                    s.open -= 1
                }
                if s.open < limit(of: s, at: t) {
                    s.open += 1
                    s.statistics.peakOpen = max(s.statistics.peakOpen, s.open)
                    return .connect
                }
                return .wait
            }
            for c in stale { c.close() }
            switch take {
            case .use(let c):
                return c
            case .closed:
                throw SMTPError(code: "smtp_unavailable", message: "the SMTP pool is closed")
            case .connect:
                do {
                    let connection = try await SMTPConnection.connect(settings, tls: try tls?.get(), group: group)
                    let warn = state.withLock { s -> Bool in
                        s.statistics.opened += 1
                        guard settings.startTLS == .opportunistic && !connection.isSecure && !s.warnedInClear else { return false }
                        s.warnedInClear = true
                        return true
                    }
                    if warn {
                        logger.warning("the relay did not take STARTTLS (not offered or declined): sessions go on in clear, AUTH too when configured",
                                       metadata: ["smtp.auth": "\(settings.username != nil)"])
                    }
                    return connection
                } catch {
                    state.withLock { $0.open -= 1 }
                    if let error = error as? SMTPError, error.stage == "connect" || error.replyCode == 421 {
                        backOff(error.stage == "connect" ? "no connection to the relay" : "the relay answered 421")
                    }
                    wakeOne()
                    throw error
                }
            case .wait:
                let ticket = state.withLock { s -> UInt64 in
                    s.nextTicket += 1
                    return s.nextTicket
                }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        // Looked at again under the lock: a session given back since the first look, or a cancel,
                        // must not be missed.
                        let now = now()
                        let ready = state.withLock { s -> Bool in
                            if s.closed || !s.idle.isEmpty || s.open < limit(of: s, at: now) || Task.isCancelled { return true }
                            s.waiters.append((ticket, continuation))
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    // A job cancelled while it waits (the watchdog, a shutdown) leaves the line at once.
                    let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                        guard let i = s.waiters.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                        return s.waiters.remove(at: i).continuation
                    }
                    waiter?.resume()
                }
                if Task.isCancelled { throw CancellationError() }
            }
        }
    }

    private func release(_ connection: SMTPConnection) {
        let capped = settings.maxMessagesPerSession > 0 && connection.transactionCount >= settings.maxMessagesPerSession
        let t = now()
        let (keep, waiter) = state.withLock { s -> (Bool, CheckedContinuation<Void, Never>?) in
            let keep = connection.isUsable && !s.closed && !capped && s.open <= limit(of: s, at: t)
            if keep {
                s.idle.append((connection, t))
            } else {
                if capped && connection.isUsable { s.statistics.closedAtCap += 1 }
                s.open -= 1
            }
            return (keep, s.waiters.isEmpty ? nil : s.waiters.removeFirst().continuation)
        }
        if !keep { connection.close() }
        waiter?.resume()
    }

    /// Takes out the free sessions idle for longer than the timeout (the oldest are first in `idle`); the caller
    /// closes them outside the lock.
    private func expire(_ s: inout State, at t: ContinuousClock.Instant) -> [SMTPConnection] {
        let cutoff = t - .seconds(settings.idleTimeoutSeconds)
        var expired = 0
        while expired < s.idle.count && s.idle[expired].since < cutoff { expired += 1 }
        guard expired > 0 else { return [] }
        let out = s.idle[..<expired].map(\.connection)
        s.idle.removeFirst(expired)
        s.open -= expired
        s.statistics.closedIdle += expired
        return out
    }

    /// Lowers the maximum to half of the sessions open (at least one) for ``SMTPSettings/backoffSeconds``.
    private func backOff(_ why: String) {
        guard settings.backoffSeconds > 0 else { return }
        let t = now()
        let lowered = state.withLock { s -> Int? in
            // During a back-off, more 421s (the other sessions of the same burst) extend it, not halve it again.
            if let reduced = s.reduced, t < reduced.until {
                s.reduced = (reduced.limit, t + .seconds(settings.backoffSeconds))
                return nil
            }
            let newLimit = max(1, min(limit(of: s, at: t), s.open) / 2)
            s.reduced = (newLimit, t + .seconds(settings.backoffSeconds))
            s.statistics.backoffs += 1
            return newLimit
        }
        if let lowered {
            logger.warning("relay back-pressure: fewer SMTP sessions for a while",
                           metadata: ["smtp.reason": "\(why)", "smtp.sessions": "\(lowered)", "smtp.backoff_s": "\(settings.backoffSeconds)"])
        }
    }

    private func wakeOne() {
        let waiter = state.withLock { s in s.waiters.isEmpty ? nil : s.waiters.removeFirst().continuation }
        waiter?.resume()
    }

    /// Closes every idle session; sessions in use close when released.
    public func close() {
        let (idle, waiters) = state.withLock { s -> ([SMTPConnection], [CheckedContinuation<Void, Never>]) in
            s.closed = true
            let idle = s.idle.map(\.connection)
            s.open -= idle.count
            s.idle = []
            let waiters = s.waiters.map(\.continuation)
            s.waiters = []
            return (idle, waiters)
        }
        for c in idle { c.close() }
        for w in waiters { w.resume() }
    }
}
