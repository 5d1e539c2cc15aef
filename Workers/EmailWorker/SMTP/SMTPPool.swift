import NIOCore
import NIOPosix

/// A small pool of SMTP sessions reused across jobs: at most `settings.poolSize` open at once; a job waits
/// for a free session; a session that failed (closed, timed out, 421) is dropped and replaced on demand.
public actor SMTPPool {
    public let settings: SMTPSettings
    private let group: any EventLoopGroup
    private var idle: [SMTPConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var closed = false

    public init(settings: SMTPSettings, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.settings = settings
        self.group = group
    }

    /// The relay's final reply and when it arrived.
    public struct Accepted: Sendable {
        public var reply: SMTPReply
        public var at: ContinuousClock.Instant
    }

    /// Sends one message through a pooled session. Throws ``SMTPError``.
    public func send(from: String, to: String, message: [UInt8], beforeCommit: @escaping @Sendable () async throws -> Void) async throws -> Accepted {
        let connection = try await acquire()
        do {
            let reply = try await connection.transaction(from: from, to: to, message: message, beforeCommit: beforeCommit)
            let at = ContinuousClock.now
            release(connection)
            return Accepted(reply: reply, at: at)
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
                    return try await SMTPConnection.connect(settings, group: group)
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
