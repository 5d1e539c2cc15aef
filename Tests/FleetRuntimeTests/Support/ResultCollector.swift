import AMQPClient
import FleetAMQP
import FleetCore
import Foundation
import Synchronization

/// Reads a fleet's results from its own queue bound to the results exchange, in the background of a test.
final class ResultCollector: Sendable {
    let queue: String
    private let results = Mutex<[ResultEnvelope]>([])
    /// Every result body as published (for the contract check of real results).
    private let bodies = Mutex<[[UInt8]]>([])
    private let connection: AMQPConnection
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Stops collecting (the test's connection is closed by the test).
    func stop() { task.withLock { $0?.cancel() } }

    private init(queue: String, connection: AMQPConnection) {
        self.queue = queue
        self.connection = connection
    }

    /// Declares `<prefix>.test-results` bound to every result of the topology (durable, so a broker
    /// restart keeps it), and starts collecting.
    static func start(_ topology: FleetTopology, connection: AMQPConnection) async throws -> ResultCollector {
        let queue = "\(topology.prefix).test-results"
        try await connection.declare([
            .exchange(.init(name: topology.resultsExchange, type: "topic")),
            .queue(.init(name: queue)),
            .binding(.init(queue: queue, exchange: topology.resultsExchange, routingKey: "#")),
        ])
        let collector = ResultCollector(queue: queue, connection: connection)
        let consumer = try await connection.consume(queue: queue, prefetch: 500)
        let task = Task {
            for await delivery in consumer {
                if let r = try? ResultEnvelope.decode(delivery.body) {
                    collector.results.withLock { $0.append(r) }
                }
                collector.bodies.withLock { $0.append(delivery.body) }
                connection.ack(delivery)
            }
        }
        collector.task.withLock { $0 = task }
        return collector
    }

    var all: [ResultEnvelope] { results.withLock { $0 } }

    /// The result bodies received so far, as published.
    var resultBodies: [[UInt8]] { bodies.withLock { $0 } }

    func results(for jobID: String) -> [ResultEnvelope] { all.filter { $0.jobID == jobID } }

    /// Job ids with a final result.
    var finishedJobIDs: Set<String> { Set(all.filter { $0.status.isFinal }.map(\.jobID)) }
}
