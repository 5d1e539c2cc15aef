import FleetCore
import Foundation
@testable import FleetRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import Testing

/// The `noop` kind's options, called directly (its queue behaviour is covered by the worker integration tests).
@Suite("noop handler")
struct NoopHandlerTests {
    func context(attempt: Int = 1) -> JobContext {
        JobContext(job: JobEnvelope(id: "n-1", kind: "noop"), attempt: attempt, logger: Logger(label: "test"), worker: "test")
    }

    func job(_ noop: JSONObject) -> JobEnvelope {
        JobEnvelope(id: "n-1", kind: "noop", data: .object(JSONObject(["noop": .object(noop)])))
    }

    @Test("output_bytes adds a filler of exactly that many bytes, capped at 1 MiB")
    func filler() async throws {
        let outcome = try await NoopHandler().handle(job: job(JSONObject(["output_bytes": .int(3_000)])), context: context())
        guard case .succeeded(let output) = outcome else { Issue.record("not succeeded: \(outcome)"); return }
        #expect(output["filler"]?.stringValue?.utf8.count == 3_000)
        #expect(output["filler"]?.stringValue?.allSatisfy { $0 == "x" } == true)
        #expect(output["attempt"]?.intValue == 1)

        let capped = try await NoopHandler().handle(job: job(JSONObject(["output_bytes": .int(5 << 20)])), context: context())
        guard case .succeeded(let big) = capped else { Issue.record("not succeeded: \(capped)"); return }
        #expect(big["filler"]?.stringValue?.utf8.count == 1 << 20)
    }

    @Test("cpu_us keeps the thread busy for at least that much CPU time")
    func cpuTime() async throws {
        func threadMicros() -> Int64 {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Int64(t.tv_sec) * 1_000_000 + Int64(t.tv_nsec) / 1_000
        }
        let before = threadMicros()
        NoopHandler.spin(microseconds: 20_000)
        #expect(threadMicros() - before >= 20_000)

        let started = ContinuousClock.now
        let outcome = try await NoopHandler().handle(job: job(JSONObject(["cpu_us": .int(30_000)])), context: context())
        #expect(started.duration(to: .now) >= .milliseconds(30))
        guard case .succeeded = outcome else { Issue.record("not succeeded: \(outcome)"); return }
    }

    @Test("without output_bytes the output has no filler")
    func noFiller() async throws {
        let outcome = try await NoopHandler().handle(job: job(JSONObject()), context: context(attempt: 2))
        guard case .succeeded(let output) = outcome else { Issue.record("not succeeded: \(outcome)"); return }
        #expect(output["filler"] == nil)
        #expect(output["attempt"]?.intValue == 2)
    }

    @Test("Docs/contract/noop-job.schema.json and the noop parameters agree on the contract's examples")
    func contractExamples() throws {
        func jobs(_ folder: String) throws -> [(String, JobEnvelope)] {
            let dir = TestBroker.repo.appendingPathComponent("Docs/contract/examples/\(folder)")
            return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("job-") }.map {
                ($0, try JobEnvelope.decode(Array(try Data(contentsOf: dir.appendingPathComponent($0)))))
            }
        }
        let valid = try jobs("noop")
        #expect(!valid.isEmpty)
        for (name, job) in valid { #expect(throws: Never.self, "\(name)") { _ = try NoopHandler.Parameters(job: job) } }
        let invalid = try jobs("noop/invalid")
        #expect(!invalid.isEmpty)
        for (name, job) in invalid { #expect(throws: JobParameterError.self, "\(name)") { _ = try NoopHandler.Parameters(job: job) } }
    }
}
