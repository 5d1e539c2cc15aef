import AMQPClient
import FleetAMQP
import FleetCore
import FleetStore
import FleetTestSupport
import Foundation
import Testing

/// The worker runtime against a real RabbitMQ, with `fleet worker` as a real process.
@Suite("Worker runtime on a real broker")
struct WorkerIntegrationTests {
    /// A test fleet: its own prefix, store file and log directory.
    struct Fleet {
        let topology: FleetTopology
        let directory: URL
        let url: String
        var store: String { directory.appendingPathComponent("fleet.sqlite").path }

        init(_ name: String, url: String? = nil) throws {
            topology = FleetTopology(prefix: TestBroker.uniquePrefix(name))
            directory = try TestBroker.temporaryDirectory()
            self.url = try url ?? TestBroker.url
        }

        var environment: [String: String] {
            ["FLEET_AMQP_URL": url, "FLEET_STORE": store, "FLEET_PREFIX": topology.prefix, "FLEET_LOG_LEVEL": "info"]
        }

        func worker(_ extra: [String] = []) throws -> FleetProcess {
            try FleetProcess(["worker", "--kinds", "noop"] + extra, environment: environment, logDirectory: directory).start()
        }

        /// Waits until `consumers` consumers read the noop queue.
        func waitForConsumers(_ connection: AMQPConnection, _ consumers: UInt32 = 1) async throws {
            let ok = await TestBroker.eventually(timeout: .seconds(60)) {
                (try? await connection.queueStatus(topology.queue(forKind: "noop")))??.consumers ?? 0 >= consumers
            }
            #expect(ok, "the worker did not start consuming")
        }

        func publish(_ connection: AMQPConnection, _ body: [UInt8], routingKey: String = "noop",
                     properties: AMQPProperties = .persistentJSON()) async throws {
            let confirm = try await connection.publish(body, to: topology.jobsExchange, routingKey: routingKey, properties: properties)
            #expect(confirm == .acked)
        }

