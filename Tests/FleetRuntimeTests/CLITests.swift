import Foundation
import Testing

/// Bad arguments and bad input get one clear line and a non-zero exit, never a stack trace.
@Suite("fleet CLI")
struct CLITests {
    @Test("bad arguments: one line on stderr, exit 64", arguments: [
        ["worker", "--concurrency", "0"],
        ["worker", "--kinds", "nosuchkind", "--amqp-url", "amqp://127.0.0.1:1/"],
        ["nosuchcommand"],
        ["enqueue"],
        ["status", "--amqp-url", "http://example.invalid"],
        ["dlq", "list", "--kind", "Bad Kind"],
        ["topology", "apply", "--queue-type", "stream"],
    ])
    func badArguments(_ arguments: [String]) async throws {
        let (status, output) = try await FleetProcess.run(arguments)
        #expect(status == 64, "\(output)")
        let lines = output.split(separator: "\n")
        #expect(lines.count == 1, "\(output)")
        #expect(lines.first?.hasPrefix("fleet: ") == true)
    }

    @Test("an unreachable broker is one line and exit 69")
    func unreachableBroker() async throws {
        let (status, output) = try await FleetProcess.run(["status", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/%2F"])
        #expect(status == 69)
        #expect(output.split(separator: "\n").count == 1, "\(output)")
        #expect(output.contains("cannot connect to the broker"))
    }

    @Test("enqueue reports invalid lines with their numbers, enqueues the rest, and exits non-zero")
    func enqueueBadLines() async throws {
        let prefix = TestBroker.uniquePrefix("enq")
        let env = ["FLEET_AMQP_URL": try TestBroker.url, "FLEET_PREFIX": prefix]
        #expect(try await FleetProcess.run(["topology", "apply", "--kinds", "noop"], environment: env).status == 0)
        let input = """
            {"id":"e1","kind":"noop"}
            not json
            {"id":"e2","kind":"noop"}
            {"kind":"noop"}

            {"id":"e3","kind":"noop","data":{"x":[1,2,3]}}
            """
        let (status, output) = try await FleetProcess.run(["enqueue", "-"], environment: env, stdin: Data(input.utf8))
        #expect(status == 65)
        #expect(output.contains("line 2: malformed_json"))
        #expect(output.contains("line 4: missing_id"))
        #expect(output.contains("enqueued 3 jobs"))
        let connection = try await TestBroker.connect()
        #expect(try await connection.queueStatus("\(prefix).noop")?.messages == 3)
        await TestBroker.cleanUp(.init(prefix: prefix, kinds: ["noop"]), connection: connection)
        await connection.close()
    }
}
