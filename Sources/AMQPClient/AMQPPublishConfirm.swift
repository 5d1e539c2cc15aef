/// What the broker said about a published message.
public enum AMQPPublishConfirm: Sendable, Equatable {
    /// Confirmed: routed and (for persistent messages to durable queues) written to disk.
    case acked
    /// The broker could not take the message (an internal error, a queue overflow with reject-publish).
    case nacked
    /// A mandatory message that no queue was bound for; the broker returned it.
    case returned(replyCode: UInt16, replyText: String)

    /// True only for `.acked`: the message is safely in a queue.
    public var isAcked: Bool { self == .acked }
}
