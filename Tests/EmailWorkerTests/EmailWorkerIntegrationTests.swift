import EmailWorker
import FleetCore
import FleetTestSupport
import FleetPostgres
import Foundation
import Testing

/// The email worker against a real RabbitMQ, a real SQLite store and a real SMTP server (aiosmtpd writing a
/// Maildir, started by Ops/scripts/smtp-sink.sh); every message that arrived is parsed by Python's `email`.
@Suite("Email worker (broker, SQLite, SMTP sink)", .serialized)
struct EmailWorkerIntegrationTests {
    static let meta = #"{"from": "Test Shop <news@shop.example.com>", "subscription_group": "newsletter", "category": "marketing", "list_name": "Test news"}"#
    static let html = """
        <html><body><p>Dear {{ profile.first_name }} ({{ profile.id }})</p>
        <p><a href="https://shop.example.com/x">shop</a></p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>
        """

    static func profiles(_ n: Int, prefix: String) -> [JSONObject] {
        (0..<n).map { i in
            JSONObject(["id": .string("\(prefix)\(i)"), "email": .string("\(prefix)\(i)@example.com"),
                        "first_name": .string(i % 3 == 0 ? "Zoë\(i)" : "Ann\(i)")])
        }
    }

    static func jobs(_ ids: [String], template: String, prefix: String) -> [JSONObject] {
        ids.map { JSONObject(["id": .string("\(prefix)-\($0)"), "profile_id": .string($0), "template": .string(template),
                              "campaign": .string("c-\(prefix)")]) }
    }

    @Test("a 2,000-recipient campaign with 30% opted out or suppressed reaches exactly the others, once each, personalized; every message parses and has the RFC 8058 headers")
    func campaignReachesExactlyTheOthers() async throws {
        let fleet = try await EmailFleet("campaign")
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello {{ profile.first_name }}", html: Self.html)
        let people = Self.profiles(2000, prefix: "p")
        var optedOut: [String: String] = [:]
        var suppressed: [String] = []
        for i in 0..<2000 where i % 10 < 3 {
            if i % 10 < 2 { optedOut["p\(i)"] = "newsletter" } else { suppressed.append("p\(i)@example.com") }
        }
        try await fleet.importProfiles(people, optedOut: optedOut)
        try await fleet.suppress(suppressed)
        try fleet.startWorker()
        let jobs = Self.jobs(people.map { $0["id"]!.stringValue! }, template: "t-news", prefix: "c")
        try await fleet.publish(jobs)
        let ids = Set(jobs.map { $0["id"]!.stringValue! })
        #expect(await fleet.waitForFinals(ids))
        let finals = fleet.finals
        #expect(finals.values.filter { $0.status == .succeeded }.count == 1400)
        #expect(finals.values.filter { $0.status == .suppressed }.count == 600)
        #expect(finals["c-p0"]?.output["reason"]?.stringValue == "opted_out")
        #expect(finals["c-p2"]?.output["reason"]?.stringValue == "suppressed_address")
        await fleet.stopWorkers()
        let arrived = try fleet.arrived()
        #expect(arrived.count == 1400)
        let expected = Set((0..<2000).filter { $0 % 10 >= 3 }.map { "p\($0)@example.com" })
        #expect(Set(arrived.map(\.to)) == expected)
        #expect(Set(arrived.map(\.messageID)).count == 1400)
        // The sink offers PIPELINING and CHUNKING (its default): every message came pipelined, by BDAT.
        #expect(fleet.sinkLog.components(separatedBy: "message via BDAT pipelined=yes\n").count - 1 == 1400)
        for m in arrived {
            let id = String(m.to.prefix { $0 != "@" })
            let name = people[Int(id.dropFirst())!]["first_name"]!.stringValue!
            #expect(m.ok, "\(m.jobID): \(m.problems)")
            #expect(m.subject == "Hello \(name)")
            #expect(m.html.contains("Dear \(name) (\(id))"))
            #expect(m.html.contains("https://shop.example.com/x?utm_source=email&amp;utm_medium=email"))
            #expect(m.text.contains("Dear \(name) (\(id))"))
        }
    }

