import Clocks
import FleetCore
import Foundation
import ServiceLifecycle
import Synchronization

/// A ``JobQueueDriver`` in process memory (swift-jobs' `JobQueue(.memory)`): for tests of the runtime without a
/// broker, and for `fleet worker --driver memory` demos. Jobs are pushed with ``push(_:kind:messageID:)``;
/// results, dead letters and settlements are kept and can be awaited (``waitFor(_:)``), never polled.
///
/// Delayed copies (retries, `not_before` holds, deferrals) come back after their delay on the driver's clock:
/// with a `TestClock`, a test moves time with `advance(by:)`. The driver is a `Service`: run it in the same
/// `ServiceGroup` as the worker (it owns the timers of delayed copies).
public final class MemoryQueueDriver: JobQueueDriver, Service {
    /// The memory driver's reference to a delivery.
    public struct Handle: Sendable, Hashable {
        public let sequence: UInt64
    }

    /// Something that happened to a job in the queue.
    public enum Event: Sendable, Hashable {
        /// A result was published (and the delivery settled): final or not.
        case result(ResultEnvelope)
        /// A copy was put aside to come back after the delay, for the attempt.
        case delayed(jobID: String?, attempt: Int, delay: Duration)
        /// A copy went to the dead letters with this error code.
        case deadLettered(jobID: String?, code: String)
        /// The delivery was given back to the queue (`requeue`: after a problem; `release`: at shutdown).
        case requeued(jobID: String?)
        case released(jobID: String?)
        /// The worker stopped taking deliveries (shutdown).
        case stoppedDelivering
        /// The delivery was settled without a result (a hold).
        case settled(jobID: String?)
    }

    private struct Message: Sendable {
        var body: [UInt8]
        var kind: String
        var messageID: String?
        var contentType: String?
        var correlationID: String?
        var attempt: Int
        var deferrals = 0
        var isReplay: Bool
        var redelivered: Bool
    }

    private struct Waiter {
        let predicate: @Sendable ([Event]) -> Bool
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var nextSequence: UInt64 = 0
        var ready: [Message] = []
        var unsettled: [UInt64: Message] = [:]
        var events: [Event] = []
        var waiters: [Waiter] = []
        var deliveries: AsyncStream<[JobDelivery<Handle>]>.Continuation?
        var kinds: Set<String> = []
        var stopped = false
        var closed = false
        var inDelivery = 0
        /// Delayed copies waiting for `run()` to time them, with the instant they are due.
        var timers: AsyncStream<(Message, AnyClock<Duration>.Instant)>.Continuation?
        var pendingTimers: [(Message, AnyClock<Duration>.Instant)] = []
    }

    private let state = Mutex(State())
    private let clock: AnyClock<Duration>
    /// Most deliveries handed out unsettled per kind (the prefetch).
    private let batchSize: Int

    /// A driver whose delays run on `clock` (a `TestClock` in tests).
    public init(clock: AnyClock<Duration> = AnyClock(ContinuousClock()), batchSize: Int = 64) {
        self.clock = clock
        self.batchSize = batchSize
    }

    // MARK: - Scheduler side

    /// Publishes a job body to the queue of `kind`, as a scheduler would.
    public func push(_ body: [UInt8], kind: String, messageID: String? = nil, contentType: String? = "application/json",
                     correlationID: String? = nil) {
        enqueue(Message(body: body, kind: kind, messageID: messageID, contentType: contentType, correlationID: correlationID,
                        attempt: 1, isReplay: false, redelivered: false))
    }

    /// Publishes a job (as JSON).
    public func push(_ job: JSONValue, correlationID: String? = nil) {
        push(job.serialized(), kind: job["kind"]?.stringValue ?? "unknown", messageID: job["id"]?.stringValue,
             correlationID: correlationID)
    }

    /// Every event so far.
    public var events: [Event] { state.withLock { $0.events } }

    /// The results published so far.
    public var results: [ResultEnvelope] {
        events.compactMap { if case .result(let r) = $0 { return r } else { return nil } }
    }

