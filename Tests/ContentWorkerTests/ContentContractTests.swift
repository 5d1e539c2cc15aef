@testable import ContentWorker
import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
import Logging
import ProfileStore
import ServiceLifecycle
import Testing

@Suite("Content worker results against the contract", .timeLimit(.minutes(2)))
struct ContentContractTests {
    @Test("train, recommend, choose and copy run by the runtime (memory queue): their results, as published, are valid against result.schema.json and content-result.schema.json")
    func publishedResults() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fleet.sqlite").path
        let store = ProfileStore(path: path)
        _ = try await store.importCatalog(ContentWorkerTests.catalog)
        var ops: [ProfileOperation] = []
        for (n, x) in ContentWorkerTests.interactions.enumerated() {
            ops.append(ProfileOperation(opID: "e\(n)", timestampMillis: 1_000 + Int64(n), body: .track(profileID: x.profileID, event: TrackedEvent(
                eventID: "e\(n)", name: "rated", properties: ["items": [["sku": .string(x.sku), "quantity": 1]]], occurredAt: 1_000 + Int64(n)))))
        }
        _ = try await store.apply(ops)
        let driver = MemoryQueueDriver()
        var logger = Logger(label: "fleet.test")
        logger.logLevel = .warning
        // One job at a time: the recommend jobs come after the train job's model is stored.
        let worker = WorkerService(configuration: WorkerConfiguration(concurrency: 1, ledgerPath: path), driver: driver,
                                   handlers: [ContentHandler(store: store, settings: ContentSettings(
                                       templatesDirectory: TestEnvironment.repo.appendingPathComponent("Templates").path))], logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: driver), .init(service: worker)],
                                                      gracefulShutdownSignals: [], cancellationSignals: [], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            driver.push(["id": "t1", "kind": "content", "data": ["op": "train"]])
            _ = await driver.finalResult(of: "t1")
            driver.push(["id": "r1", "kind": "content", "profile_id": "u4", "data": ["op": "recommend", "slot": "email_hero", "n": 3]])
            driver.push(["id": "c1", "kind": "content", "profile_id": "u4", "campaign": "spring", "data": ["op": "choose", "arms": ["a", "b"]]])
            driver.push(["id": "x1", "kind": "content", "profile_id": "nobody", "data": ["op": "recommend", "slot": "s"]])
            // No model configured: the template's fallback copy (the model's answers are checked in CopyModelTests).
            driver.push(["id": "k1", "kind": "content", "profile_id": "u4", "data": ["op": "copy", "template": "subject-line"]])
            for id in ["r1", "c1", "x1", "k1"] { _ = await driver.finalResult(of: id) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        store.close()
        let results = driver.results
        #expect(results.first { $0.jobID == "t1" }?.status == .succeeded && results.first { $0.jobID == "r1" }?.status == .succeeded)
        #expect(results.first { $0.jobID == "x1" }?.error?.code == "profile_not_found")
        #expect(results.first { $0.jobID == "k1" }?.output.objectValue?["source"] == "fallback")
        let check = try await ContractCheck.validate(results.map { $0.encoded() }, requireKinds: ["content"])
        #expect(check.status == 0, "\(check.output)")
    }
}
