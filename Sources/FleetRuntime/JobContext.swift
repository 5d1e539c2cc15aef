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
    /// (Built on first use: setting metadata costs more than most jobs' work.)
    public var logger: Logger {
        var log = baseLogger
        log[metadataKey: "job.id"] = "\(jobID)"
        log[metadataKey: "job.kind"] = "\(kind)"
        log[metadataKey: "job.attempt"] = "\(attempt)"
        return log
    }
    private let baseLogger: Logger
    /// The job's id and kind.
    public var jobID: String
    public var kind: String
    /// `<hostname>:<pid>`.
    public var worker: String

    public init(jobID: String, kind: String, attempt: Int, redelivered: Bool, correlationID: String?, logger: Logger,
                worker: String) {
        self.jobID = jobID
        self.kind = kind
        self.baseLogger = logger
        self.attempt = attempt
        self.redelivered = redelivered
        self.correlationID = correlationID
        self.worker = worker
    }
}
