import Logging
import Synchronization

/// A connection to a RabbitMQ broker over rabbitmq-c, safe to use from any task.
///
/// One I/O thread owns the C connection; this type hands it work. It publishes with publisher confirms
/// (each ``publish(_:to:routingKey:properties:mandatory:)`` returns when the broker confirmed, nacked or
/// returned the message), consumes with manual acks and a prefetch, and reconnects by itself with capped
/// exponential backoff after a broker restart or a network loss: declarations are made again and
/// consumers resume. Deliveries of a dead connection are left to the broker, which requeues them.
///
/// ```swift
/// let connection = try await AMQPConnection.connect(AMQPConfiguration(url: "amqp://127.0.0.1:5672/%2F"))
/// let confirm = try await connection.publish(body, to: "fleet.jobs", routingKey: "noop")
/// ```
public final class AMQPConnection: Sendable {
    private let loop: AMQPIOLoop
    /// Connection events: connected, disconnected, blocked... One reader at a time.
    public let events: AsyncStream<AMQPConnectionEvent>
    public let configuration: AMQPConfiguration

    private init(loop: AMQPIOLoop, events: AsyncStream<AMQPConnectionEvent>, configuration: AMQPConfiguration) {
        self.loop = loop
        self.events = events
        self.configuration = configuration
    }

