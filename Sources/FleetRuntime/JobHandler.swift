import FleetCore

/// The work of one job kind. The runtime decodes the job, checks the ledger, runs ``handle(_:context:)``
/// with a timeout, and publishes, retries or dead-letters according to what it returns or throws:
/// return a ``JobOutcome``; throw a ``JobError`` (`.retryable` or `.permanent`); any other error is
/// treated as retryable with code `handler_error`.
///
/// Handlers run concurrently (up to the worker's concurrency) and must be `Sendable`. They must not
/// block a thread of the cooperative pool: run blocking C calls on a dedicated thread or queue.
public protocol JobHandler: Sendable {
    /// The kind this handler runs (`email`, `noop`, ...).
    var kind: String { get }
    /// Runs one job.
    func handle(_ job: JobEnvelope, context: JobContext) async throws -> JobOutcome
}
