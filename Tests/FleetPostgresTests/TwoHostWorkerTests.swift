import FleetCore
import FleetPostgres
import FleetRuntime
import FleetStore
import FleetTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// Two workers as two hosts (each its own queue driver, ledger client and pool) sharing one PostgreSQL ledger: the
/// runtime's exactly-once rules hold across them.
@Suite("Workers on two hosts sharing the PostgreSQL ledger", .timeLimit(.minutes(2)))
struct TwoHostWorkerTests {
    /// Both runs of a job wait here until both have started (or 10 s passed), so that they overlap.
    final class Meeting: Sendable {
        private let state = Mutex((started: 0, performed: 0))
        var performed: Int { state.withLock { $0.performed } }
        func arrive() { state.withLock { $0.started += 1 } }
        func perform() { state.withLock { $0.performed += 1 } }
        func bothArrived() async -> Bool {
            await TestEnvironment.eventually(timeout: .seconds(10), every: .milliseconds(10)) { self.state.withLock { $0.started >= 2 } }
        }
    }

    struct MailHandler: JobHandler {
        typealias Parameters = NoParameters
        let kind = "mail"
        let meeting: Meeting

        func handle(_ parameters: NoParameters, context: JobContext) async throws -> JobOutcome {
            meeting.arrive()
            _ = await meeting.bothArrived()
            let result = try await context.effect("smtp:one") { _ in
                meeting.perform()
                return ["reply": "250 ok"]
            }
            switch result {
            case .performed, .alreadyDone: return .succeeded(output: ["sent": true])
            case .uncertain: return .succeeded(output: ["sent": "uncertain"])
            }
        }
    }

    @Test("one job delivered to both hosts at once: its effect runs once; a later copy on either host is answered from the shared ledger without running")
    func exactlyOnceAcrossHosts() async throws {
        try await PostgresDatabase.withFresh { url in
            var logger = Logger(label: "fleet.test")
            logger.logLevel = .warning
            let meeting = Meeting()
            let dir = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let hosts = (0..<2).map { i in
                let ledger = PostgresJobLedger(url: url, logger: logger)
                let driver = MemoryQueueDriver()
                // ledgerPath is not used: the worker takes the ledger handed in.
                let worker = WorkerService(configuration: WorkerConfiguration(concurrency: 4, ledgerPath: dir.appendingPathComponent("unused-\(i).sqlite").path,
                                                                              workerID: "host\(i):1"),
                                           driver: driver, handlers: [MailHandler(meeting: meeting)], logger: logger, ledger: ledger)
                return (ledger, driver, worker)
            }
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = hosts.flatMap { h in
                [.init(service: h.0), .init(service: h.1), .init(service: h.2)]
            }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                for h in hosts { h.1.push(["id": "m1", "kind": "mail"]) }
                let first = await hosts[0].1.finalResult(of: "m1"), second = await hosts[1].1.finalResult(of: "m1")
                #expect(meeting.performed == 1, "the effect ran \(meeting.performed) times")
                #expect(first.status == .succeeded && second.status == .succeeded)
                // A copy redelivered later, on either host: the stored result, no run.
                let stored = try await hosts[0].0.lookup("m1")
                hosts[1].1.push(["id": "m1", "kind": "mail"])
                hosts[0].1.push(["id": "m1", "kind": "mail"])
                for h in hosts {
                    await h.1.waitFor { events in
                        events.filter { if case .result(let r) = $0 { return r.jobID == "m1" }; return false }.count >= 2
                    }
                }
                #expect(meeting.performed == 1)
                #expect(stored != nil)
                #expect(try await hosts[1].0.count() == 1)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
        }
    }
}
