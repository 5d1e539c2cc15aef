import Foundation

/// A RabbitMQ cluster of private nodes on loopback ports (each started by Ops/scripts/broker.sh, the others
/// joined to the first with `rabbitmqctl join_cluster`), for the tests of a fleet on a cluster.
public struct PrivateCluster: Sendable {
    /// The nodes, the first being the one the others joined.
    public let nodes: [PrivateBroker]

    /// The comma-separated URL of every node (`amqp://guest:guest@127.0.0.1:P1,127.0.0.1:P2,.../%2F`).
    public var url: String {
        get throws {
            let ports = try nodes.map { try $0.value("FLEET_BROKER_PORT") }
            return "amqp://guest:guest@" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/%2F"
        }
    }

    /// The node listening on AMQP port `port`.
    public func node(port: Int) -> PrivateBroker? {
        nodes.first { (try? $0.value("FLEET_BROKER_PORT")) == String(port) }
    }

    /// Starts `count` nodes, clusters them, runs `body`, and stops them all whatever happened.
    /// - Parameter management: load the management plugin on every node.
    public static func with(nodes count: Int = 3, management: Bool = false, _ body: (PrivateCluster) async throws -> Void) async throws {
        try await start(count, management: management, started: []) { nodes in
            let first = try nodes[0].value("FLEET_BROKER_NODE")
            for node in nodes.dropFirst() {
                try await node.ctl("stop_app")
                try await node.ctl("join_cluster", first)
                try await node.ctl("start_app")
                try await node.ctl("await_startup")
            }
            try await body(PrivateCluster(nodes: nodes))
        }
    }

    private static func start(_ left: Int, management: Bool, started: [PrivateBroker],
                              _ body: ([PrivateBroker]) async throws -> Void) async throws {
        guard left > 0 else { return try await body(started) }
        try await PrivateBroker.with(management: management) { node in
            try await start(left - 1, management: management, started: started + [node], body)
        }
    }
}
