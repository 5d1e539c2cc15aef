/// The depth and consumer count of a queue, from a passive declare.
public struct AMQPQueueStatus: Sendable, Equatable {
    public var name: String
    /// Messages ready for delivery (not counting unacknowledged ones).
    public var messages: UInt32
    public var consumers: UInt32

    public init(name: String, messages: UInt32, consumers: UInt32) {
        self.name = name
        self.messages = messages
        self.consumers = consumers
    }
}
