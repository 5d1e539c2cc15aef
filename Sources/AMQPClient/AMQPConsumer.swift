/// The deliveries of a consumer (of one queue or several), as an async sequence. It ends when the
/// consumer is cancelled (by ``cancel()``, by the broker, or when the connection is closed); it goes on
/// across reconnects.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    let stream: AsyncStream<AMQPDelivery>
    /// The consumer tags, one per queue.
    public let tags: [String]
    /// The queues consumed.
    public let queues: [String]
    let connection: AMQPConnection

    public func makeAsyncIterator() -> AsyncStream<AMQPDelivery>.AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// Stops the consumer: the broker sends no more deliveries and the sequence ends.
    public func cancel() async {
        await connection.cancel(consumerTags: tags)
    }
}
