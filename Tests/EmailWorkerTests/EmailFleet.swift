import AMQPClient
import EmailWorker
import FleetAMQP
import FleetCore
import FleetStore
import FleetTestSupport
import Foundation
import ProfileStore
import Synchronization
import Testing

/// A test fleet for the email kind: its own prefix, store file, templates, SMTP sink (Ops/scripts/smtp-sink.sh,
/// a real aiosmtpd server writing a Maildir), worker processes and a results queue.
final class EmailFleet: Sendable {
    let topology: FleetTopology
    let directory: URL
    let url: String
    let connection: AMQPConnection
    let sinkPort: Int
    private let results = Mutex<[ResultEnvelope]>([])
    /// Every result body as published (for the contract check of real results).
    private let bodies = Mutex<[[UInt8]]>([])
    private let workers = Mutex<[Process]>([])
    private let collector = Mutex<Task<Void, Never>?>(nil)
    var store: String { directory.appendingPathComponent("fleet.sqlite").path }
    var sinkDir: URL { directory.appendingPathComponent("smtp") }
    var maildir: String { sinkDir.appendingPathComponent("maildir").path }
    var templates: URL { directory.appendingPathComponent("Templates") }
    static let secret = "test-secret"

    /// `sink`: options of `smtp-sink.sh start` (`FLEET_SMTP_SINK_TLS_CERT`, `_TLS_KEY`, `_REQUIRE_STARTTLS`, `_AUTH`).
    init(_ name: String, sink: [String: String] = [:]) async throws {
        topology = FleetTopology(prefix: "t\(UUID().uuidString.prefix(8).lowercased()).\(name)", kinds: ["email"])
        directory = try TestEnvironment.temporaryDirectory()
        url = try TestEnvironment.amqpURL
        // The repository's templates plus the tests' own.
        try FileManager.default.copyItem(at: TestEnvironment.repo.appendingPathComponent("Templates"), to: directory.appendingPathComponent("Templates"))
        let (status, out) = try await TestEnvironment.runLeavingDaemons(
            ["bash", TestEnvironment.repo.appendingPathComponent("Ops/scripts/smtp-sink.sh").path, "start"],
            // The sink stops by itself when this test process is gone (a teardown may not run at the very end).
            environment: sink.merging(["FLEET_SMTP_SINK_DIR": directory.appendingPathComponent("smtp").path,
                                       "FLEET_SMTP_SINK_WATCH_PID": String(getpid())]) { $1 })
        guard status == 0, let port = Int(out.split(separator: "\n").last ?? "") else {
            throw TestEnvironment.SetupError(description: "the SMTP sink did not start: \(out)")
        }
        sinkPort = port
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

    /// Writes a template of the tests (`Templates/email/<name>/...`).
    func addTemplate(_ name: String, meta: String, subject: String, html: String) throws {
        let dir = templates.appendingPathComponent("email/\(name)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try meta.write(to: dir.appendingPathComponent("meta.json"), atomically: true, encoding: .utf8)
        try subject.write(to: dir.appendingPathComponent("subject.liquid"), atomically: true, encoding: .utf8)
        try html.write(to: dir.appendingPathComponent("html.liquid"), atomically: true, encoding: .utf8)
    }

    /// Sets the sink's answers for chosen recipients (smtp_sink.py rules).
    func setSinkRules(_ rules: String) throws {
        try rules.write(to: sinkDir.appendingPathComponent("rules.json"), atomically: true, encoding: .utf8)
    }

    /// Runs a short command that leaves nothing behind (for daemons, `TestEnvironment.runLeavingDaemons`).
    static func shell(_ arguments: [String], env extra: [String: String] = [:]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static var fleetBinary: String {
        if let b = ProcessInfo.processInfo.environment["FLEET_BIN"], !b.isEmpty { return b }
        return TestEnvironment.repo.appendingPathComponent(".build/debug/fleet").path
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["FLEET_AMQP_URL"] = url
        env["FLEET_STORE"] = store
        env["FLEET_PREFIX"] = topology.prefix
        env["FLEET_LOG_LEVEL"] = "warning"
        env["FLEET_EMAIL_TEMPLATES"] = templates.path
        env["FLEET_EMAIL_SECRET"] = Self.secret
        env["FLEET_EMAIL_DELIVERY"] = "smtp"
        env["FLEET_EMAIL_SMTP_HOST"] = "127.0.0.1"
        env["FLEET_EMAIL_SMTP_PORT"] = "\(sinkPort)"
        env["FLEET_EMAIL_SMTP_POOL"] = "8"
        return env
    }

    /// Starts `fleet worker --kinds email`, with `environment` added to ``environment``.
    @discardableResult
    func startWorker(arguments extra: [String] = [], environment overrides: [String: String] = [:]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.fleetBinary)
        p.arguments = ["worker", "--kinds", "email"] + extra
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

    /// Imports profiles (`id`, `email`, `first_name`, ...) into the store, with consents.
    func importProfiles(_ profiles: [JSONObject], optedOut: [String: String] = [:]) async throws {
        let store = ProfileStore(path: self.store)
        defer { store.close() }
        var ops: [ProfileOperation] = []
        for (i, p) in profiles.enumerated() {
            let id = p["id"]!.stringValue!
            var traits = p
            traits["id"] = nil
            traits["email"] = nil
            ops.append(ProfileOperation(opID: "imp-\(i)", timestampMillis: 1_700_000_000_000, body: .identify(
                profileID: id, traits: traits, identities: [ProfileIdentity(.email, p["email"]!.stringValue!)])))
            if let group = optedOut[id] {
                ops.append(ProfileOperation(opID: "con-\(i)", timestampMillis: 1_700_000_000_000, body: .consent(
                    profileID: id, channel: "email", topic: group, optedIn: false, source: "test")))
            }
            if ops.count >= 500 {
                _ = try await store.apply(ops)
                ops.removeAll()
            }
        }
        _ = try await store.apply(ops)
    }

    /// Suppresses addresses (as a hard bounce would).
    func suppress(_ emails: [String]) async throws {
        let store = ProfileStore(path: self.store)
        defer { store.close() }
        for e in emails { try await store.suppress(address: e, channel: .email, reason: "test") }
    }

    /// Publishes email jobs.
    func publish(_ jobs: [JSONObject]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, job) in jobs.enumerated() {
                var j = job
                j["kind"] = "email"
                let body = JSONValue.object(j).serialized()
                let id = j["id"]!.stringValue!
                group.addTask {
                    let confirm = try await self.connection.publish(
                        body, to: self.topology.jobsExchange, routingKey: "email",
                        properties: .persistentJSON(messageID: id, type: "email"))
                    #expect(confirm == .acked)
                }
                if i % 256 == 255 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
    }

    var all: [ResultEnvelope] { results.withLock { $0 } }

    var finals: [String: ResultEnvelope] {
        var out: [String: ResultEnvelope] = [:]
        for r in all where r.status.isFinal { out[r.jobID] = r }
        return out
    }

    func waitForFinals(_ ids: Set<String>, timeout: Duration = .seconds(300)) async -> Bool {
        await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(200)) {
            ids.isSubset(of: Set(self.finals.keys))
        }
    }

    /// What arrived at the sink, parsed by Python's email package.
    struct Arrived: Sendable {
        var to: String
        var messageID: String
        var jobID: String
        var subject: String
        var text: String
        var html: String
        var ok: Bool
        var problems: [String]
        /// The sink's `Received:` header (`... with ESMTPS ...` over TLS, `ESMTPSA` with AUTH too).
        var received: String
    }

    func arrived() throws -> [Arrived] {
        let script = TestEnvironment.repo.appendingPathComponent("Tests/EmailWorkerTests/inspect_maildir.py").path
        let (status, out) = try Self.shell(["/usr/bin/python3", script, maildir])
        guard status == 0 else { throw TestEnvironment.SetupError(description: "inspect_maildir.py failed: \(out)") }
        return try out.split(separator: "\n").map { line in
            let v = try JSONValue(parsing: String(line))
            return Arrived(
                to: v["to"]?.stringValue ?? "", messageID: v["message_id"]?.stringValue ?? "", jobID: v["job_id"]?.stringValue ?? "",
                subject: v["subject"]?.stringValue ?? "", text: v["text"]?.stringValue ?? "", html: v["html"]?.stringValue ?? "",
                ok: v["ok"]?.boolValue ?? false,
                problems: { if case .array(let a)? = v["problems"] { return a.compactMap(\.stringValue) }; return [] }(),
                received: v["received"]?.stringValue ?? "")
        }
    }

    /// What the sink logged (its start line, STARTTLS and AUTH events; never credentials).
    var sinkLog: String {
        (try? String(contentsOf: sinkDir.appendingPathComponent("sink.log"), encoding: .utf8)) ?? ""
    }

    /// Everything the workers logged so far.
    var workerLogs: String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix("worker-") && $0.hasSuffix(".log") }.sorted()
            .compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined()
    }

    /// The effects journal's intents without a completion (jobs whose mail may or may not be at the relay).
    func uncertainEffects() throws -> Int {
        let db = try SQLiteDatabase(path: store, create: false)
        defer { db.close() }
        return try db.withStatement("SELECT count(*) FROM fleet_effects WHERE done = 0") { try $0.step() ? $0.int(at: 0) : 0 }
    }

    func messageCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: maildir + "/new").count) ?? 0
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
        _ = try? await TestEnvironment.runLeavingDaemons(
            ["bash", TestEnvironment.repo.appendingPathComponent("Ops/scripts/smtp-sink.sh").path, "stop"],
            environment: ["FLEET_SMTP_SINK_DIR": sinkDir.path])
        collector.withLock { $0?.cancel() }
        await connection.delete(topology.declarations)
        try? await connection.delete(queue: "\(topology.prefix).test-results")
        await connection.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
