import FleetCore

/// The built-in `noop` kind, for smoke tests and benchmarks: succeeds at once, echoing nothing.
///
/// `data.noop` can rehearse failure handling in a deployment: `{"sleep_ms": 200}` waits,
/// `{"fail": "retryable"}` or `{"fail": "permanent"}` fails, on attempts 1 through `fail_attempts`
/// (every attempt if absent).
public struct NoopHandler: JobHandler {
    public let kind = "noop"

    public init() {}

    public func handle(_ job: JobEnvelope, context: JobContext) async throws -> JobOutcome {
        guard let options = job.data["noop"], case .object = options else { return .succeeded }
        if let sleep = options["sleep_ms"]?.intValue, sleep > 0 {
            try await Task.sleep(for: .milliseconds(min(sleep, 3_600_000)))
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
        return .succeeded(output: ["attempt": .int(Int64(context.attempt))])
    }
}
