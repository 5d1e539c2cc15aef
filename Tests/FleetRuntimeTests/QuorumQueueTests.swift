import AMQPClient
import FleetAMQP
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

    @Test("with --queue-type quorum every queue is a quorum queue (delay, dead-letter and results queues too); retries and dead letters go through them; a classic topology is refused with the way to move")
    func everyQueueQuorum() async throws {
        let fleet = try WorkerIntegrationTests.Fleet("allquorum")
        let connection = try await TestBroker.connect()
        var env = fleet.environment
        env["FLEET_QUEUE_TYPE"] = "quorum"
        let (status, output) = try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env)
        #expect(status == 0, "\(output)")
        #expect(output.contains("queues (all quorum)"), "\(output)")
        var topology = fleet.topology
        topology.kinds = ["noop"]
        topology.queueType = .quorum
        // The broker's own view of each queue's type (rabbitmqctl of the test broker).
        if let ctl = ProcessInfo.processInfo.environment["FLEET_TEST_BROKER_CTL"], !ctl.isEmpty {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", ctl + " list_queues -q --no-table-headers name type"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let listing = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            var types: [String: String] = [:]
            for line in listing.split(separator: "\n") {
                let f = line.split(separator: "\t")
                if f.count == 2 { types[String(f[0])] = String(f[1]) }
            }
            let ours = topology.declarations.compactMap { d -> String? in if case .queue(let q) = d { return q.name } else { return nil } }
            #expect(ours.count == 2 + FleetTopology.delayTiers.count + 1)
            for name in ours { #expect(types[name] == "quorum", "\(name): \(types[name] ?? "missing")") }
        } else {
            Issue.record("FLEET_TEST_BROKER_CTL is not set (run through Ops/scripts/test.sh)")
        }
        // A retryable failure goes through the (quorum) delay queues; retries exhausted, into the dead-letter queue.
        let collector = try await ResultCollector.start(topology, connection: connection)
        let worker = try FleetProcess(["worker", "--kinds", "noop", "--max-attempts", "3"], environment: env,
                                      logDirectory: fleet.directory).start()
        try await fleet.publishJobs(connection, [WorkerIntegrationTests.noopJob("qq-fail", fail: "retryable")])
        let dead = try await TestBroker.eventually(timeout: .seconds(30)) {
            (try await connection.queueStatus(topology.deadQueue(forKind: "noop")))?.messages == 1
        }
        #expect(dead, "the job did not reach the quorum dead-letter queue: \(worker.log)")
        worker.signal(SIGTERM)
        _ = await worker.waitForExit()
        collector.stop()
        // The same prefix asked to be classic: refused, saying what differs and how to move.
        let (refused, message) = try await FleetProcess.run(["topology", "apply", "--kinds", "noop", "--queue-type", "classic"], environment: env)
        #expect(refused == 1, "\(message)")
        #expect(message.contains("declared otherwise") && message.contains("inequivalent arg") && message.contains("under a new prefix"), "\(message)")
        // A worker told the other type stops at start with the same explanation.
        var classic = env
        classic["FLEET_QUEUE_TYPE"] = "classic"
        let (workerStatus, workerOutput) = try await FleetProcess.run(["worker", "--kinds", "noop"], environment: classic)
        #expect(workerStatus == 1, "\(workerOutput)")
        #expect(workerOutput.contains("declared otherwise") && workerOutput.contains("fleet topology apply --queue-type classic"), "\(workerOutput)")
        await fleet.cleanUp(connection)
        await connection.close()
    }
}
