import AMQPClient
import FleetAMQP
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// The real RabbitMQ the tests run against, started by `Ops/scripts/test.sh` (FLEET_TEST_AMQP_URL).
enum TestBroker {
    typealias SetupError = TestEnvironment.SetupError

    static var url: String { get throws { try TestEnvironment.amqpURL } }
    static var repo: URL { TestEnvironment.repo }

    /// The built `fleet` executable.
    static var fleetBinary: String {
        get throws {
            if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
            let candidate = repo.appendingPathComponent(".build/debug/fleet").path
            guard FileManager.default.isExecutableFile(atPath: candidate) else {
                throw SetupError(description: "the fleet executable is not built: run 'swift build' or Ops/scripts/test.sh")
            }
            return candidate
        }
    }

    static func connect(url: String? = nil) async throws -> AMQPConnection {
        try await AMQPConnection.connect(try AMQPConfiguration(url: url ?? self.url))
    }

    /// A unique name prefix so that tests running in parallel never share a queue.
    static func uniquePrefix(_ name: String) -> String {
        "t\(UUID().uuidString.prefix(8).lowercased()).\(name)"
    }

    /// Deletes every queue and exchange of a topology (best effort).
    static func cleanUp(_ topology: FleetTopology, connection: AMQPConnection) async {
        await connection.delete(topology.declarations)
    }

    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
        try await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(100), condition)
    }

    static func temporaryDirectory() throws -> URL { try TestEnvironment.temporaryDirectory() }
}
