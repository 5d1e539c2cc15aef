import AMQPClient
import FleetCore
import Foundation
import Testing

/// Survives a broker restart mid-run. Runs on a private broker of its own (started with the project's
/// Ops/scripts/broker.sh), because restarting the shared test broker would disturb the other tests.
@Suite("Broker restart")
struct BrokerRestartTests {
    /// A private RabbitMQ node for one test.
    final class PrivateBroker: Sendable {
        let directory: URL
        let url: String
        let script: String

        init() async throws {
            directory = try TestBroker.temporaryDirectory()
            script = TestBroker.repo.appendingPathComponent("Ops/scripts/broker.sh").path
            let (status, output) = try await Self.shell([script, "start"], dir: directory)
            guard status == 0 else { throw TestBroker.SetupError(description: "broker.sh start failed: \(output)") }
            let env = try String(contentsOf: directory.appendingPathComponent("broker.env"), encoding: .utf8)
            guard let line = env.split(separator: "\n").first(where: { $0.hasPrefix("FLEET_AMQP_URL=") }) else {
                throw TestBroker.SetupError(description: "no FLEET_AMQP_URL in broker.env")
            }
            url = String(line.dropFirst("FLEET_AMQP_URL=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        }

        func run(_ command: String) async throws {
            let (status, output) = try await Self.shell([script, command], dir: directory)
            guard status == 0 else { throw TestBroker.SetupError(description: "broker.sh \(command) failed: \(output)") }
        }

        func stop() async {
            _ = try? await Self.shell([script, "stop"], dir: directory)
            try? FileManager.default.removeItem(at: directory)
        }

        /// Runs `bash ARGS` with FLEET_BROKER_DIR set, output to a file. posix_spawn and waitpid rather than
        /// Foundation's Process, whose waitUntilExit can hang when a grandchild (the broker) lives on.
        static func shell(_ arguments: [String], dir: URL) async throws -> (Int32, String) {
            let log = dir.appendingPathComponent("broker-sh-\(UUID().uuidString.prefix(6)).log").path
            let command = "FLEET_BROKER_DIR='\(dir.path)' bash " + arguments.map { "'\($0)'" }.joined(separator: " ")
                + " >'\(log)' 2>&1 </dev/null"
            var pid: pid_t = 0
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(command), nil]
            defer { for p in argv { free(p) } }
            let spawned = posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ)
            guard spawned == 0 else { throw TestBroker.SetupError(description: "posix_spawn failed: \(spawned)") }
            var status: Int32 = 0
            while waitpid(pid, &status, WNOHANG) == 0 {
                try await Task.sleep(for: .milliseconds(100))
            }
            let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return (exitCode, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
    }

    @Test("a broker restart mid-run is survived: the worker reconnects by itself and nothing is lost")
    func restartMidRun() async throws {
        let broker = try await PrivateBroker()
        do {
            try await restartMidRun(broker)
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    private func restartMidRun(_ broker: PrivateBroker) async throws {
        let fleet = try WorkerIntegrationTests.Fleet("restart", url: broker.url)
        let connection = try await TestBroker.connect(url: broker.url)
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        let n = 3000
        try await fleet.publishJobs(connection, (0..<n).map { WorkerIntegrationTests.noopJob("rs-\($0)", sleepMs: 40) })
        // 3,000 jobs of 40 ms, 8 at a time: about 15 s of work, so the broker stops mid-run.
        let worker = try fleet.worker(["--concurrency", "8"])
        #expect(try await TestBroker.eventually(timeout: .seconds(60)) { collector.all.count >= 100 })

        try await broker.run("stop-app")
        let doneWhileStopped = collector.finishedJobIDs.count
        #expect(doneWhileStopped < n, "the run ended before the broker stopped; the test proves nothing")
        try await Task.sleep(for: .seconds(1))
        try await broker.run("start-app")
        let finished = try await TestBroker.eventually(timeout: .seconds(180)) {
            collector.finishedJobIDs.count == n && worker.log.components(separatedBy: "amqp connected").count - 1 >= 2
        }
        #expect(finished, "\(collector.finishedJobIDs.count) of \(n) jobs finished; worker log:\n\(worker.log.suffix(3000))")
        #expect(worker.isRunning, "the worker died instead of reconnecting")
        #expect(worker.log.contains("amqp connection lost"))
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit() == 0)
        collector.stop()
        await connection.close()
        try? FileManager.default.removeItem(at: fleet.directory)
    }
}
