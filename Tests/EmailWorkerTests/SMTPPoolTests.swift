@testable import EmailWorker
import FleetTestSupport
import Foundation
import Synchronization
import Testing

/// The SMTP pool in process against the real test sink (aiosmtpd, Ops/scripts/smtp_sink.py), whose EHLO offers
/// PIPELINING and CHUNKING as each test asks: the transaction with and without them, the intent's place, the
/// pool following the work (idle sessions closed, the per-session cap, back-off after a 421 or a refused
/// connection). No broker: these are the SMTP client's own behaviours.
@Suite("SMTP pool: pipelining, chunking, pool sizing (SMTP sink)", .serialized)
struct SMTPPoolTests {
    /// A running sink in a temporary directory.
    final class Sink: Sendable {
        let directory: URL
        let port: Int
        var maildir: URL { directory.appendingPathComponent("maildir/new") }
        var log: String { (try? String(contentsOf: directory.appendingPathComponent("sink.log"), encoding: .utf8)) ?? "" }

        init(extensions: String, rules: String = "{}") async throws {
            directory = try TestEnvironment.temporaryDirectory().appendingPathComponent("smtp")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try rules.write(to: directory.appendingPathComponent("rules.json"), atomically: true, encoding: .utf8)
            let (status, out) = try await TestEnvironment.runLeavingDaemons(
                ["bash", TestEnvironment.repo.appendingPathComponent("Ops/scripts/smtp-sink.sh").path, "start"],
                environment: ["FLEET_SMTP_SINK_DIR": directory.path, "FLEET_SMTP_SINK_EXTENSIONS": extensions,
                              "FLEET_SMTP_SINK_WATCH_PID": String(getpid())])
            guard status == 0, let port = Int(out.split(separator: "\n").last ?? "") else {
                throw TestEnvironment.SetupError(description: "the SMTP sink did not start: \(out)")
            }
            self.port = port
        }

        func stop() {
            _ = try? TestEnvironment.run(
                ["bash", TestEnvironment.repo.appendingPathComponent("Ops/scripts/smtp-sink.sh").path, "stop"],
                environment: ["FLEET_SMTP_SINK_DIR": directory.path])
        }

