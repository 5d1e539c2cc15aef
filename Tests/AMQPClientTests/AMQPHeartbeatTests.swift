import AMQPClient
import Foundation
import Testing

/// Heartbeats are serviced by the I/O thread while the connection is idle: with a 1 s heartbeat the broker
/// closes a connection that misses two (`missed heartbeats from client`), so surviving 5 idle seconds
/// shows the thread keeps sending them, and the events show no disconnect.
@Suite("AMQP heartbeats")
struct AMQPHeartbeatTests {
    @Test("an idle connection with a 1 s heartbeat stays up for 5 s")
    func idleConnectionSurvives() async throws {
        var configuration = try TestBroker.configuration
        configuration.heartbeatSeconds = 1
        let connection = try await AMQPConnection.connect(configuration)
        let queue = TestBroker.uniqueName("heartbeat")
        try await connection.declare([.queue(.init(name: queue, durable: false, autoDelete: false))], redeclareOnReconnect: false)
        try await Task.sleep(for: .seconds(5))
        #expect(connection.generation == 1, "the connection was replaced while idle")
        let confirm = try await connection.publish(Array("ping".utf8), to: "", routingKey: queue)
        #expect(confirm == .acked)
        #expect(connection.generation == 1)
        try await connection.delete(queue: queue)
        await connection.close()
        var sawDisconnect = false
        for await event in connection.events {
            if case .disconnected = event { sawDisconnect = true }
        }
        #expect(!sawDisconnect)
    }
}
