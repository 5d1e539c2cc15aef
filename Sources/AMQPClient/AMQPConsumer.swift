/// The deliveries of a consumer (of one queue or several), as an async sequence. It ends when the
/// consumer is cancelled (by ``cancel()``, by the broker, or when the connection is closed); it goes on
/// across reconnects.
///
/// The I/O thread hands deliveries over in batches (what one read of the socket brought); iterate the
/// consumer for single deliveries, or ``batches`` to take each batch at once (one wake-up per batch).
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    let stream: AsyncStream<[AMQPDelivery]>
    /// The consumer tags, one per queue.
    public let tags: [String]
    /// The queues consumed.
    public let queues: [String]
    let connection: AMQPConnection

    /// The deliveries in the batches the I/O thread read them in. Iterate either this or the consumer, once.
    public var batches: AsyncStream<[AMQPDelivery]> { stream }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: stream.makeAsyncIterator())
    }

    /// Stops the consumer: the broker sends no more deliveries and the sequence ends.
    public func cancel() async {
        await connection.cancel(consumerTags: tags)
    }

    /// Yields the deliveries of each batch in order.
    public struct Iterator: AsyncIteratorProtocol {
        var base: AsyncStream<[AMQPDelivery]>.AsyncIterator
        var batch: [AMQPDelivery] = []
        var index = 0

        public mutating func next() async -> AMQPDelivery? {
            while index >= batch.count {
                guard let next = await base.next() else { return nil }
                batch = next
                index = 0
            }
            defer { index += 1 }
            return batch[index]
        }
    }
}
