import FleetCore
import Foundation

/// The queue behind the runtime (swift-jobs' `JobQueueDriver`): it hands out deliveries, and settles each one
/// in one of the ways the job life cycle needs. The runtime holds a driver, never a broker connection.
///
/// The guarantee every driver keeps: a delivery is acknowledged (taken off the queue for good) only by
/// ``finish(_:result:)``, only after the result it publishes is safely stored, and the runtime calls it only after
/// whatever replaces the job (a delayed copy, a dead letter) was confirmed. A delivery that is never finished
/// (the process dies, the connection drops) comes back, and the runtime's ledger answers it.
///
/// Drivers: `AMQPQueueDriver` (FleetAMQP: RabbitMQ, the fleet's production queue) and ``MemoryQueueDriver``
/// (in process: tests, demos).
public protocol JobQueueDriver: Sendable {
    /// What the driver needs to settle a delivery (for AMQP: the delivery tag and its connection).
    associatedtype Handle: Sendable
    /// The deliveries, in the batches the driver received them in.
    associatedtype Batches: AsyncSequence & Sendable where Batches.Element == [JobDelivery<Handle>], Batches.Failure == Never

    /// Connects (waiting for the queue to be reachable; cancelling the task stops that), prepares the queues
    /// of `kinds`, and starts delivering at most `prefetch` unsettled jobs per kind.
    func start(kinds: [String], prefetch: Int) async throws -> Batches

    /// Stops delivering: the sequence ends once what was received is handed out. Deliveries already handed
    /// out can still be settled.
    func stopDelivering() async

    /// Closes the driver; deliveries not finished go back to the queue.
    func close() async

    /// Whether the driver is connected and delivering (for readiness probes).
    var isReady: Bool { get }

    /// Publishes `result` (when there is one) and, once it is safely stored, acknowledges the delivery.
    /// Returns false when that did not happen: the delivery was then given back to the queue (the result was
    /// refused) or left to come back (the connection was lost).
    func finish(_ delivery: JobDelivery<Handle>, result: JobResultMessage?) async -> Bool

    /// Puts a copy of the job that comes back after `delay`, for attempt `attempt`, `deferrals` of the runs
    /// before it having ended `deferred`. True once the copy is safely stored; on false the delivery was given
    /// back or left to come back. Does not settle the delivery.
    func delay(_ delivery: JobDelivery<Handle>, by delay: Duration, attempt: Int, deferrals: Int) async -> Bool

    /// Puts a copy of the job with `error` among the dead letters of its kind. True once it is safely stored; on
    /// false the delivery was given back or left to come back. Does not settle the delivery.
    func deadLetter(_ delivery: JobDelivery<Handle>, error: JobError, attempt: Int) async -> Bool

    /// Gives the delivery back to the queue after a short pause (so that a broken dependency does not spin).
    func requeue(_ delivery: JobDelivery<Handle>) async

    /// Gives the delivery back to the queue at once (shutdown: it was not run).
    func release(_ delivery: JobDelivery<Handle>) async
}

/// A message a driver delivered: the job's body and what the runtime reads around it.
///
/// A class of constants, not a struct: a delivery travels through several tasks and calls, and a copy is then one
/// reference count instead of one per field (measured in `fleet bench`).
public final class JobDelivery<Handle: Sendable>: Sendable {
    /// The body, as published.
    public let body: [UInt8]
    /// The kind of the queue it came from.
    public let kind: String
    /// The message id the scheduler set (AMQP `message_id`): the result's `job_id` when the body has no usable id.
    public let messageID: String?
    /// The content type the scheduler set (AMQP `content_type`).
    public let contentType: String?
    /// The scheduler's correlation id (AMQP `correlation_id`), copied into every result.
    public let correlationID: String?
    /// When the scheduler published it (AMQP `timestamp`), for `queue_ms` when the job has no `created_at`.
    public let publishedAt: Date?
    /// The attempt this copy is for: 1, then one more for each retry or deferral.
    public let attempt: Int
    /// How many runs before this copy ended `deferred` (they do not count toward the retry limit).
    public let deferrals: Int
    /// Sent back by `fleet dlq replay`: a dead job runs again.
    public let isReplay: Bool
    /// Delivered before and not settled (a worker died, a connection dropped).
    public let redelivered: Bool
    /// The driver's own reference to the delivery.
    public let handle: Handle

    public init(body: [UInt8], kind: String, messageID: String? = nil, contentType: String? = nil,
                correlationID: String? = nil, publishedAt: Date? = nil, attempt: Int = 1, deferrals: Int = 0,
                isReplay: Bool = false, redelivered: Bool = false, handle: Handle) {
        self.body = body
        self.kind = kind
        self.messageID = messageID
        self.contentType = contentType
        self.correlationID = correlationID
        self.publishedAt = publishedAt
        self.attempt = attempt
        self.deferrals = deferrals
        self.isReplay = isReplay
        self.redelivered = redelivered
        self.handle = handle
    }
}

/// A result as a driver publishes it: the encoded body and its routing.
public struct JobResultMessage: Sendable, Hashable {
    /// `<kind>.<status>`.
    public var routingKey: String
    /// `<job_id>:<attempt>:<status>`: a re-published result keeps it.
    public var messageID: String
    public var body: [UInt8]

    public init(routingKey: String, messageID: String, body: [UInt8]) {
        self.routingKey = routingKey
        self.messageID = messageID
        self.body = body
    }

    /// The message of a result envelope (its body encoded, or `body` when already encoded).
    public init(_ envelope: ResultEnvelope, body: [UInt8]? = nil) {
        self.init(routingKey: envelope.routingKey, messageID: envelope.messageID, body: body ?? envelope.encoded())
    }
}
