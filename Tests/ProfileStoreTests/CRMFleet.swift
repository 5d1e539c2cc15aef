import AMQPClient
import FleetAMQP
import FleetCore
import FleetTestSupport
import Foundation
import Synchronization
import Testing

/// A test fleet for the crm kind: its own prefix, store file, worker processes and a results queue.
final class CRMFleet: Sendable {
    let topology: FleetTopology
    let directory: URL
    let url: String
    let connection: AMQPConnection
    private let results = Mutex<[ResultEnvelope]>([])
    /// Every result body as published (for the contract check of real results).
    private let bodies = Mutex<[[UInt8]]>([])
    private let workers = Mutex<[Process]>([])
    private let collector = Mutex<Task<Void, Never>?>(nil)
    var store: String { directory.appendingPathComponent("fleet.sqlite").path }

    init(_ name: String) async throws {
        topology = FleetTopology(prefix: "t\(UUID().uuidString.prefix(8).lowercased()).\(name)", kinds: ["crm"])
        directory = try TestEnvironment.temporaryDirectory()
        url = try TestEnvironment.amqpURL
        connection = try await AMQPConnection.connect(try AMQPConfiguration(url: url))
        try await connection.declare(topology.declarations)
        let queue = "\(topology.prefix).test-results"
        try await connection.declare([
            .queue(.init(name: queue)), .binding(.init(queue: queue, exchange: topology.resultsExchange, routingKey: "#")),
        ])
        let consumer = try await connection.consume(queue: queue, prefetch: 500)
        let connection = self.connection
        let task = Task {
            for await delivery in consumer {
                if let r = try? ResultEnvelope.decode(delivery.body) { self.results.withLock { $0.append(r) } }
                self.bodies.withLock { $0.append(delivery.body) }
                connection.ack(delivery)
            }
        }
        collector.withLock { $0 = task }
    }

    /// The result bodies received so far, as published.
    var resultBodies: [[UInt8]] { bodies.withLock { $0 } }

    static var fleetBinary: String {
        get throws {
            if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
            return TestEnvironment.repo.appendingPathComponent(".build/debug/fleet").path
        }
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["FLEET_AMQP_URL"] = url
        env["FLEET_STORE"] = store
        env["FLEET_PREFIX"] = topology.prefix
        env["FLEET_LOG_LEVEL"] = "warning"
        return env
    }

    /// Starts `fleet worker --kinds crm`.
    @discardableResult
    func startWorker(arguments extra: [String] = []) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Self.fleetBinary)
        p.arguments = ["worker", "--kinds", "crm"] + extra
        p.environment = environment
        let log = directory.appendingPathComponent("worker-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        workers.withLock { $0.append(p) }
        return p
    }

    /// Runs a fleet command to completion; returns (status, combined output).
    func run(_ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try Self.fleetBinary)
        p.arguments = arguments
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func waitForConsumers(_ n: UInt32) async throws {
        let ok = await TestEnvironment.eventually(timeout: .seconds(60)) {
            (try? await self.connection.queueStatus(self.topology.queue(forKind: "crm")))??.consumers ?? 0 >= n
        }
        #expect(ok, "the workers did not start consuming")
    }

    /// Publishes crm jobs, `data` each, with ids.
    func publish(_ jobs: [(id: String, data: JSONValue)]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, job) in jobs.enumerated() {
                let body = JSONValue.object(JSONObject(["id": .string(job.id), "kind": "crm", "data": job.data])).serialized()
                group.addTask {
                    let confirm = try await self.connection.publish(
                        body, to: self.topology.jobsExchange, routingKey: "crm",
                        properties: .persistentJSON(messageID: job.id, type: "crm"))
                    #expect(confirm == .acked)
                }
                if i % 256 == 255 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
    }

    var all: [ResultEnvelope] { results.withLock { $0 } }

    /// The final results by job id (the last one seen).
    var finals: [String: ResultEnvelope] {
        var out: [String: ResultEnvelope] = [:]
        for r in all where r.status.isFinal { out[r.jobID] = r }
        return out
    }

    func waitForFinals(_ ids: Set<String>, timeout: Duration = .seconds(120)) async -> Bool {
        await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(100)) {
            ids.isSubset(of: Set(self.finals.keys))
        }
    }

    func stopWorkers() async {
        let ps = workers.withLock { ps in defer { ps.removeAll() }; return ps }
        for p in ps where p.isRunning { p.terminate() }
        for p in ps {
            let deadline = ContinuousClock.now + .seconds(30)
            while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }

    func tearDown() async {
        await stopWorkers()
        collector.withLock { $0?.cancel() }
        await connection.delete(topology.declarations)
        try? await connection.delete(queue: "\(topology.prefix).test-results")
        await connection.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
