import AMQPClient
import FleetAMQP
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// A fleet on a three-node RabbitMQ cluster (private nodes on loopback ports, started and joined by the test,
/// about a minute): quorum topology, the worker given every node's address, and the node it is connected to
/// stopped in the middle of a run.
@Suite("A fleet on a three-node cluster")
struct ClusterTests {
    /// The AMQP port of the node a worker's log says it connected to last.
    static func connectedPort(_ log: String) -> Int? {
        log.split(separator: "\n").filter { $0.contains("amqp connected") }.last
            .flatMap { $0.firstMatch(of: /amqp\.url=amqp:\/\/[^@]*@127\.0\.0\.1:(\d+)\//) }.flatMap { Int($0.1) }
    }

    static func noop(_ id: String, _ extra: JSONObject = [:]) -> JSONObject {
        ["id": .string(id), "data": ["noop": .object(extra)]]
    }

    @Test("the worker's own node stopped mid-run: the worker moves to another node within seconds, no job is lost, retries and dead letters go on while it is down, and its return changes nothing")
    func workerNodeStopped() async throws {
        try await PrivateCluster.with(management: true) { cluster in
            let fleet = try await KindFleet(kind: "noop", name: "cluster", url: try cluster.url, queueType: .quorum)
            try fleet.startWorker(arguments: ["--log-level", "info", "--max-attempts", "5"])
            #expect(await fleet.waitForConsumers(1))
            let firstPort = try #require(Self.connectedPort(fleet.workerLogs), "\(fleet.workerLogs)")
            let first = try #require(cluster.node(port: firstPort))

            // A run long enough to stop the node in its middle.
            // 4,000 jobs of 300 ms at concurrency 64: about twenty seconds of work (stopping a node takes a few, and
            // over ten when the suite's load tests run beside it on the two cores).
            let before = (0..<4000).map { Self.noop("a\($0)", ["sleep_ms": 300]) }
            try await fleet.publish(before)
            #expect(await TestEnvironment.eventually(timeout: .seconds(60)) { fleet.finals.count >= 300 })
            let stopped = ContinuousClock.now
            try await first.run("stop-app")
            let doneAtStop = fleet.finals.count
            #expect(doneAtStop < 4000, "the run was over before the node stopped")

            // The worker reconnects to one of the other two.
            let moved = await TestEnvironment.eventually(timeout: .seconds(60), every: .milliseconds(100)) {
                Self.connectedPort(fleet.workerLogs).map { $0 != firstPort } ?? false
            }
            #expect(moved, "the worker did not reconnect to another node: \(fleet.workerLogs.suffix(2000))")
            print("cluster test: \(doneAtStop) of 4000 jobs done when the node stopped; the worker reconnected to another node \(stopped.duration(to: .now)) after")

            // While the node is down: a job that fails once (a retry through a delay queue) and one that fails for
            // good (a dead letter).
            #expect(await TestEnvironment.eventually(timeout: .seconds(60)) { fleet.connection.isConnected })
            let during = [Self.noop("retry-1", ["fail": "retryable", "fail_attempts": 1]), Self.noop("dead-1", ["fail": "permanent"])]
                + (0..<200).map { Self.noop("b\($0)") }
            try await fleet.publish(during)
            let all = Set((before + during).compactMap { $0["id"]?.stringValue })
            #expect(await fleet.waitForFinals(all, timeout: .seconds(180)), "\(all.subtracting(fleet.finals.keys).count) jobs without a final result")
            let finals = fleet.finals
            #expect(finals["retry-1"]?.status == .succeeded && finals["retry-1"]?.attempt == 2)
            #expect(finals["dead-1"]?.status == .dead)
            #expect(all.filter { $0 != "dead-1" }.allSatisfy { finals[$0]?.status == .succeeded })
            #expect(try await fleet.connection.queueStatus(fleet.topology.deadQueue(forKind: "noop"))?.messages == 1)

            // fleet status through a live node's management API: every queue quorum, none led by the stopped node,
            // which every member list shows down.
            let live = try #require(cluster.nodes.first { $0 !== first })
            let stoppedNode = try first.value("FLEET_BROKER_NODE")
            let management = try live.value("FLEET_BROKER_MANAGEMENT_URL")
            // The management API's figures lag the cluster by its statistics interval (5 s): wait for the stopped
            // node to show as down everywhere.
            var output = ""
            let settled = await TestEnvironment.eventually(timeout: .seconds(60), every: .milliseconds(500)) {
                guard let (status, text) = try? fleet.run(["status", "--kinds", "noop", "--json", "--management-url", management]),
                      status == 0, let queues = (try? JSONValue(parsing: Array(text.utf8)))?["queues"]?.arrayValue else { return false }
                output = text
                return queues.allSatisfy { $0["online"]?.arrayValue?.contains(.string(stoppedNode)) == false }
            }
            #expect(settled, "the management API still shows \(stoppedNode) online: \(output)")
            let queues = try #require(try JSONValue(parsing: Array(output.utf8))["queues"]?.arrayValue)
            #expect(queues.count == 3 + FleetTopology.delayTiers.count)
            for q in queues {
                #expect(q["type"] == "quorum", "\(q)")
                #expect(q["leader"]?.stringValue.map { $0 != stoppedNode } == true, "\(q)")
                #expect(q["members"]?.arrayValue?.count == 3, "\(q)")
                #expect(q["online"]?.arrayValue?.contains(.string(stoppedNode)) == false, "\(q)")
            }
            let table = try fleet.run(["status", "--kinds", "noop", "--management-url", management])
            #expect(table.1.contains("\(stoppedNode) (down)"), "\(table.1)")

            // The node comes back: one more job runs, and every job still has its one final result.
            try await first.run("start-app")
            try await fleet.publish([Self.noop("after-1")])
            #expect(await fleet.waitForFinals(all.union(["after-1"]), timeout: .seconds(60)))
            let statuses = Dictionary(grouping: fleet.all.filter { $0.status.isFinal }, by: \.jobID).mapValues { Set($0.map(\.status)) }
            #expect(statuses.values.allSatisfy { $0.count == 1 }, "a job ended two ways")
            #expect(statuses.count == all.count + 1)
            await fleet.stopWorkers()
            await fleet.tearDown()
        }
    }
}
