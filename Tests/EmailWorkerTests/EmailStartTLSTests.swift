import EmailWorker
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// STARTTLS end to end: the worker against the real SMTP sink (aiosmtpd) offering STARTTLS with a throwaway CA
/// made by openssl for each test, a real broker and a real store. What arrived is parsed by Python's `email`;
/// the sink's `Received:` header says whether it came in under TLS (`ESMTPS`) and authenticated (`...A`).
@Suite("Email worker STARTTLS (broker, SMTP sink with TLS)", .serialized)
final class EmailStartTLSTests: Sendable {
    /// This test's throwaway CA and server certificate, in a directory deleted with the test.
    let certificates: TestCertificates
    private let directory: URL

    init() throws {
        directory = try TestEnvironment.temporaryDirectory()
        certificates = try TestCertificates.make(in: directory)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// One job a worker with `environment` runs to its end; returns every result of it, the final last.
    static func run(_ fleet: EmailFleet, job: String, profile: String, environment: [String: String],
                    arguments: [String] = []) async throws -> [ResultEnvelope] {
        try fleet.startWorker(arguments: arguments, environment: environment)
        let jobs = EmailWorkerIntegrationTests.jobs([profile], template: "t-news", prefix: job)
        try await fleet.publish(jobs)
        let id = "\(job)-\(profile)"
        let done = await fleet.waitForFinals([id], timeout: .seconds(90))
        await fleet.stopWorkers()
        #expect(done, "no final result for \(id)")
        return fleet.all.filter { $0.jobID == id }
    }

    /// A relay that requires STARTTLS and AUTH as fleet/s3cret, with a certificate (in `subdirectory`) for the
    /// name `localhost` only, without the IP address: the worker's settings that match it name `localhost` as the
    /// TLS name. Returns the sink's options and the worker's environment.
    func authRelay(_ subdirectory: String) throws -> (sink: [String: String], worker: [String: String]) {
        let named = try TestCertificates.make(in: directory.appendingPathComponent(subdirectory), altNames: "DNS:localhost")
        var sink = named.sinkOptions(requireStartTLS: true)
        sink["FLEET_SMTP_SINK_AUTH"] = "fleet:s3cret"
        let worker = ["FLEET_EMAIL_SMTP_STARTTLS": "require", "FLEET_EMAIL_SMTP_CA": named.ca, "FLEET_EMAIL_SMTP_TLS_NAME": "localhost",
                      "FLEET_EMAIL_SMTP_USER": "fleet", "FLEET_EMAIL_SMTP_PASSWORD": "s3cret"]
        return (sink, worker)
    }

    static func fleet(_ name: String, sink: [String: String], profiles: Int) async throws -> EmailFleet {
        let fleet = try await EmailFleet(name, sink: sink)
        try fleet.addTemplate("t-news", meta: EmailWorkerIntegrationTests.meta, subject: "Hello {{ profile.first_name }}",
                              html: EmailWorkerIntegrationTests.html)
        try await fleet.importProfiles(EmailWorkerIntegrationTests.profiles(profiles, prefix: "s"))
        return fleet
    }

    @Test("STARTTLS require with the CA trusted: every message goes under TLS, arrives, parses and is personalized")
    func requireDelivers() async throws {
        let fleet = try await Self.fleet("tls-ok", sink: certificates.sinkOptions(requireStartTLS: true), profiles: 5)
        defer { Task { await fleet.tearDown() } }
        try fleet.startWorker(environment: ["FLEET_EMAIL_SMTP_STARTTLS": "require", "FLEET_EMAIL_SMTP_CA": certificates.ca])
        let jobs = EmailWorkerIntegrationTests.jobs((0..<5).map { "s\($0)" }, template: "t-news", prefix: "tls")
        try await fleet.publish(jobs)
        #expect(await fleet.waitForFinals(Set(jobs.map { $0["id"]!.stringValue! }), timeout: .seconds(90)))
        await fleet.stopWorkers()
        for (id, r) in fleet.finals {
            #expect(r.status == .succeeded, "\(id): \(r.error?.description ?? "")")
            #expect(r.output["smtp_tls"]?.boolValue == true)
        }
        let arrived = try fleet.arrived()
        #expect(Set(arrived.map(\.to)) == Set((0..<5).map { "s\($0)@example.com" }))
        for m in arrived {
            #expect(m.ok, "\(m.jobID): \(m.problems)")
            #expect(m.received.contains("with ESMTPS (using TLSv1."), "\(m.received)")
            let id = String(m.to.prefix { $0 != "@" })
            #expect(m.html.contains("(\(id))"))
        }
        #expect(fleet.sinkLog.contains("starttls ok TLSv1."))
    }

    @Test("STARTTLS require against a relay without STARTTLS fails the job (smtp_tls_unavailable, retried), sends no AUTH and no mail; opportunistic then delivers in clear")
    func requireWithoutStartTLS() async throws {
        // The sink offers AUTH in clear, and no STARTTLS.
        let fleet = try await Self.fleet("tls-none", sink: ["FLEET_SMTP_SINK_AUTH": "fleet:s3cret"], profiles: 2)
        defer { Task { await fleet.tearDown() } }
        let credentials = ["FLEET_EMAIL_SMTP_USER": "fleet", "FLEET_EMAIL_SMTP_PASSWORD": "s3cret"]
        let results = try await Self.run(
            fleet, job: "req", profile: "s0",
            environment: credentials.merging(["FLEET_EMAIL_SMTP_STARTTLS": "require", "FLEET_EMAIL_SMTP_CA": certificates.ca]) { $1 },
            arguments: ["--max-attempts", "2"])
        let failed = results.first { $0.status == .failed }
        #expect(failed?.error?.code == "smtp_tls_unavailable")
        #expect(failed?.error?.retryable == true)
        #expect(failed?.error?.message.contains("does not offer STARTTLS and TLS is required") == true, "\(failed?.error?.message ?? "")")
        let final = results.last
        #expect(final?.status == .dead)
        #expect(final?.error?.message.contains("smtp_tls_unavailable") == true, "\(final?.error?.message ?? "")")
        #expect(try fleet.arrived().isEmpty)
        #expect(!fleet.sinkLog.contains("auth "), "credentials were sent: \(fleet.sinkLog)")
        // The address is not suppressed by a TLS failure: opportunistic (the default) sends in clear.
        let clear = try await Self.run(fleet, job: "opp", profile: "s0", environment: credentials)
        #expect(clear.last?.status == .succeeded, "\(clear.last?.error?.description ?? "")")
        #expect(clear.last?.output["smtp_tls"]?.boolValue == false)
        let arrived = try fleet.arrived()
        #expect(arrived.count == 1)
        #expect(arrived.first?.received.contains("with ESMTPA;") == true, "\(arrived.first?.received ?? "")")
        #expect(fleet.sinkLog.contains("auth PLAIN ok tls=no"))
        let logs = fleet.workerLogs
        #expect(logs.contains("the relay did not take STARTTLS (not offered or declined): sessions go on in clear"), "\(logs)")
        #expect(!logs.contains("s3cret") && !logs.contains("@example.com"))
    }

    @Test("an untrusted certificate fails with a clear TLS error (system store; also under opportunistic: no fallback to clear); verify none delivers")
    func verification() async throws {
        let fleet = try await Self.fleet("tls-verify", sink: certificates.sinkOptions(), profiles: 3)
        defer { Task { await fleet.tearDown() } }
        let cases: [(job: String, profile: String, env: [String: String], expected: String)] = [
            ("store", "s0", ["FLEET_EMAIL_SMTP_STARTTLS": "require"],
             "the relay's certificate did not verify against the system trust store"),
            ("opp", "s1", [:], "the relay's certificate did not verify against the system trust store"),
        ]
        for c in cases {
            let results = try await Self.run(fleet, job: c.job, profile: c.profile, environment: c.env, arguments: ["--max-attempts", "2"])
            let failed = results.first { $0.status == .failed }
            #expect(failed?.error?.code == "smtp_tls_failed", "\(c.job): \(failed?.error?.description ?? "no failed result")")
            #expect(failed?.error?.message.contains(c.expected) == true, "\(c.job): \(failed?.error?.message ?? "")")
            #expect(results.last?.status == .dead)
        }
        #expect(try fleet.arrived().isEmpty, "a message went out despite the TLS failure")
        let none = try await Self.run(fleet, job: "none", profile: "s2", environment: ["FLEET_EMAIL_SMTP_STARTTLS": "require",
                                                                                       "FLEET_EMAIL_SMTP_VERIFY": "none"])
        #expect(none.last?.status == .succeeded, "\(none.last?.error?.description ?? "")")
        #expect(none.last?.output["smtp_tls"]?.boolValue == true)
        let arrived = try fleet.arrived()
        #expect(arrived.map(\.to) == ["s2@example.com"])
        #expect(arrived.first?.ok == true)
        #expect(arrived.first?.received.contains("with ESMTPS") == true)
    }

    @Test("the certificate must name the relay: a wrong TLS name, or an IP address host the certificate does not carry, fails the delivery")
    func certificateName() async throws {
        let named = try TestCertificates.make(in: directory.appendingPathComponent("dns"), altNames: "DNS:localhost")
        let fleet = try await Self.fleet("tls-name", sink: named.sinkOptions(), profiles: 2)
        defer { Task { await fleet.tearDown() } }
        let cases: [(job: String, profile: String, name: String?, expected: String)] = [
            ("wrong", "s0", "relay.example.com", "the relay's certificate does not name 'relay.example.com'"),
            ("ip", "s1", nil, "the relay's certificate does not name the address 127.0.0.1"),
        ]
        for c in cases {
            var env = ["FLEET_EMAIL_SMTP_STARTTLS": "require", "FLEET_EMAIL_SMTP_CA": named.ca]
            env["FLEET_EMAIL_SMTP_TLS_NAME"] = c.name
            let results = try await Self.run(fleet, job: c.job, profile: c.profile, environment: env, arguments: ["--max-attempts", "2"])
            let failed = results.first { $0.status == .failed }
            #expect(failed?.error?.code == "smtp_tls_failed", "\(c.job): \(failed?.error?.description ?? "no failed result")")
            #expect(failed?.error?.message.contains(c.expected) == true, "\(c.job): \(failed?.error?.message ?? "")")
            #expect(results.last?.status == .dead)
        }
        #expect(try fleet.arrived().isEmpty)
    }

    @Test("AUTH PLAIN and LOGIN run under TLS (the relay requires both), the certificate matched by DNS name; a wrong password is rejected under TLS")
    func authOverTLS() async throws {
        let (sink, tls) = try authRelay("dns")
        let fleet = try await Self.fleet("tls-auth", sink: sink, profiles: 3)
        defer { Task { await fleet.tearDown() } }
        let plain = try await Self.run(fleet, job: "plain", profile: "s0", environment: tls)
        #expect(plain.last?.status == .succeeded, "\(plain.last?.error?.description ?? "")")
        let login = try await Self.run(fleet, job: "login", profile: "s1", environment: tls.merging(["FLEET_EMAIL_SMTP_AUTH": "LOGIN"]) { $1 })
        #expect(login.last?.status == .succeeded, "\(login.last?.error?.description ?? "")")
        let wrong = try await Self.run(fleet, job: "wrong", profile: "s2", environment: tls.merging(["FLEET_EMAIL_SMTP_PASSWORD": "nope"]) { $1 })
        #expect(wrong.last?.status == .dead)
        #expect(wrong.last?.error?.code == "smtp_rejected")
        #expect(wrong.last?.error?.message.contains("to auth") == true, "\(wrong.last?.error?.message ?? "")")
        let arrived = try fleet.arrived()
        #expect(Set(arrived.map(\.to)) == ["s0@example.com", "s1@example.com"])
        for m in arrived {
            #expect(m.ok)
            #expect(m.received.contains("with ESMTPSA (using TLSv1."), "\(m.received)")
        }
        let log = fleet.sinkLog
        #expect(log.contains("auth PLAIN ok tls=yes"))
        #expect(log.contains("auth LOGIN ok tls=yes"))
        #expect(log.contains("auth PLAIN failed tls=yes"))
        #expect(!log.contains("tls=no"))
        #expect(!log.contains("s3cret"))
    }

    @Test("without FLEET_EMAIL_SMTP_AUTH the worker uses the mechanism the relay lists after STARTTLS: LOGIN when it lists only LOGIN")
    func authMechanismFromEHLO() async throws {
        var (sink, env) = try authRelay("mech")
        sink["FLEET_SMTP_SINK_AUTH_MECHANISMS"] = "LOGIN"
        let fleet = try await Self.fleet("tls-mech", sink: sink, profiles: 1)
        defer { Task { await fleet.tearDown() } }
        let results = try await Self.run(fleet, job: "mech", profile: "s0", environment: env)
        #expect(results.last?.status == .succeeded, "\(results.last?.error?.description ?? "")")
        #expect(try fleet.arrived().map(\.to) == ["s0@example.com"])
        #expect(fleet.sinkLog.contains("auth LOGIN ok tls=yes"), "\(fleet.sinkLog)")
        #expect(!fleet.sinkLog.contains("auth PLAIN"))
    }

    @Test("a relay that sends a reply in clear right after its 220 to STARTTLS is refused (no MAIL, no AUTH is sent), even under opportunistic")
    func injectedReplyAfterSTARTTLS() async throws {
        let fleet = try await Self.fleet("tls-inject", sink: [:], profiles: 1)
        defer { Task { await fleet.tearDown() } }
        let portFile = directory.appendingPathComponent("injector.port").path
        let script = TestEnvironment.repo.appendingPathComponent("Tests/EmailWorkerTests/starttls_injector.py").path
        let (status, out) = try await TestEnvironment.runLeavingDaemons(["/usr/bin/python3", script, portFile])
        #expect(status == 0, "\(out)")
        let listening = await TestEnvironment.eventually(timeout: .seconds(10)) { FileManager.default.fileExists(atPath: portFile) }
        #expect(listening)
        defer {
            if let text = try? String(contentsOfFile: portFile + ".pid", encoding: .utf8), let pid = pid_t(text), pid > 1 { kill(pid, SIGTERM) }
        }
        let port = try String(contentsOfFile: portFile, encoding: .utf8)
        let env = ["FLEET_EMAIL_SMTP_PORT": port, "FLEET_EMAIL_SMTP_USER": "fleet", "FLEET_EMAIL_SMTP_PASSWORD": "s3cret"]
        let results = try await Self.run(fleet, job: "inject", profile: "s0", environment: env, arguments: ["--max-attempts", "1"])
        #expect(results.last?.status == .dead)
        let message = results.last?.error?.message ?? ""
        #expect(message.contains("smtp_protocol") && message.contains("after agreeing to STARTTLS"), "\(message)")
        let commands = (try? String(contentsOfFile: portFile + ".log", encoding: .utf8)) ?? ""
        #expect(commands.contains("STARTTLS"), "\(commands)")
        #expect(!commands.contains("MAIL") && !commands.contains("AUTH") && !commands.contains("RCPT"), "\(commands)")
    }
}
