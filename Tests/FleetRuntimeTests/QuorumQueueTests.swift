import AMQPClient
import FleetCore
import Foundation
import Testing

/// `--queue-type quorum`: job queues are quorum queues with a delivery limit, and a message redelivered
/// past it is dead-lettered by the broker into `<prefix>.dead.<kind>` (the protection against a job that
/// kills its worker every time).
@Suite("Quorum queues")
struct QuorumQueueTests {
    @Test("quorum job queues run jobs and dead-letter a message past its delivery limit")
    func quorumDeliveryLimit() async throws {
        let fleet = try WorkerIntegrationTests.Fleet("quorum")
        let connection = try await TestBroker.connect()
        var env = fleet.environment
        env["FLEET_QUEUE_TYPE"] = "quorum"
        env["FLEET_DELIVERY_LIMIT"] = "2"
        let (status, output) = try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env)
        #expect(status == 0, "\(output)")
        var topology = fleet.topology
        topology.kinds = ["noop"]
        topology.queueType = .quorum
        topology.deliveryLimit = 2

        // A consumer that always gives the message back, as a crashing worker would.
        let queue = topology.queue(forKind: "noop")
        let poison = try await connection.publish(Array(#"{"id":"poison","kind":"noop"}"#.utf8), to: topology.jobsExchange,
                                                  routingKey: "noop", properties: .persistentJSON(messageID: "poison"))
        #expect(poison == .acked)
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        var deliveries = 0
        for await delivery in consumer {
            deliveries += 1
            connection.reject(delivery, requeue: true)
            if deliveries == 3 { break }
        }
        await consumer.cancel()
        let dead = try await TestBroker.eventually(timeout: .seconds(20)) {
            (try await connection.queueStatus(topology.deadQueue(forKind: "noop")))?.messages == 1
        }
        #expect(dead, "the broker did not dead-letter the message after its delivery limit")

        // A worker runs jobs from the quorum queue.
        let collector = try await ResultCollector.start(topology, connection: connection)
        let worker = try FleetProcess(["worker", "--kinds", "noop"], environment: env, logDirectory: fleet.directory).start()
        try await fleet.publishJobs(connection, [WorkerIntegrationTests.noopJob("q-1"), WorkerIntegrationTests.noopJob("q-2")])
        #expect(await TestBroker.eventually { collector.finishedJobIDs == ["q-1", "q-2"] })
        worker.signal(SIGTERM)
        let workerStatus = await worker.waitForExit()
        #expect(workerStatus == 0, "\(worker.log)")
        collector.stop()
        await fleet.cleanUp(connection)
        await connection.close()
    }
}
