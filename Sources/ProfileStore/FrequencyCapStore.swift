#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The frequency caps' one table, on either backend: each marketing message a job sends counts against the person's
/// caps of their local day, once per job (a retry or a redelivery does not count again), whichever host runs it.
///
/// `ProfileStore` (SQLite: one host's workers) and `PostgresProfileStore` (every host of a fleet) implement it;
/// Tests/FleetPostgresTests/ProfileBackendTests runs one suite against both, with two hosts at once.
public protocol FrequencyCapStore: Sendable {
    /// Counts job `jobID` on `channel` against every cap of `limits` (those above 0) for the person's `day`
    /// (`YYYY-MM-DD`), if each has room; a job already counted on `channel` is allowed again. Returns whether the
    /// message may be sent.
    func reserveCap(jobID: String, profileID: String, channel: String, day: String, limits: [CapLimit]) async throws -> Bool

    /// Uncounts a job from `channel` (its message was refused for good).
    func releaseCap(jobID: String, channel: String) async throws

    /// Deletes the counts made before `date` (a day's counts serve only that day); returns how many.
    func pruneCaps(before date: Date) async throws -> Int
}

extension ProfileStore: FrequencyCapStore {}
