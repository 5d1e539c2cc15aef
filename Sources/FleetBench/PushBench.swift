import AMQPClient
import FleetAMQP
import FleetCore
import Foundation
import ProfileStore

/// `fleet bench push`: push jobs/s end to end (profile read, template render, payload, HTTP/2 request to the local
/// APNs/FCM emulator, result, ack) through a real `fleet worker --kinds push`, one device per job (half iOS, half
/// Android), in one run with the noop worker's rate on as many jobs and the Python peer (`Ops/bench/push_peer.py`:
/// httpx over HTTP/2, the same token rules) sending the same pushes; CPU per job of each, the worker's peak RSS.
///
/// The emulator (`Ops/push-emulator/push_emulator.py`, Python) answers every push and shares the machine's cores;
/// the report gives its CPU per push too, since it bounds both senders' rates.
public struct PushBench: Sendable {
    var jobs: Int
    var concurrency: Int
    var amqpURL: String
    var amqp: AMQPConfiguration
    var repository: String
    var python: String
    var debugBuild: Bool
    var output: BenchOutput

    public init(jobs: Int, concurrency: Int, amqpURL: String, amqp: AMQPConfiguration, repository: String, python: String,
                debugBuild: Bool, output: BenchOutput) {
        self.jobs = jobs
        self.concurrency = concurrency
        self.amqpURL = amqpURL
        self.amqp = amqp
        self.repository = repository
        self.python = python
        self.debugBuild = debugBuild
        self.output = output
    }

    /// The repository (its Templates/push, Ops/push-emulator and Ops/bench), which the bench must be run from.
    public static func locate() throws -> String {
        guard let repository = BenchPaths.repository(holding: "Ops/push-emulator/push_emulator.py") else {
            throw BenchError.usage("cannot find the repository (Ops/push-emulator); run the bench from it")
        }
        return repository
    }

    public func run(connection: AMQPConnection) async throws {
        try await BenchError.failing { try await measure(connection: connection) }
    }

    /// The emulator, started in `directory`: its URL, CA file, credentials and process.
    struct Emulator {
        var process: Process
        var url: String
        var caFile: String
        var credentials: JSONValue
        var serviceAccount: String

