import AMQPClient
import FleetCore
import FleetRuntime
import Foundation
import Logging
import Metrics
import Synchronization

/// The runtime's queue on RabbitMQ (AMQP 0-9-1 through rabbitmq-c): jobs from `<prefix>.<kind>`, results to
/// `<prefix>.results`, delayed copies through `<prefix>.delay`, dead letters to `<prefix>.dead` (``FleetTopology``).
///
/// The rule "acknowledge only after the result is confirmed" lives here: ``finish(_:result:)`` publishes the
/// result with a publisher confirm and the connection's I/O thread acks the delivery the moment the broker
/// confirms it (no hop back to the caller); ``delay(_:by:attempt:)`` and ``deadLetter(_:error:attempt:)`` return
/// only once their copy is confirmed (and routed). A nack or a return of a copy that had to be routed gives the
/// delivery back after a pause; a lost connection leaves it to the broker, which delivers it again.
public final class AMQPQueueDriver: JobQueueDriver {
    public typealias Handle = AMQPDelivery

    /// The deliveries of the consumed queues, in the batches the I/O thread read them in.
    public struct Batches: AsyncSequence, Sendable {
        public typealias Element = [JobDelivery<AMQPDelivery>]
        public typealias Failure = Never
        let base: AsyncStream<[AMQPDelivery]>
        let kindsByQueue: [String: String]

        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncStream<[AMQPDelivery]>.AsyncIterator
            let kindsByQueue: [String: String]

