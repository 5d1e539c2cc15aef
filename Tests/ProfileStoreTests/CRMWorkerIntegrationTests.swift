import AMQPClient
import FleetCore
import FleetStore
import FleetTestSupport
import Foundation
import FleetPostgres
import ProfileStore
import Testing

/// The crm kind in real `fleet worker` processes against a real RabbitMQ and a real SQLite file.
@Suite("CRM worker on a real broker", .serialized)
struct CRMWorkerIntegrationTests {
    static func ts(_ ms: Int64) -> JSONValue { .string(Timestamp.format(Date(timeIntervalSince1970: Double(ms) / 1000))) }

    static func identify(_ op: String, _ id: String, _ ms: Int64, _ traits: JSONValue, email: String? = nil) -> JSONValue {
        var o = JSONObject(["op": "identify", "op_id": .string(op), "profile_id": .string(id), "timestamp": ts(ms), "traits": traits])
        if let email { o["email"] = .string(email) }
        return .object(o)
    }

    static func object(_ key: String, _ value: JSONValue) -> JSONValue {
        var o = JSONObject()
        o[key] = value
        return .object(o)
    }

    static func batch(_ ops: [JSONValue]) -> JSONValue { ["op": "batch", "ops": .array(ops)] }

    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// Runs `body` with the store settings of `backend` (a fresh database for PostgreSQL) and a way to read it back.
    static func withStore(_ backend: Backend,
                          _ body: @Sendable ([String: String], @escaping @Sendable (String) async throws -> (any ProfileOperationStore)?) async throws -> Void)
        async throws {
        switch backend {
        case .sqlite:
            try await body([:], { path in ProfileStore(path: path, readers: 1) })
        case .postgres:
            try await PostgresDatabase.withFresh { url in
                try await PostgresDatabase.withClient(url) { client in
                    try await body(["FLEET_STORE": PostgresDatabase.string(url)], { _ in PostgresProfileStore(client: client) })
                }
            }
        }
    }

    @Test("two workers (on PostgreSQL: two hosts) applying interleaved, out-of-order updates end in the last-writer-wins state; a duplicate op id applies once",
          arguments: Backend.allCases)
    func interleavedLastWriterWins(_ backend: Backend) async throws {
        try await Self.withStore(backend) { environment, open in try await Self.interleaved(environment: environment, open: open) }
    }

