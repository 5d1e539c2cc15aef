import NIOCore

/// Matches SMTP replies to the commands waiting for them, in order. Lives on its channel's event loop.
final class SMTPClientHandler: ChannelInboundHandler {
    typealias InboundIn = SMTPReply
    private var waiting = CircularBuffer<EventLoopPromise<SMTPReply>>()
    /// Replies that arrived before anyone waited (the greeting can beat the first `expect`).
    private var early = CircularBuffer<SMTPReply>()
    private var failure: SMTPError?

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

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        if let promise = waiting.popFirst() {
            promise.succeed(reply)
        } else {
            early.append(reply)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error as? SMTPError ?? SMTPError(code: "smtp_unavailable", message: "connection error: \(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(SMTPError(code: "smtp_unavailable", message: "the relay closed the connection"))
        context.fireChannelInactive()
    }

    private func failAll(_ error: SMTPError) {
        if failure == nil { failure = error }
        while let p = waiting.popFirst() { p.fail(error) }
    }
}