            public mutating func next() async -> [JobDelivery<AMQPDelivery>]? {
                guard let batch = await base.next() else { return nil }
                return batch.map { AMQPQueueDriver.delivery($0, kindsByQueue: kindsByQueue) }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: base.makeAsyncIterator(), kindsByQueue: kindsByQueue)
        }
    }

    private struct State {
        var connection: AMQPConnection?
        var consumer: AMQPConsumer?
        var topology: FleetTopology
    }

    public let amqp: AMQPConfiguration
    private let logger: Logger
    private let workerID: String
    private let state: Mutex<State>
    private let unroutable = Counter(label: "fleet_results_unroutable_total")
    /// The exchanges' names, fixed by the prefix (read on every job: not through the lock and the topology).
    private let resultsExchange: String
    private let delayExchange: String
    private let deadExchange: String

    /// A driver that connects with `amqp` and uses `topology` (the kinds a worker runs are added to it).
    public init(amqp: AMQPConfiguration, topology: FleetTopology, workerID: String = WorkerConfiguration.defaultWorkerID,
                logger: Logger = Logger(label: "fleet.amqp")) {
        self.amqp = amqp
        self.logger = logger
        self.workerID = workerID
        self.state = Mutex(State(connection: nil, consumer: nil, topology: topology))
        self.resultsExchange = topology.resultsExchange
        self.delayExchange = topology.delayExchange
        self.deadExchange = topology.deadExchange
    }

    /// The topology in use (with the worker's kinds once started).
    public var topology: FleetTopology { state.withLock { $0.topology } }

    public var isReady: Bool { state.withLock { $0.connection?.isConnected ?? false } && state.withLock { $0.consumer != nil } }

    public func start(kinds: [String], prefetch: Int) async throws -> Batches {
        var topology = state.withLock { $0.topology }
        for kind in kinds where !topology.kinds.contains(kind) { topology.kinds.append(kind) }
        let connection = try await AMQPConnection.connect(amqp, retryUntilConnected: true, logger: logger)
        do {
            try await connection.declare(topology.declarations)
            var kindsByQueue: [String: String] = [:]
            for kind in kinds { kindsByQueue[topology.queue(forKind: kind)] = kind }
            let consumer = try await connection.consume(
                queues: kinds.map(topology.queue(forKind:)), prefetch: UInt16(clamping: prefetch))
            state.withLock {
                $0.connection = connection
                $0.consumer = consumer
                $0.topology = topology
            }
            return Batches(base: consumer.batches, kindsByQueue: kindsByQueue)
        } catch {
            await connection.close()
            throw error
        }
    }

    public func stopDelivering() async {
        let consumer = state.withLock { s -> AMQPConsumer? in
            defer { s.consumer = nil }
            return s.consumer
        }
        await consumer?.cancel()
    }

    public func close() async {
        let connection = state.withLock { s -> AMQPConnection? in
            defer { s.connection = nil; s.consumer = nil }
            return s.connection
        }
        await connection?.close()
    }

    /// A delivery as the runtime sees it.
    static func delivery(_ d: AMQPDelivery, kindsByQueue: [String: String]) -> JobDelivery<AMQPDelivery> {
        let kind = kindsByQueue[d.queue] ?? d.routingKey.split(separator: ".").first.map(String.init) ?? "unknown"
        let headers = d.properties.headers
        var attempt = 1
        var deferrals = 0
        var isReplay = false
        if !headers.isEmpty {  // most first deliveries have none: no hashing then
            if let value = headers[FleetHeaders.attempt]?.intValue, value >= 1 { attempt = Int(min(value, 1_000_000)) }
            if let value = headers[FleetHeaders.deferrals]?.intValue, value >= 0 { deferrals = Int(min(value, Int64(attempt - 1))) }
            isReplay = headers[FleetHeaders.replay] != nil
        }
        return JobDelivery(
            body: d.body, kind: kind, messageID: d.properties.messageID, contentType: d.properties.contentType,
            correlationID: d.properties.correlationID,
            publishedAt: d.properties.timestamp.flatMap { $0 > 0 ? Date(timeIntervalSince1970: Double($0)) : nil },
            attempt: attempt, deferrals: deferrals, isReplay: isReplay, redelivered: d.redelivered, handle: d)
    }

    // MARK: - Settling

    public func finish(_ delivery: JobDelivery<AMQPDelivery>, result: JobResultMessage?) async -> Bool {
        guard let connection = state.withLock({ $0.connection }) else { return false }
        guard let result else {
            connection.ack(delivery.handle)
            return true
        }
        var properties = AMQPProperties.persistentJSON(messageID: result.messageID, type: "fleet.result")
        properties.correlationID = delivery.correlationID
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        let confirmed = await publishConfirmed(
            result.body, on: connection, to: resultsExchange, routingKey: result.routingKey, properties: properties,
            for: delivery, what: "result", mustRoute: false, ackOnConfirm: true)
        guard confirmed else { return false }
        if let replyTo = delivery.handle.properties.replyTo, !replyTo.isEmpty {
            // Best effort: a missing reply queue must not hold the job back.
            _ = await publishConfirmed(
                result.body, on: connection, to: "", routingKey: replyTo, properties: properties, for: delivery, what: "reply", mustRoute: false)
        }
        return true
    }

    public func delay(_ delivery: JobDelivery<AMQPDelivery>, by delay: Duration, attempt: Int, deferrals: Int) async -> Bool {
        let milliseconds = max(1, delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)
        let tier = FleetTopology.delayTier(for: .milliseconds(milliseconds))
        var properties = delivery.handle.properties
        properties.deliveryMode = 2
        properties.expiration = String(milliseconds)
        properties.headers[FleetHeaders.attempt] = .int(Int64(attempt))
        properties.headers[FleetHeaders.deferrals] = deferrals > 0 ? .int(Int64(deferrals)) : nil
        properties.headers[FleetHeaders.delay] = .string("\(tier)s")
        properties.headers[FleetHeaders.replay] = nil
        return await publishConfirmed(
            delivery.body, to: delayExchange, routingKey: delivery.handle.routingKey, properties: properties,
            for: delivery, what: "delayed copy")
    }

    public func deadLetter(_ delivery: JobDelivery<AMQPDelivery>, error: JobError, attempt: Int) async -> Bool {
        let d = delivery.handle
        var properties = d.properties
        properties.expiration = nil
        properties.deliveryMode = 2
        properties.headers[FleetHeaders.errorCode] = .string(error.code)
        properties.headers[FleetHeaders.errorMessage] = .string(error.message)
        properties.headers[FleetHeaders.attempt] = .int(Int64(attempt))
        properties.headers[FleetHeaders.deadAt] = .string(Timestamp.format(Date()))
        properties.headers[FleetHeaders.worker] = .string(workerID)
        properties.headers[FleetHeaders.originalRoutingKey] = .string(d.routingKey)
        properties.headers[FleetHeaders.queue] = .string(d.queue)
        properties.headers[FleetHeaders.delay] = nil
        let routingKey = JobEnvelope.isValidKind(d.routingKey.split(separator: ".").first.map(String.init) ?? "")
            ? d.routingKey : delivery.kind
        return await publishConfirmed(
            d.body, to: deadExchange, routingKey: routingKey, properties: properties, for: delivery, what: "dead letter")
    }

    public func requeue(_ delivery: JobDelivery<AMQPDelivery>) async {
        try? await Task.sleep(for: .seconds(1))
        state.withLock { $0.connection }?.reject(delivery.handle, requeue: true)
    }

    public func release(_ delivery: JobDelivery<AMQPDelivery>) async {
        state.withLock { $0.connection }?.reject(delivery.handle, requeue: true)
    }

    /// Publishes with a confirm. False when it was not confirmed: then the delivery was either left to the broker
    /// (connection lost) or given back after a pause (nacked, or returned when it had to be routed).
    private func publishConfirmed(_ body: [UInt8], on known: AMQPConnection? = nil, to exchange: String, routingKey: String,
                                  properties: AMQPProperties, for delivery: JobDelivery<AMQPDelivery>, what: String,
                                  mustRoute: Bool = true, ackOnConfirm: Bool = false) async -> Bool {
        guard let connection = known ?? state.withLock({ $0.connection }) else { return false }
        do {
            let confirm = try await connection.publish(
                body, to: exchange, routingKey: routingKey, properties: properties, mandatory: true,
                ackOnConfirm: ackOnConfirm ? delivery.handle : nil)
            switch confirm {
            case .acked:
                return true
            case .returned(let code, let text):
                if !mustRoute {
                    if exchange != "" { unroutable.increment() }
                    logger.debug("\(what) not routed to any queue", metadata: ["amqp.reply": "\(code) \(text)"])
                    return true
                }
                logger.error("\(what) could not be routed; is the topology applied?",
                             metadata: ["amqp.exchange": "\(exchange)", "amqp.reply": "\(code) \(text)"])
            case .nacked:
                logger.error("the broker refused the \(what)", metadata: ["amqp.exchange": "\(exchange)"])
            }
            await requeue(delivery)
            return false
        } catch {
            logger.warning("\(what) not confirmed; the broker will deliver the job again", metadata: ["error": "\(error)"])
            return false
        }
    }
}
