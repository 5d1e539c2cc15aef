import EmailWorker
import FleetCore
import FleetRuntime
import Foundation
import ProfileStore
import Logging

/// The email job's own work without a broker: decode the job, run `EmailHandler`, encode the result as the
/// runtime does, one job after another on one task. What it prints is CPU per job of the email work alone
/// (no AMQP, no job ledger), the part of `fleet bench email` that profiling the handler looks at.
struct EmailHandlerLoop {
    /// The profile store the bench imported the workload into.
    var store: String
    /// The repository's Templates directory.
    var templates: String

    /// Runs `jobs` (cycling) `count` times after a warm-up of 200; returns CPU µs per job of this thread.
    func run(_ jobs: [(id: String, body: [UInt8])], count: Int) async throws -> Double {
        let settings = EmailSettings(templatesDirectory: templates, delivery: .result, secret: "fleet-bench-secret")
        let handler = EmailHandler(storePath: store, settings: settings, logger: Logger(label: "fleet.bench.email"))
        defer { (handler.store as? ProfileStore)?.close() }
        let logger = Logger(label: "fleet.bench.email")
        let worker = "bench-in-process"
        var bytes = 0
        func one(_ body: [UInt8]) async throws {
            let job = try JobEnvelope.decode(body)
            let context = JobContext(job: job, logger: logger, worker: worker)
            let now = Date()
            let output: JSONValue
            let status: JobStatus
            switch try await handler.handle(job: job, context: context) {
            case .succeeded(let o): (output, status) = (o, .succeeded)
            case .suppressed(_, let o): (output, status) = (o, .suppressed)
            default: (output, status) = (.null, .failed)
            }
            let result = ResultEnvelope(jobID: job.id, kind: "email", status: status, attempt: 1, worker: worker,
                                        timings: .init(receivedAt: now, startedAt: now, finishedAt: now), output: output)
            bytes &+= result.encoded().count
        }
        for i in 0..<200 { try await one(jobs[i % jobs.count].body) }
        // The whole process's CPU: the handler hops to the store's reader queue and back.
        let start = ProcessCPU.usage()
        for i in 0..<count { try await one(jobs[i % jobs.count].body) }
        let cpu = ProcessCPU.usage() - start
        guard bytes > 0 else { throw BenchError("the email handler produced no results") }
        return cpu / Double(count) * 1e6
    }
}
