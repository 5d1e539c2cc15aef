import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One SMTP session (RFC 5321) over a SwiftNIO channel: greeting, EHLO, STARTTLS (RFC 3207) as
/// ``SMTPSettings/startTLS`` asks followed by a second EHLO, optional AUTH PLAIN/LOGIN (under TLS whenever TLS
/// is in use), then any number of mail transactions, pipelined (RFC 2920) and chunked (BDAT, RFC 3030) when the
/// relay offers those extensions and the settings allow them.
final class SMTPConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientHandler>
    private let settings: SMTPSettings
    /// Set once a transaction failed in a way that leaves the session in doubt.
    private let broken = Atomic<Bool>(false)
    /// Set once the STARTTLS handshake completed.
    private let secured = Atomic<Bool>(false)
    /// The extensions of the last EHLO that the transactions use (``Extensions`` bits).
    private let extensions = Atomic<UInt8>(0)
    /// Transactions that reached the end of their DATA (or last BDAT).
    private let transactions = Atomic<Int>(0)

    /// The service extensions a transaction can use.
    struct Extensions: OptionSet, Sendable {
        let rawValue: UInt8
        static let pipelining = Extensions(rawValue: 1)
        static let chunking = Extensions(rawValue: 2)
    }

    private init(channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>, settings: SMTPSettings) {
        self.channel = channel
        self.handler = handler
        self.settings = settings
    }

    /// What the relay offered and the settings allow.
    var usedExtensions: Extensions { Extensions(rawValue: extensions.load(ordering: .relaxed)) }

    /// Transactions sent over this session.
    var transactionCount: Int { transactions.load(ordering: .relaxed) }

    /// Whether the session can run another transaction.
    var isUsable: Bool { channel.isActive && !broken.load(ordering: .relaxed) }

    /// Whether the session runs under TLS (STARTTLS completed).
    var isSecure: Bool { secured.load(ordering: .relaxed) }

    /// Connects, reads the greeting, says EHLO, upgrades to TLS with `tls` as ``SMTPSettings/startTLS`` asks
    /// (nil: STARTTLS is off) and authenticates when configured.
    static func connect(_ settings: SMTPSettings, tls: NIOSSLContext?, group: any EventLoopGroup) async throws -> SMTPConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = SMTPClientHandler(replyTimeout: settings.replyTimeoutSeconds,
                                                        idleTimeout: settings.idleTimeoutSeconds + 5)
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(SMTPReplyDecoder(progress: handler.decoderProgress)))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: settings.host, port: settings.port).get()
        } catch {
            throw SMTPError(code: "smtp_unavailable", message: "cannot connect to the relay: \(error)", stage: "connect")
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: SMTPClientHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let connection = SMTPConnection(channel: channel, handler: handler, settings: settings)
        do {
            try await connection.start(tls: tls)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func start(tls: NIOSSLContext?) async throws {
        // The greeting arrives unasked: wait for it like a reply.
        let greeting = try await command(nil)
        guard greeting.code == 220 else { throw SMTPError.reply(greeting, stage: "greeting") }
        var ehlo = try await hello()
        if settings.startTLS != .off {
            guard let tls else {
                throw SMTPError(code: "smtp_tls_failed", message: "STARTTLS is on but no TLS context was given", stage: "starttls")
            }
            if try await startTLS(offered: ehlo?.offers("STARTTLS") ?? false, context: tls) {
                // RFC 3207 §4.2: forget what the relay said in clear and ask again.
                ehlo = try await hello()
                guard ehlo != nil else {
                    throw SMTPError(code: "smtp_protocol", message: "the relay refused EHLO after STARTTLS", stage: "ehlo")
                }
            }
        }
        guard settings.startTLS != .require || isSecure else {
            // Unreachable (startTLS throws first); kept so that credentials can never leave in clear under require.
            throw SMTPError(code: "smtp_tls_unavailable", message: "TLS is required and the session is not under TLS", stage: "starttls")
        }
        try await authenticate(offered: ehlo?.authMechanisms ?? [])
        var used: Extensions = []
        if settings.pipelining && ehlo?.offers("PIPELINING") == true { used.insert(.pipelining) }
        if settings.chunking && ehlo?.offers("CHUNKING") == true { used.insert(.chunking) }
        extensions.store(used.rawValue, ordering: .relaxed)
    }

    /// EHLO, or HELO when the relay refuses EHLO. Returns the EHLO reply (nil after HELO: no extensions).
    private func hello() async throws -> SMTPReply? {
        let ehlo = try await command("EHLO \(settings.helo)\r\n")
        if ehlo.isPositive { return ehlo }
        let helo = try await command("HELO \(settings.helo)\r\n")
        guard helo.isPositive else { throw SMTPError.reply(helo, stage: "ehlo") }
        return nil
    }

    /// STARTTLS and the handshake when the relay offers it. Returns whether the session is now under TLS;
    /// false only under `opportunistic` when the relay does not offer or declines STARTTLS. Throws
    /// ``SMTPError`` `smtp_tls_unavailable` (under `require`) or `smtp_tls_failed` (the handshake).
    private func startTLS(offered: Bool, context: NIOSSLContext) async throws -> Bool {
        let required = settings.startTLS == .require
        guard offered else {
            if !required { return false }
            throw SMTPError(code: "smtp_tls_unavailable",
                            message: "the relay does not offer STARTTLS and TLS is required (FLEET_EMAIL_SMTP_STARTTLS=require)",
                            stage: "starttls")
        }
        let reply = try await command("STARTTLS\r\n")
        guard reply.code == 220 else {
            if reply.code == 421 {
                broken.store(true, ordering: .relaxed)
                throw SMTPError.reply(reply, stage: "starttls")
            }
            // RFC 3207 §4: after a 454 (or a 5xx) the session goes on as if STARTTLS had not been asked.
            if !required && !reply.isPositive { return false }
            throw SMTPError(code: "smtp_tls_unavailable",
                            message: "the relay answered \(reply.code) to STARTTLS and TLS is required: \(reply.redactedText)",
                            replyCode: reply.code, stage: "starttls")
        }
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: Void.self)
        let handler = self.handler
        let channel = self.channel
        let settings = self.settings
        let timeout = settings.replyTimeoutSeconds
        loop.execute {
            do {
                let tls = try NIOSSLClientHandler(context: context, serverHostname: settings.tlsServerHostname)
                handler.value.startTLS(tls, pipeline: channel.pipeline.syncOperations, promise: promise, settings: settings)
            } catch {
                promise.fail(SMTPTLS.handshakeError(error, settings: settings))
            }
            let timer = loop.scheduleTask(in: .seconds(timeout)) {
                promise.fail(SMTPError(code: "smtp_tls_failed", message: "no TLS handshake with the relay within \(timeout) s",
                                       stage: "starttls"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            try await promise.futureResult.get()
        } catch {
            broken.store(true, ordering: .relaxed)
            throw error
        }
        secured.store(true, ordering: .relaxed)
        return true
    }

    /// AUTH PLAIN or LOGIN when credentials are configured: the configured mechanism, else the one the relay
    /// lists (`offered`, from the EHLO after any STARTTLS).
    private func authenticate(offered: Set<String>) async throws {
        guard let user = settings.username, let password = settings.password else { return }
        switch try Self.mechanism(configured: settings.auth, offered: offered) {
        case .plain:
            let token = Data("\0\(user)\0\(password)".utf8).base64EncodedString()
            let r = try await command("AUTH PLAIN \(token)\r\n")
            guard r.code == 235 else { throw SMTPError.reply(r, stage: "auth") }
        case .login:
            let r1 = try await command("AUTH LOGIN\r\n")
            guard r1.code == 334 else { throw SMTPError.reply(r1, stage: "auth") }
            let r2 = try await command(Data(user.utf8).base64EncodedString() + "\r\n")
            guard r2.code == 334 else { throw SMTPError.reply(r2, stage: "auth") }
            let r3 = try await command(Data(password.utf8).base64EncodedString() + "\r\n")
            guard r3.code == 235 else { throw SMTPError.reply(r3, stage: "auth") }
        }
    }

    /// The mechanism to use: the configured one; else PLAIN or LOGIN, whichever the relay lists, PLAIN first (PLAIN
    /// when it lists no mechanism, as relays that take AUTH without announcing it expect). Throws
    /// ``SMTPError`` `smtp_auth_unavailable` when the relay lists mechanisms but neither of ours.
    static func mechanism(configured: SMTPSettings.Auth?, offered: Set<String>) throws -> SMTPSettings.Auth {
        if let configured { return configured }
        if offered.isEmpty || offered.contains("PLAIN") { return .plain }
        if offered.contains("LOGIN") { return .login }
        throw SMTPError(code: "smtp_auth_unavailable",
                        message: "the relay offers AUTH \(offered.sorted().joined(separator: " ")) and none of PLAIN or LOGIN (set FLEET_EMAIL_SMTP_AUTH to force one)",
                        stage: "auth")
    }

    /// Sends a command (nil: none, just wait) and returns the next reply.
    func command(_ text: String?) async throws -> SMTPReply {
        try await send(text.map { ByteBuffer(string: $0) })
    }

    func send(_ bytes: ByteBuffer?) async throws -> SMTPReply {
        try await send(bytes, replies: 1)[0]
    }

    /// Writes `bytes` (nil: nothing; a group of pipelined commands: in one go) and returns the next `count`
    /// replies, in order. When `then` is given, it is written on the event loop as soon as the replies arrive
    /// and `ready` finds them as expected (the message after a pipelined group's 354: no hop back to the task
    /// and out again), before the caller resumes.
    func send(_ bytes: ByteBuffer?, replies count: Int, then: ByteBuffer? = nil,
              ready: (@Sendable ([SMTPReply]) -> Bool)? = nil) async throws -> [SMTPReply] {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: [SMTPReply].self)
        let handler = self.handler
        let channel = self.channel
        loop.execute {
            // The reply timeout is the handler's (one timer per session).
            handler.value.expect(count, promise)
            if let bytes { channel.writeAndFlush(bytes, promise: nil) }
            if let then, let ready {
                promise.futureResult.whenSuccess { replies in
                    if ready(replies) { channel.writeAndFlush(then, promise: nil) }
                }
            }
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            broken.store(true, ordering: .relaxed)
            throw error
        }
    }

    /// Runs one mail transaction up to the end of its data. `beforeCommit` runs just before the relay can take
    /// the message: before the final `.` of DATA, or before the last (empty) `BDAT 0 LAST` chunk; nothing is
    /// sent after it but that terminator, so the window between intent and reply is one round trip whatever
    /// the extensions. Returns the relay's reply to the end of the data (2xx). A negative reply throws
    /// ``SMTPError`` after `RSET` (the session stays usable, unless the relay said 421).
    ///
    /// Without PIPELINING each command waits for its reply. With it, `MAIL FROM`, `RCPT TO` and `DATA` (or
    /// `BDAT <size>` with the message) go in one write and their replies are matched in order (RFC 2920 §3.1:
    /// `DATA` ends a group; a `BDAT` chunk may be pipelined); a refused MAIL or RCPT fails the message at that
    /// stage whatever the replies after it. With CHUNKING the message goes as it is (CRLF line ends, no dot
    /// stuffing), as one `BDAT <size>` chunk followed by `BDAT 0 LAST` (RFC 3030 §2).
    func transaction(from: String, to: String, message: [UInt8], beforeCommit: @Sendable () async throws -> Void) async throws -> SMTPReply {
        let used = usedExtensions
        let chunked = used.contains(.chunking)
        let mail = "MAIL FROM:<\(from)>\r\n"
        let rcpt = "RCPT TO:<\(to)>\r\n"
        var body = ByteBuffer()
        body.reserveCapacity(message.count + 32)
        if used.contains(.pipelining) {
            var group = ByteBuffer()
            group.reserveCapacity(mail.utf8.count + rcpt.utf8.count + message.count + 32)
            group.writeString(mail)
            group.writeString(rcpt)
            let replies: [SMTPReply]
            if chunked {
                Self.writeChunk(message, into: &group)
                replies = try await send(group, replies: 3)
            } else {
                group.writeString("DATA\r\n")
                // The message follows the 354 at once, from the event loop: everything but the final terminator
                // (the relay cannot accept before it sees "\r\n.\r\n").
                Self.dotStuff(message, into: &body)
                replies = try await send(group, replies: 3, then: body) { r in
                    r.count == 3 && (250...259).contains(r[0].code) && (250...259).contains(r[1].code) && r[2].code == 354
                }
            }
            try await checkGroup(mail: replies[0], rcpt: replies[1], data: replies[2], chunked: chunked)
        } else {
            try await check(try await command(mail), "mail", 250...259)
            try await check(try await command(rcpt), "rcpt", 250...259)
            if chunked {
                Self.writeChunk(message, into: &body)
                try await check(try await send(body), "data", 250...259)
            } else {
                try await check(try await command("DATA\r\n"), "data", 354...354)
                Self.dotStuff(message, into: &body)
                // Not waited for: a failed write closes the channel, and the terminator's reply then fails.
                channel.writeAndFlush(body, promise: nil)
            }
        }
        do {
            try await beforeCommit()
        } catch {
            // The relay holds an unterminated DATA (or BDAT transaction): this session can carry nothing more (it
            // is closed, and the relay drops the message when the connection goes).
            broken.store(true, ordering: .relaxed)
            throw error
        }
        transactions.add(1, ordering: .relaxed)
        let r = try await command(chunked ? "BDAT 0 LAST\r\n" : ".\r\n")
        try await check(r, "message", 250...259)
        return r
    }

    /// Throws for a negative reply at `stage` after `RSET` (when the session can still take it).
    private func check(_ r: SMTPReply, _ stage: String, _ expected: ClosedRange<Int>) async throws {
        guard expected.contains(r.code) else {
            if r.code == 421 { broken.store(true, ordering: .relaxed) }
            if isUsable { _ = try? await command("RSET\r\n") }
            throw SMTPError.reply(r, stage: stage)
        }
    }

    /// The replies of a pipelined group, in order. The first refusal names the stage. A relay that took `DATA`
    /// (or the chunk) although MAIL or RCPT was refused (RFC 2920 §3.1 says it must not) holds an open message
    /// we will not finish: the session is dropped, and the relay discards the message with the connection.
    private func checkGroup(mail: SMTPReply, rcpt: SMTPReply, data: SMTPReply, chunked: Bool) async throws {
        let dataOK = chunked ? (250...259).contains(data.code) : data.code == 354
        let refused: (SMTPReply, String)? =
            !(250...259).contains(mail.code) ? (mail, "mail") : !(250...259).contains(rcpt.code) ? (rcpt, "rcpt") : dataOK ? nil : (data, "data")
        guard let (reply, stage) = refused else { return }
        if [mail.code, rcpt.code, data.code].contains(421) || dataOK { broken.store(true, ordering: .relaxed) }
        if isUsable { _ = try? await command("RSET\r\n") }
        throw SMTPError.reply(reply, stage: stage)
    }

    /// Writes `BDAT <size>` and the message as it is, ending with CRLF (RFC 3030: no dot stuffing; the message
    /// already has CRLF line ends).
    static func writeChunk(_ message: [UInt8], into buffer: inout ByteBuffer) {
        let needsEnd = !(message.count >= 2 && message[message.count - 2] == 0x0D && message[message.count - 1] == 0x0A)
        buffer.writeString("BDAT \(message.count + (needsEnd ? 2 : 0))\r\n")
        buffer.writeBytes(message)
        if needsEnd { buffer.writeBytes([0x0D, 0x0A]) }
    }

    /// Writes `message` with lines starting with `.` doubled, ending with CRLF (the message has CRLF line ends).
    /// Copies runs between the dots to double rather than byte by byte.
    static func dotStuff(_ message: [UInt8], into buffer: inout ByteBuffer) {
        message.withUnsafeBufferPointer { bytes in
            var start = 0
            var i = 0
            let n = bytes.count
            while i < n {
                if bytes[i] == UInt8(ascii: ".") && (i == 0 || bytes[i - 1] == 0x0A) {
                    buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<i])))
                    buffer.writeInteger(UInt8(ascii: "."))
                    start = i
                }
                i += 1
            }
            buffer.writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start..<n])))
        }
        if message.last != 0x0A { buffer.writeBytes([0x0D, 0x0A]) }
    }

    /// Says QUIT and closes.
    func close() {
        broken.store(true, ordering: .relaxed)
        if channel.isActive {
            channel.writeAndFlush(ByteBuffer(string: "QUIT\r\n")).whenComplete { _ in self.channel.close(promise: nil) }
        }
    }
}
