import AMQPClient
import FleetAMQP
import FleetCore
import Foundation
import Testing

/// `Ops/rabbitmq/definitions.json` is the same topology that `fleet topology apply` declares.
@Suite("Topology definitions")
struct TopologyDefinitionsTests {
    static var definitionsFile: URL { TestBroker.repo.appendingPathComponent("Ops/rabbitmq/definitions.json") }

    @Test("the committed definitions file is what 'fleet topology export' prints")
    func exportMatchesFile() async throws {
        let committed = try JSONValue(parsing: Array(try Data(contentsOf: Self.definitionsFile)))
        let (status, output) = try await FleetProcess.run(["topology", "export"])
        #expect(status == 0)
        #expect(try JSONValue(parsing: output) == committed, "run 'fleet topology export > Ops/rabbitmq/definitions.json'")
    }

    @Test("rabbitmqctl import_definitions of the file gives a topology that 'fleet topology apply' accepts unchanged")
    func importThenApply() async throws {
        guard let ctl = ProcessInfo.processInfo.environment["FLEET_TEST_BROKER_CTL"], !ctl.isEmpty else {
            throw TestBroker.SetupError(description: "FLEET_TEST_BROKER_CTL is not set: run the tests with Ops/scripts/test.sh")
        }
        let vhost = "defs-\(UUID().uuidString.prefix(8).lowercased())"
        let dir = try TestBroker.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The same file, for a vhost of this test's own.
        let text = try String(contentsOf: Self.definitionsFile, encoding: .utf8)
            .replacingOccurrences(of: "\"vhost\": \"/\"", with: "\"vhost\": \"\(vhost)\"")
        let file = dir.appendingPathComponent("definitions.json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dir.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        #expect(try shell("\(ctl) add_vhost \(vhost) && \(ctl) set_permissions -p \(vhost) guest '.*' '.*' '.*'") == 0)
        defer { _ = try? shell("\(ctl) delete_vhost \(vhost)") }
        let imported = try shell("\(ctl) import_definitions \(file.path)")
        #expect(imported == 0)

        let base = try TestBroker.url
        let url = base[..<base.lastIndex(of: "/")!] + "/" + vhost
        // Every queue of the file exists after the import ...
        let connection = try await TestBroker.connect(url: String(url))
        defer { Task { await connection.close() } }
        let topology = FleetTopology()
        for case .queue(let q) in topology.declarations {
            #expect(try await connection.queueStatus(q.name) != nil, "\(q.name) missing after import")
        }
        // ... and declaring the fleet's topology over it raises no PRECONDITION_FAILED: the arguments agree.
        let (status, output) = try await FleetProcess.run(["topology", "apply", "--amqp-url", String(url)])
        #expect(status == 0, "\(output)")
    }

    private func shell(_ command: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command + " >/dev/null 2>&1"]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
