import FleetCore

/// What the CRM sync needs of a profile store, on either backend: apply operations (idempotent by op id,
/// last-writer-wins per field by source timestamp), erase, and read the profile back.
///
/// `ProfileStore` (SQLite, one host) and `PostgresProfileStore` (FleetPostgres, a PostgreSQL server the hosts of a
/// fleet share) implement it with the same semantics; Tests/ProfileStoreTests runs one suite against both.
public protocol ProfileOperationStore: Sendable {
    /// Applies the operations, each on its own (a rejected one rolls back alone); one result per operation, in order.
    /// Throws only when the store itself fails; then nothing of these operations was applied.
    func apply(_ operations: [ProfileOperation]) async throws -> [OperationResult]

    /// Erases a profile (by id or email) with a generated op id: its rows deleted, its addresses suppressed.
    func erase(_ key: ProfileKey) async throws -> OperationResult

    /// The read model of a profile by id (following merges), or nil.
    func view(id: String) async throws -> ProfileView?

    /// The read model of the profile with this email (normalized first), or nil.
    func view(email: String) async throws -> ProfileView?

    /// Whether `address` is suppressed on `channel` (its hash is on the list).
    func isSuppressed(address: String, channel: AddressHasher.Channel) async throws -> Bool
}

extension ProfileStore: ProfileOperationStore {}
