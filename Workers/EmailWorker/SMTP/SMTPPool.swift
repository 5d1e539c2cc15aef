import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// A small pool of SMTP sessions reused across jobs: at most `settings.poolSize` open at once; a job waits
/// for a free session; a session that failed (closed, timed out, 421) is dropped and replaced on demand.
public actor SMTPPool {
    public let settings: SMTPSettings
    private let group: any EventLoopGroup
    /// The TLS context of every session (nil: STARTTLS is off), or why it could not be built.
    private let tls: Result<NIOSSLContext, SMTPError>?
    private var idle: [SMTPConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var closed = false
    private let logger: Logger
    /// Whether the pool said that a session went on in clear (once per pool, not per session).
    private var warnedInClear = false

    public init(settings: SMTPSettings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "fleet.email.smtp")) {
        self.settings = settings
        self.group = group
        self.logger = logger
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

    /// Sends one message through a pooled session. Throws ``SMTPError``.
    public func send(from: String, to: String, message: [UInt8], beforeCommit: @escaping @Sendable () async throws -> Void) async throws -> Accepted {
        let connection = try await acquire()
        do {
            let reply = try await connection.transaction(from: from, to: to, message: message, beforeCommit: beforeCommit)
            let at = ContinuousClock.now
            release(connection)
            return Accepted(reply: reply, at: at, tls: connection.isSecure)
        } catch {
            release(connection)
            throw error
        }
    }

    private func acquire() async throws -> SMTPConnection {
        while true {
            if closed { throw SMTPError(code: "smtp_unavailable", message: "the SMTP pool is closed") }
            while let c = idle.popLast() {
                if c.isUsable { return c }
                c.close()
                open -= 1
            }
            if open < settings.poolSize {
                open += 1
                do {
                    let connection = try await SMTPConnection.connect(settings, tls: try tls?.get(), group: group)
                    if settings.startTLS == .opportunistic && !connection.isSecure && !warnedInClear {
                        warnedInClear = true
                        logger.warning("the relay did not take STARTTLS (not offered or declined): sessions go on in clear, AUTH too when configured",
                                       metadata: ["smtp.auth": "\(settings.username != nil)"])
                    }
                    return connection
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func release(_ connection: SMTPConnection) {
        if connection.isUsable && !closed {
            idle.append(connection)
        } else {
            connection.close()
            open -= 1
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Closes every idle session; sessions in use close when released.
    public func close() {
        closed = true
        for c in idle { c.close() }
        open -= idle.count
        idle = []
        for w in waiters { w.resume() }
        waiters = []
    }
}