    /// Connects and returns the connection once the broker accepted the login.
    ///
    /// - Parameter retryUntilConnected: keep trying (with backoff) until the first connection succeeds,
    ///   as a worker started before its broker should; otherwise the first failure is thrown.
    ///
    /// Cancelling the calling task stops the attempts: the call throws ``AMQPError`` `.closed` (after at most the
    /// connect timeout, when a TCP connect is under way).
    public static func connect(
        _ configuration: AMQPConfiguration, retryUntilConnected: Bool = false,
        logger: Logger = Logger(label: "fleet.amqp")
    ) async throws -> AMQPConnection {
        let (events, eventContinuation) = AsyncStream<AMQPConnectionEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let created = Mutex<AMQPIOLoop?>(nil)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let loop = AMQPIOLoop(
                    configuration: configuration, logger: logger, events: eventContinuation,
                    retryFirstConnect: retryUntilConnected, firstConnect: continuation)
                created.withLock { $0 = loop }
                loop.start()
                // Cancelled before the loop was there for the handler to stop.
                if Task.isCancelled { loop.requestStop() }
            }
        } onCancel: {
            created.withLock { $0 }?.requestStop()
        }
        return AMQPConnection(loop: created.withLock { $0 }!, events: events, configuration: configuration)
    }

    /// The generation of the live connection: 1 for the first, one more for each reconnect.
    public var generation: UInt64 { loop.currentGeneration }

    /// Whether the connection is up now (false while it reconnects, and once closed).
    public var isConnected: Bool { loop.isConnected }

    /// Publishes a message and waits for the broker's confirm.
    ///
    /// - Returns: `.acked` when the message is safely queued; `.returned` when `mandatory` is set and no
    ///   queue took it; `.nacked` when the broker refused it.
    /// - Throws: ``AMQPError`` `.notConnected` while reconnecting, `.connectionLost` when the connection
    ///   died before the confirm arrived (the message may or may not be queued), `.closed`.
    ///
    /// A mandatory message without a message id gets a header `x-amqp-return-seq` (its publish number on
    /// this connection), so that a `basic.return` can be matched to it exactly.
    ///
    /// - Parameter ackOnConfirm: a delivery that the I/O thread acks the moment the broker confirms this
    ///   publish (a returned mandatory message is confirmed too; a nack does not ack). This saves the
    ///   round trip through the caller when the ack only waits for the confirm.
    public func publish(
        _ body: [UInt8], to exchange: String, routingKey: String,
        properties: AMQPProperties = AMQPProperties(), mandatory: Bool = true, ackOnConfirm: AMQPDelivery? = nil
    ) async throws -> AMQPPublishConfirm {
        try await withCheckedThrowingContinuation { continuation in
            let publish = AMQPIOLoop.Publish(
                exchange: exchange, routingKey: routingKey, body: body, properties: properties,
                mandatory: mandatory,
                ackOnConfirm: ackOnConfirm.map { ($0.deliveryTag, $0.connectionGeneration) },
                continuation: continuation)
            if !loop.submit(.publish(publish)) {
                continuation.resume(throwing: AMQPError(.closed, "the connection was closed"))
            }
        }
    }

    /// Acknowledges a delivery. Acks of an earlier connection's deliveries are dropped (already requeued).
    public func ack(_ delivery: AMQPDelivery) {
        loop.submit(.ack(tag: delivery.deliveryTag, generation: delivery.connectionGeneration))
    }

    /// Rejects a delivery, requeueing it or not (then the queue's dead-letter exchange gets it, if any).
    public func reject(_ delivery: AMQPDelivery, requeue: Bool) {
        loop.submit(.reject(tag: delivery.deliveryTag, generation: delivery.connectionGeneration, requeue: requeue))
    }

    /// Starts consuming a queue with manual acks and the given prefetch. The consumer survives
    /// reconnects: its stream goes on with deliveries of the new connection.
    public func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer {
        try await consume(queues: [queue], prefetch: prefetch)
    }

    /// Consumes several queues into one sequence (one consumer per queue, each with the prefetch).
    public func consume(queues: [String], prefetch: UInt16) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncStream<[AMQPDelivery]>.makeStream()
        let tags: [String] = try await perform { loop in
            var tags: [String] = []
            do {
                for queue in queues {
                    tags.append(try loop.addConsumer(queue: queue, prefetch: prefetch, continuation: continuation))
                }
            } catch {
                loop.cancelConsumers(tags: tags)
                throw error
            }
            return tags
        }
        return AMQPConsumer(stream: stream, tags: tags, queues: queues, connection: self)
    }

    /// Stops consumers. Their stream ends; deliveries already handed out can still be acked.
    public func cancel(consumerTags: [String]) async {
        _ = try? await perform { loop in loop.cancelConsumers(tags: consumerTags) }
    }

    /// Declares exchanges, queues and bindings. With `redeclareOnReconnect` they are declared again after
    /// every reconnect (a broker that lost its non-durable state gets it back).
    public func declare(_ declarations: [AMQPDeclaration], redeclareOnReconnect: Bool = true) async throws {
        try await perform { loop in
            try loop.declareNow(declarations)
            if redeclareOnReconnect { loop.remember(declarations) }
        }
    }

    /// The depth and consumer count of a queue, or nil if it does not exist.
    public func queueStatus(_ name: String) async throws -> AMQPQueueStatus? {
        try await perform { loop in try loop.queueStatus(name) }
    }

    /// Removes every ready message of a queue; returns how many.
    @discardableResult
    public func purge(queue name: String) async throws -> UInt32 {
        try await perform { loop in try loop.purge(name) }
    }

    /// Deletes a queue.
    public func delete(queue name: String) async throws {
        try await perform { loop in try loop.deleteQueue(name) }
    }

    /// Deletes an exchange.
    public func delete(exchange name: String) async throws {
        try await perform { loop in try loop.deleteExchange(name) }
    }

    /// Deletes the queues and exchanges among `declarations` (their bindings go with them), skipping any
    /// that fail (already gone, say): for tearing down temporary topologies of tests and benchmarks.
    public func delete(_ declarations: [AMQPDeclaration]) async {
        for declaration in declarations {
            switch declaration {
            case .queue(let q): try? await delete(queue: q.name)
            case .exchange(let e): try? await delete(exchange: e.name)
            case .binding: break
            }
        }
    }

    /// Closes the connection: pending publishes fail with `.closed`, consumer streams end. A connection the
    /// broker blocked (a resource alarm) is dropped without the close handshake, which the broker would not
    /// read before the alarm clears.
    public func close() async {
        await loop.shutdown()
    }

    /// Runs a body on the I/O thread and returns its result.
    private func perform<T: Sendable>(_ body: @escaping @Sendable (AMQPIOLoop) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = loop.submit(.perform { loop in
                do { continuation.resume(returning: try body(loop)) } catch { continuation.resume(throwing: error) }
            })
            if !accepted { continuation.resume(throwing: AMQPError(.closed, "the connection was closed")) }
        }
    }
}