    static func interleaved(environment: [String: String], open: @Sendable (String) async throws -> (any ProfileOperationStore)?) async throws {
        let fleet = try await CRMFleet("lww", environment: environment)
        defer { Task { await fleet.tearDown() } }
        try fleet.startWorker()
        try fleet.startWorker()
        try await fleet.waitForConsumers(2)

        var rng = SystemRandomNumberGenerator()
        var ops: [(ms: Int64, op: JSONValue, profile: String, field: String, value: String)] = []
        var n = 0
        for p in 0..<20 {
            for field in ["tier", "city", "points"] {
                for _ in 0..<10 {
                    n += 1
                    let ms = 1_700_000_000_000 + Int64.random(in: 0..<10_000_000, using: &rng) * 10 + Int64(n % 10)
                    let value = "v\(ms)"
                    ops.append((ms, Self.identify("op-\(n)", "p\(p)", ms, Self.object(field, .string(value))),
                                "p\(p)", field, value))
                }
            }
        }
        ops.shuffle(using: &rng)
        var jobs: [(id: String, data: JSONValue)] = []
        var i = 0
        while i < ops.count {  // alternate single ops and batches of 7
            if jobs.count % 2 == 0 {
                jobs.append(("j\(jobs.count)", ops[i].op)); i += 1
            } else {
                let chunk = ops[i..<min(i + 7, ops.count)].map(\.op)
                jobs.append(("j\(jobs.count)", Self.batch(chunk))); i += chunk.count
            }
        }
        // Duplicates: the same ops again in other jobs (a CRM re-sending), applied once.
        for k in 0..<30 {
            jobs.append(("dup-\(k)", ops[k].op))
        }
        // The same op id twice with different content (two event ids): whichever arrives first applies, once.
        for e in ["e-a", "e-b"] {
            jobs.append(("track-\(e)", ["op": "track", "op_id": "track-once", "profile_id": "p0", "event_id": .string(e),
                                        "event": "purchase", "occurred_at": Self.ts(1_700_000_000_000), "amount": 12.5]))
        }
        jobs.shuffle(using: &rng)
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map(\.id))), "not every job finished")
        let finals = fleet.finals
        #expect(finals.values.allSatisfy { $0.status == .succeeded })
        #expect(Set(finals.values.map(\.worker)).count == 2, "both workers should have run jobs")

        var expected: [String: [String: (Int64, String)]] = [:]
        for op in ops {
            let current = expected[op.profile]?[op.field]
            if current == nil || op.ms > current!.0 { expected[op.profile, default: [:]][op.field] = (op.ms, op.value) }
        }
        let reader = try #require(try await open(fleet.store))
        defer { (reader as? ProfileStore)?.close() }
        for (profile, fields) in expected {
            let view = try #require(try await reader.view(id: profile))
            for (field, (_, value)) in fields {
                #expect(view.traits[field]?.stringValue == value, "\(profile).\(field)")
            }
        }
        // Every op id applied or skipped exactly once; the copies are skipped as duplicates.
        let reasons = finals.values.flatMap { r -> [String?] in
            guard case .array(let ops)? = r.output["ops"] else { return [] }
            return ops.map { $0["reason"]?.stringValue }
        }
        #expect(reasons.filter { $0 == "duplicate" }.count == 31)
        let p0 = try #require(try await reader.view(id: "p0"))
        #expect(p0.purchases.orderCount == 1)
        #expect(p0.purchases.lifetimeValue == 12.5)
    }

    @Test("after erase no byte of the person is left in the store files, and a later job for the address is suppressed")
    func eraseThroughTheWorker() async throws {
        let fleet = try await CRMFleet("erase")
        defer { Task { await fleet.tearDown() } }
        try fleet.startWorker()
        try await fleet.waitForConsumers(1)
        let email = "erin.erased@example.net"
        let secrets = [email, "ErinVeryPrivateName", "Secret Lane 7", "tok-ERIN-123456", "+33612345678"]
        try await fleet.publish([
            ("j1", Self.batch([
                Self.identify("o1", "erin", 1000, ["first_name": .string(secrets[1]), "street": .string(secrets[2])], email: email),
                ["op": "identify", "op_id": "o1b", "profile_id": "erin", "timestamp": Self.ts(1001), "phone": .string(secrets[4])],
                ["op": "device", "op_id": "o2", "profile_id": "erin", "timestamp": Self.ts(1002), "token": .string(secrets[3]), "platform": "ios", "app": "shop"],
                ["op": "track", "op_id": "o3", "profile_id": "erin", "event_id": "ev1", "event": "viewed", "occurred_at": Self.ts(1003),
                 "properties": ["street": .string(secrets[2])]],
                ["op": "consent", "op_id": "o4", "profile_id": "erin", "timestamp": Self.ts(1004), "channel": "email", "state": "opted_in"],
                Self.identify("o5", "other", 1000, ["first_name": "olaf"], email: "olaf@example.net"),
            ])),
        ])
        #expect(await fleet.waitForFinals(["j1"]))
        #expect(fleet.finals["j1"]?.output["applied"] == 6)
        try await fleet.publish([("j2", ["op": "erase", "op_id": "erase-1", "email": .string(email.uppercased())])])
        #expect(await fleet.waitForFinals(["j2"]))
        #expect(fleet.finals["j2"]?.status == .succeeded)

        for file in ["fleet.sqlite", "fleet.sqlite-wal"] {
            guard let data = FileManager.default.contents(atPath: fleet.directory.appendingPathComponent(file).path) else { continue }
            for secret in secrets {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(file) still holds a value of the erased person")
            }
        }
        // The CRM syncs the person again: the job is suppressed and stores nothing.
        try await fleet.publish([("j3", Self.identify("o6", "erin-new-id", 5000, ["first_name": "erin"], email: email))])
        #expect(await fleet.waitForFinals(["j3"]))
        #expect(fleet.finals["j3"]?.status == .suppressed)
        #expect(fleet.finals["j3"]?.output["ops"] == [["op_id": "o6", "op": "identify", "status": "skipped", "reason": "suppressed"]])
        let reader = try ProfileReader(path: fleet.store)
        defer { reader.close() }
        #expect(try reader.isSuppressed(address: email, channel: .email))
        #expect(try reader.isSuppressed(address: secrets[3], channel: .push))
        #expect(try reader.view(id: "erin") == nil)
        #expect(try reader.view(id: "erin-new-id") == nil)
        #expect(try reader.view(id: "other") != nil)
    }

    @Test("bad input rejects that op only, with a reason; the rest of the batch applies")
    func badInput() async throws {
        let fleet = try await CRMFleet("bad")
        defer { Task { await fleet.tearDown() } }
        try fleet.startWorker()
        try await fleet.waitForConsumers(1)
        try await fleet.publish([
            ("b1", Self.batch([
                ["op": "frobnicate", "op_id": "x1"],
                ["op": "identify", "op_id": "x2", "timestamp": Self.ts(1000), "traits": ["a": 1]],
                ["op": "identify", "op_id": "x3", "profile_id": "p1", "timestamp": Self.ts(1000), "traits": "not an object"],
                Self.identify("x4", "p1", 1000, ["big": .string(String(repeating: "y", count: 40_000))]),
                Self.identify("x5", "p1", 1000, ["tier": "gold"]),
            ])),
            ("b2", "not an object"),
            // Every op rejected: nothing applied, so the job is dead with the first op's reason.
            ("b3", Self.batch([["op": "explode", "op_id": "y1"], ["op": "identify", "op_id": "y2", "profile_id": "p1", "timestamp": Self.ts(1000), "traits": "x"]])),
            ("b4", ["ops": [["op": "explode"]]]),
            ("b5", Self.batch([])),
        ])
        #expect(await fleet.waitForFinals(["b1", "b2", "b3", "b4", "b5"]))
        let r = try #require(fleet.finals["b1"])
        #expect(r.status == .succeeded)
        #expect(r.output["applied"] == 1)
        #expect(r.output["rejected"] == 4)
        if case .array(let ops)? = r.output["ops"] {
            #expect(ops.map { $0["reason"]?.stringValue } == ["unknown_op", "missing_field", "wrong_type", "too_large", nil])
        }
        #expect(fleet.finals["b2"]?.status == .dead)
        #expect(fleet.finals["b2"]?.error?.code == "invalid_crm_job")
        let allRejected = try #require(fleet.finals["b3"])
        #expect(allRejected.status == .dead)
        #expect(allRejected.error?.code == "unknown_op")
        #expect(allRejected.error?.message.contains("y1") == true, "\(allRejected.error?.message ?? "")")
        #expect(allRejected.output["rejected"] == 2)
        #expect(allRejected.output["applied"] == 0)
        // A data object with no op at all is one op without `op`: rejected, so the job is dead.
        #expect(fleet.finals["b4"]?.status == .dead)
        #expect(fleet.finals["b4"]?.error?.code == "missing_field")
        // An empty batch has nothing to reject: it succeeds with nothing applied.
        #expect(fleet.finals["b5"]?.status == .succeeded)
        // What the worker published is what Docs/contract/crm-result.schema.json describes.
        let check = try await ContractCheck.validate(ContractCheck.onePerKindAndStatus(fleet.resultBodies), requireKinds: ["crm"])
        #expect(check.status == 0, "\(check.output)")
    }

    @Test("SIGKILL mid-batch leaves no half-applied operation; the redelivered jobs apply exactly once")
    func sigkillMidBatch() async throws {
        // The kill is timed by the store's progress as this process polls it; on a loaded machine the worker can
        // finish every batch between a poll and the kill. Such a run proves nothing about interruption (its
        // invariants are still checked): it is run again, up to three times.
        for attempt in 1...3 {
            if try await Self.killMidBatchRun() { return }
            print("crm sigkill test: run \(attempt): the kill came after all the work; running again")
        }
        Issue.record("in 3 runs the kill never came while batches were being applied")
    }

    /// One run: SIGKILL the worker mid-run, check the store, restart, check again. Returns whether the kill
    /// interrupted the work (some batches were not yet applied).
    static func killMidBatchRun() async throws -> Bool {
        let fleet = try await CRMFleet("kill")
        defer { Task { await fleet.tearDown() } }
        let jobCount = 24, opsPerJob = 1000
        var jobs: [(id: String, data: JSONValue)] = []
        for j in 0..<jobCount {
            jobs.append(("k\(j)", Self.batch((0..<opsPerJob).map { i in
                ["op": "track", "op_id": .string("t-\(j)-\(i)"), "profile_id": .string("p\(i % 50)"), "event_id": .string("ev-\(j)-\(i)"),
                 "event": "purchase", "occurred_at": Self.ts(1_700_000_000_000 + Int64(j * opsPerJob + i)), "amount": 1,
                 "properties": ["n": .int(Int64(i))]]
            })))
        }
        try await fleet.publish(jobs)
        // One job at a time, so batches commit one after another (concurrent jobs share one group commit).
        let worker = try fleet.startWorker(arguments: ["--concurrency", "1", "--prefetch", "1"])
        // Kill while transactions are under way: once a random number of jobs, at most a third, have finished
        // (the store exists and the worker is busy with the next batches). A delay after the first result was
        // not enough: a fast run finished all 24 batches within it.
        // Progress is read from the store itself (its events), not from the published results, which lag behind the
        // worker on a loaded machine (a run once saw its first results only after all 24 batches had committed).
        let killAfter = Int.random(in: 1...(jobCount / 3))
        let started = await TestEnvironment.eventually(timeout: .seconds(60), every: .milliseconds(1)) {
            guard let db = try? SQLiteDatabase(path: fleet.store, create: false) else { return false }
            defer { db.close() }
            let events = (try? db.withStatement("SELECT count(*) FROM events") { try $0.step() ? $0.int(at: 0) : 0 }) ?? 0
            return events >= killAfter * opsPerJob
        }
        try #require(started, "not \(killAfter) CRM batches committed within 60 s")
        kill(worker.processIdentifier, SIGKILL)
        worker.waitUntilExit()

        func check() throws -> Int {
            let db = try SQLiteDatabase(path: fleet.store, create: false)
            defer { db.close() }
            func scalar(_ sql: String) throws -> Int { try db.withStatement(sql) { try $0.step() ? $0.int(at: 0) : -1 } }
            // Killed before its first job created the profile tables (the store opens lazily): nothing applied.
            if try scalar("SELECT count(*) FROM sqlite_master WHERE name = 'events'") == 0 { return 0 }
            let events = try scalar("SELECT count(*) FROM events")
            // Each op is one event, one applied-op row and one increment of its profile's summary: all or nothing.
            #expect(try scalar("SELECT count(*) FROM applied_ops") == events)
            #expect(try scalar("SELECT coalesce(sum(order_count), 0) FROM profiles") == events)
            #expect(try scalar("SELECT coalesce(CAST(sum(lifetime_value) AS INTEGER), 0) FROM profiles") == events)
            #expect(try scalar(
                "SELECT count(*) FROM profiles p WHERE order_count != (SELECT count(*) FROM events e WHERE e.profile_id = p.id)") == 0)
            // A job's ops commit together: whole batches only.
            #expect(events % opsPerJob == 0, "a batch was half applied: \(events) events")
            return events
        }
        let afterKill = try check()
        print("crm sigkill test: \(afterKill) of \(jobCount * opsPerJob) ops committed when the worker was killed")

        try fleet.startWorker()
        #expect(await fleet.waitForFinals(Set(jobs.map(\.id)), timeout: .seconds(300)))
        #expect(try check() == jobCount * opsPerJob)
        return afterKill < jobCount * opsPerJob
    }
}