    @Test("SIGKILL mid-campaign, twice: no message twice; none missing but those whose result says effect_uncertain")
    func sigkillMidCampaign() async throws {
        let fleet = try await EmailFleet("kill")
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello {{ profile.first_name }}", html: Self.html)
        // 2,000 mails (FLEET_TEST_SIGKILL_MAILS sets another count): with pipelining the worker sends about a thousand
        // a second to this sink, so the second kill must come well before the end.
        let count = ProcessInfo.processInfo.environment["FLEET_TEST_SIGKILL_MAILS"].flatMap { Int($0) }.map { max($0, 60) } ?? 2000
        let people = Self.profiles(count, prefix: "k")
        try await fleet.importProfiles(people)
        let jobs = Self.jobs(people.map { $0["id"]!.stringValue! }, template: "t-news", prefix: "k")
        try await fleet.publish(jobs)
        var atKills: [Int] = []
        var inWindow = 0
        for round in 1...2 {
            let worker = try fleet.startWorker()
            let started = await TestEnvironment.eventually(timeout: .seconds(120), every: .milliseconds(5)) { fleet.messageCount() >= count / 6 * round }
            #expect(started)
            kill(worker.processIdentifier, SIGKILL)
            worker.waitUntilExit()
            atKills.append(fleet.messageCount())
            // The jobs whose relay transaction was in its last step when the worker died: intents without completion.
            inWindow = try fleet.uncertainEffects()
        }
        try fleet.startWorker()
        let (arrived, uncertain) = try await Self.finishAndCheckOnce(fleet, jobs: jobs)
        print("sigkill: \(atKills) messages at the kills, \(inWindow) intents without completion after them, \(uncertain.count) jobs uncertain, \(arrived.count) messages in all")
        #expect(atKills.last! < count, "the kills came after the campaign")
        #expect(uncertain.count <= inWindow, "more jobs reported uncertain than intents were left")
    }

    /// Waits for every job's final result, stops the workers, and checks what arrived: no message twice, none missing
    /// but those whose result says `effect_uncertain`, every job succeeded. Returns the messages and the uncertain jobs.
    static func finishAndCheckOnce(_ fleet: EmailFleet, jobs: [JSONObject]) async throws -> (arrived: [EmailFleet.Arrived], uncertain: Set<String>) {
        let ids = Set(jobs.map { $0["id"]!.stringValue! })
        #expect(await fleet.waitForFinals(ids))
        await fleet.stopWorkers()
        let arrived = try fleet.arrived()
        var perJob: [String: Int] = [:]
        for m in arrived { perJob[m.jobID, default: 0] += 1 }
        let uncertain = Set(fleet.finals.values.filter { $0.output["effect_uncertain"] != nil }.map(\.jobID))
        let duplicated = perJob.filter { $0.value > 1 }
        #expect(duplicated.isEmpty, "duplicated: \(duplicated.keys.sorted())")
        let missing = ids.subtracting(perJob.keys)
        #expect(missing.isSubset(of: uncertain), "missing and not reported uncertain: \(missing.subtracting(uncertain).sorted().prefix(5))")
        #expect(fleet.finals.values.allSatisfy { $0.status == .succeeded })
        return (arrived, uncertain)
    }

    @Test("two workers as two hosts on one PostgreSQL store and ledger, one SIGKILLed twice mid-campaign: no message twice; none missing but those reported effect_uncertain")
    func twoHostsOnPostgres() async throws {
        try await PostgresDatabase.withFresh { url in
            let fleet = try await EmailFleet("pg-kill", environment: ["FLEET_STORE": PostgresDatabase.string(url)])
            defer { Task { await fleet.tearDown() } }
            try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello {{ profile.first_name }}", html: Self.html)
            let count = ProcessInfo.processInfo.environment["FLEET_TEST_SIGKILL_MAILS"].flatMap { Int($0) }.map { max($0, 60) } ?? 2000
            let people = Self.profiles(count, prefix: "h")
            try await PostgresDatabase.withClient(url) { client in
                try await EmailFleet.importProfiles(people, into: PostgresProfileStore(client: client))
            }
            let jobs = Self.jobs(people.map { $0["id"]!.stringValue! }, template: "t-news", prefix: "h")
            try await fleet.publish(jobs)
            // Host B runs throughout; host A is killed twice and started again.
            try fleet.startWorker()
            var atKills: [Int] = []
            for round in 1...2 {
                let hostA = try fleet.startWorker()
                let started = await TestEnvironment.eventually(timeout: .seconds(120), every: .milliseconds(5)) { fleet.messageCount() >= count / 6 * round }
                #expect(started)
                kill(hostA.processIdentifier, SIGKILL)
                hostA.waitUntilExit()
                atKills.append(fleet.messageCount())
            }
            try fleet.startWorker()
            let (arrived, uncertain) = try await Self.finishAndCheckOnce(fleet, jobs: jobs)
            let workers = Set(fleet.finals.values.map(\.worker))
            print("two hosts on PostgreSQL: \(atKills) messages at the kills, \(uncertain.count) jobs uncertain, \(arrived.count) messages in all, results from \(workers.count) worker processes")
            #expect(atKills.last! < count, "the kills came after the campaign")
            #expect(workers.count >= 2, "one host did all the work")
            // Personalized from the PostgreSQL store.
            if let m = arrived.first, let i = Int(m.to.prefix { $0 != "@" }.dropFirst()) {
                #expect(m.subject == "Hello \(people[i]["first_name"]!.stringValue!)")
            }
        }
    }

