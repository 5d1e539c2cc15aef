import FleetCore
import Foundation

/// How a job ended, as a handler reports it (errors are thrown instead, as ``JobError``).
public enum JobOutcome: Sendable, Hashable {
    /// Done; `output` goes into the result.
    case succeeded(output: JSONValue)
    /// Deliberately not done (opted out, suppressed address, `abort_message`): a final result with
    /// `output.reason`.
    case suppressed(reason: String, output: JSONValue = .null)
    /// Run again later (a frequency cap, quiet hours): a `deferred` result and a delayed copy of the job.
    case deferred(until: Date, reason: String)

    public static var succeeded: JobOutcome { .succeeded(output: .null) }
}
