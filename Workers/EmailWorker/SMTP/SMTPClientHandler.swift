import NIOCore
import NIOSSL
import NIOTLS

/// Matches SMTP replies to the commands waiting for them, in order, and switches the channel to TLS after a
/// positive STARTTLS reply. Lives on its channel's event loop.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = SMTPReply
    private var waiting = CircularBuffer<EventLoopPromise<SMTPReply>>()
    /// Replies that arrived before anyone waited (the greeting can beat the first `expect`).
    private var early = CircularBuffer<SMTPReply>()
    private var failure: SMTPError?
    /// The decoder's state, shared with it (see ``SMTPReplyDecoder/Progress``).
    let decoderProgress = SMTPReplyDecoder.Progress()
    /// The TLS handshake under way, and the settings that describe its failure.
    private var handshake: (promise: EventLoopPromise<Void>, settings: SMTPSettings)?

    /// Waits for the next reply (the caller writes its command right after).
    func expect(_ promise: EventLoopPromise<SMTPReply>) {
        if let reply = early.popFirst() {
            promise.succeed(reply)
        } else if let failure {
            promise.fail(failure)
        } else {
            waiting.append(promise)
        }
    }

    /// Puts `tls` in front of the pipeline (after the relay's 220 to STARTTLS, with no command outstanding) and
    /// completes `promise` when the handshake has. Fails at once, without starting TLS, when the relay sent
    /// anything after its 220: those bytes came in clear and must not be read as if they came under TLS.
    func startTLS(_ tls: NIOSSLClientHandler, pipeline: ChannelPipeline.SynchronousOperations, promise: EventLoopPromise<Void>,
                  settings: SMTPSettings) {
        if let failure { return promise.fail(failure) }
        guard early.isEmpty, waiting.isEmpty, decoderProgress.isIdle else {
            let error = SMTPError(code: "smtp_protocol", message: "the relay sent data after agreeing to STARTTLS", stage: "starttls")
            failAll(error)
            return promise.fail(error)
        }
        handshake = (promise, settings)
        do {
            try pipeline.addHandler(tls, position: .first)
        } catch {
            handshake = nil
            promise.fail(SMTPTLS.handshakeError(error, settings: settings))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        if let promise = waiting.popFirst() {
            promise.succeed(reply)
        } else {
            early.append(reply)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent, let handshake {
            self.handshake = nil
            handshake.promise.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let handshake {
            self.handshake = nil
            let tlsError = SMTPTLS.handshakeError(error, settings: handshake.settings)
            handshake.promise.fail(tlsError)
            failAll(tlsError)
        } else {
            failAll(error as? SMTPError ?? SMTPError(code: "smtp_unavailable", message: "connection error: \(error)"))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let closed = SMTPError(code: "smtp_unavailable", message: "the relay closed the connection")
        if let handshake {
            self.handshake = nil
            handshake.promise.fail(SMTPError(code: "smtp_tls_failed", message: "the relay closed the connection during the TLS handshake",
                                             stage: "starttls"))
        }
        failAll(closed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: SMTPError) {
        if failure == nil { failure = error }
        while let p = waiting.popFirst() { p.fail(error) }
    }
}
