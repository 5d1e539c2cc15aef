/// A message delivered to a consumer. Acknowledge it with ``AMQPConnection/ack(_:)`` or
/// ``AMQPConnection/reject(_:requeue:)``.
public struct AMQPDelivery: Sendable {
    /// The body, as sent.
    public var body: [UInt8]
    public var properties: AMQPProperties
    /// The delivery tag on the channel it came on.
    public var deliveryTag: UInt64
    /// Set by the broker when the message was delivered before and not acknowledged.
    public var redelivered: Bool
    public var exchange: String
    public var routingKey: String
    public var consumerTag: String
    /// The queue the consumer reads.
    public var queue: String
    /// Which connection (counted from 1, one more per reconnect) the delivery came on. An ack for an
    /// earlier connection's delivery is dropped: the broker has already requeued it.
    public var connectionGeneration: UInt64

    public init(
        body: [UInt8], properties: AMQPProperties, deliveryTag: UInt64, redelivered: Bool, exchange: String,
        routingKey: String, consumerTag: String, queue: String, connectionGeneration: UInt64
    ) {
        self.body = body
        self.properties = properties
        self.deliveryTag = deliveryTag
        self.redelivered = redelivered
        self.exchange = exchange
        self.routingKey = routingKey
        self.consumerTag = consumerTag
        self.queue = queue
        self.connectionGeneration = connectionGeneration
    }
}
