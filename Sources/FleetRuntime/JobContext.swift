import FleetCore
import Foundation
import Logging

/// What a handler knows about the run of a job besides the envelope.
public struct JobContext: Sendable {
    /// 1 for the first run, one more for each retry or deferral.
    public var attempt: Int
    /// The broker delivered this message before (a worker died or a connection dropped).
    public var redelivered: Bool
    /// The AMQP correlation id, if the scheduler set one.
    public var correlationID: String?
    /// A logger with `job.id`, `job.kind` and `job.attempt` metadata. Never log personal data.
    public var logger: Logger
    /// `<hostname>:<pid>`.
    public var worker: String

    public init(attempt: Int, redelivered: Bool, correlationID: String?, logger: Logger, worker: String) {
        self.attempt = attempt
        self.redelivered = redelivered
        self.correlationID = correlationID
        self.logger = logger
        self.worker = worker
    }
}
