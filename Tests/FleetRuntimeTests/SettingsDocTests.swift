import Foundation
import Testing

/// Docs/settings.md is the settings contract: it must be what `fleet settings` prints from the code, and the code
/// must read no `FLEET_*` variable that the table does not name.
@Suite("Settings: Docs/settings.md against the code")
struct SettingsDocTests {
    static func documentedTable() throws -> String {
        let doc = try String(contentsOf: TestBroker.repo.appendingPathComponent("Docs/settings.md"), encoding: .utf8)
        let begin = try #require(doc.range(of: "<!-- settings:begin"))
        let afterBegin = try #require(doc[begin.upperBound...].range(of: "\n"))
        let end = try #require(doc.range(of: "<!-- settings:end -->"))
        return String(doc[afterBegin.upperBound..<end.lowerBound])
    }

    @Test("Docs/settings.md holds exactly the table `fleet settings` prints")
    func tableMatchesCode() async throws {
        let printed = try await FleetProcess.run(["settings"])
        #expect(printed.status == 0)
        let table = try Self.documentedTable()
        #expect(table == printed.output, "Docs/settings.md is stale: regenerate its table with `fleet settings`")
    }

    @Test("every FLEET_* variable the sources read is in the table, and every one in the table is read")
    func sourcesMatchTable() async throws {
        let json = try await FleetProcess.run(["settings", "--json"])
        #expect(json.status == 0)
        var documented: Set<String> = []
        for line in json.output.split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if let name = object["environment"] as? String { documented.insert(name) }
        }
        var read: Set<String> = []
        let pattern = try Regex(#""(FLEET_[A-Z0-9_]*[A-Z0-9])""#)
        for folder in ["Sources", "Workers"] {
            let root = TestBroker.repo.appendingPathComponent(folder)
            let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
            for file in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
                for match in text.matches(of: pattern) {
                    if let name = match.output[1].substring { read.insert(String(name)) }
                }
            }
        }
        #expect(read.count > 20)
        #expect(read.subtracting(documented).isEmpty, "read but not in Docs/settings.md: \(read.subtracting(documented).sorted())")
        #expect(documented.subtracting(read).isEmpty, "in Docs/settings.md but read nowhere: \(documented.subtracting(read).sorted())")
    }

    @Test("`fleet worker --help` names the kinds' settings and says which one is required")
    func workerHelpNamesKindSettings() async throws {
        let help = try await FleetProcess.run(["worker", "--help"])
        let text = help.output.split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        for name in ["FLEET_EMAIL_SECRET", "FLEET_EMAIL_DELIVERY", "FLEET_EMAIL_SMTP_PASSWORD", "FLEET_EMAIL_CONSENT", "FLEET_PUSH_APNS_KEY_FILE",
                     "FLEET_PUSH_QUIET_HOURS", "FLEET_FREQUENCY_CAP_ALL", "FLEET_CONTENT_EVENTS"] {
            #expect(text.contains(name), "\(name)")
        }
        #expect(text.contains("FLEET_EMAIL_SECRET is required"))
        #expect(text.contains("available: content, crm, email, noop, push"), "\(help.output.prefix(400))")
    }

    @Test("a worker with kind email and neither FLEET_LINK_KEYS nor FLEET_EMAIL_SECRET: one line naming them, exit 64")
    func emailSecretRequired() async throws {
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try await FleetProcess.run(
            ["worker", "--kinds", "email", "--store", dir.appendingPathComponent("s.sqlite").path],
            environment: ["FLEET_EMAIL_SECRET": "", "FLEET_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"])
        #expect(run.status == 64)
        #expect(run.output.split(separator: "\n").count == 1, "\(run.output)")
        #expect(run.output.contains("neither FLEET_LINK_KEYS nor FLEET_EMAIL_SECRET is set"))
    }
}