    @Test("a template error fails only the jobs of that template, with the error's location in the result")
    func templateErrorFailsOnlyItsJobs() async throws {
        let fleet = try await EmailFleet("broken")
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-good", meta: Self.meta, subject: "Hello", html: Self.html)
        try fleet.addTemplate("t-broken", meta: Self.meta, subject: "Hello", html: "<p>fine</p>\n<p>{% if profile.first_name %}never closed</p>\n")
        let people = Self.profiles(20, prefix: "b")
        try await fleet.importProfiles(people)
        let ids = people.map { $0["id"]!.stringValue! }
        let jobs = Self.jobs(Array(ids[0..<10]), template: "t-good", prefix: "good") + Self.jobs(Array(ids[10...]), template: "t-broken", prefix: "bad")
        try fleet.startWorker()
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map { $0["id"]!.stringValue! })))
        for (id, r) in fleet.finals {
            if id.hasPrefix("good-") {
                #expect(r.status == .succeeded)
            } else {
                #expect(r.status == .dead)
                #expect(r.error?.code == "template_error")
                #expect(r.error?.message.contains("email/t-broken/html.liquid") == true, "\(r.error?.message ?? "")")
                #expect(r.error?.message.contains("line") == true)
            }
        }
        await fleet.stopWorkers()
        #expect(try fleet.arrived().count == 10)
    }

    @Test("a relay answering 421 or 451 is retried; a 550 fails the job and suppresses the address (relay with and without PIPELINING and CHUNKING)",
          arguments: ["PIPELINING,CHUNKING", "none"])
    func relayReplies(extensions: String) async throws {
        let fleet = try await EmailFleet("relay", sink: ["FLEET_SMTP_SINK_EXTENSIONS": extensions])
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello", html: Self.html)
        try fleet.setSinkRules("""
            {"r0@example.com": {"reply": "451 4.3.0 try again later", "times": 2},
             "r1@example.com": {"reply": "421 4.7.0 closing", "times": 1},
             "r2@example.com": "550 5.1.1 mailbox unavailable"}
            """)
        let people = Self.profiles(3, prefix: "r")
        try await fleet.importProfiles(people)
        try fleet.startWorker()
        let jobs = Self.jobs(["r0", "r1", "r2"], template: "t-news", prefix: "a")
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map { $0["id"]!.stringValue! }), timeout: .seconds(120)))
        let finals = fleet.finals
        #expect(finals["a-r0"]?.status == .succeeded)
        #expect((finals["a-r0"]?.attempt ?? 0) >= 3)
        #expect(finals["a-r1"]?.status == .succeeded)
        #expect((finals["a-r1"]?.attempt ?? 0) >= 2)
        #expect(finals["a-r2"]?.status == .dead)
        #expect(finals["a-r2"]?.error?.code == "smtp_rejected")
        #expect(fleet.all.contains { $0.jobID == "a-r0" && $0.status == .failed && $0.error?.code == "smtp_temporary" })
        // The bounced address is now suppressed: a later campaign does not try it.
        let again = Self.jobs(["r2"], template: "t-news", prefix: "again")
        try await fleet.publish(again)
        #expect(await fleet.waitForFinals(["again-r2"]))
        #expect(fleet.finals["again-r2"]?.status == .suppressed)
        #expect(fleet.finals["again-r2"]?.output["reason"]?.stringValue == "suppressed_address")
        await fleet.stopWorkers()
        #expect(Set(try fleet.arrived().map(\.to)) == ["r0@example.com", "r1@example.com"])
        #expect(try fleet.arrived().count == 2)
        let via = extensions == "none" ? "message via DATA pipelined=no" : "message via BDAT pipelined=yes"
        #expect(fleet.sinkLog.components(separatedBy: via).count - 1 == 2, "\(fleet.sinkLog)")
    }

    @Test("FLEET_EMAIL_SMTP_RATE: jobs over the rate are deferred (smtp_rate) to their slots, not failed; all are sent once, no faster than the rate")
    func relayRate() async throws {
        let fleet = try await EmailFleet("rate")
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello", html: Self.html)
        let people = Self.profiles(100, prefix: "q")
        try await fleet.importProfiles(people)
        // Two retries at most: a deferral that counted as one would dead-letter jobs.
        try fleet.startWorker(arguments: ["--max-attempts", "2"], environment: ["FLEET_EMAIL_SMTP_RATE": "25/s"])
        let jobs = Self.jobs(people.map { $0["id"]!.stringValue! }, template: "t-news", prefix: "rt")
        let started = Date()
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map { $0["id"]!.stringValue! })))
        let elapsed = Date().timeIntervalSince(started)
        #expect(fleet.finals.values.allSatisfy { $0.status == .succeeded })
        let deferred = fleet.all.filter { $0.status == .deferred }
        #expect(deferred.count >= 50, "\(deferred.count) deferred")
        #expect(deferred.allSatisfy { $0.output["reason"]?.stringValue == "smtp_rate" })
        // A deferred result of the rate, as published, is valid against the contract's schemas.
        let rated = fleet.resultBodies.filter { (try? ResultEnvelope.decode($0).status) == .deferred }.prefix(1)
        let check = try await ContractCheck.validate(Array(rated), requireKinds: ["email"])
        #expect(check.status == 0, "\(check.output)")
        await fleet.stopWorkers()
        #expect(try fleet.arrived().count == 100)
        // 25 at once, then 25 a second: the last of 100 cannot leave before 3 s.
        #expect(elapsed >= 3, "100 mails at 25/s in \(elapsed) s")
    }

    @Test("every status of the email kind, as really published, is valid against result.schema.json and email-result.schema.json")
    func realResultsMatchTheContract() async throws {
        let fleet = try await EmailFleet("contract")
        defer { Task { await fleet.tearDown() } }
        try fleet.addTemplate("t-news", meta: Self.meta, subject: "Hello {{ profile.first_name }}", html: Self.html)
        try fleet.addTemplate("t-abort", meta: Self.meta, subject: "x", html: "{% abort_message 'nothing to say' %}")
        try fleet.addTemplate("t-broken", meta: Self.meta, subject: "x", html: "{% if %}")
        try fleet.setSinkRules(#"{"k1@example.com": {"reply": "451 4.3.0 try again later", "times": 1}, "k2@example.com": "550 5.1.1 no such user"}"#)
        let people = Self.profiles(12, prefix: "k")
        try await fleet.importProfiles(people, optedOut: ["k3": "newsletter"])
        try fleet.startWorker()
        let capped = JSONObject(["id": "c-cap", "frequency_cap": 1, "cap_action": "defer"])
        let split = JSONObject(["id": "c-split", "holdout": 0.5, "variants": [["name": "a", "weight": 1], ["name": "b", "weight": 1]]])
        var jobs: [JSONObject] = [
            ["id": "ok", "profile_id": "k0", "template": "t-news", "campaign": "c-1"],
            ["id": "retried", "profile_id": "k1", "template": "t-news", "campaign": "c-1"],
            ["id": "bounced", "profile_id": "k2", "template": "t-news", "campaign": "c-1"],
            ["id": "opted-out", "profile_id": "k3", "template": "t-news", "campaign": "c-1"],
            ["id": "aborted", "profile_id": "k4", "template": "t-abort", "campaign": "c-1"],
            ["id": "broken", "profile_id": "k5", "template": "t-broken", "campaign": "c-1"],
            ["id": "cap-1", "profile_id": "k6", "template": "t-news", "campaign": .object(capped)],
            ["id": "no-profile", "profile_id": "nobody", "template": "t-news"],
        ]
        for i in 7..<12 { jobs.append(["id": .string("split-\(i)"), "profile_id": .string("k\(i)"), "template": "t-news", "campaign": .object(split)]) }
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map { $0["id"]!.stringValue! })))
        // The cap of one mail a day is used: a second capped job is deferred to the next local day.
        try await fleet.publish([["id": "cap-2", "profile_id": "k6", "template": "t-news", "campaign": .object(capped)]])
        #expect(await TestEnvironment.eventually(timeout: .seconds(60)) { fleet.all.contains { $0.jobID == "cap-2" && $0.status == .deferred } })
        #expect(await TestEnvironment.eventually(timeout: .seconds(60)) { fleet.all.contains { $0.jobID == "retried" && $0.status == .failed } })
        let finals = fleet.finals
        #expect(finals["ok"]?.output["subject"]?.stringValue == "Hello " + (people[0]["first_name"]?.stringValue ?? ""))
        #expect(finals["aborted"]?.output["reason"] == "abort_message")
        #expect(finals.values.contains { $0.output["reason"] == "holdout" }, "with a 50% holdout, one of five is expected in it")

        let bodies = ContractCheck.onePerKindAndStatus(fleet.resultBodies)
        let statuses = Set(bodies.compactMap { try? ResultEnvelope.decode($0).status })
        #expect(statuses == [.succeeded, .suppressed, .deferred, .failed, .dead], "\(statuses)")
        let check = try await ContractCheck.validate(bodies, requireKinds: ["email"])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.components(separatedBy: "(real email/").count - 1 == bodies.count, "\(check.output)")
    }
}
