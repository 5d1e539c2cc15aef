import FleetCore
import FleetStore

/// The profile store's tables, as migrations.
///
/// The store shares its SQLite file with the runtime's job ledger, which owns `PRAGMA user_version`; the
/// store therefore keeps its own version in `profile_schema(version)` and applies its migrations in one
/// `BEGIN IMMEDIATE` transaction (processes opening the file at once apply each exactly once).
/// Migrations are append-only.
enum ProfileSchema {
    static let migrations: [Migrator.Migration] = [
        Migrator.Migration(
            "create profile store",
            sql: """
                CREATE TABLE profiles (
                    id TEXT NOT NULL UNIQUE,
                    email TEXT,
                    phone TEXT,
                    traits TEXT NOT NULL,
                    trait_times TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    order_count INTEGER NOT NULL DEFAULT 0,
                    lifetime_value REAL NOT NULL DEFAULT 0,
                    last_purchase_at INTEGER,
                    last_purchase_amount REAL,
                    last_purchase_currency TEXT
                );
                CREATE TABLE identities (
                    type TEXT NOT NULL,
                    value TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (type, value)
                ) WITHOUT ROWID;
                CREATE INDEX identities_profile ON identities(profile_id);
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY,
                    event_id TEXT NOT NULL UNIQUE,
                    profile_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    properties TEXT NOT NULL,
                    occurred_at INTEGER NOT NULL,
                    amount REAL,
                    currency TEXT
                );
                CREATE INDEX events_profile ON events(profile_id, name, occurred_at);
                CREATE TABLE consents (
                    profile_id TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    topic TEXT NOT NULL,
                    opted_in INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    source TEXT,
                    PRIMARY KEY (profile_id, channel, topic)
                ) WITHOUT ROWID;
                CREATE TABLE devices (
                    token TEXT PRIMARY KEY,
                    profile_id TEXT NOT NULL,
                    platform TEXT NOT NULL,
                    app TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    invalid_since INTEGER
                ) WITHOUT ROWID;
                CREATE INDEX devices_profile ON devices(profile_id);
                CREATE TABLE suppressions (
                    address_hash BLOB NOT NULL,
                    channel TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (address_hash, channel)
                ) WITHOUT ROWID;
                CREATE TABLE applied_ops (
                    op_hash BLOB PRIMARY KEY,
                    status TEXT NOT NULL,
                    applied_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE catalog (
                    sku TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    price REAL,
                    currency TEXT,
                    category TEXT,
                    tags TEXT NOT NULL,
                    url TEXT,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE segments (
                    name TEXT PRIMARY KEY,
                    rule TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                """),
        // Reads decode traits from a packed blob instead of parsing JSON, and skip the consents and devices
        // queries for profiles that have none (`flags`: bit 0 may have consents, bit 1 may have devices; set
        // when one is added, never cleared but by a merge's recount, so a set bit is a hint, a clear bit a fact).
        Migrator.Migration("pack profile fields; consent and device flags") { database in
            try database.execute("""
                ALTER TABLE profiles ADD COLUMN fields BLOB NOT NULL DEFAULT x'';
                ALTER TABLE profiles ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
                """)
            try packJSONFields(database)
            try database.execute("""
                UPDATE profiles SET flags =
                  EXISTS (SELECT 1 FROM consents WHERE consents.profile_id = profiles.id)
                  | (EXISTS (SELECT 1 FROM devices WHERE devices.profile_id = profiles.id) << 1);
                ALTER TABLE profiles DROP COLUMN traits;
                ALTER TABLE profiles DROP COLUMN trait_times;
                """)
        },
        // Frequency caps, one store for every channel: the messages counted against a person's cap per local day,
        // one row per job (a retried job does not count twice). Rows older than their day are pruned.
        Migrator.Migration(
            "frequency caps",
            sql: """
                CREATE TABLE caps (
                    job_id TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    day TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (job_id, channel)
                ) WITHOUT ROWID;
                CREATE INDEX caps_profile ON caps(profile_id, day);
                CREATE INDEX caps_created ON caps(created_at);
                """),
        Migrator.Migration(
            "campaigns",
            sql: """
                CREATE TABLE campaigns (
                    id TEXT NOT NULL PRIMARY KEY,
                    kind TEXT NOT NULL,
                    template TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    name TEXT,
                    created_at INTEGER NOT NULL,
                    cancelled_at INTEGER
                ) WITHOUT ROWID;
                CREATE TABLE campaign_jobs (
                    campaign_id TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    not_before INTEGER NOT NULL,
                    confirmed_at INTEGER NOT NULL,
                    PRIMARY KEY (campaign_id, profile_id)
                ) WITHOUT ROWID;
                """),
        // Campaign reports read the events since a campaign began (opens, clicks, conversions): by time.
        Migrator.Migration("events by time", sql: "CREATE INDEX events_time ON events(occurred_at);"),
        // The content worker: trained recommendation models (a version each; the newest serves) and the blocks
        // it generated per person and slot (templates read them as `content.<slot>`).
        Migrator.Migration("content: recommendation models and blocks", sql: """
            CREATE TABLE rec_models (
                version INTEGER PRIMARY KEY,
                created_at INTEGER NOT NULL,
                summary TEXT NOT NULL,
                model BLOB NOT NULL
            );
            CREATE TABLE content_blocks (
                profile_id TEXT NOT NULL,
                slot TEXT NOT NULL,
                block TEXT NOT NULL,
                model_version INTEGER,
                generated_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                PRIMARY KEY (profile_id, slot)
            ) WITHOUT ROWID;
            """),
        // The content worker's `copy` op: model answers by prompt hash (same prompt, same text until it expires),
        // with the person whose prompt it was, so that erasing them deletes their answers too.
        Migrator.Migration("content: LLM answer cache", sql: """
            CREATE TABLE llm_cache (
                prompt_hash TEXT PRIMARY KEY,
                profile_id TEXT NOT NULL,
                answer TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX llm_cache_profile ON llm_cache(profile_id);
            """),
    ]

