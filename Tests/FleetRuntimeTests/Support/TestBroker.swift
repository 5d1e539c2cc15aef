import AMQPClient
import FleetCore
import Foundation
import Testing

/// The real RabbitMQ the tests run against, started by `Ops/scripts/test.sh` (FLEET_TEST_AMQP_URL).
enum TestBroker {
    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FLEET_TEST_AMQP_URL"], !url.isEmpty else {
                throw SetupError(description: "FLEET_TEST_AMQP_URL is not set: run the tests with 'bash Ops/scripts/test.sh', which starts a private RabbitMQ")
            }
            return url
        }
    }

    static var repo: URL {
        if let r = ProcessInfo.processInfo.environment["FLEET_REPO"], !r.isEmpty { return URL(fileURLWithPath: r) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
    }

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
        for d in topology.declarations {
            switch d {
            case .queue(let q): try? await connection.delete(queue: q.name)
            case .exchange(let e): try? await connection.delete(exchange: e.name)
            case .binding: break
            }
        }
    }

    /// Polls until `condition` holds or `timeout` passes; returns whether it held.
    static func eventually(timeout: Duration = .seconds(30), every: Duration = .milliseconds(100),
                           _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: every)
        }
        return try await condition()
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
