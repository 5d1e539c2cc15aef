#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The job ledger and effects journal the runtime needs, on one host's SQLite file (``JobLedger``) or on a
/// PostgreSQL server that workers on many hosts share (`PostgresJobLedger` in FleetPostgres). Both keep the same
/// rules: the first final result of a job id wins and is what a redelivered copy is answered with; an effect's
/// intent is a claim that one run, of any process on any host, gets.
public protocol JobLedgerStore: AnyObject, Sendable {
    /// The stored final entries of those ids that have one.
    func lookup(_ ids: [String]) async throws -> [String: LedgerEntry]
    /// Records a final result, durably; the existing entry is kept and returned when the job has one already.
    /// `effectsDone`: completions of the job's effects to record in the same transaction.
    @discardableResult
    func record(_ entry: LedgerEntry, effectsDone: [(key: String, result: [UInt8])]) async throws -> LedgerEntry
    /// Removes a job's entry if it is `dead` (a replayed dead letter runs again); whether one was removed.
    @discardableResult
    func forgetDead(_ id: String) async throws -> Bool
    /// Deletes entries finished, and effect records last written, before `date`; the counts.
    func prune(finishedBefore date: Date) async throws -> (jobs: Int, effects: Int)
    /// A job's effect records, by key.
    func effects(jobID: String) async throws -> [String: EffectRecord]
    /// Claims an effect (its intent, durably): nil when this call recorded it, else the record already there.
    func recordEffectIntent(jobID: String, key: String) async throws -> EffectRecord?
    /// Records an effect's completion with its result.
    func recordEffectDone(jobID: String, key: String, result: [UInt8]) async throws
    /// Removes an effect's intent (it did not happen).
    func forgetEffect(jobID: String, key: String) async throws
    /// The number of entries.
    func count() async throws -> Int
    /// Closes the ledger; later operations throw.
    func close()
    /// Makes the ledger ready before the first job (a server's schema migrations); the SQLite file did that when
    /// it opened.
    func prepare() async throws
}

extension JobLedgerStore {
    public func prepare() async throws {}

    /// The stored final entry of `id`, if it has one.
    public func lookup(_ id: String) async throws -> LedgerEntry? {
        try await lookup([id])[id]
    }

    /// Records a final result without effect completions.
    @discardableResult
    public func record(_ entry: LedgerEntry) async throws -> LedgerEntry {
        try await record(entry, effectsDone: [])
    }
}

extension JobLedger: JobLedgerStore {}
