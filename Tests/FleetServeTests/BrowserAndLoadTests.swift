import EmailWorker
import FleetCore
import FleetLinks
import FleetServe
import FleetStore
import FleetTestSupport
import Foundation
import ProfileStore
import Testing

/// What only a real browser and a real load generator show: the pages work in Chromium without JavaScript, the
/// report's chart renders, and concurrent opens and clicks are each recorded once.
@Suite("fleet serve with Chromium and wrk", .serialized)
struct BrowserAndLoadTests {
    static let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

    static func json(_ text: String) throws -> JSONValue {
        try JSONValue(parsing: text.split(separator: "\n").last.map(String.init) ?? "")
    }

    @Test("Chromium: open the preference centre, untick a group, save; the store has the opt-out and the next campaign mail of that group is suppressed")
    func preferenceCentreInChromium() async throws {
        let f = try await ServeFixture()
        let token = f.links.token(.subscription(profileID: "p-cyr", group: "newsletter", campaignID: "spring"))
        let (status, out) = try await withRunningServer(f) { port in
            try await runProgram("/usr/bin/env", ["python3", Self.here + "/browser_preferences.py", "http://127.0.0.1:\(port)/p/\(token)", "newsletter"])
        }
        #expect(status == 0)
        let r = try Self.json(out)
        #expect(r["lang"] == "fr")
        #expect(r["label"] == "Example Shop newsletter")
        #expect(r["before"] == true)
        #expect(r["after"] == false)
        #expect(r["status"] == "Vos préférences sont enregistrées.")
        #expect(try await f.consent("p-cyr", "newsletter") == false)
        let next = try await MailLinksTests.send(MailLinksTests.handler(f), id: "autumn:p-cyr", profile: "p-cyr")
        guard case .suppressed(let reason, _) = next else {
            Issue.record("not suppressed: \(next)")
            return
        }
        #expect(reason == "opted_out")
    }

    @Test("Chromium: the campaign report page renders its chart (bars, not blank) and verdicts; screenshot taken")
    func reportInChromium() async throws {
        let f = try await ServeFixture()
        // Results and events of a small campaign: variants a and b, a holdout.
        let ledger = try JobLedger(path: f.path)
        defer { ledger.close() }
        let now = Date()
        for (i, v) in ["a", "a", "a", "b", "b", "b", "holdout"].enumerated() {
            let p = "q\(i)"
            let status = v == "holdout" ? "suppressed" : "succeeded"
            let out: JSONValue = v == "holdout" ? ["reason": "holdout", "variant": "holdout"] : ["variant": .string(v)]
            let result: JSONValue = ["id": .string("spring:\(p)"), "status": .string(status), "output": out]
            _ = try await ledger.record(LedgerEntry(jobID: "spring:\(p)", kind: "email", status: status, attempt: 1, result: result.serialized(), finishedAt: now))
            if v != "holdout" && i % 2 == 0 {
                _ = try await f.store.apply([ProfileOperation(opID: "c\(i)", timestampMillis: ProfileStore.nowMillis(), body: .track(
                    profileID: p, event: TrackedEvent(eventID: "click:spring:\(p):0", name: "email_clicked",
                                                      properties: ["campaign": "spring", "variant": .string(v), "message": .string("spring:\(p)"), "link": 0],
                                                      occurredAt: ProfileStore.nowMillis())))])
            }
        }
        let png = f.directory.appendingPathComponent("report.png").path
        let (status, out) = try await withRunningServer(f) { port in
            try await runProgram("/usr/bin/env", ["python3", Self.here + "/browser_report.py", "http://127.0.0.1:\(port)/campaigns/spring", png])
        }
        #expect(status == 0)
        let r = try Self.json(out)
        #expect(r["title"] == "Campaign spring")
        #expect(r["bars"]?.intValue == 9, "three rates for a, b and the holdout")
        #expect((r["width"]?.intValue ?? 0) > 300 && (r["height"]?.intValue ?? 0) > 200)
        #expect((r["chart_colours"]?.intValue ?? 0) >= 4, "the bars' three colours and the background at least")
        #expect(r["verdicts"]?.arrayValue?.count == 4)
        let shot = try Data(contentsOf: URL(fileURLWithPath: png))
        #expect(shot.starts(with: [0x89, 0x50, 0x4E, 0x47]))
    }

