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

/// A test fleet for the email kind (FleetTestSupport's `KindFleet`) with its own templates and SMTP sink
/// (Ops/scripts/smtp-sink.sh, a real aiosmtpd server writing a Maildir).
final class EmailFleet: Sendable {
    let base: KindFleet
    let sinkPort: Int
    var topology: FleetTopology { base.topology }
    var directory: URL { base.directory }
    var store: String { base.store }
    var sinkDir: URL { directory.appendingPathComponent("smtp") }
    var maildir: String { sinkDir.appendingPathComponent("maildir").path }
    var templates: URL { directory.appendingPathComponent("Templates") }
    static let secret = "test-secret"

    /// `sink`: options of `smtp-sink.sh start` (`FLEET_SMTP_SINK_TLS_CERT`, `_TLS_KEY`, `_REQUIRE_STARTTLS`, `_AUTH`).
    /// `environment`: added to the workers' (say, `FLEET_STORE=postgres://...`).
    init(_ name: String, sink: [String: String] = [:], environment extra: [String: String] = [:]) async throws {
        let directory = try TestEnvironment.temporaryDirectory()
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
        base = try await KindFleet(kind: "email", name: name, directory: directory, environment: [
            "FLEET_EMAIL_TEMPLATES": directory.appendingPathComponent("Templates").path,
            "FLEET_EMAIL_SECRET": Self.secret, "FLEET_EMAIL_DELIVERY": "smtp", "FLEET_EMAIL_SMTP_HOST": "127.0.0.1",
            "FLEET_EMAIL_SMTP_PORT": "\(port)", "FLEET_EMAIL_SMTP_POOL": "8",
        ].merging(extra) { $1 })
    }

    var environment: [String: String] { base.environment }
    var all: [ResultEnvelope] { base.all }
    var finals: [String: ResultEnvelope] { base.finals }
    var resultBodies: [[UInt8]] { base.resultBodies }
    var workerLogs: String { base.workerLogs }

    /// Starts `fleet worker --kinds email`, with `environment` added to ``environment``.
    @discardableResult
    func startWorker(arguments extra: [String] = [], environment overrides: [String: String] = [:]) throws -> Process {
        try base.startWorker(arguments: extra, environment: overrides)
    }

    func publish(_ jobs: [JSONObject]) async throws { try await base.publish(jobs) }

    func waitForFinals(_ ids: Set<String>, timeout: Duration = .seconds(300)) async -> Bool {
        await base.waitForFinals(ids, timeout: timeout)
    }

    func stopWorkers() async { await base.stopWorkers() }

    func tearDown() async {
        await base.stopWorkers()
        _ = try? await TestEnvironment.runLeavingDaemons(
            ["bash", TestEnvironment.repo.appendingPathComponent("Ops/scripts/smtp-sink.sh").path, "stop"],
            environment: ["FLEET_SMTP_SINK_DIR": sinkDir.path])
        await base.tearDown()
    }

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

    /// Imports profiles (`id`, `email`, `first_name`, ...) into the store, with consents.
    func importProfiles(_ profiles: [JSONObject], optedOut: [String: String] = [:]) async throws {
        let store = ProfileStore(path: self.store)
        defer { store.close() }
        try await Self.importProfiles(profiles, optedOut: optedOut, into: store)
    }

    /// Imports profiles into `store` (either backend).
    static func importProfiles(_ profiles: [JSONObject], optedOut: [String: String] = [:], into store: any ProfileOperationStore) async throws {
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
        let (status, out) = try TestEnvironment.run(["/usr/bin/python3", script, maildir])
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


    /// The effects journal's intents without a completion (jobs whose mail may or may not be at the relay).
    func uncertainEffects() throws -> Int {
        let db = try SQLiteDatabase(path: store, create: false)
        defer { db.close() }
        return try db.withStatement("SELECT count(*) FROM fleet_effects WHERE done = 0") { try $0.step() ? $0.int(at: 0) : 0 }
    }

    func messageCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: maildir + "/new").count) ?? 0
    }


}
