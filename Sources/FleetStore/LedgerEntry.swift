#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The final result of one job, as kept by `JobLedger`.
public struct LedgerEntry: Sendable, Equatable {
    /// The job's id (the ledger key).
    public var jobID: String
    /// The job's kind.
    public var kind: String
    /// The final status: `"succeeded"`, `"suppressed"` or `"dead"`.
    public var status: String
    /// The attempt that produced the result.
    public var attempt: Int
    /// The encoded result envelope (JSON bytes), re-published verbatim on redelivery.
    public var result: [UInt8]
    /// When the job finished. Stored as Unix seconds in a `Double`.
    public var finishedAt: Date

    /// Creates an entry.
    public init(jobID: String, kind: String, status: String, attempt: Int, result: [UInt8], finishedAt: Date) {
        self.jobID = jobID
        self.kind = kind
        self.status = status
        self.attempt = attempt
        self.result = result
        self.finishedAt = finishedAt
    }
}
