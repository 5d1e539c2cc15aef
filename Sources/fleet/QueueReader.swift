import AMQPClient
import FleetCore
import Foundation
import Synchronization

/// Reads what a queue holds now, for the CLI's inspection commands (`dlq list|replay`, `results`): up to
/// a limit, stopping once the queue stays quiet for a moment. Messages the body does not ack go back to
/// the queue when the connection closes.
enum QueueReader {
    /// Reads up to `limit` messages; stops when nothing arrived for `idle`. Returns how many were handled.
    static func read(_ connection: AMQPConnection, queue: String, limit: Int, idle: Duration = .milliseconds(700),
                     _ body: @escaping @Sendable (AMQPDelivery) async throws -> Void) async throws -> Int {
        // Messages read without an ack count against the prefetch, so it must cover what is to be read.
        let consumer = try await connection.consume(queue: queue, prefetch: UInt16(clamping: min(limit, 65_535)))
        let progress = Progress()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await delivery in consumer {
                    progress.touch()
                    try await body(delivery)
                    if progress.handledOne() >= limit { break }
                }
            }
            group.addTask {
                while ContinuousClock.now - progress.lastSeen < idle {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            // Whichever ends first (limit reached, or the queue went quiet) ends the read.
            try await group.next()
            group.cancelAll()
        }
        await consumer.cancel()
        return progress.handled
    }

    /// How many messages were handled, and when the last one arrived.
    private final class Progress: Sendable {
        private let state = Mutex((handled: 0, lastSeen: ContinuousClock.now))

        func touch() { state.withLock { $0.lastSeen = .now } }
        func handledOne() -> Int { state.withLock { $0.handled += 1; return $0.handled } }
        var handled: Int { state.withLock { $0.handled } }
        var lastSeen: ContinuousClock.Instant { state.withLock { $0.lastSeen } }
    }
}

/// A small locked list for what a reader's body gathers.
final class LinesBox: Sendable {
    private let items = Mutex<[JSONValue]>([])
    func append(_ value: JSONValue) { items.withLock { $0.append(value) } }
    var values: [JSONValue] { items.withLock { $0 } }
}