    /// `flags` bits of `profiles`.
    static let hasConsents: Int64 = 1
    static let hasDevices: Int64 = 2

    /// Converts the JSON `traits` and `trait_times` columns of every profile into `fields`, a page at a time.
    private static func packJSONFields(_ database: SQLiteDatabase) throws {
        var after: Int64 = 0
        while true {
            let page = try database.withStatement(
                "SELECT rowid, traits, trait_times FROM profiles WHERE rowid > ? ORDER BY rowid LIMIT 1000"
            ) { s -> [(Int64, [UInt8])] in
                try s.bind(after, at: 1)
                var rows: [(Int64, [UInt8])] = []
                while try s.step() {
                    let traits = (try? JSONValue(parsing: s.blob(at: 1) ?? []))?.objectValue ?? JSONObject()
                    let times = (try? JSONValue(parsing: s.blob(at: 2) ?? []))?.objectValue ?? JSONObject()
                    var fields: [PackedFields.Field] = []
                    for (key, time) in times {
                        guard let time = time.intValue else { continue }
                        fields.append(PackedFields.Field(key: key, time: time, value: key.hasPrefix("$") ? nil : traits[key]))
                    }
                    rows.append((s.int64(at: 0), PackedFields.encode(fields)))
                }
                return rows
            }
            guard let last = page.last else { return }
            for (rowid, packed) in page {
                try database.withStatement("UPDATE profiles SET fields = ? WHERE rowid = ?") { s in
                    try s.bind(packed, at: 1)
                    try s.bind(rowid, at: 2)
                    try s.run()
                }
            }
            after = last.0
        }
    }

    /// Applies the pending migrations.
    static func migrate(_ database: SQLiteDatabase) throws {
        try database.execute("CREATE TABLE IF NOT EXISTS profile_schema (version INTEGER NOT NULL)")
        if try version(database) == migrations.count { return }
        try database.transaction {
            let current = try version(database)
            guard current <= migrations.count else {
                throw ProfileStoreError(
                    code: "schema_too_new",
                    message: "profile schema version \(current) is newer than this build (\(migrations.count))")
            }
            for migration in migrations.dropFirst(current) {
                try migration.apply(database)
            }
            try database.execute("DELETE FROM profile_schema")
            try database.withStatement("INSERT INTO profile_schema (version) VALUES (?)") {
                try $0.bind(migrations.count, at: 1)
                try $0.run()
            }
        }
    }

    private static func version(_ database: SQLiteDatabase) throws -> Int {
        try database.withStatement("SELECT max(version) FROM profile_schema") { try $0.step() ? $0.int(at: 0) : 0 }
    }
}
