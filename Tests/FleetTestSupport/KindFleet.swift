import AMQPClient
import FleetAMQP
import FleetCore
import Foundation
import Synchronization

/// A test fleet for one kind on the test broker: its own prefix (so tests running in parallel share no queue),
/// store file and directory, `fleet worker` processes, and a results queue it collects from. The email and crm
/// suites build on it (`EmailFleet`, `CRMFleet`).
public final class KindFleet: Sendable {
    public let kind: String
    public let topology: FleetTopology
    public let directory: URL
    public let url: String
    public let connection: AMQPConnection
    /// Set for every `fleet` process of this fleet, after the base settings (``environment``).
    public let extraEnvironment: [String: String]
    private let results = Mutex<[ResultEnvelope]>([])
    private let bodies = Mutex<[[UInt8]]>([])
    private let workers = Mutex<[Process]>([])
    private let collector = Mutex<Task<Void, Never>?>(nil)

    public var store: String { directory.appendingPathComponent("fleet.sqlite").path }
    public var resultsQueue: String { "\(topology.prefix).test-results" }

    /// Declares the kind's topology and a results queue bound to every result, and starts collecting.
    ///
    /// - Parameter url: the broker (default: the test broker; a ``PrivateBroker``'s for tests that restart it).
    /// - Parameter queueType: the topology's (quorum: the results queue this fleet reads is quorum too).
    public init(kind: String, name: String, directory: URL? = nil, environment extra: [String: String] = [:],
                url: String? = nil, queueType: FleetTopology.QueueType = .classic) async throws {
        self.kind = kind
        topology = FleetTopology(prefix: "t\(UUID().uuidString.prefix(8).lowercased()).\(name)", kinds: [kind], queueType: queueType)
        self.directory = try directory ?? TestEnvironment.temporaryDirectory()
        self.url = try url ?? TestEnvironment.amqpURL
        extraEnvironment = extra
        connection = try await AMQPConnection.connect(try AMQPConfiguration(url: self.url))
        try await connection.declare(topology.declarations)
        let queue = resultsQueue
        try await connection.declare([
            .queue(.init(name: queue, arguments: ["x-queue-type": .string(queueType.rawValue)])), .binding(.init(queue: queue, exchange: topology.resultsExchange, routingKey: "#")),
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

    /// The built `fleet` executable (`FLEET_BIN`, else the debug build).
    public static var fleetBinary: String {
        if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
        return TestEnvironment.repo.appendingPathComponent(".build/debug/fleet").path
    }

    /// The environment of the fleet's processes: the broker, the store, the prefix, then ``extraEnvironment``.
    public var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["FLEET_AMQP_URL"] = url
        env["FLEET_STORE"] = store
        env["FLEET_PREFIX"] = topology.prefix
        env["FLEET_QUEUE_TYPE"] = topology.queueType.rawValue
        env["FLEET_LOG_LEVEL"] = "warning"
        for (k, v) in extraEnvironment { env[k] = v }
        return env
    }

    /// Starts `fleet worker --kinds <kind>`, its output in `worker-*.log` of the directory.
    @discardableResult
    public func startWorker(arguments extra: [String] = [], environment overrides: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.fleetBinary)
        p.arguments = ["worker", "--kinds", kind] + extra
        p.environment = environment.merging(overrides) { $1 }
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

    /// Runs a `fleet` command to completion with the fleet's environment; returns (status, combined output).
    public func run(_ arguments: [String]) throws -> (Int32, String) {
        try TestEnvironment.run([Self.fleetBinary] + arguments, replacing: environment)
    }

    /// Waits until `n` consumers read the kind's queue; false after a minute.
    public func waitForConsumers(_ n: UInt32) async -> Bool {
        await TestEnvironment.eventually(timeout: .seconds(60)) {
            (try? await self.connection.queueStatus(self.topology.queue(forKind: self.kind)))??.consumers ?? 0 >= n
        }
    }

    /// Publishes jobs (JSON objects; `kind` is set), with confirms, 256 at a time.
    public func publish(_ jobs: [JSONObject]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, job) in jobs.enumerated() {
                var j = job
                j["kind"] = .string(kind)
                let body = JSONValue.object(j).serialized()
                let id = j["id"]?.stringValue
                group.addTask {
                    let confirm = try await self.connection.publish(
                        body, to: self.topology.jobsExchange, routingKey: self.kind,
                        properties: .persistentJSON(messageID: id, type: self.kind))
                    guard confirm == .acked else {
                        throw TestEnvironment.SetupError(description: "the broker did not take job \(id ?? "?"): \(confirm)")
                    }
                }
                if i % 256 == 255 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
    }

    /// Every result received so far.
    public var all: [ResultEnvelope] { results.withLock { $0 } }

    /// The result bodies received so far, as published.
    public var resultBodies: [[UInt8]] { bodies.withLock { $0 } }

    /// The final results by job id (the last one seen).
    public var finals: [String: ResultEnvelope] {
        var out: [String: ResultEnvelope] = [:]
        for r in all where r.status.isFinal { out[r.jobID] = r }
        return out
    }

    /// Waits until every id has a final result.
    public func waitForFinals(_ ids: Set<String>, timeout: Duration = .seconds(300)) async -> Bool {
        await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(100)) {
            ids.isSubset(of: Set(self.finals.keys))
        }
    }

    /// Everything the workers logged so far.
    public var workerLogs: String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix("worker-") && $0.hasSuffix(".log") }.sorted()
            .compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined()
    }

    /// SIGTERM to every worker; SIGKILL to those still running after 30 s.
    public func stopWorkers() async {
        let ps = workers.withLock { ps in defer { ps.removeAll() }; return ps }
        for p in ps where p.isRunning { p.terminate() }
        for p in ps {
            let deadline = ContinuousClock.now + .seconds(30)
            while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }

    /// Stops the workers and the collector, deletes the fleet's queues and exchanges and its directory.
    public func tearDown() async {
        await stopWorkers()
        collector.withLock { $0?.cancel() }
        await connection.delete(topology.declarations)
        try? await connection.delete(queue: resultsQueue)
        await connection.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
