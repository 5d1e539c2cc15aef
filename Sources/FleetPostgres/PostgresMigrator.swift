import Logging
import PostgresNIO

/// Schema migrations by name on PostgreSQL: each runs once, in order, in a transaction that also records its name
/// in `fleet_migrations`; a transaction-scoped advisory lock makes workers starting together on many hosts take
/// turns (the first applies, the others find the names recorded).
public struct PostgresMigrator: Sendable {
    public struct Migration: Sendable {
        public var name: String
        /// Statements, run one after another.
        public var statements: [String]

        public init(_ name: String, _ statements: [String]) {
            self.name = name
            self.statements = statements
        }
    }

    public var migrations: [Migration]
    /// The advisory lock's key (one per schema family).
    public var lockKey: Int64

    public init(lockKey: Int64, _ migrations: [Migration]) {
        self.lockKey = lockKey
        self.migrations = migrations
    }

    /// Applies the migrations not yet recorded; returns their names.
    @discardableResult
    public func migrate(_ client: PostgresClient, logger: Logger) async throws -> [String] {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS fleet_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var done = Set<String>()
            for try await name in try await connection.query("SELECT name FROM fleet_migrations", logger: logger).decode(String.self) {
                done.insert(name)
            }
            var applied: [String] = []
            for migration in migrations where !done.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO fleet_migrations (name) VALUES (\(migration.name))", logger: logger)
                applied.append(migration.name)
            }
            return applied
        }
    }
}
