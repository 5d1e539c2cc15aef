import FleetCore
import FleetRuntime
import Foundation
import ServiceLifecycle

/// `fleet worker --driver memory`: prints each result the in-process queue gets as a JSON line on stdout, and ends
/// (shutting the worker down) once every job pushed has a final result.
struct MemoryRunPrinter: Service {
    let driver: MemoryQueueDriver
    let jobIDs: [String]

    func run() async throws {
        var printed = 0
        var waiting = Set(jobIDs)
        while !waiting.isEmpty {
            let seen = printed
            await driver.waitFor { events in events.filter { if case .result = $0 { true } else { false } }.count > seen }
            let results = driver.results
            for result in results[printed...] {
                print(String(decoding: result.encoded(), as: UTF8.self))
                if result.status.isFinal { waiting.remove(result.jobID) }
            }
            printed = results.count
            if Task.isShuttingDownGracefully { return }
        }
    }
}