        func publishJobs(_ connection: AMQPConnection, _ jobs: [JSONValue]) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (i, job) in jobs.enumerated() {
                    group.addTask {
                        let id = job["id"]?.stringValue
                        try await publish(connection, job.serialized(), properties: .persistentJSON(messageID: id, type: "noop"))
                    }
                    if i % 256 == 255 { try await group.waitForAll() }
                }
                try await group.waitForAll()
            }
        }

        func cleanUp(_ connection: AMQPConnection) async {
            await TestBroker.cleanUp(topology, connection: connection)
            try? await connection.delete(queue: "\(topology.prefix).test-results")
            try? FileManager.default.removeItem(at: directory)
        }
    }

    static func noopJob(_ id: String, sleepMs: Int? = nil, fail: String? = nil, failAttempts: Int? = nil) -> JSONValue {
        var noop = JSONObject()
        if let sleepMs { noop["sleep_ms"] = .int(Int64(sleepMs)) }
        if let fail { noop["fail"] = .string(fail) }
        if let failAttempts { noop["fail_attempts"] = .int(Int64(failAttempts)) }
        return ["id": .string(id), "kind": "noop", "data": ["noop": .object(noop)]]
    }

    @Test("a job is acked only after its result is confirmed by the broker")
    func ackOnlyAfterConfirm() async throws {
        let fleet = try Fleet("ackconfirm")
        let connection = try await TestBroker.connect()
        defer { Task { await fleet.cleanUp(connection); await connection.close() } }
        // The results exchange exists, but its only queue refuses every message: the broker nacks each
        // result publish (reject-publish overflow). No job may be acked while that lasts.
        try await connection.declare(fleet.topology.declarations)
        try await connection.delete(queue: fleet.topology.resultsQueue)
        let refusing = "\(fleet.topology.prefix).refusing"
        try await connection.declare([
            .queue(.init(name: refusing, arguments: ["x-max-length": .int(0), "x-overflow": .string("reject-publish")])),
            .binding(.init(queue: refusing, exchange: fleet.topology.resultsExchange, routingKey: "#")),
        ], redeclareOnReconnect: false)
        let jobs = (0..<20).map { Self.noopJob("ack-\($0)") }
        try await fleet.publishJobs(connection, jobs)
        let worker = try fleet.worker(["--concurrency", "8", "--prefetch", "20"])
        try await fleet.waitForConsumers(connection)
        try await Task.sleep(for: .seconds(3))
        // Everything is still in the queue (requeued or unacked): stop the worker and count.
        worker.signal(SIGKILL)
        _ = await worker.waitForExit()
        let held = try await TestBroker.eventually(timeout: .seconds(10)) {
            (try await connection.queueStatus(fleet.topology.queue(forKind: "noop")))?.messages == 20
        }
        #expect(held, "jobs were acked although their results were nacked")

        // Once results can be confirmed, every job is acked.
        try await connection.delete(queue: refusing)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        let worker2 = try fleet.worker()
        let drained = try await TestBroker.eventually(timeout: .seconds(60)) {
            let depth = try await connection.queueStatus(fleet.topology.queue(forKind: "noop"))?.messages
            return collector.finishedJobIDs.count == 20 && depth == 0
        }
        #expect(drained)
        worker2.signal(SIGTERM)
        #expect(await worker2.waitForExit() == 0)
    }

    @Test("SIGKILL of a worker mid-run loses no job: every job ends with exactly one final result")
    func sigkillLosesNothing() async throws {
        let fleet = try Fleet("sigkill")
        let connection = try await TestBroker.connect()
        defer { Task { await fleet.cleanUp(connection); await connection.close() } }
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        // 3,000 jobs of 150 ms at concurrency 32 take about 14 s, so the kill (after 300 results are seen)
        // lands mid-run even when the collector lags far behind the worker (at 40 ms a job, a loaded run once saw its
        // 300th result only after the worker had finished all 3,000).
        let n = 3000
        try await fleet.publishJobs(connection, (0..<n).map { Self.noopJob("k-\($0)", sleepMs: 150) })
        let first = try fleet.worker(["--concurrency", "32"])
        let started = await TestBroker.eventually(timeout: .seconds(60)) { collector.all.count >= 300 }
        #expect(started)
        first.signal(SIGKILL)
        #expect(await first.waitForExit() != nil)
        let doneBeforeKill = collector.finishedJobIDs.count
        #expect(doneBeforeKill < n, "the run finished before the kill; the test proves nothing")

        let second = try fleet.worker(["--concurrency", "64"])
        let finished = await TestBroker.eventually(timeout: .seconds(120)) { collector.finishedJobIDs.count == n }
        #expect(finished, "only \(collector.finishedJobIDs.count) of \(n) jobs have a final result")
        second.signal(SIGTERM)
        #expect(await second.waitForExit() == 0)
        // Exactly one final result per job: copies re-published after the crash are identical.
        var byJob: [String: Set<String>] = [:]
        for r in collector.all where r.status.isFinal {
            byJob[r.jobID, default: []].insert("\(r.status.rawValue)/\(r.attempt)/\(r.worker)/\(Timestamp.format(r.timings.finishedAt))")
        }
        #expect(byJob.count == n)
        #expect(byJob.values.allSatisfy { $0.count == 1 }, "a job has two different final results")
        let ledger = try JobLedger(path: fleet.store)
        defer { ledger.close() }
        #expect(try await ledger.count() == n)
    }

    @Test("permanent failures and exhausted retries land in the dead-letter queue with the error")
    func deadLetters() async throws {
        let fleet = try Fleet("dead")
        let connection = try await TestBroker.connect()
        defer { Task { await fleet.cleanUp(connection); await connection.close() } }
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        let worker = try fleet.worker(["--max-attempts", "2"])
        try await fleet.waitForConsumers(connection)
        try await fleet.publishJobs(connection, [
            Self.noopJob("perm-1", fail: "permanent"),
            Self.noopJob("exhaust-1", fail: "retryable"),
        ])
        let done = await TestBroker.eventually(timeout: .seconds(60)) {
            collector.finishedJobIDs.isSuperset(of: ["perm-1", "exhaust-1"])
        }
        #expect(done)
        let perm = collector.results(for: "perm-1")
        #expect(perm.map(\.status) == [.dead])
        #expect(perm.first?.error?.code == "noop_failure")
        let exhausted = collector.results(for: "exhaust-1").sorted { $0.attempt < $1.attempt }
        #expect(exhausted.map(\.status) == [.failed, .dead])
        #expect(exhausted.last?.error?.code == JobError.retriesExhausted)

        let dead = try await DeadLetters.read(connection, queue: fleet.topology.deadQueue(forKind: "noop"), count: 2)
        #expect(Set(dead.compactMap { $0.properties.messageID }) == ["perm-1", "exhaust-1"])
        let codes = Dictionary(uniqueKeysWithValues: dead.map {
            ($0.properties.messageID ?? "", $0.properties.headers[FleetHeaders.errorCode]?.stringValue ?? "")
        })
        #expect(codes["perm-1"] == "noop_failure")
        #expect(codes["exhaust-1"] == JobError.retriesExhausted)
        worker.signal(SIGTERM)
        let status = await worker.waitForExit()
        #expect(status == 0, "\(worker.log)")
    }

    @Test("malformed messages are dead-lettered with a clear reason, never looped, and the worker keeps running")
    func malformedMessages() async throws {
        let fleet = try Fleet("malformed")
        let connection = try await TestBroker.connect()
        defer { Task { await fleet.cleanUp(connection); await connection.close() } }
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        let worker = try fleet.worker()
        try await fleet.waitForConsumers(connection)
        let cases: [(String, [UInt8], String)] = [
            ("bad-json", Array("not json".utf8), JobError.malformedJSON),
            ("bad-utf8", [0x7B, 0x22, 0x69, 0x64, 0x22, 0x3A, 0x22, 0xFF, 0xFE, 0x22, 0x7D], JobError.invalidUTF8),
            ("wrong-types", Array(#"{"id":"wt","kind":"noop","deadline":42}"#.utf8), JobError.invalidEnvelope),
            ("id-not-string", Array(#"{"id":7,"kind":"noop"}"#.utf8), JobError.invalidEnvelope),
            ("missing-id", Array(#"{"kind":"noop"}"#.utf8), JobError.missingID),
            ("unknown-kind", Array(#"{"id":"uk","kind":"email"}"#.utf8), JobError.unknownKind),
            ("not-object", Array("[1,2]".utf8), JobError.invalidEnvelope),
            ("oversized", Array(#"{"id":"big","kind":"noop","data":""#.utf8) + Array(repeating: 0x61, count: 1_100_000) + Array(#""}"#.utf8), JobError.bodyTooLarge),
            // Which "id" wins is up to each JSON library: refused rather than guessed.
            ("duplicate-key", Array(#"{"id":"a","kind":"noop","id":"b"}"#.utf8), JobError.invalidEnvelope),
            ("duplicate-deep", Array(#"{"id":"dd","kind":"noop","data":{"x":1,"x":2}}"#.utf8), JobError.invalidEnvelope),
            ("control-in-id", Array(#"{"id":"m17\u0000x","kind":"noop"}"#.utf8), JobError.invalidEnvelope),
            ("msgpack", Array(#"{"id":"mp","kind":"noop"}"#.utf8), JobError.unsupportedContentType),
        ]
        for (name, body, _) in cases {
            var properties = AMQPProperties.persistentJSON(messageID: name)
            if name == "msgpack" { properties.contentType = "application/x-msgpack" }
            try await fleet.publish(connection, body, properties: properties)
        }
        // Accepted content types: absent, and application/json with a UTF-8 charset.
        var plain = AMQPProperties.persistentJSON(messageID: "no-content-type")
        plain.contentType = nil
        try await fleet.publish(connection, Array(#"{"id":"no-content-type","kind":"noop"}"#.utf8), properties: plain)
        var charset = AMQPProperties.persistentJSON(messageID: "charset")
        charset.contentType = "application/json; charset=UTF-8"
        try await fleet.publish(connection, Array(#"{"id":"charset","kind":"noop"}"#.utf8), properties: charset)
        let dead = try await DeadLetters.read(connection, queue: fleet.topology.deadQueue(forKind: "noop"), count: cases.count)
        let codes = Dictionary(uniqueKeysWithValues: dead.map {
            ($0.properties.messageID ?? "", $0.properties.headers[FleetHeaders.errorCode]?.stringValue ?? "")
        })
        for (name, _, code) in cases {
            #expect(codes[name] == code, "\(name)")
        }
        for message in dead {
            let text = message.properties.headers[FleetHeaders.errorMessage]?.stringValue ?? ""
            #expect(!text.isEmpty)
        }
        // Nothing left to loop on, and a dead result for each.
        #expect((try await connection.queueStatus(fleet.topology.queue(forKind: "noop")))?.messages == 0)
        let deadResults = await TestBroker.eventually { collector.all.filter { $0.status == .dead }.count == cases.count }
        #expect(deadResults)
        // The dead result's job_id: the body's id when it is usable, else the AMQP message id.
        let deadIDs = Set(collector.all.filter { $0.status == .dead }.map(\.jobID))
        for id in ["wt", "uk"] { #expect(deadIDs.contains(id), "\(id): \(deadIDs.sorted())") }
        // No usable id (not parsed, or not a usable string): the AMQP message id.
        for id in ["id-not-string", "control-in-id", "duplicate-key", "duplicate-deep", "msgpack", "bad-json"] {
            #expect(deadIDs.contains(id), "\(id)")
        }
        #expect(await TestBroker.eventually { collector.finishedJobIDs.isSuperset(of: ["no-content-type", "charset"]) })
        #expect(collector.results(for: "charset").allSatisfy { $0.status == .succeeded })
        // Dead results of refused envelopes and noop's own results are valid results of the contract.
        let check = try await ContractCheck.validate(collector.resultBodies, requireKinds: ["noop"])
        #expect(check.status == 0, "\(check.output)")
        // The worker is alive and still runs good jobs.
        #expect(worker.isRunning)
        try await fleet.publishJobs(connection, [Self.noopJob("good-after-bad")])
        #expect(await TestBroker.eventually { collector.finishedJobIDs.contains("good-after-bad") })
        #expect(try await connection.queueStatus(fleet.topology.deadQueue(forKind: "noop"))?.messages == UInt32(cases.count))
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit() == 0)
    }

    @Test("SIGTERM or SIGINT while the broker cannot be reached ends the worker at once, exit 0", arguments: [SIGTERM, SIGINT])
    func signalWhileConnecting(signal: Int32) async throws {
        let fleet = try Fleet("connecting", url: "amqp://guest:guest@127.0.0.1:1/%2F")
        defer { try? FileManager.default.removeItem(at: fleet.directory) }
        let worker = try fleet.worker()
        // Wait for the second failed attempt: the worker is in its backoff between attempts.
        #expect(await TestBroker.eventually(timeout: .seconds(20)) {
            worker.log.components(separatedBy: "amqp connect failed").count > 2
        }, "\(worker.log)")
        worker.signal(signal)
        #expect(await worker.waitForExit(timeout: .seconds(5)) == 0, "the worker ignored the signal: \(worker.log.suffix(600))")
        #expect(worker.log.contains("worker stopped before it reached the broker"))
    }

}
/// Reads dead letters for inspection and puts them back (closing the connection requeues them).
enum DeadLetters {
    static func read(_ connection: AMQPConnection, queue: String, count: Int) async throws -> [AMQPDelivery] {
        let reader = try await TestBroker.connect()
        defer { Task { await reader.close() } }
        _ = try await TestBroker.eventually(timeout: .seconds(30)) {
            (try await reader.queueStatus(queue))?.messages ?? 0 >= UInt32(count)
        }
        let consumer = try await reader.consume(queue: queue, prefetch: UInt16(count))
        var got: [AMQPDelivery] = []
        for await d in consumer {
            got.append(d)
            if got.count == count { break }
        }
        await consumer.cancel()
        for d in got { reader.reject(d, requeue: true) }
        return got
    }
}
