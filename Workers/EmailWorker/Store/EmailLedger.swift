import Dispatch
import FleetStore
import Foundation
import ProfileStore

/// The email worker's durable state, in the host's store file (beside the job ledger and the profile store),
/// on one connection confined to a dedicated serial queue (no SQLite call on the cooperative pool):
///
/// - `email_deliveries`: per job, `sending` (written just before the end of DATA) and then `accepted` (written
///   right after the relay's 250): a redelivered job whose mail was accepted is not sent again.
/// - `email_cap`: the marketing sends counted against a person's daily frequency cap, per local day, one
///   row per job (a retried job does not count twice).
/// - hard bounces go to the profile store's `suppressions` table (a hash of the address only).
///
/// Its tables are created by its own versioned schema (`email_schema`), never by the profile store's.
public final class EmailLedger: Sendable {
    /// What the ledger knows of a job's delivery.
    public enum DeliveryState: String, Sendable {
        /// The message was about to be committed at the relay when the worker stopped: it may or may not have been
        /// accepted (the window in which a crash can duplicate).
        case sending
        /// The relay accepted the message.
        case accepted
    }

    public let path: String
    private let queue = DispatchQueue(label: "fleet.email.ledger")
    /// Confined to `queue`.
    private nonisolated(unsafe) var database: SQLiteDatabase?

    public init(path: String) {
        self.path = path
    }

    deinit { database?.close() }

    static let schema: [String] = [
        """
        CREATE TABLE IF NOT EXISTS email_deliveries (
            job_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            message_id TEXT NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS email_cap (
            job_id TEXT PRIMARY KEY,
            profile_id TEXT NOT NULL,
            day TEXT NOT NULL,
            created_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS email_cap_profile ON email_cap(profile_id, day);
        """,
    ]

    private func open() throws -> SQLiteDatabase {
        dispatchPrecondition(condition: .onQueue(queue))
        if let database { return database }
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA synchronous=NORMAL")
        try db.execute("CREATE TABLE IF NOT EXISTS email_schema (version INTEGER NOT NULL)")
        let version = try db.withStatement("SELECT max(version) FROM email_schema") { try $0.step() ? $0.int(at: 0) : 0 }
        if version < Self.schema.count {
            try db.transaction {
                for sql in Self.schema.dropFirst(version) { try db.execute(sql) }
                try db.execute("DELETE FROM email_schema")
                try db.withStatement("INSERT INTO email_schema (version) VALUES (?)") {
                    try $0.bind(Self.schema.count, at: 1)
                    try $0.run()
                }
            }
        }
        database = db
        return db
    }

    func run<Value: Sendable>(_ body: @escaping @Sendable (SQLiteDatabase) throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.open()) })
            }
        }
    }

    /// Closes the connection (later calls reopen it).
    public func close() {
        queue.sync {
            database?.close()
            database = nil
        }
    }

    // MARK: - Deliveries

    /// The delivery state of a job, if any.
    public func deliveryState(jobID: String) async throws -> DeliveryState? {
        try await run { db in
            try db.withStatement("SELECT state FROM email_deliveries WHERE job_id = ?") { s in
                try s.bind(jobID, at: 1)
                return try s.step() ? s.string(at: 0).flatMap(DeliveryState.init(rawValue:)) : nil
            }
        }
    }

    /// Records a job's delivery state (committed when this returns).
    public func record(jobID: String, messageID: String, state: DeliveryState) async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await run { db in
            try db.withStatement("""
                INSERT INTO email_deliveries (job_id, state, message_id, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(job_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at
                """) { s in
                try s.bind(jobID, at: 1)
                try s.bind(state.rawValue, at: 2)
                try s.bind(messageID, at: 3)
                try s.bind(now, at: 4)
                try s.run()
            }
        }
    }

    /// Forgets a job's delivery (the relay refused the message for good).
    public func forget(jobID: String) async throws {
        try await run { db in
            try db.withStatement("DELETE FROM email_deliveries WHERE job_id = ?") { s in
                try s.bind(jobID, at: 1)
                try s.run()
            }
            try db.withStatement("DELETE FROM email_cap WHERE job_id = ?") { s in
                try s.bind(jobID, at: 1)
                try s.run()
            }
        }
    }

    /// Counts per state (for tests and the bench).
    public func deliveryCounts() async throws -> [DeliveryState: Int] {
        try await run { db in
            try db.withStatement("SELECT state, count(*) FROM email_deliveries GROUP BY state") { s in
                var out: [DeliveryState: Int] = [:]
                while try s.step() {
                    if let st = s.string(at: 0).flatMap(DeliveryState.init(rawValue:)) { out[st] = s.int(at: 1) }
                }
                return out
            }
        }
    }

    // MARK: - Frequency cap

    /// Counts this job against the person's cap for `day`, if the cap allows: returns whether it may be sent.
    /// A job already counted is allowed again (retries and redeliveries do not count twice).
    public func reserve(jobID: String, profileID: String, day: String, limit: Int) async throws -> Bool {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await run { db in
            try db.transaction {
                let exists = try db.withStatement("SELECT 1 FROM email_cap WHERE job_id = ?") { s in
                    try s.bind(jobID, at: 1)
                    return try s.step()
                }
                if exists { return true }
                let count = try db.withStatement("SELECT count(*) FROM email_cap WHERE profile_id = ? AND day = ?") { s in
                    try s.bind(profileID, at: 1)
                    try s.bind(day, at: 2)
                    return try s.step() ? s.int(at: 0) : 0
                }
                guard count < limit else { return false }
                try db.withStatement("INSERT INTO email_cap (job_id, profile_id, day, created_at) VALUES (?, ?, ?, ?)") { s in
                    try s.bind(jobID, at: 1)
                    try s.bind(profileID, at: 2)
                    try s.bind(day, at: 3)
                    try s.bind(now, at: 4)
                    try s.run()
                }
                return true
            }
        }
    }

    // MARK: - Suppressions

    /// Suppresses an email address in the profile store's suppression list (its hash only), e.g. after a
    /// hard bounce. The profile store must have been opened (its schema exists).
    public func suppress(email: String, reason: String) async throws {
        let hash = AddressHasher.hash(email, channel: .email)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try await run { db in
            try db.withStatement("""
                INSERT OR IGNORE INTO suppressions (address_hash, channel, reason, created_at) VALUES (?, 'email', ?, ?)
                """) { s in
                try s.bind(hash, at: 1)
                try s.bind(reason, at: 2)
                try s.bind(now, at: 3)
                try s.run()
            }
        }
    }
}
