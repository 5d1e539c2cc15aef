import AMQPClient
import Foundation

/// Publishes a benchmark's jobs: persistent, with confirms, 512 unconfirmed at a time.
enum BenchJobs {
    /// Publishes `jobs` (id and body each) to `exchange` with `routingKey`; `message_id` = id, `type` = kind.
    static func publish(_ connection: AMQPConnection, _ jobs: [(id: String, body: [UInt8])], exchange: String,
                        routingKey: String, kind: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for (id, body) in jobs {
                if running >= 512 { try await group.next(); running -= 1 }
                group.addTask {
                    let confirm = try await connection.publish(
                        body, to: exchange, routingKey: routingKey, properties: .persistentJSON(messageID: id, type: kind))
                    guard confirm == .acked else { throw BenchError("the broker did not take a bench job: \(confirm)") }
                }
                running += 1
            }
            try await group.waitForAll()
        }
    }
}
