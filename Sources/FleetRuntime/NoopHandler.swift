import FleetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built-in `noop` kind, for smoke tests and benchmarks: succeeds at once (output `null`, or `{"attempt": N}`
/// when the job has a `data.noop` object).
///
/// `data.noop` can rehearse failure handling in a deployment: `{"sleep_ms": 200}` waits,
/// `{"fail": "retryable"}` or `{"fail": "permanent"}` fails, on attempts 1 through `fail_attempts`
/// (every attempt if absent). `{"output_bytes": N}` adds a filler string of N bytes (at most 1 MiB) to the
/// output, to move results of a real kind's size, and `{"cpu_us": N}` keeps its thread busy for N µs of CPU
/// time (at most 1 s), to stand in for a real kind's work (`fleet bench email` uses both). Like a CPU-bound
/// handler, it holds its thread of the cooperative pool meanwhile, without yielding: an option for benchmarks,
/// not for queues that other work shares.
public struct NoopHandler: JobHandler {
    public let kind = "noop"

    public init() {}

    public func handle(_ job: JobEnvelope, context: JobContext) async throws -> JobOutcome {
        guard let options = job.data["noop"], case .object = options else { return .succeeded }
        if let sleep = options["sleep_ms"]?.intValue, sleep > 0 {
            try await Task.sleep(for: .milliseconds(min(sleep, 3_600_000)))
        }
        if let micros = options["cpu_us"]?.intValue, micros > 0 {
            Self.spin(microseconds: min(micros, 1_000_000))
        }
        if let fail = options["fail"]?.stringValue {
            let until = options["fail_attempts"]?.intValue ?? Int64.max
            if Int64(context.attempt) <= until {
                switch fail {
                case "retryable": throw JobError.retryable("noop_failure", "noop asked to fail (retryable) on attempt \(context.attempt)")
                case "permanent": throw JobError.permanent("noop_failure", "noop asked to fail (permanent)")
                default: throw JobError.permanent(JobError.invalidEnvelope, "data.noop.fail must be 'retryable' or 'permanent'")
                }
            }
        }
        var output = JSONObject()
        output["attempt"] = .int(Int64(context.attempt))
        if let bytes = options["output_bytes"]?.intValue, bytes > 0 {
            output["filler"] = .string(String(decoding: [UInt8](repeating: UInt8(ascii: "x"), count: Int(min(bytes, 1 << 20))), as: UTF8.self))
        }
        return .succeeded(output: .object(output))
    }

    /// Keeps the calling thread busy until it has used `microseconds` of CPU time.
    static func spin(microseconds: Int64) {
        func threadNanos() -> Int64 {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
        }
        let end = threadNanos() + microseconds * 1_000
        while threadNanos() < end {}
    }
}