        /// The messages that arrived, without the sink's `Received:` header (its first three lines).
        func messages() throws -> [[UInt8]] {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: maildir.path)) ?? []
            return try files.sorted().map { name in
                let bytes = [UInt8](try Data(contentsOf: maildir.appendingPathComponent(name)))
                var lines = 0, i = 0
                while lines < 3 && i < bytes.count { if bytes[i] == 0x0A { lines += 1 }; i += 1 }
                return Array(bytes[i...])
            }
        }

        var count: Int { ((try? FileManager.default.contentsOfDirectory(atPath: maildir.path)) ?? []).count }

        /// Lines of the log that say how a message came (`message via BDAT pipelined=yes`).
        func vias() -> [String] { log.split(separator: "\n").filter { $0.hasPrefix("message via") }.map(String.init) }
    }

    /// A clock the test moves.
    final class TestClock: Sendable {
        let start = ContinuousClock.now
        let offset = Mutex<Duration>(.zero)
        var now: @Sendable () -> ContinuousClock.Instant { { [self] in start + offset.withLock { $0 } } }
        func advance(by d: Duration) { offset.withLock { $0 += d } }
    }

    static func message(_ n: Int, body: String = "Hello.\r\n") -> [UInt8] {
        Array("From: a@shop.example\r\nTo: b@example.com\r\nSubject: m\(n)\r\n\r\n\(body)".utf8)
    }

    /// Sends one message; nil on success, else the SMTP error.
    static func send(_ pool: SMTPPool, _ n: Int, to: String = "ok@example.com", body: String = "Hello.\r\n",
                     beforeCommit: @escaping @Sendable () async throws -> Void = {}) async -> SMTPError? {
        do {
            _ = try await pool.send(from: "news@shop.example", to: to, message: message(n, body: body), beforeCommit: beforeCommit)
            return nil
        } catch let error as SMTPError {
            return error
        } catch {
            return SMTPError(code: "other", message: "\(error)")
        }
    }

    static func settings(_ port: Int, pipelining: Bool = true, chunking: Bool = true) -> SMTPSettings {
        SMTPSettings(host: "127.0.0.1", port: port, poolSize: 8, startTLS: .off, pipelining: pipelining, chunking: chunking)
    }

    @Test("every extension set: exact bytes arrive, RCPT refusals fail their message and keep the session, the intent comes before the relay can take the message",
          arguments: ["PIPELINING,CHUNKING", "PIPELINING", "CHUNKING", "none"])
    func transactions(extensions: String) async throws {
        let sink = try await Sink(extensions: extensions, rules: """
            {"bounce@example.com": "550 5.1.1 no such user", "later@example.com": {"reply": "451 4.3.0 later", "times": 1}}
            """)
        let pool = SMTPPool(settings: Self.settings(sink.port))
        // Lines starting with a dot (stuffed under DATA, sent as they are under BDAT) and a body without a final CRLF.
        let bodies = ["Hello.\r\n", ".leading dot\r\n..two\r\n.\r\nend\r\n", "no final line end", "\r\n"]
        var sent: [[UInt8]] = []
        for (n, body) in bodies.enumerated() {
            let before = sink.count
            let seenAtIntent = Mutex<Int>(-1)
            let error = await Self.send(pool, n, body: body) { seenAtIntent.withLock { $0 = sink.count } }
            #expect(error == nil, "\(String(describing: error))")
            #expect(seenAtIntent.withLock { $0 } == before, "the message arrived before the intent was recorded")
            #expect(sink.count == before + 1)
            var expected = Self.message(n, body: body)
            if expected.suffix(2) != [0x0D, 0x0A] { expected += [0x0D, 0x0A] }
            sent.append(expected)
        }
        let bounce = await Self.send(pool, 10, to: "bounce@example.com")
        #expect(bounce?.code == "smtp_rejected" && bounce?.stage == "rcpt" && bounce?.replyCode == 550)
        let later = await Self.send(pool, 11, to: "later@example.com")
        #expect(later?.code == "smtp_temporary" && later?.stage == "rcpt" && later?.replyCode == 451)
        #expect(await Self.send(pool, 12, body: "after the refusals\r\n") == nil)
        sent.append(Self.message(12, body: "after the refusals\r\n"))
        #expect(try sink.messages().sorted { $0.lexicographicallyPrecedes($1) } == sent.sorted { $0.lexicographicallyPrecedes($1) })
        // One session carried everything: a refusal leaves it usable (RSET).
        #expect(pool.statistics.opened == 1)
        let via = extensions.contains("CHUNKING") ? "BDAT" : "DATA"
        let pipelined = extensions.contains("PIPELINING") ? "yes" : "no"
        #expect(sink.vias() == Array(repeating: "message via \(via) pipelined=\(pipelined)", count: 5), "\(sink.log)")
        pool.close()
        sink.stop()
    }

    @Test("FLEET_EMAIL_SMTP_PIPELINING=off and CHUNKING=off: plain DATA, one command at a time, though the relay offers both")
    func extensionsOff() async throws {
        let sink = try await Sink(extensions: "PIPELINING,CHUNKING")
        let pool = SMTPPool(settings: Self.settings(sink.port, pipelining: false, chunking: false))
        for n in 0..<3 { #expect(await Self.send(pool, n) == nil) }
        #expect(sink.vias() == Array(repeating: "message via DATA pipelined=no", count: 3))
        let chunkOnly = SMTPPool(settings: Self.settings(sink.port, pipelining: false, chunking: true))
        #expect(await Self.send(chunkOnly, 3) == nil)
        #expect(sink.vias().last == "message via BDAT pipelined=no")
        pool.close()
        chunkOnly.close()
        sink.stop()
    }

    @Test("400 messages at once through 8 pipelined sessions: each arrives once, no more than 8 sessions open")
    func concurrent() async throws {
        let sink = try await Sink(extensions: "PIPELINING,CHUNKING")
        let pool = SMTPPool(settings: Self.settings(sink.port))
        let failures = await withTaskGroup(of: SMTPError?.self) { group in
            for n in 0..<400 { group.addTask { await Self.send(pool, n) } }
            return await group.reduce(into: 0) { $0 += $1 == nil ? 0 : 1 }
        }
        #expect(failures == 0)
        let subjects = try sink.messages().map { String(decoding: $0, as: UTF8.self).split(separator: "\r\n")[2] }
        #expect(subjects.count == 400)
        #expect(Set(subjects).count == 400)
        let stats = pool.statistics
        #expect(stats.peakOpen <= 8)
        // 100 messages a session by default: at least four sessions were opened.
        #expect(stats.opened >= 4)
        pool.close()
        sink.stop()
    }

    @Test("the pool follows the work: sessions open as messages wait, close when idle past the timeout, and at the per-session cap")
    func followsTheWork() async throws {
        let sink = try await Sink(extensions: "PIPELINING,CHUNKING")
        let clock = TestClock()
        var settings = Self.settings(sink.port)
        settings.maxMessagesPerSession = 5
        let pool = SMTPPool(settings: settings, now: clock.now)
        // Six messages held at their intent together need six sessions.
        let barrier = Barrier(6)
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<6 { group.addTask { #expect(await Self.send(pool, n) { await barrier.arrive() } == nil) } }
        }
        #expect(pool.statistics.opened == 6)
        #expect(pool.openSessions == 6)
        // Idle past the timeout: the next message closes all six and opens a fresh session.
        clock.advance(by: .seconds(31))
        #expect(await Self.send(pool, 6) == nil)
        #expect(pool.statistics.closedIdle == 6)
        #expect(pool.openSessions == 1)
        // The cap: that session carried 1; four more reach 5 and close it; the next opens another.
        for n in 7..<11 { #expect(await Self.send(pool, n) == nil) }
        #expect(pool.statistics.closedAtCap == 1)
        #expect(pool.openSessions == 0)
        #expect(await Self.send(pool, 11) == nil)
        #expect(pool.statistics.opened == 8)
        #expect(sink.count == 12)
        pool.close()
        sink.stop()
    }

    @Test("a 421 halves the most sessions for the back-off period, without new connections; then the pool grows back by one a second")
    func backOffAfter421() async throws {
        let sink = try await Sink(extensions: "PIPELINING,CHUNKING",
                                  rules: #"{"busy@example.com": {"reply": "421 4.7.0 too busy", "times": 1}}"#)
        let clock = TestClock()
        let pool = SMTPPool(settings: Self.settings(sink.port), now: clock.now)
        let barrier = Barrier(8)
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<8 { group.addTask { #expect(await Self.send(pool, n) { await barrier.arrive() } == nil) } }
        }
        #expect(pool.openSessions == 8)
        let busy = await Self.send(pool, 8, to: "busy@example.com")
        #expect(busy?.replyCode == 421)
        #expect(pool.statistics.backoffs == 1)
        #expect(pool.limit == 4)
        // The sessions past the limit close as they come back; no new one is opened.
        await withTaskGroup(of: Void.self) { group in
            for n in 9..<29 { group.addTask { #expect(await Self.send(pool, n) == nil) } }
        }
        #expect(pool.openSessions <= 4)
        #expect(pool.statistics.opened == 8)
        clock.advance(by: .seconds(29))
        #expect(pool.limit == 4)
        clock.advance(by: .seconds(3))
        #expect(pool.limit == 6)
        clock.advance(by: .seconds(10))
        #expect(pool.limit == 8)
        #expect(sink.count == 28)
        pool.close()
        sink.stop()
    }

    @Test("a refused connection fails the message (smtp_unavailable, stage connect) and leaves one session to try")
    func backOffAfterRefusal() async throws {
        // A port nothing listens on: bound and closed again.
        let sink = try await Sink(extensions: "none")
        sink.stop()
        let pool = SMTPPool(settings: Self.settings(sink.port))
        let error = await Self.send(pool, 0)
        #expect(error?.code == "smtp_unavailable" && error?.stage == "connect")
        #expect(pool.statistics.backoffs == 1)
        #expect(pool.limit == 1)
        pool.close()
    }
}

extension SMTPPoolTests {
    @Test("a relay that never replies fails the message after the reply timeout (smtp_unavailable) instead of hanging")
    func silentRelay() async throws {
        // A listening socket nobody accepts on: the kernel completes the connection, no greeting ever comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        #expect(bound && listen(fd, 8) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
        var settings = Self.settings(port)
        settings.replyTimeoutSeconds = 2
        let pool = SMTPPool(settings: settings)
        let error = try #require(await Self.send(pool, 0))
        #expect(error.code == "smtp_unavailable")
        #expect(error.message.contains("no reply from the relay within 2 s"), "\(error.message)")
        pool.close()
    }

}

/// Lets `count` tasks wait for each other.
actor Barrier {
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private let count: Int
    init(_ count: Int) { self.count = count }

    func arrive() async {
        if waiting.count + 1 == count {
            for w in waiting { w.resume() }
            waiting = []
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
    }
}
