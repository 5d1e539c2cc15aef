import FleetCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The built-in `noop` kind, for smoke tests and benchmarks: succeeds at once (output `null`, or `{"attempt": N}`
/// when the job has a `data.noop` object). Its parameters: Docs/contract/noop-job.schema.json.
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

    /// `data.noop`, decoded.
    public struct Parameters: JobParameters {
        /// Whether the job had a `data.noop` object at all.
        public var present = false
        public var sleepMilliseconds: Int64 = 0
        public var fail: Failure?
        public var failAttempts: Int64 = .max
        public var outputBytes: Int64 = 0
        public var cpuMicroseconds: Int64 = 0

        public enum Failure: String, Sendable { case retryable, permanent }

        public init(job: JobEnvelope) throws(JobParameterError) {
            guard let options = job.data["noop"], options != .null else { return }
            guard case .object(let o) = options else {
                throw .wrongType("data.noop", expected: "an object", got: options)
            }
            present = true
            func count(_ key: String) throws(JobParameterError) -> Int64? {
                guard let v = o[key], v != .null else { return nil }
                guard let i = v.intValue, i >= 0 else {
                    throw JobParameterError(field: "data.noop.\(key)", "must be an integer >= 0")
                }
                return i
            }
            sleepMilliseconds = min(try count("sleep_ms") ?? 0, 3_600_000)
            cpuMicroseconds = min(try count("cpu_us") ?? 0, 1_000_000)
            outputBytes = min(try count("output_bytes") ?? 0, 1 << 20)
            failAttempts = try count("fail_attempts") ?? .max
            if let f = o["fail"], f != .null {
                guard let name = f.stringValue, let failure = Failure(rawValue: name) else {
                    throw JobParameterError(field: "data.noop.fail", "must be \"retryable\" or \"permanent\"")
                }
                fail = failure
            }
        }
    }

    public func handle(_ options: Parameters, context: JobContext) async throws -> JobOutcome {
        guard options.present else { return .succeeded }
        if options.sleepMilliseconds > 0 { try await Task.sleep(for: .milliseconds(options.sleepMilliseconds)) }
        if options.cpuMicroseconds > 0 { Self.spin(microseconds: options.cpuMicroseconds) }
        if let fail = options.fail, Int64(context.attempt) <= options.failAttempts {
            switch fail {
            case .retryable: throw JobError.retryable("noop_failure", "noop asked to fail (retryable) on attempt \(context.attempt)")
            case .permanent: throw JobError.permanent("noop_failure", "noop asked to fail (permanent)")
            }
        }
        var output = JSONObject()
        output["attempt"] = .int(Int64(context.attempt))
        if options.outputBytes > 0 {
            output["filler"] = .string(String(decoding: [UInt8](repeating: UInt8(ascii: "x"), count: Int(options.outputBytes)), as: UTF8.self))
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