    /// Suspends until `predicate` holds for the events so far (checked at once and after each new event).
    public func waitFor(_ predicate: @escaping @Sendable ([Event]) -> Bool) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if predicate(s.events) { return true }
                s.waiters.append(Waiter(predicate: predicate, continuation: continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Suspends until the job has a result with a final status; returns that result.
    @discardableResult
    public func finalResult(of jobID: String) async -> ResultEnvelope {
        await waitFor { events in events.contains { if case .result(let r) = $0 { r.jobID == jobID && r.status.isFinal } else { false } } }
        return results.last { $0.jobID == jobID && $0.status.isFinal }!
    }

    /// Jobs waiting to be delivered, handed out and not settled, or delayed.
    public var depth: (ready: Int, unsettled: Int) { state.withLock { ($0.ready.count, $0.unsettled.count) } }

    // MARK: - JobQueueDriver

    public var isReady: Bool { state.withLock { $0.deliveries != nil && !$0.stopped } }

    public func start(kinds: [String], prefetch: Int) async throws -> AsyncStream<[JobDelivery<Handle>]> {
        let (stream, continuation) = AsyncStream<[JobDelivery<Handle>]>.makeStream()
        let batch = state.withLock { s -> [JobDelivery<Handle>] in
            s.kinds = Set(kinds)
            s.deliveries = continuation
            return Self.takeBatch(&s, limit: batchSize)
        }
        if !batch.isEmpty { continuation.yield(batch) }
        return stream
    }

    public func stopDelivering() async {
        let continuation = state.withLock { s -> AsyncStream<[JobDelivery<Handle>]>.Continuation? in
            s.stopped = true
            defer { s.deliveries = nil }
            return s.deliveries
        }
        continuation?.finish()
        record(.stoppedDelivering)
    }

    public func close() async {
        await stopDelivering()
        let timers = state.withLock { s -> AsyncStream<(Message, AnyClock<Duration>.Instant)>.Continuation? in
            s.closed = true
            // What was handed out and not settled goes back, as a broker does when the connection closes.
            for (_, message) in s.unsettled.sorted(by: { $0.key < $1.key }) {
                var m = message
                m.redelivered = true
                s.ready.append(m)
            }
            s.unsettled.removeAll()
            return s.timers
        }
        timers?.finish()
    }

    public func finish(_ delivery: JobDelivery<Handle>, result: JobResultMessage?) async -> Bool {
        let event: Event
        if let result, let envelope = try? ResultEnvelope.decode(result.body) {
            event = .result(envelope)
        } else {
            event = .settled(jobID: delivery.messageID)
        }
        settle(delivery, event: event)
        return true
    }

    public func delay(_ delivery: JobDelivery<Handle>, by delay: Duration, attempt: Int, deferrals: Int) async -> Bool {
        let message = state.withLock { s -> Message? in s.unsettled[delivery.handle.sequence] }
        guard var copy = message else { return false }
        copy.attempt = attempt
        copy.deferrals = deferrals
        copy.redelivered = false
        copy.isReplay = false
        // Due from now on the driver's clock, whenever the timer's task gets to sleep on it.
        let due = clock.now.advanced(by: delay)
        let timers = state.withLock { s -> AsyncStream<(Message, AnyClock<Duration>.Instant)>.Continuation? in
            if s.timers == nil { s.pendingTimers.append((copy, due)) }
            return s.timers
        }
        timers?.yield((copy, due))
        record(.delayed(jobID: delivery.messageID, attempt: attempt, delay: delay))
        return true
    }

    public func deadLetter(_ delivery: JobDelivery<Handle>, error: JobError, attempt: Int) async -> Bool {
        record(.deadLettered(jobID: delivery.messageID, code: error.code))
        return true
    }

    public func requeue(_ delivery: JobDelivery<Handle>) async {
        giveBack(delivery, event: .requeued(jobID: delivery.messageID))
    }

    public func release(_ delivery: JobDelivery<Handle>) async {
        giveBack(delivery, event: .released(jobID: delivery.messageID))
    }

    // MARK: - Service

    /// Times the delayed copies until the driver is closed and the service group shuts down.
    public func run() async throws {
        let (stream, continuation) = AsyncStream<(Message, AnyClock<Duration>.Instant)>.makeStream()
        let pending = state.withLock { s -> [(Message, AnyClock<Duration>.Instant)] in
            s.timers = continuation
            defer { s.pendingTimers.removeAll() }
            return s.pendingTimers
        }
        for timer in pending { continuation.yield(timer) }
        let clock = self.clock
        await withDiscardingTaskGroup { group in
            for await (message, due) in stream.cancelOnGracefulShutdown() {
                group.addTask {
                    if clock.now < due {
                        do { try await clock.sleep(until: due) } catch { return }
                    }
                    self.enqueue(message)
                }
            }
            group.cancelAll()
        }
        // Closed by the worker before the group shuts this service down: the service ends with the group.
        if !Task.isShuttingDownGracefully && !Task.isCancelled { try? await gracefulShutdown() }
    }

    // MARK: - Internals

    private func enqueue(_ message: Message) {
        let (continuation, batch) = state.withLock { s -> (AsyncStream<[JobDelivery<Handle>]>.Continuation?, [JobDelivery<Handle>]) in
            s.ready.append(message)
            guard let continuation = s.deliveries else { return (nil, []) }
            return (continuation, Self.takeBatch(&s, limit: batchSize))
        }
        if !batch.isEmpty { continuation?.yield(batch) }
    }

    private func settle(_ delivery: JobDelivery<Handle>, event: Event) {
        let (continuation, batch) = state.withLock { s -> (AsyncStream<[JobDelivery<Handle>]>.Continuation?, [JobDelivery<Handle>]) in
            s.unsettled[delivery.handle.sequence] = nil
            guard let continuation = s.deliveries else { return (nil, []) }
            return (continuation, Self.takeBatch(&s, limit: batchSize))
        }
        record(event)
        if !batch.isEmpty { continuation?.yield(batch) }
    }

    private func giveBack(_ delivery: JobDelivery<Handle>, event: Event) {
        let (continuation, batch) = state.withLock { s -> (AsyncStream<[JobDelivery<Handle>]>.Continuation?, [JobDelivery<Handle>]) in
            guard var message = s.unsettled.removeValue(forKey: delivery.handle.sequence) else { return (nil, []) }
            message.redelivered = true
            s.ready.append(message)
            guard let continuation = s.deliveries else { return (nil, []) }
            return (continuation, Self.takeBatch(&s, limit: batchSize))
        }
        record(event)
        if !batch.isEmpty { continuation?.yield(batch) }
    }

    /// Hands out ready messages of the consumed kinds while fewer than `limit` are unsettled.
    private static func takeBatch(_ s: inout State, limit: Int) -> [JobDelivery<Handle>] {
        guard !s.stopped, !s.closed else { return [] }
        var batch: [JobDelivery<Handle>] = []
        var index = 0
        while index < s.ready.count, s.unsettled.count < limit {
            let message = s.ready[index]
            guard s.kinds.contains(message.kind) else {
                index += 1
                continue
            }
            s.ready.remove(at: index)
            s.nextSequence += 1
            s.unsettled[s.nextSequence] = message
            batch.append(JobDelivery(
                body: message.body, kind: message.kind, messageID: message.messageID, contentType: message.contentType,
                correlationID: message.correlationID, attempt: message.attempt, deferrals: message.deferrals, isReplay: message.isReplay,
                redelivered: message.redelivered, handle: Handle(sequence: s.nextSequence)))
        }
        return batch
    }

    private func record(_ event: Event) {
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.events.append(event)
            var due: [CheckedContinuation<Void, Never>] = []
            s.waiters.removeAll { waiter in
                guard waiter.predicate(s.events) else { return false }
                due.append(waiter.continuation)
                return true
            }
            return due
        }
        for continuation in ready { continuation.resume() }
    }
}
