import AMQPClient
import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// Survives a broker restart mid-run. Runs on a private broker of its own (started with the project's
/// Ops/scripts/broker.sh), because restarting the shared test broker would disturb the other tests.
@Suite("Broker restart")
struct BrokerRestartTests {
    @Test("a broker restart mid-run is survived: the worker reconnects by itself and nothing is lost")
    func restartMidRun() async throws {
        try await PrivateBroker.with { broker in try await restartMidRun(broker) }
    }

    private func restartMidRun(_ broker: PrivateBroker) async throws {
        let url = try broker.url
        let fleet = try WorkerIntegrationTests.Fleet("restart", url: url)
        let connection = try await TestBroker.connect(url: url)
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        defer { collector.stop() }
        let n = 3000
        try await fleet.publishJobs(connection, (0..<n).map { WorkerIntegrationTests.noopJob("rs-\($0)", sleepMs: 80) })
        // 3,000 jobs of 80 ms, 4 at a time: about 60 s of work, so the broker stops mid-run even when
        // `rabbitmqctl stop_app` is slow on a loaded machine (it once took longer than 15 s of work here, and once longer than 38 s while the machine also built and benchmarked).
        let worker = try fleet.worker(["--concurrency", "4"])
        #expect(await TestBroker.eventually(timeout: .seconds(60)) { collector.all.count >= 100 })

        try await broker.run("stop-app")
        let doneWhileStopped = collector.finishedJobIDs.count
        #expect(doneWhileStopped < n, "the run ended before the broker stopped; the test proves nothing")
        try await Task.sleep(for: .seconds(1))
        try await broker.run("start-app")
        let finished = await TestBroker.eventually(timeout: .seconds(180)) {
            collector.finishedJobIDs.count == n && worker.log.components(separatedBy: "amqp connected").count - 1 >= 2
        }
        #expect(finished, "\(collector.finishedJobIDs.count) of \(n) jobs finished; worker log:\n\(worker.log.suffix(3000))")
        #expect(worker.isRunning, "the worker died instead of reconnecting")
        #expect(worker.log.contains("amqp connection lost"))

        // SIGTERM while the worker reconnects (the broker stopped again): it ends at once.
        let lost = worker.log.components(separatedBy: "amqp connection lost").count
        try await broker.run("stop-app")
        #expect(await TestBroker.eventually(timeout: .seconds(30)) {
            let parts = worker.log.components(separatedBy: "amqp connection lost")
            return parts.count > lost && parts.last!.contains("amqp reconnecting")
        }, "\(worker.log.suffix(1000))")
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit(timeout: .seconds(5)) == 0, "the worker ignored SIGTERM while reconnecting: \(worker.log.suffix(1000))")
        collector.stop()
        await connection.close()
        try? FileManager.default.removeItem(at: fleet.directory)
    }
}
