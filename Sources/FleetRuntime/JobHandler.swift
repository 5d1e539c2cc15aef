import FleetCore

/// The work of one job kind: its parameters type, and what it does with them. The runtime decodes the job and
/// its ``Parameters``, checks the ledger, runs ``handle(_:context:)`` with a timeout, and publishes, retries or
/// dead-letters according to what it returns or throws.
///
/// Return a ``JobOutcome``; throw a ``JobError`` (`.retryable` or `.permanent`), or an error conforming to
/// ``JobErrorConvertible`` (a store's errors are `store_unavailable`, retryable); any other error is treated as
/// retryable with code `handler_error`. External side effects (a mail, a push, a paid call) go through
/// ``JobContext/effect(_:ifUncertain:_:)`` so that a redelivered job does not repeat them.
///
/// Handlers run concurrently (up to the worker's concurrency) and must be `Sendable`. They must not block a
/// thread of the cooperative pool: run blocking C calls on a dedicated thread or queue.
public protocol JobHandler: Sendable {
    associatedtype Parameters: JobParameters

    /// The kind this handler runs (`email`, `noop`, ...).
    var kind: String { get }

    /// The error code of a job whose parameters do not decode (default `invalid_parameters`).
    var invalidParametersCode: String { get }

    /// Runs one job.
    func handle(_ parameters: Parameters, context: JobContext) async throws -> JobOutcome

    /// Deletes what the kind keeps past its use (called by the worker's retention sweep, with the wall clock's
    /// `now` and the ledger's retention); returns the rows deleted, by table. Default: nothing.
    func prune(now: Date, retention: Duration) async throws -> [String: Int]
}

extension JobHandler {
    public var invalidParametersCode: String { JobError.invalidParameters }

    public func prune(now: Date, retention: Duration) async throws -> [String: Int] { [:] }

    /// Decodes `job`'s parameters and runs the handler, outside a worker (previews, benchmarks): a parameter
    /// error is thrown as a permanent ``JobError`` with the kind's code.
    public func handle(job: JobEnvelope, context: JobContext) async throws -> JobOutcome {
        let parameters: Parameters
        do {
            parameters = try Parameters(job: job)
        } catch {
            throw JobError.permanent(invalidParametersCode, error.description)
        }
        return try await handle(parameters, context: context)
    }

    /// Decodes the parameters and runs the handler; every error becomes a ``JobError`` (bad parameters are
    /// marked so, since they are refused before the handler runs).
    func run(_ job: JobEnvelope, context: JobContext) async -> HandlerRun {
        let parameters: Parameters
        do {
            parameters = try Parameters(job: job)
        } catch {
            return .invalidParameters(JobError.permanent(invalidParametersCode, error.description))
        }
        do {
            return .outcome(try await handle(parameters, context: context))
        } catch {
            return .failure(JobError.converting(error))
        }
    }
}

/// How a run of a handler ended.
enum HandlerRun: Sendable {
    case outcome(JobOutcome)
    case failure(JobError)
    /// The job's parameters did not decode: the handler did not run.
    case invalidParameters(JobError)
    /// Cancelled (shutdown, or the watchdog's timeout).
    case cancelled
}

extension JobError {
    /// `error` as a job error: itself, the one a ``JobErrorConvertible`` names, `cancelled` for a cancellation,
    /// else a retryable `handler_error` (a bug: the message names the error's type, never its content).
    public static func converting(_ error: any Error) -> JobError {
        switch error {
        case let e as JobError: return e
        case let e as any JobErrorConvertible: return e.jobError
        case is CancellationError: return JobError.retryable(JobError.cancelled, "the run was cancelled")
        default: return JobError.retryable(JobError.handlerError, "the handler failed: \(type(of: error))")
        }
    }
}

import Foundation