    @Test("wrk: at least 10,000 requests on /o/ and /c/ over 16 connections, no error, each open and click recorded once", .timeLimit(.minutes(5)))
    func loadWithWrk() async throws {
        let f = try await ServeFixture()
        var paths: [String] = []
        for i in 0..<1000 {
            let m = LinkClaims.Message(messageID: "spring:u\(i)", profileID: "p-ada", campaignID: "spring", variant: i % 2 == 0 ? "a" : "b")
            paths.append(ServeFixture.path(f.links.openURL(m)))
            paths.append(ServeFixture.path(f.links.clickURL(m, link: 0, url: "https://shop.example.com/p/\(i)")))
        }
        let list = f.directory.appendingPathComponent("paths.txt").path
        try paths.joined(separator: "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let script = f.directory.appendingPathComponent("paths.lua").path
        try """
            local paths = {}
            for line in io.lines("\(list)") do paths[#paths + 1] = line end
            local i = 0
            -- Each run starts where the runs before it got to (its argument), so that slow runs on a loaded
            -- machine still cover every link between them.
            init = function(args) i = tonumber(args[1]) or 0 end
            request = function()
              i = i + 1
              return wrk.format("GET", paths[(i % #paths) + 1])
            end
            """.write(toFile: script, atomically: true, encoding: .utf8)
        // `fleet serve` as its own process and wrk, both at the lowest priority: the load saturates what the rest of
        // the suite leaves (tests that time a SIGKILL against a worker's progress must not starve).
        let port = try TestEnvironment.freeLoopbackPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/nice")
        server.arguments = ["-n", "19", ServeFixture.fleetBinary, "serve", "--listen", "127.0.0.1:\(port)"]
        server.environment = ProcessInfo.processInfo.environment.merging([
            "FLEET_STORE": f.path, "FLEET_LINK_KEYS": "k2:serve-secret-new,k1:serve-secret-old", "FLEET_PUBLIC_URL": ServeFixture.publicURL,
            "FLEET_TEMPLATES": ServeFixture.templates, "FLEET_LOG_LEVEL": "warning",
        ]) { $1 }
        server.standardOutput = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        let up = try await waitUntil(timeout: .seconds(60)) {
            (try? await runProgram("/usr/bin/env", ["python3", "-c", "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)",
                                                    "http://127.0.0.1:\(port)/healthz"]))?.0 == 0
        }
        #expect(up, "fleet serve did not answer /healthz")
        var total = 0
        var offset = 0
        while up && (total < 10_000 || offset < paths.count) {
            // A long timeout: a slow answer on a loaded machine is not an error.
            let (status, out) = try await runProgram("/usr/bin/nice", ["-n", "19", "/usr/bin/wrk", "-t2", "-c16", "-d4s", "--timeout", "60s",
                                                                       "-s", script, "http://127.0.0.1:\(port)", "--", String(offset)])
            #expect(status == 0)
            #expect(!out.contains("Non-2xx or 3xx responses"), "\(out)")
            #expect(!out.contains("Socket errors"), "\(out)")
            let line = try #require(out.split(separator: "\n").first { $0.contains("requests in") })
            let requests = Int(line.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) ?? 0
            total += requests
            // Both threads walk the paths from the same offset: the run covered about half its requests.
            offset += requests / 2
            if requests == 0 { break }
            if out.contains("Non-2xx") || out.contains("Socket errors") { break }
        }
        server.terminate()
        let stopped = try await waitUntil(timeout: .seconds(30)) { !server.isRunning }
        #expect(stopped && server.terminationStatus == 0, "fleet serve stops gracefully on SIGTERM")
        #expect(total >= 10_000)
        #expect(try await f.events("email_opened").count == 1000)
        #expect(try await f.events("email_clicked").count == 1000)
    }
}
