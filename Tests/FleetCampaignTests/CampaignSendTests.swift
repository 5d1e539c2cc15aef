import AMQPClient
import FleetAMQP
import FleetCore
import FleetStore
import FleetTestSupport
import Foundation
import Testing

/// `fleet campaign send|status|cancel` as a scheduler runs them: the `fleet` executable against the test broker
/// and a real store file, the jobs read back from the queue, and email workers (delivery `result`) running them.
@Suite("fleet campaign (broker, SQLite)", .serialized)
struct CampaignSendTests {
    static let zones: [String?] = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Not/AZone", nil]

    /// A fleet of kind email with `n` profiles (zones in turn from ``zones``) and segments `all` and `nobody`.
    static func fleet(_ name: String, profiles n: Int, broker url: String? = nil) async throws -> KindFleet {
        let extra = ["FLEET_EMAIL_SECRET": "s", "FLEET_EMAIL_TEMPLATES": TestEnvironment.repo.appendingPathComponent("Templates").path]
        let fleet = try await KindFleet(kind: "email", name: name, environment: extra, url: url)
        let file = fleet.directory.appendingPathComponent("profiles.ndjson")
        var lines = ""
        for i in 0..<n {
            var p: [String: Any] = ["id": String(format: "p%05d", i), "email": "p\(i)@example.com", "first_name": "Ann"]
            if let zone = zones[i % zones.count] { p["timezone"] = zone }
            lines += String(decoding: try JSONSerialization.data(withJSONObject: p), as: UTF8.self) + "\n"
        }
        try lines.write(to: file, atomically: true, encoding: .utf8)
        for command in [["profiles", "import", file.path], ["segment", "define", "all", #"{"all": []}"#],
                        ["segment", "define", "nobody", #"{"trait": "tier", "op": "eq", "value": "none-has-it"}"#]] {
            let (status, output) = try fleet.run(command)
            try #require(status == 0, "\(command): \(output)")
        }
        return fleet
    }

    /// The summary line of `--json`.
    static func summary(_ output: String) throws -> JSONObject {
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") })
        return try #require(try JSONValue(parsing: Array(line.utf8)).objectValue)
    }

    /// Takes messages of the fleet's email queue (acked), as decoded jobs, until `n` distinct job ids are in, then
    /// whatever else is queued (at most 60 s in all).
    static func drain(_ fleet: KindFleet, distinct n: Int) async throws -> [JSONObject] {
        let queue = fleet.topology.queue(forKind: "email")
        // After a broker restart the fleet's own connection may still be reconnecting: consume once it is back.
        var consumer: AMQPConsumer?
        let deadlineToConnect = ContinuousClock.now + .seconds(60)
        while consumer == nil {
            do {
                consumer = try await fleet.connection.consume(queue: queue, prefetch: 1000)
            } catch let error as AMQPError where error.code == .notConnected && ContinuousClock.now < deadlineToConnect {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let consumerReady = consumer!
        var jobs: [JSONObject] = []
        var ids = Set<String>()
        let deadline = ContinuousClock.now + .seconds(60)
        for await delivery in consumerReady {
            fleet.connection.ack(delivery)
            if let o = try JSONValue(parsing: delivery.body).objectValue {
                jobs.append(o)
                if let id = o["id"]?.stringValue { ids.insert(id) }
            }
            if ids.count >= n || ContinuousClock.now > deadline { break }
        }
        await consumerReady.cancel()
        return jobs
    }

    @Test("send: one job per member at 09:00 in each person's zone, spread to the rate; a dry run and a second run publish nothing; bad input is one line and an exit status")
    func sendAtLocalTime() async throws {
        let fleet = try await Self.fleet("send", profiles: 200)
        defer { Task { await fleet.tearDown() } }
        let queue = fleet.topology.queue(forKind: "email")
        let base = ["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome", "--campaign-id", "xmas",
                    "--at", "2031-12-24T09:00", "--local-time", "--rate", "50/s", "--json"]

        let (dryStatus, dryOutput) = try fleet.run(base + ["--dry-run"])
        #expect(dryStatus == 0, "\(dryOutput)")
        let dry = try Self.summary(dryOutput)
        #expect(dry["confirmed"] == 200 && dry["dry_run"] == true && dry["invalid_timezones"] == 40)
        #expect(dry["by_hour"]?.objectValue?.count == 4, "\(dryOutput)")
        #expect(try await fleet.connection.queueStatus(queue)?.messages == 0)
        #expect(try fleet.run(["campaign", "status", "xmas"]).0 == 66, "a dry run records no campaign")

        let (status, output) = try fleet.run(base)
        #expect(status == 0, "\(output)")
        let sent = try Self.summary(output)
        #expect(sent["confirmed"] == 200 && sent["already_confirmed"] == 0 && sent["invalid_timezones"] == 40)
        let jobs = try await Self.drain(fleet, distinct: 200)
        #expect(jobs.count == 200)
        #expect(try await fleet.connection.queueStatus(queue)?.messages == 0)
        #expect(Set(jobs.compactMap { $0["id"]?.stringValue }) == Set((0..<200).map { String(format: "xmas:p%05d", $0) }))
        // 09:00 in the person's zone (UTC for no or an unknown zone), 40 people per zone, each group spread at 50/s.
        let expected: [String?: String] = ["Europe/Berlin": "2031-12-24T08:00:00Z", "America/New_York": "2031-12-24T14:00:00Z",
                                           "Asia/Tokyo": "2031-12-24T00:00:00Z", "Not/AZone": "2031-12-24T09:00:00Z"]
        let times = try jobs.map { job -> (Date, Date) in
            let profileID = try #require(job["profile_id"]?.stringValue)
            let id = Int(profileID.dropFirst())!
            let zone = Self.zones[id % Self.zones.count]
            let target = ISO8601DateFormatter().date(from: expected[zone] ?? "2031-12-24T09:00:00Z")!
            let text = try #require(job["not_before"]?.stringValue)
            let notBefore = try #require(Timestamp.parse(text))
            #expect(job["campaign"]?["id"] == "xmas" && job["template"] == "welcome" && job["kind"] == "email")
            return (target, notBefore)
        }
        for (target, notBefore) in times { #expect(notBefore >= target && notBefore < target.addingTimeInterval(80 * 0.02 + 1)) }
        let sorted = times.map(\.1).sorted()
        // not_before has millisecond precision: two slots 20 ms apart can print 19 ms apart, never less.
        for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(b.timeIntervalSince(a) >= 0.019 - 1e-6, "closer than 1/rate: \(a) \(b)") }

        // Again: everything is recorded as confirmed, nothing is published.
        let (againStatus, againOutput) = try fleet.run(base)
        #expect(againStatus == 0)
        let again = try Self.summary(againOutput)
        #expect(again["confirmed"] == 0 && again["already_confirmed"] == 200)
        #expect(try await fleet.connection.queueStatus(queue)?.messages == 0)

        let empty = try fleet.run(["campaign", "send", "--segment", "nobody", "--kind", "email", "--template", "welcome", "--campaign-id", "e1"])
        #expect(empty.0 == 0 && empty.1.contains("segment nobody has no members: nothing to send"), "\(empty)")
        let unknown = try fleet.run(["campaign", "send", "--segment", "nope", "--kind", "email", "--template", "welcome", "--campaign-id", "u1"])
        #expect(unknown.0 == 66 && unknown.1.contains("no segment 'nope'"), "\(unknown)")
        let reused = try fleet.run(["campaign", "send", "--segment", "all", "--kind", "email", "--template", "monthly", "--campaign-id", "xmas"])
        #expect(reused.0 == 65 && reused.1.contains("was sent before with kind email, template welcome"), "\(reused)")
        for bad in [["--rate", "fast"], ["--at", "tomorrow"], ["--at", "09:00"], ["--holdout", "2"], ["--variants", "a:0"], ["--no-wrap"]] {
            let r = try fleet.run(["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome", "--campaign-id", "b1"] + bad)
            #expect(r.0 == 64, "\(bad): \(r)")
            #expect(!r.1.contains("Fatal error") && !r.1.contains("Stack"), "\(r)")
        }
    }

    @Test("status counts the workers' results by status and reason; cancel makes the jobs not yet run end suppressed / cancelled")
    func statusAndCancel() async throws {
        let fleet = try await Self.fleet("status", profiles: 100)
        defer { Task { await fleet.tearDown() } }
        try fleet.startWorker()
        let (status, output) = try fleet.run(["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome",
                                              "--campaign-id", "now", "--holdout", "0.2", "--variants", "a:1,b:1"])
        #expect(status == 0, "\(output)")
        let ids = Set((0..<100).map { String(format: "now:p%05d", $0) })
        #expect(await fleet.waitForFinals(ids, timeout: .seconds(120)))
        let report = try Self.summary(try fleet.run(["campaign", "status", "now", "--json"]).1)
        let suppressed = fleet.finals.values.filter { $0.status == .suppressed }.count
        #expect(report["confirmed"] == 100 && report["finals"] == 100 && report["unfinished"] == 0)
        #expect(report["by_status"]?["succeeded"]?.intValue == Int64(100 - suppressed))
        #expect(report["suppressed_by_reason"]?["holdout"]?.intValue == Int64(suppressed))
        #expect(suppressed > 0)

        // Jobs held until a moment a few seconds ahead, cancelled before it: none runs.
        let at = Timestamp.format(Date().addingTimeInterval(6))
        let later = try fleet.run(["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome", "--campaign-id", "later", "--at", at])
        #expect(later.0 == 0, "\(later)")
        let waiting = try Self.summary(try fleet.run(["campaign", "status", "later", "--json"]).1)
        #expect(waiting["unfinished"] == 100)
        let cancel = try fleet.run(["campaign", "cancel", "later"])
        #expect(cancel.0 == 0 && cancel.1.contains("cancelled campaign later"), "\(cancel)")
        #expect(try fleet.run(["campaign", "cancel", "nope"]).0 == 66)
        let laterIDs = Set((0..<100).map { String(format: "later:p%05d", $0) })
        #expect(await fleet.waitForFinals(laterIDs, timeout: .seconds(120)))
        #expect(laterIDs.allSatisfy { fleet.finals[$0]?.status == .suppressed && fleet.finals[$0]?.output["reason"] == "cancelled" })
        let cancelled = try Self.summary(try fleet.run(["campaign", "status", "later", "--json"]).1)
        #expect(cancelled["cancelled"] == true && cancelled["suppressed_by_reason"]?["cancelled"] == 100)
        #expect(try fleet.run(["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome", "--campaign-id", "later"]).0 == 65)
        await fleet.stopWorkers()
    }

    @Test("the broker restarted in the middle of a send: the send waits, publishes again what was not confirmed, and every member has exactly one job id")
    func brokerRestartMidSend() async throws {
        try await PrivateBroker.with { broker in
            let members = 30_000
            let fleet = try await Self.fleet("restart", profiles: members, broker: try broker.url)
            defer { Task { await fleet.tearDown() } }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: KindFleet.fleetBinary)
            p.arguments = ["campaign", "send", "--segment", "all", "--kind", "email", "--template", "welcome", "--campaign-id", "r",
                           "--in-flight", "16", "--json"]
            p.environment = fleet.environment
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            // Restart once a tenth of the jobs are confirmed (the store records them as they are).
            let started = await TestEnvironment.eventually(timeout: .seconds(120), every: .milliseconds(20)) {
                guard let db = try? SQLiteDatabase(path: fleet.store, create: false) else { return false }
                defer { db.close() }
                let n = (try? db.withStatement("SELECT count(*) FROM campaign_jobs") { try $0.step() ? $0.int(at: 0) : 0 }) ?? 0
                return n >= members / 10
            }
            try #require(started, "the send did not get going")
            try await broker.run("restart-app")
            p.waitUntilExit()
            let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(p.terminationStatus == 0, "\(output)")
            let summary = try Self.summary(output)
            #expect(summary["confirmed"]?.intValue.map { $0 > 0 && $0 <= Int64(members) } == true, "\(output)")
            // Every member's job is in the queue; a job whose confirm the restart lost may be there twice (same id).
            let jobs = try await Self.drain(fleet, distinct: members)
            let ids = Set(jobs.compactMap { $0["id"]?.stringValue })
            #expect(ids.count == members, "\(ids.count) distinct job ids of \(members); \(jobs.count) messages")
            print("campaign restart test: \(jobs.count) messages for \(members) members, \(summary["republished"] ?? 0) publishes repeated")
        }
    }
}
