import CSQLite

/// Applies an ordered list of named schema migrations, keyed by `PRAGMA user_version`.
///
/// Migration `i` (0-based) brings the schema to version `i + 1`. Pending migrations run in one `BEGIN IMMEDIATE`
/// transaction, so processes opening the same file at once apply each migration exactly once, and a failing
/// migration leaves the schema as it was. Migrations are append-only: never reorder, edit or remove one that has
/// shipped.
public struct Migrator: Sendable {
    /// One schema change.
    public struct Migration: Sendable {
        /// A name, for logs and errors.
        public let name: String
        /// Applies the change; runs inside the migration transaction.
        public let apply: @Sendable (SQLiteDatabase) throws -> Void

        /// Creates a migration running `apply`.
        public init(_ name: String, apply: @escaping @Sendable (SQLiteDatabase) throws -> Void) {
            self.name = name
            self.apply = apply
        }

        /// Creates a migration running an SQL script.
        public init(_ name: String, sql: String) {
            self.init(name) { try $0.execute(sql) }
        }
    }

    /// The migrations, in order.
    public private(set) var migrations: [Migration]

    /// Creates a migrator for `migrations`, in order.
    public init(_ migrations: [Migration] = []) {
        self.migrations = migrations
    }

    /// Appends a migration.
    public mutating func register(_ migration: Migration) {
        migrations.append(migration)
    }

    /// The schema version once every migration is applied.
    public var latestVersion: Int { migrations.count }

    /// Applies the migrations the database does not have yet; returns the names of those applied.
    ///
    /// Throws if the database's version is newer than this list (written by a newer build).
    @discardableResult
    public func migrate(_ database: SQLiteDatabase) throws -> [String] {
        // Fast path without the write lock: already up to date.
        if try database.userVersion() == migrations.count {
            return []
        }
        return try database.transaction {
            let version = try database.userVersion()
            guard version >= 0, version <= migrations.count else {
                throw SQLiteError(
                    code: SQLITE_ERROR,
                    message: "schema version \(version) of \(database.path) is not in 0...\(migrations.count);"
                        + " was it written by a newer build?")
            }
            var applied: [String] = []
            for (index, migration) in migrations.enumerated().dropFirst(version) {
                do {
                    try migration.apply(database)
                } catch let error as SQLiteError {
                    throw SQLiteError(
                        code: error.code, message: "migration \(migration.name) failed: \(error.message)",
                        sql: error.sql)
                }
                try database.setUserVersion(index + 1)
                applied.append(migration.name)
            }
            return applied
        }
    }
}
