import AMQPClient
import FleetCore
import FleetStore
import Foundation
import Testing

/// `fleet dlq list` shows dead letters with their reasons; `fleet dlq replay` sends them back and they
/// run again although the ledger holds their `dead` result.
@Suite("Dead-letter replay")
struct DLQReplayTests {
    @Test("a dead-lettered job is listed with its reason, replayed, and then succeeds")
    func replayRunsAgain() async throws {
        let fleet = try WorkerIntegrationTests.Fleet("replay")
        let connection = try await TestBroker.connect()
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)

        // With one attempt allowed, a job failing once (retryable) is dead: retries_exhausted.
        let strict = try fleet.worker(["--max-attempts", "1"])
        try await fleet.waitForConsumers(connection)
        try await fleet.publishJobs(connection, [WorkerIntegrationTests.noopJob("rp-1", fail: "retryable", failAttempts: 1)])
        #expect(await TestBroker.eventually { collector.results(for: "rp-1").contains { $0.status == .dead } })
        strict.signal(SIGTERM)
        #expect(await strict.waitForExit() == 0)

        let list = try await FleetProcess.run(["dlq", "list", "--kind", "noop"], environment: fleet.environment)
        #expect(list.status == 0)
        #expect(list.output.contains("rp-1"))
        #expect(list.output.contains(JobError.retriesExhausted))

        // Replayed to a worker that allows a retry: attempt 1 fails, attempt 2 succeeds.
        let replay = try await FleetProcess.run(["dlq", "replay", "--kind", "noop"], environment: fleet.environment)
        #expect(replay.status == 0, "\(replay.output)")
        #expect(replay.output.contains("replayed 1 jobs"))
        #expect(try await connection.queueStatus(fleet.topology.deadQueue(forKind: "noop"))?.messages == 0)
        let lenient = try fleet.worker(["--max-attempts", "2"])
        #expect(await TestBroker.eventually(timeout: .seconds(30)) {
            collector.results(for: "rp-1").contains { $0.status == .succeeded }
        })
        lenient.signal(SIGTERM)
        #expect(await lenient.waitForExit() == 0)
        let ledger = try JobLedger(path: fleet.store)
        #expect(try await ledger.lookup("rp-1")?.status == "succeeded")
        ledger.close()
        collector.stop()
        await fleet.cleanUp(connection)
        await connection.close()
    }

    @Test("replay without --limit takes only what was dead when it started: a job that dies again is not replayed again")
    func replayEnds() async throws {
        let fleet = try WorkerIntegrationTests.Fleet("replay-ends")
        let connection = try await TestBroker.connect()
        try await connection.declare(fleet.topology.declarations)
        let collector = try await ResultCollector.start(fleet.topology, connection: connection)
        let worker = try fleet.worker()
        try await fleet.waitForConsumers(connection)
        try await fleet.publishJobs(connection, [WorkerIntegrationTests.noopJob("always-dies", fail: "permanent")])
        let deadQueue = fleet.topology.deadQueue(forKind: "noop")
        #expect(await TestBroker.eventually { collector.results(for: "always-dies").filter { $0.status == .dead }.count == 1 })
        #expect(await TestBroker.eventually { (try? await connection.queueStatus(deadQueue))??.messages == 1 })

        // The worker keeps running: the replayed job dies again at once and lands back in the dead-letter queue.
        let replay = try await FleetProcess.run(["dlq", "replay", "--kind", "noop"], environment: fleet.environment,
                                                timeout: .seconds(60))
        #expect(replay.status == 0, "\(replay.output)")
        #expect(replay.output.contains("replayed 1 jobs"), "\(replay.output)")
        // It ran exactly once more: a second dead result, and it is dead-lettered again.
        #expect(await TestBroker.eventually { collector.results(for: "always-dies").filter { $0.status == .dead }.count == 2 })
        #expect(await TestBroker.eventually { (try? await connection.queueStatus(deadQueue))??.messages == 1 })
        #expect(collector.results(for: "always-dies").filter { $0.status == .dead }.count == 2)
        #expect(collector.results(for: "always-dies").allSatisfy { $0.error?.code == "noop_failure" })

        // An empty dead-letter queue: nothing to do, exit 0.
        try await connection.purge(queue: deadQueue)
        let empty = try await FleetProcess.run(["dlq", "replay", "--kind", "noop"], environment: fleet.environment)
        #expect(empty.status == 0)
        #expect(empty.output.contains("replayed 0 jobs"))
        worker.signal(SIGTERM)
        #expect(await worker.waitForExit() == 0)
        collector.stop()
        await fleet.cleanUp(connection)
        await connection.close()
    }
}
