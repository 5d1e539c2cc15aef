import FleetCore
import FleetTestSupport
import Foundation
import Testing

/// A test fleet for the crm kind (FleetTestSupport's `KindFleet`): crm jobs are published as `(id, data)`.
final class CRMFleet: Sendable {
    let base: KindFleet

    /// `environment`: added to the workers' (say, `FLEET_STORE=postgres://...`).
    init(_ name: String, environment: [String: String] = [:]) async throws {
        base = try await KindFleet(kind: "crm", name: name, environment: environment)
    }

    var directory: URL { base.directory }
    var store: String { base.store }
    var finals: [String: ResultEnvelope] { base.finals }
    var resultBodies: [[UInt8]] { base.resultBodies }

    /// Starts `fleet worker --kinds crm`.
    @discardableResult
    func startWorker(arguments extra: [String] = []) throws -> Process { try base.startWorker(arguments: extra) }

    func run(_ arguments: [String]) throws -> (Int32, String) { try base.run(arguments) }

    func waitForConsumers(_ n: UInt32) async throws {
        #expect(await base.waitForConsumers(n), "the workers did not start consuming")
    }

    /// Publishes crm jobs, `data` each, with ids.
    func publish(_ jobs: [(id: String, data: JSONValue)]) async throws {
        try await base.publish(jobs.map { ["id": .string($0.id), "data": $0.data] })
    }

    func waitForFinals(_ ids: Set<String>, timeout: Duration = .seconds(120)) async -> Bool {
        await base.waitForFinals(ids, timeout: timeout)
    }

    func stopWorkers() async { await base.stopWorkers() }

    func tearDown() async { await base.tearDown() }
}
