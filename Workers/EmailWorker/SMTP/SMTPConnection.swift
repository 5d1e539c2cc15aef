import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One SMTP session (RFC 5321) over a SwiftNIO channel: greeting, EHLO, STARTTLS (RFC 3207) as
/// ``SMTPSettings/startTLS`` asks followed by a second EHLO, optional AUTH PLAIN/LOGIN (under TLS whenever TLS
/// is in use), then any number of mail transactions.
final class SMTPConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<SMTPClientHandler>
    private let settings: SMTPSettings
    /// Set once a transaction failed in a way that leaves the session in doubt.
    private let broken = Atomic<Bool>(false)
    /// Set once the STARTTLS handshake completed.
    private let secured = Atomic<Bool>(false)

    private init(channel: any Channel, handler: NIOLoopBound<SMTPClientHandler>, settings: SMTPSettings) {
        self.channel = channel
        self.handler = handler
        self.settings = settings
    }

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
                        let handler = SMTPClientHandler()
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
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: SMTPReply.self)
        let handler = self.handler
        let channel = self.channel
        let timeout = settings.replyTimeoutSeconds
        loop.execute {
            handler.value.expect(promise)
            if let bytes { channel.writeAndFlush(bytes, promise: nil) }
            let timer = loop.scheduleTask(in: .seconds(timeout)) {
                promise.fail(SMTPError(code: "smtp_unavailable", message: "no reply from the relay within \(timeout) s"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        do {
            return try await promise.futureResult.get()
        } catch {
            broken.store(true, ordering: .relaxed)
            throw error
        }
    }

    /// Runs one mail transaction up to the end of DATA. `beforeCommit` runs just before the final `.` is
    /// sent (the ledger records `sending` there). Returns the reply to the end of DATA (2xx). A negative reply
    /// throws ``SMTPError`` after `RSET` (the session stays usable).
    func transaction(from: String, to: String, message: [UInt8], beforeCommit: @Sendable () async throws -> Void) async throws -> SMTPReply {
        func check(_ r: SMTPReply, _ stage: String, _ expected: ClosedRange<Int>) async throws {
            guard expected.contains(r.code) else {
                if r.code == 421 { broken.store(true, ordering: .relaxed) }
                if isUsable { _ = try? await command("RSET\r\n") }
                throw SMTPError.reply(r, stage: stage)
            }
        }
        try await check(try await command("MAIL FROM:<\(from)>\r\n"), "mail", 250...259)
        try await check(try await command("RCPT TO:<\(to)>\r\n"), "rcpt", 250...259)
        try await check(try await command("DATA\r\n"), "data", 354...354)
        var body = ByteBuffer()
        body.reserveCapacity(message.count + 16)
        Self.dotStuff(message, into: &body)
        // Everything but the final terminator: the relay cannot accept before it sees "\r\n.\r\n".
        try await channel.writeAndFlush(body).get()
        do {
            try await beforeCommit()
        } catch {
            // The relay holds an unterminated DATA: this session can carry nothing more (it is closed, and the
            // relay drops the message when the connection goes).
            broken.store(true, ordering: .relaxed)
            throw error
        }
        let r = try await command(".\r\n")
        try await check(r, "message", 250...259)
        return r
    }

    /// Writes `message` with CRLF line ends, lines starting with `.` doubled, ending with CRLF.
    static func dotStuff(_ message: [UInt8], into buffer: inout ByteBuffer) {
        var atLineStart = true
        for b in message {
            if atLineStart && b == UInt8(ascii: ".") { buffer.writeInteger(UInt8(ascii: ".")) }
            buffer.writeInteger(b)
            atLineStart = b == 0x0A
        }
        if !atLineStart { buffer.writeBytes([0x0D, 0x0A]) }
    }

    /// Says QUIT and closes.
    func close() {
        broken.store(true, ordering: .relaxed)
        if channel.isActive {
            channel.writeAndFlush(ByteBuffer(string: "QUIT\r\n")).whenComplete { _ in self.channel.close(promise: nil) }
        }
    }
}