        /// SIGTERM, then up to 5 s for the exit (polled: Foundation's waitUntilExit can hang when called from a
        /// task), then SIGKILL.
        func stop() async {
            if process.isRunning { process.terminate() }
            let deadline = ContinuousClock.now + .seconds(5)
            while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    func startEmulator(in directory: String) async throws -> Emulator {
        let dir = repository + "/Ops/push-emulator"
        guard let made = BenchSubprocess.run(python, [dir + "/make_credentials.py", "--out", directory + "/creds"]), made.status == 0 else {
            throw BenchError("cannot make the emulator's credentials (\(python) \(dir)/make_credentials.py; pip install h2 pyjwt cryptography trustme)",
                             code: .unavailable)
        }
        let credentials = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/creds/credentials.json"))))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // The worker and the peer each mint a provider token at start: the 20-minute rule per key is off.
        process.arguments = [python, dir + "/push_emulator.py", "--host", "127.0.0.1", "--port", "0", "--state-dir", directory + "/state",
                             "--apns-key-id", credentials["apns_key_id"]?.stringValue ?? "", "--apns-team-id", credentials["apns_team_id"]?.stringValue ?? "",
                             "--apns-public-key", credentials["apns_public_key"]?.stringValue ?? "",
                             "--fcm-credentials", credentials["fcm_credentials"]?.stringValue ?? "",
                             "--no-apns-token-update-limit", "--ready-file", directory + "/ready.json"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, process.isRunning {
            if let data = FileManager.default.contents(atPath: directory + "/ready.json"), let ready = try? JSONValue(parsing: Array(data)) {
                return Emulator(process: process, url: ready["url"]?.stringValue ?? "", caFile: ready["ca_file"]?.stringValue ?? "",
                                credentials: credentials,
                                serviceAccount: ready["fcm_credentials_effective"]?.objectValue?.first(where: { _ in true })?.1.stringValue ?? "")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { process.terminate() }
        throw BenchError("the push emulator did not start (\(python) \(dir)/push_emulator.py)", code: .unavailable)
    }

    static func iosToken(_ i: Int) -> String { String(format: "%064x", 0xB000_0000 + i) }
    static func fcmToken(_ i: Int) -> String { "bench-fcm-token-\(i)" }

    private func measure(connection: AMQPConnection) async throws {
        let prefix = "fleet-bench-push-\(UUID().uuidString.prefix(6).lowercased())"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix).path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let emulator = try await startEmulator(in: work)
        do {
            try await measure(connection: connection, emulator: emulator, work: work)
        } catch {
            await emulator.stop()
            throw error
        }
        await emulator.stop()
    }

    private func measure(connection: AMQPConnection, emulator: Emulator, work: String) async throws {
        let prefix = URL(fileURLWithPath: work).lastPathComponent
        output.line("fleet bench push: \(jobs) push jobs (one device each, half iOS, half Android; template offer), worker concurrency \(concurrency), \(debugBuild ? "debug" : "release") build, broker \(amqp.redactedURL), emulator \(emulator.url)")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }

        // The people, one device each (not measured).
        let storePath = work + "/fleet.sqlite"
        let store = ProfileStore(path: storePath)
        var ops: [ProfileOperation] = []
        for i in 0..<jobs {
            ops.append(ProfileOperation(opID: "i\(i)", timestampMillis: 1_000, body: .identify(
                profileID: "b\(i)", traits: ["first_name": .string("Person \(i)"), "locale": i % 3 == 0 ? "de" : "en", "timezone": "UTC"], identities: [])))
            ops.append(ProfileOperation(opID: "d\(i)", timestampMillis: 1_000, body: .device(
                profileID: "b\(i)", token: i % 2 == 0 ? Self.iosToken(i) : Self.fcmToken(i), platform: i % 2 == 0 ? "ios" : "android", app: "shop",
                registered: true)))
        }
        _ = try await store.apply(ops)
        store.close()
        let keyFile = work + "/AuthKey.p8"
        try FileManager.default.copyItem(atPath: emulator.credentials["apns_private_key"]?.stringValue ?? "", toPath: keyFile)
        let environment = [
            "FLEET_PUSH_TEMPLATES": repository + "/Templates", "FLEET_PUSH_APNS_URL": emulator.url, "FLEET_PUSH_FCM_URL": emulator.url,
            "FLEET_PUSH_CA_FILE": emulator.caFile, "FLEET_PUSH_APNS_KEY_FILE": keyFile,
            "FLEET_PUSH_APNS_KEY_ID": emulator.credentials["apns_key_id"]?.stringValue ?? "",
            "FLEET_PUSH_APNS_TEAM_ID": emulator.credentials["apns_team_id"]?.stringValue ?? "",
            "FLEET_PUSH_APNS_TOPIC": "com.example.shop", "FLEET_PUSH_FCM_CREDENTIALS": emulator.serviceAccount,
        ]

        let topology = FleetTopology(prefix: prefix, kinds: ["push", "noop"])
        try await connection.declare(topology.declarations, redeclareOnReconnect: false)
        let results = try await ResultTap.start(connection, queue: topology.resultsQueue)

        // (b0) The noop worker on as many jobs: the runtime and the broker without push work.
        let noopJobs = (0..<jobs).map { i -> (id: String, body: [UInt8]) in
            let id = "noop-\(i)"
            return (id, JSONValue.object(["id": .string(id), "kind": "noop", "data": .object([:])]).serialized())
        }
        let noop = try await measureWorker(connection, topology: topology, results: results, jobs: noopJobs, kind: "noop",
                                           store: storePath, environment: environment)
        // (b) The push worker.
        let emulatorCPU0 = ProcessCPU.seconds(pid: emulator.process.processIdentifier) ?? 0
        let pushJobs = (0..<jobs).map { i -> (id: String, body: [UInt8]) in
            let id = "push-\(i)"
            let job: JSONObject = ["id": .string(id), "kind": "push", "profile_id": .string("b\(i)"), "template": "offer", "campaign": "bench",
                                   "data": ["category": "shoes"]]
            return (id, JSONValue.object(job).serialized())
        }
        let push = try await measureWorker(connection, topology: topology, results: results, jobs: pushJobs, kind: "push",
                                           store: storePath, environment: environment)
        let emulatorPerPush = ((ProcessCPU.seconds(pid: emulator.process.processIdentifier) ?? 0) - emulatorCPU0) / Double(jobs) * 1e6
        await results.stop()
        await connection.delete(topology.declarations)

        // (c) The Python peer sending the same pushes (the payloads the worker sent, as `fleet push preview` shows them).
        let pushesFile = work + "/pushes.ndjson"
        var lines = ""
        for i in 0..<jobs {
            let payload: JSONValue = i % 2 == 0
                ? ["aps": ["alert": ["title": .string("Person \(i), today only: 20% off"), "body": "On everything in shoes. Tap to browse."], "sound": "default"],
                   "screen": "offers", "discount": "20", "link": "shop://offers/bench", "fleet": ["campaign_id": "bench", "variant": "default", "job_id": .string("push-\(i)")]]
                : ["notification": ["title": .string("Person \(i), today only: 20% off"), "body": "On everything in shoes. Tap to browse."],
                   "data": ["screen": "offers", "discount": "20", "link": "shop://offers/bench", "fleet_campaign_id": "bench"],
                   "android": ["collapse_key": "offer", "ttl": "43200s", "priority": "HIGH"]]
            let line: JSONValue = ["service": .string(i % 2 == 0 ? "apns" : "fcm"), "token": .string(i % 2 == 0 ? Self.iosToken(i) : Self.fcmToken(i)), "payload": payload]
            lines += String(decoding: line.serialized(), as: UTF8.self) + "\n"
        }
        try lines.write(toFile: pushesFile, atomically: true, encoding: .utf8)
        let peerOutcome = BenchSubprocess.run(python, [
            repository + "/Ops/bench/push_peer.py", "--pushes", pushesFile, "--apns-url", emulator.url, "--fcm-url", emulator.url,
            "--ca", emulator.caFile, "--apns-key", keyFile, "--key-id", emulator.credentials["apns_key_id"]?.stringValue ?? "",
            "--team-id", emulator.credentials["apns_team_id"]?.stringValue ?? "", "--topic", "com.example.shop",
            "--service-account", emulator.serviceAccount, "--concurrency", String(concurrency),
        ])
        let peer = peerOutcome.flatMap { try? JSONValue(parsing: Array($0.lastLine.utf8)) }
        func double(_ v: JSONValue?) -> Double? {
            switch v {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        let peerRate = double(peer?["rate"])
        let peerCPU = double(peer?["cpu_seconds"]).map { $0 / Double(jobs) * 1e6 }
        let peerOK = peer?["ok"]?.intValue

        let f = BenchFormat.thousands
        let pushCPU = push.cpuSeconds.map { $0 / Double(jobs) * 1e6 }
        output.line()
        output.line("| measure | jobs/s | CPU µs per job | ratio |")
        output.line("| --- | ---: | ---: | ---: |")
        output.line("| (b0) fleet noop worker (no push work) | \(f(noop.rate)) | \(noop.cpuSeconds.map { String(format: "%.0f", $0 / Double(jobs) * 1e6) } ?? "?") | |")
        output.line("| (b) fleet push worker, to the emulator over HTTP/2 | \(f(push.rate)) | \(pushCPU.map { String(format: "%.0f", $0) } ?? "?") | b/b0 \(String(format: "%.2f", push.rate / noop.rate)) |")
        if let peerRate {
            output.line("| (c) Python peer (httpx, HTTP/2, asyncio; sends only: no broker, store or templates) | \(f(peerRate)) | \(peerCPU.map { String(format: "%.0f", $0) } ?? "?") | b/c \(String(format: "%.1f", push.rate / peerRate)); CPU c/b \(peerCPU.flatMap { c in pushCPU.map { String(format: "%.1f", c / $0) } } ?? "?") |")
        } else {
            output.line("| (c) Python peer | FAILED: \(peerOutcome?.lastLine ?? "cannot run \(python)") | | |")
        }
        output.line()
        output.line("\(push.succeeded) of \(jobs) push jobs succeeded\(peerOK.map { "; the peer's pushes accepted: \($0) of \(jobs)" } ?? "")")
        output.line(String(format: "fleet worker CPU per push job: %@ µs (the whole process, start-up included); peak RSS %@ MiB at concurrency %d",
                           pushCPU.map { String(format: "%.0f", $0) } ?? "?", push.peakRSSKiB.map { String(format: "%.1f", Double($0) / 1024) } ?? "?", concurrency))
        output.line(String(format: "the emulator's CPU per push while the worker ran: %.0f µs (it shares the cores: it bounds both senders' rates)", emulatorPerPush))
        output.figures([
            "jobs": .count(jobs), "concurrency": .count(concurrency),
            "noop_jobs_per_s": JSONValue.number(noop.rate, places: 1), "push_jobs_per_s": JSONValue.number(push.rate, places: 1),
            "push_over_noop": JSONValue.number(push.rate / noop.rate, places: 3),
            "push_cpu_us_per_job": JSONValue.number(pushCPU, places: 1), "push_peak_rss_kib": .count(push.peakRSSKiB),
            "push_succeeded": .count(push.succeeded),
            "peer_pushes_per_s": JSONValue.number(peerRate, places: 1), "peer_cpu_us_per_push": JSONValue.number(peerCPU, places: 1),
            "push_over_peer": JSONValue.number(peerRate.map { push.rate / $0 }, places: 2),
            "peer_cpu_over_push_cpu": JSONValue.number(peerCPU.flatMap { c in pushCPU.map { c / $0 } }, places: 2),
            "emulator_cpu_us_per_push": JSONValue.number(emulatorPerPush, places: 1),
        ])
        if push.succeeded < jobs { throw BenchError("\(jobs - push.succeeded) push jobs did not succeed") }
    }

    struct WorkerRun {
        var rate: Double
        var cpuSeconds: Double?
        var peakRSSKiB: Int?
        var succeeded: Int
    }

    private func measureWorker(_ connection: AMQPConnection, topology: FleetTopology, results: ResultTap,
                               jobs: [(id: String, body: [UInt8])], kind: String, store: String,
                               environment: [String: String]) async throws -> WorkerRun {
        try await BenchJobs.publish(connection, jobs, exchange: topology.jobsExchange, routingKey: kind, kind: kind)
        results.reset(expecting: jobs.count)
        let worker = try BenchWorker.start(kinds: kind, concurrency: concurrency, prefetch: 256, prefix: topology.prefix,
                                           store: store, amqpURL: amqpURL, environment: environment)
        let run = try await results.wait(while: { worker.isRunning }, what: "the bench's \(kind) worker")
        let outcome = WorkerRun(rate: run.rate, cpuSeconds: worker.cpuSeconds, peakRSSKiB: worker.peakRSSKiB, succeeded: run.succeeded)
        worker.stop()
        return outcome
    }
}
