import FleetCore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ProfileStore
import Synchronization

/// The profile store's CRM side (profiles, identities, events, consents, devices, suppressions and the applied op
/// ids) on a PostgreSQL server that the workers of many hosts share (`FLEET_STORE=postgres://...`).
///
/// The same semantics as the SQLite `ProfileStore`, across hosts: each call is one transaction, and a rejected
/// operation rolls back alone (every check precedes an operation's first write, so only its op record is removed); an op id applies once (`applied_ops`' primary key); fields
/// are last-writer-wins by source timestamp (`ProfileRow`, shared with the SQLite writer), and the operations on one
/// person never interleave: each takes a transaction-scoped advisory lock per profile id and per identity it names
/// (in key order, taken up front), so concurrent identify ops from two hosts end in the state of some serial order,
/// which last-writer-wins makes the same for every order. A deadlock or serialization failure retries the whole
/// transaction. Traits are stored packed (`PackedFields`, the SQLite store's format) in a `bytea`.
///
/// It does not run the connection pool: the process runs `client` once (the `PostgresJobLedger` service does, in
/// `fleet worker`). The schema is migrated by name (`fleet_migrations`) on first use.
///
/// Erase deletes the person's rows and suppresses their addresses (hashes) in the same transaction. PostgreSQL does
/// not overwrite deleted rows at once: their bytes stay in the table files as dead tuples until `VACUUM` makes the
/// space reusable and later writes overwrite it, and in the WAL until its segments are recycled (README, "The
/// profile store on PostgreSQL").
public final class PostgresProfileStore: ProfileBackend, MarketingStore {
    public let client: PostgresClient
    private let logger: Logger
    private let migrated = Atomic<Bool>(false)

    /// The schema, by migration name (the tables and columns of the SQLite store's CRM side).
    public static let migrator = PostgresMigrator(lockKey: 0x666C_6565_7402, [
        .init("create profile store", [
            """
            CREATE TABLE profiles (
                id TEXT PRIMARY KEY,
                email TEXT,
                phone TEXT,
                fields BYTEA NOT NULL DEFAULT ''::bytea,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                order_count BIGINT NOT NULL DEFAULT 0,
                lifetime_value DOUBLE PRECISION NOT NULL DEFAULT 0,
                last_purchase_at BIGINT,
                last_purchase_amount DOUBLE PRECISION,
                last_purchase_currency TEXT
            )
            """,
            """
            CREATE TABLE identities (
                type TEXT NOT NULL, value TEXT NOT NULL, profile_id TEXT NOT NULL, updated_at BIGINT NOT NULL,
                PRIMARY KEY (type, value)
            )
            """,
            "CREATE INDEX identities_profile ON identities (profile_id)",
            """
            CREATE TABLE events (
                seq BIGSERIAL PRIMARY KEY,
                event_id TEXT NOT NULL UNIQUE,
                profile_id TEXT NOT NULL,
                name TEXT NOT NULL,
                properties TEXT NOT NULL,
                occurred_at BIGINT NOT NULL,
                amount DOUBLE PRECISION,
                currency TEXT
            )
            """,
            "CREATE INDEX events_profile ON events (profile_id, name, occurred_at)",
            """
            CREATE TABLE consents (
                profile_id TEXT NOT NULL, channel TEXT NOT NULL, topic TEXT NOT NULL, opted_in BOOLEAN NOT NULL,
                updated_at BIGINT NOT NULL, source TEXT,
                PRIMARY KEY (profile_id, channel, topic)
            )
            """,
            """
            CREATE TABLE devices (
                token TEXT PRIMARY KEY, profile_id TEXT NOT NULL, platform TEXT NOT NULL, app TEXT NOT NULL,
                updated_at BIGINT NOT NULL, invalid_since BIGINT
            )
            """,
            "CREATE INDEX devices_profile ON devices (profile_id)",
            """
            CREATE TABLE suppressions (
                address_hash BYTEA NOT NULL, channel TEXT NOT NULL, reason TEXT NOT NULL, created_at BIGINT NOT NULL,
                PRIMARY KEY (address_hash, channel)
            )
            """,
            "CREATE TABLE applied_ops (op_hash BYTEA PRIMARY KEY, status TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        ]),
        // The SQLite store's `caps`: one row per job and channel counted against a person's day.
        .init("frequency caps", [
            """
            CREATE TABLE caps (
                job_id TEXT NOT NULL, channel TEXT NOT NULL, profile_id TEXT NOT NULL, day TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (job_id, channel)
            )
            """,
            "CREATE INDEX caps_profile ON caps (profile_id, day)",
            "CREATE INDEX caps_created ON caps (created_at)",
        ]),
        .init("segments", ["CREATE TABLE segments (name TEXT PRIMARY KEY, rule TEXT NOT NULL, updated_at BIGINT NOT NULL)"]),
        .init("catalog", ["""
            CREATE TABLE catalog (
                sku TEXT PRIMARY KEY, name TEXT NOT NULL, price DOUBLE PRECISION, currency TEXT, category TEXT,
                tags TEXT NOT NULL, url TEXT, updated_at BIGINT NOT NULL
            )
            """]),
        // Read by the email kind (a cancelled campaign, the content worker's blocks); written on SQLite only so far
        // (`fleet campaign send|cancel`, the content worker).
        .init("campaigns and content blocks", [
            """
            CREATE TABLE campaigns (
                id TEXT PRIMARY KEY, kind TEXT NOT NULL, template TEXT NOT NULL, segment TEXT NOT NULL, name TEXT,
                created_at BIGINT NOT NULL, cancelled_at BIGINT
            )
            """,
            """
            CREATE TABLE content_blocks (
                profile_id TEXT NOT NULL, slot TEXT NOT NULL, block TEXT NOT NULL, model_version BIGINT,
                generated_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
                PRIMARY KEY (profile_id, slot)
            )
            """,
        ]),
    ])

    /// A store on `client` (which the caller runs).
    public init(client: PostgresClient, logger: Logger = Logger(label: "fleet.profiles")) {
        self.client = client
        self.logger = logger
    }

    /// Creates or updates the schema (safe when many workers start at once); also done on first use.
    public func migrate() async throws {
        do {
            let applied = try await Self.migrator.migrate(client, logger: logger)
            if !applied.isEmpty { logger.info("Migrated profile store", metadata: ["migrations": "\(applied)"]) }
        } catch {
            throw Self.unavailable(error)
        }
        migrated.store(true, ordering: .releasing)
    }

    private func ready() async throws {
        if !migrated.load(ordering: .acquiring) { try await migrate() }
    }

    // MARK: - Operations

    public func apply(_ operations: [ProfileOperation]) async throws -> [OperationResult] {
        guard !operations.isEmpty else { return [] }
        try await ready()
        let now = ProfileStore.nowMillis()
        let keys = Self.lockKeys(operations)
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { connection in
                    try await Self.lock(keys, on: connection, logger: self.logger)
                    var results: [OperationResult] = []
                    results.reserveCapacity(operations.count)
                    for op in operations {
                        results.append(try await self.applyOne(op, now: now, on: connection))
                    }
                    return results
                }
            } catch let error as PSQLError where Self.isTransient(error) && attempt < 8 {
                // Two hosts' transactions met in a lock cycle (or a serialization failure): nothing was applied; again.
                attempt += 1
                logger.debug("Profile transaction retried", metadata: ["store.attempt": "\(attempt)", "store.sqlstate": "\(error.serverInfo?[.sqlState] ?? "")"])
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...20) * attempt))
            } catch let error as ProfileStoreError {
                throw error
            } catch {
                throw Self.unavailable(error)
            }
        }
    }

    public func erase(_ key: ProfileKey) async throws -> OperationResult {
        let op = ProfileOperation(opID: "erase:\(UUID().uuidString)", timestampMillis: ProfileStore.nowMillis(), body: .erase(key))
        return try await apply([op])[0]
    }

    private func applyOne(_ op: ProfileOperation, now: Int64, on c: PostgresConnection) async throws -> OperationResult {
        guard !op.opID.isEmpty else { throw ProfileStoreError.missingField("op_id") }
        guard op.opID.utf8.count <= ProfileLimits.maxIDBytes else {
            throw ProfileStoreError.tooLarge("op_id", "\(ProfileLimits.maxIDBytes) bytes")
        }
        let opHash = ByteBuffer(bytes: Digests.sha256(op.opID))
        // Recorded up front as applied; a rejected op's record is removed below, another outcome updates it.
        let recorded = try await exists(c.query("""
            INSERT INTO applied_ops (op_hash, status, applied_at) VALUES (\(opHash), 'applied', \(now))
            ON CONFLICT (op_hash) DO NOTHING RETURNING 1
            """, logger: logger))
        if !recorded { return OperationResult(opID: op.opID, op: op.body.name, status: .skipped, reason: "duplicate") }
        let result: OperationResult
        do {
            result = try await applyBody(op, now: now, on: c)
        } catch let error as ProfileStoreError where error.rejectsOperation {
            // Every check of an operation comes before its first write (tested with the SQLite store's suite), so
            // the op's record is all it wrote: removed, as the SQLite store's savepoint rollback does, and a corrected
            // op with this id applies later. (No savepoint: two round trips fewer per operation.)
            try await c.query("DELETE FROM applied_ops WHERE op_hash = \(opHash)", logger: logger)
            return OperationResult(opID: op.opID, op: op.body.name, status: .rejected, reason: error.code, message: error.message)
        }
        if result.status != .applied {
            try await c.query("UPDATE applied_ops SET status = \(result.status.rawValue) WHERE op_hash = \(opHash)", logger: logger)
        }
        return result
    }

    private func applyBody(_ op: ProfileOperation, now: Int64, on c: PostgresConnection) async throws -> OperationResult {
        let result: OperationResult
        switch op.body {
        case .identify(let id, let traits, let identities):
            result = try await identify(op, id: id, traits: traits, identities: identities, on: c)
        case .track(let id, let event):
            result = try await track(op, id: id, event: event, on: c)
        case .merge(let id, let previous):
            result = try await merge(op, id: id, previousID: previous, on: c)
        case .consent(let id, let channel, let topic, let optedIn, let source):
            result = try await consent(op, id: id, channel: channel, topic: topic, optedIn: optedIn, source: source, on: c)
        case .device(let id, let token, let platform, let app, let registered):
            result = try await device(op, id: id, token: token, platform: platform, app: app, registered: registered, on: c)
        case .erase(let key):
            result = try await erase(op, key: key, now: now, on: c)
        }
        return result
    }

    private func identify(_ op: ProfileOperation, id rawID: String, traits: JSONObject, identities: [ProfileIdentity],
                          on c: PostgresConnection) async throws -> OperationResult {
        try ProfileLimits.checkID(rawID, "profile_id")
        try ProfileLimits.checkTraits(traits)
        for identity in identities {
            guard !identity.value.isEmpty else { throw ProfileStoreError.invalidValue(identity.kind.rawValue, "is empty") }
            guard identity.value.utf8.count <= ProfileLimits.maxIDBytes else {
                throw ProfileStoreError.tooLarge(identity.kind.rawValue, "\(ProfileLimits.maxIDBytes) bytes")
            }
        }
        let (id, loaded, suppressed) = try await loadResolved(rawID, on: c)
        if suppressed { return skipped(op, "suppressed") }
        for identity in identities {
            let channel: AddressHasher.Channel = switch identity.kind {
            case .email: .email
            case .phone: .sms
            case .crmID, .anonymousID: .profile
            }
            // One round trip per identity: suppressed, and whose it is.
            let hash = ByteBuffer(bytes: AddressHasher.hash(identity.value, channel: channel))
            var check: (Bool, String?) = (false, nil)
            for try await r in try await c.query("""
                SELECT EXISTS (SELECT 1 FROM suppressions WHERE address_hash = \(hash) AND channel = \(channel.rawValue)),
                       (SELECT profile_id FROM identities WHERE type = \(identity.kind.rawValue) AND value = \(identity.value))
                """, logger: logger).decode((Bool, String?).self) {
                check = r
            }
            if check.0 { return skipped(op, "suppressed") }
            if let owner = check.1, owner != id { throw ProfileStoreError.identityConflict(identity.kind.rawValue) }
        }
        var row = loaded ?? .new(id: id, at: op.timestamp)
        var (changed, stale) = row.apply(traits: traits, at: op.timestamp)
        if !row.exists { changed = true }
        for identity in identities {
            let inserted = try await exists(c.query("""
                INSERT INTO identities (type, value, profile_id, updated_at)
                VALUES (\(identity.kind.rawValue), \(identity.value), \(id), \(op.timestamp))
                ON CONFLICT (type, value) DO UPDATE SET updated_at = GREATEST(identities.updated_at, excluded.updated_at)
                WHERE excluded.updated_at > identities.updated_at
                RETURNING 1
                """, logger: logger))
            switch row.apply(identity: identity, at: op.timestamp) {
            case true?: changed = true
            case false?: stale.append(identity.kind.rawValue)
            case nil: if inserted { changed = true }
            }
        }
        guard changed else {
            return OperationResult(opID: op.opID, op: op.body.name, status: .skipped, reason: "stale", staleFields: stale)
        }
        row.updatedAt = max(row.updatedAt, op.timestamp)
        try await saveRow(row, on: c)
        return OperationResult(opID: op.opID, op: op.body.name, status: .applied, staleFields: stale)
    }

    private func track(_ op: ProfileOperation, id rawID: String, event: TrackedEvent, on c: PostgresConnection) async throws -> OperationResult {
        try ProfileLimits.checkID(rawID, "profile_id")
        try ProfileLimits.checkID(event.eventID, "event_id")
        try ProfileLimits.checkID(event.name, "event")
        let json = try ProfileLimits.eventJSON(event)
        let id = try await resolveLocked(rawID, on: c)
        if try await isSuppressed(id, .profile, on: c) { return skipped(op, "suppressed") }
        let inserted = try await exists(c.query("""
            INSERT INTO events (event_id, profile_id, name, properties, occurred_at, amount, currency)
            VALUES (\(event.eventID), \(id), \(event.name), \(json), \(event.occurredAt), \(event.amount), \(event.currency))
            ON CONFLICT (event_id) DO NOTHING RETURNING 1
            """, logger: logger))
        guard inserted else { return skipped(op, "duplicate_event") }
        try await ensureProfile(id, at: event.occurredAt, on: c)
        if let amount = event.amount {
            let at = event.occurredAt
            try await c.query("""
                UPDATE profiles SET order_count = order_count + 1, lifetime_value = lifetime_value + \(amount),
                  last_purchase_amount = CASE WHEN last_purchase_at IS NULL OR \(at) >= last_purchase_at THEN \(amount) ELSE last_purchase_amount END,
                  last_purchase_currency = CASE WHEN last_purchase_at IS NULL OR \(at) >= last_purchase_at THEN \(event.currency) ELSE last_purchase_currency END,
                  last_purchase_at = CASE WHEN last_purchase_at IS NULL OR \(at) >= last_purchase_at THEN \(at) ELSE last_purchase_at END,
                  updated_at = GREATEST(updated_at, \(at))
                WHERE id = \(id)
                """, logger: logger)
        }
        return applied(op)
    }

    private func merge(_ op: ProfileOperation, id rawID: String, previousID rawPrevious: String, on c: PostgresConnection) async throws -> OperationResult {
        try ProfileLimits.checkID(rawID, "profile_id")
        try ProfileLimits.checkID(rawPrevious, "previous_id")
        let id = try await resolveLocked(rawID, on: c)
        let previous = try await resolveLocked(rawPrevious, on: c)
        if id == previous { return skipped(op, "already_merged") }
        if try await isSuppressed(id, .profile, on: c) { return skipped(op, "suppressed") }
        if try await isSuppressed(previous, .profile, on: c) { return skipped(op, "suppressed") }
        var row = try await loadRow(id, on: c) ?? .new(id: id, at: op.timestamp)
        if let old = try await loadRow(previous, on: c) {
            for field in old.fields {
                let value = old.value(forKey: field.key)
                if row.wins(field.key, at: field.time, value: value) { row.set(field.key, value, at: field.time) }
            }
            row.createdAt = min(row.createdAt, old.createdAt)
            row.updatedAt = max(row.updatedAt, old.updatedAt)
        }
        row.updatedAt = max(row.updatedAt, op.timestamp)
        try await saveRow(row, on: c)
        try await c.query("UPDATE identities SET profile_id = \(id) WHERE profile_id = \(previous)", logger: logger)
        try await c.query("UPDATE events SET profile_id = \(id) WHERE profile_id = \(previous)", logger: logger)
        try await c.query("""
            INSERT INTO consents (profile_id, channel, topic, opted_in, updated_at, source)
            SELECT \(id), channel, topic, opted_in, updated_at, source FROM consents WHERE profile_id = \(previous)
            ON CONFLICT (profile_id, channel, topic) DO UPDATE SET opted_in = excluded.opted_in,
              updated_at = excluded.updated_at, source = excluded.source
            WHERE excluded.updated_at > consents.updated_at
              OR (excluded.updated_at = consents.updated_at AND excluded.opted_in < consents.opted_in)
            """, logger: logger)
        try await c.query("DELETE FROM consents WHERE profile_id = \(previous)", logger: logger)
        try await c.query("UPDATE devices SET profile_id = \(id) WHERE profile_id = \(previous)", logger: logger)
        try await c.query("DELETE FROM profiles WHERE id = \(previous)", logger: logger)
        try await c.query("""
            INSERT INTO identities (type, value, profile_id, updated_at) VALUES ('merged', \(previous), \(id), \(op.timestamp))
            ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id
            """, logger: logger)
        try await c.query("""
            UPDATE profiles SET
              order_count = s.n, lifetime_value = s.total,
              last_purchase_at = l.occurred_at, last_purchase_amount = l.amount, last_purchase_currency = l.currency
            FROM (SELECT count(*) AS n, coalesce(sum(amount), 0) AS total FROM events
                  WHERE profile_id = \(id) AND amount IS NOT NULL) AS s
            LEFT JOIN LATERAL (SELECT occurred_at, amount, currency FROM events WHERE profile_id = \(id) AND amount IS NOT NULL
                               ORDER BY occurred_at DESC, seq DESC LIMIT 1) AS l ON true
            WHERE profiles.id = \(id)
            """, logger: logger)
        return applied(op)
    }

    private func consent(_ op: ProfileOperation, id rawID: String, channel: String, topic: String, optedIn: Bool,
                         source: String?, on c: PostgresConnection) async throws -> OperationResult {
        try ProfileLimits.checkID(rawID, "profile_id")
        try ProfileLimits.checkID(channel, "channel")
        guard topic.utf8.count <= ProfileLimits.maxIDBytes else { throw ProfileStoreError.tooLarge("topic", "\(ProfileLimits.maxIDBytes) bytes") }
        let id = try await resolveLocked(rawID, on: c)
        if try await isSuppressed(id, .profile, on: c) { return skipped(op, "suppressed") }
        try await ensureProfile(id, at: op.timestamp, on: c)
        let changed = try await exists(c.query("""
            INSERT INTO consents (profile_id, channel, topic, opted_in, updated_at, source)
            VALUES (\(id), \(channel), \(topic), \(optedIn), \(op.timestamp), \(source))
            ON CONFLICT (profile_id, channel, topic) DO UPDATE SET opted_in = excluded.opted_in,
              updated_at = excluded.updated_at, source = excluded.source
            WHERE excluded.updated_at > consents.updated_at
              OR (excluded.updated_at = consents.updated_at AND excluded.opted_in < consents.opted_in)
            RETURNING 1
            """, logger: logger))
        return changed ? applied(op) : skipped(op, "stale")
    }

    private func device(_ op: ProfileOperation, id rawID: String, token: String, platform: String, app: String,
                        registered: Bool, on c: PostgresConnection) async throws -> OperationResult {
        try ProfileLimits.checkID(rawID, "profile_id")
        guard !token.isEmpty else { throw ProfileStoreError.missingField("token") }
        guard token.utf8.count <= ProfileLimits.maxTokenBytes else {
            throw ProfileStoreError.tooLarge("token", "\(ProfileLimits.maxTokenBytes) bytes")
        }
        try ProfileLimits.checkID(platform, "platform")
        try ProfileLimits.checkID(app, "app")
        let id = try await resolveLocked(rawID, on: c)
        if try await isSuppressed(id, .profile, on: c) { return skipped(op, "suppressed") }
        if try await isSuppressed(token, .push, on: c) { return skipped(op, "suppressed") }
        try await ensureProfile(id, at: op.timestamp, on: c)
        let at = op.timestamp
        let query: PostgresQuery = registered
            ? """
              INSERT INTO devices (token, profile_id, platform, app, updated_at, invalid_since)
              VALUES (\(token), \(id), \(platform), \(app), \(at), NULL)
              ON CONFLICT (token) DO UPDATE SET profile_id = excluded.profile_id, platform = excluded.platform,
                app = excluded.app, updated_at = excluded.updated_at, invalid_since = NULL
              WHERE excluded.updated_at > devices.updated_at
              RETURNING 1
              """
            : """
              INSERT INTO devices (token, profile_id, platform, app, updated_at, invalid_since)
              VALUES (\(token), \(id), \(platform), \(app), \(at), \(at))
              ON CONFLICT (token) DO UPDATE SET updated_at = excluded.updated_at, invalid_since = excluded.updated_at
              WHERE excluded.updated_at >= devices.updated_at AND devices.invalid_since IS NULL
              RETURNING 1
              """
        let changed = try await exists(c.query(query, logger: logger))
        return changed ? applied(op) : skipped(op, "stale")
    }

    private func erase(_ op: ProfileOperation, key: ProfileKey, now: Int64, on c: PostgresConnection) async throws -> OperationResult {
        var suppress: [(String, AddressHasher.Channel)] = []
        let id: String?
        switch key {
        case .id(let raw):
            try ProfileLimits.checkID(raw, "profile_id")
            id = try await resolveLocked(raw, on: c)
            suppress.append((raw, .profile))
        case .email(let email):
            guard !email.isEmpty else { throw ProfileStoreError.missingField("email") }
            let owner = try await identityOwner("email", AddressHasher.normalizeEmail(email), on: c)
            if let owner { try await Self.lock([Self.lockKey("p", owner)], on: c, logger: logger) }
            id = owner
            suppress.append((email, .email))
        }
        var found = false
        if let id {
            suppress.append((id, .profile))
            for try await (type, value) in try await c.query("SELECT type, value FROM identities WHERE profile_id = \(id)", logger: logger)
                .decode((String, String).self) {
                switch type {
                case "email": suppress.append((value, .email))
                case "phone": suppress.append((value, .sms))
                default: suppress.append((value, .profile))
                }
            }
            if let row = try await loadRow(id, on: c) {
                found = true
                if let email = row.email { suppress.append((email, .email)) }
                if let phone = row.phone { suppress.append((phone, .sms)) }
            }
            for try await token in try await c.query("SELECT token FROM devices WHERE profile_id = \(id)", logger: logger).decode(String.self) {
                suppress.append((token, .push))
            }
            try await c.query("DELETE FROM events WHERE profile_id = \(id)", logger: logger)
            try await c.query("DELETE FROM consents WHERE profile_id = \(id)", logger: logger)
            try await c.query("DELETE FROM devices WHERE profile_id = \(id)", logger: logger)
            try await c.query("DELETE FROM identities WHERE profile_id = \(id)", logger: logger)
            try await c.query("DELETE FROM profiles WHERE id = \(id)", logger: logger)
        }
        let hashes = suppress.map { ByteBuffer(bytes: AddressHasher.hash($0.0, channel: $0.1)) }
        let channels = suppress.map(\.1.rawValue)
        try await c.query("""
            INSERT INTO suppressions (address_hash, channel, reason, created_at)
            SELECT h, ch, 'erased', \(now) FROM unnest(\(hashes)::bytea[], \(channels)::text[]) AS u(h, ch)
            ON CONFLICT (address_hash, channel) DO NOTHING
            """, logger: logger)
        return !found
            ? OperationResult(opID: op.opID, op: op.body.name, status: .applied, reason: "not_found",
                              message: "no such profile; the address is suppressed")
            : applied(op)
    }

    // MARK: - Frequency caps

    public func reserveCap(jobID: String, profileID: String, channel: String, day: String, limits: [CapLimit]) async throws -> Bool {
        try await ready()
        let now = ProfileStore.nowMillis()
        var attempt = 0
        while true {
            do {
                return try await client.withTransaction(logger: logger) { c in
                    // The person's lock (the one their profile operations take): two hosts counting messages for one
                    // person take turns, so a cap is never exceeded by counts made at once.
                    try await Self.lock([Self.lockKey("p", profileID)], on: c, logger: self.logger)
                    let counted = try await self.exists(c.query(
                        "SELECT 1 FROM caps WHERE job_id = \(jobID) AND channel = \(channel)", logger: self.logger))
                    if counted { return true }
                    for cap in limits where cap.limit > 0 {
                        let channels = cap.channels.isEmpty ? [channel] : cap.channels
                        var count = 0
                        for try await n in try await c.query("""
                            SELECT count(*)::int8 FROM caps WHERE profile_id = \(profileID) AND day = \(day) AND channel = ANY(\(channels))
                            """, logger: self.logger).decode(Int.self) {
                            count = n
                        }
                        guard count < cap.limit else { return false }
                    }
                    try await c.query("""
                        INSERT INTO caps (job_id, channel, profile_id, day, created_at)
                        VALUES (\(jobID), \(channel), \(profileID), \(day), \(now))
                        """, logger: self.logger)
                    return true
                }
            } catch let error as PSQLError where Self.isTransient(error) && attempt < 8 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...20) * attempt))
            } catch {
                throw Self.unavailable(error)
            }
        }
    }

    public func releaseCap(jobID: String, channel: String) async throws {
        try await ready()
        do {
            try await client.query("DELETE FROM caps WHERE job_id = \(jobID) AND channel = \(channel)", logger: logger)
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func pruneCaps(before date: Date) async throws -> Int {
        try await ready()
        let millis = Int64(date.timeIntervalSince1970 * 1000)
        do {
            var n = 0
            for try await _ in try await client.query("DELETE FROM caps WHERE created_at < \(millis) RETURNING 1", logger: logger) { n += 1 }
            return n
        } catch {
            throw Self.unavailable(error)
        }
    }

    // MARK: - What a send reads

    public func person(id: String, campaignID: String?, now: Int64) async throws -> PersonRead {
        let view = try await self.view(id: id)
        do {
            return try await client.withConnection { c in
                let profileSuppressed = view == nil ? try await self.isSuppressed(id, .profile, on: c) : false
                var emailSuppressed = false
                if let email = view?.email { emailSuppressed = try await self.isSuppressed(email, .email, on: c) }
                var cancelled = false
                if let campaignID {
                    cancelled = try await self.exists(c.query(
                        "SELECT 1 FROM campaigns WHERE id = \(campaignID) AND cancelled_at IS NOT NULL", logger: self.logger))
                }
                var content: [String: JSONValue] = [:]
                if let view {
                    for try await (slot, block) in try await c.query("""
                        SELECT slot, block FROM content_blocks WHERE profile_id = \(view.id) AND expires_at > \(now)
                        """, logger: self.logger).decode((String, String).self) {
                        if let json = try? JSONValue(parsing: block) { content[slot] = json }
                    }
                }
                return PersonRead(view: view, profileSuppressed: profileSuppressed, emailSuppressed: emailSuppressed,
                                  campaignCancelled: cancelled, content: content)
            }
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func suppress(address: String, channel: AddressHasher.Channel, reason: String) async throws {
        try await ready()
        let hash = ByteBuffer(bytes: AddressHasher.hash(address, channel: channel))
        do {
            try await client.query("""
                INSERT INTO suppressions (address_hash, channel, reason, created_at)
                VALUES (\(hash), \(channel.rawValue), \(reason), \(ProfileStore.nowMillis()))
                ON CONFLICT (address_hash, channel) DO NOTHING
                """, logger: logger)
        } catch {
            throw Self.unavailable(error)
        }
    }

    // MARK: - Catalog

    public func importCatalog(_ products: [CatalogProduct]) async throws -> Int {
        guard !products.isEmpty else { return 0 }
        try await ready()
        let now = ProfileStore.nowMillis()
        do {
            return try await client.withTransaction(logger: logger) { c in
                for p in products {
                    let tags = JSONValue.array(p.tags.map { .string($0) }).jsonString
                    try await c.query("""
                        INSERT INTO catalog (sku, name, price, currency, category, tags, url, updated_at)
                        VALUES (\(p.sku), \(p.name), \(p.price), \(p.currency), \(p.category), \(tags), \(p.url), \(now))
                        ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price = excluded.price, currency = excluded.currency,
                          category = excluded.category, tags = excluded.tags, url = excluded.url, updated_at = excluded.updated_at
                        """, logger: self.logger)
                }
                return products.count
            }
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func product(sku: String) async throws -> CatalogProduct? {
        try await ready()
        do {
            var found: CatalogProduct?
            for try await r in try await client.query("""
                SELECT sku, name, price, currency, category, tags, url FROM catalog WHERE sku = \(sku)
                """, logger: logger).decode((String, String, Double?, String?, String?, String, String?).self) {
                let tags = (try? JSONValue(parsing: r.5))?.arrayValue?.compactMap(\.stringValue) ?? []
                found = CatalogProduct(sku: r.0, name: r.1, price: r.2, currency: r.3, category: r.4, tags: tags, url: r.6)
            }
            return found
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func topSellers(sinceMillis: Int64, limit: Int) async throws -> [(product: JSONValue, category: String?)] {
        try await ready()
        do {
            var out: [(product: JSONValue, category: String?)] = []
            for try await r in try await client.query("""
                WITH sales AS (
                    SELECT i->>'sku' AS sku, count(*) AS n
                    FROM events e CROSS JOIN LATERAL jsonb_array_elements(
                        CASE WHEN jsonb_typeof(e.properties::jsonb -> 'items') = 'array' THEN e.properties::jsonb -> 'items'
                             ELSE '[]'::jsonb END) AS i
                    WHERE e.amount IS NOT NULL AND e.occurred_at >= \(sinceMillis) AND jsonb_typeof(i) = 'object'
                    GROUP BY 1)
                SELECT c.sku, c.name, c.price, c.currency, c.category, c.url, coalesce(s.n, 0)::int8 AS n
                FROM catalog c LEFT JOIN sales s ON s.sku = c.sku
                ORDER BY n DESC, c.sku COLLATE "C" LIMIT \(Int64(limit))
                """, logger: logger).decode((String, String, Double?, String?, String?, String?, Int64).self) {
                var o = JSONObject()
                o["sku"] = .string(r.0)
                o["name"] = .string(r.1)
                o["price"] = r.2.map { .double($0) } ?? .null
                o["currency"] = r.3.map { .string($0) } ?? .null
                o["category"] = r.4.map { .string($0) } ?? .null
                o["url"] = r.5.map { .string($0) } ?? .null
                o["sales"] = .int(r.6)
                out.append((.object(o), r.4))
            }
            return out
        } catch {
            throw Self.unavailable(error)
        }
    }

    // MARK: - Segments

    public func defineSegment(name: String, rule: JSONValue) async throws {
        _ = try SegmentRule(json: rule)
        try await ready()
        let text = rule.jsonString
        do {
            try await client.query("""
                INSERT INTO segments (name, rule, updated_at) VALUES (\(name), \(text), \(ProfileStore.nowMillis()))
                ON CONFLICT (name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at
                """, logger: logger)
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func removeSegment(name: String) async throws -> Bool {
        try await ready()
        do {
            return try await exists(client.query("DELETE FROM segments WHERE name = \(name) RETURNING 1", logger: logger))
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func segmentMembers(named name: String, limit: Int) async throws -> (count: Int, ids: [String])? {
        try await ready()
        do {
            return try await client.withConnection { c -> (Int, [String])? in
                guard let segment = try await self.definedSegments(on: c).first(where: { $0.name == name }) else { return nil }
                let now = ProfileStore.nowMillis()
                var count = 0
                var ids: [String] = []
                var after = ""
                while true {
                    var page: [String] = []
                    for try await id in try await c.query("SELECT id FROM profiles WHERE id COLLATE \"C\" > \(after) ORDER BY id COLLATE \"C\" LIMIT 1000", logger: self.logger)
                        .decode(String.self) {
                        page.append(id)
                    }
                    for id in page {
                        guard let view = try await self.loadView(id, on: c) else { continue }
                        if try await !self.evaluate([segment], for: view, now: now, on: c).isEmpty {
                            count += 1
                            if ids.count < limit { ids.append(id) }
                        }
                    }
                    guard let last = page.last, page.count == 1000 else { break }
                    after = last
                }
                return (count, ids)
            }
        } catch let error as ProfileStoreError {
            throw error
        } catch {
            throw Self.unavailable(error)
        }
    }

    /// The defined segments, by name (a rule that no longer parses is left out, as the SQLite store does).
    private func definedSegments(on c: PostgresConnection) async throws -> [Segment] {
        var out: [Segment] = []
        for try await (name, text) in try await c.query("SELECT name, rule FROM segments ORDER BY name", logger: logger).decode((String, String).self) {
            guard let json = try? JSONValue(parsing: text), let rule = try? SegmentRule(json: json) else { continue }
            out.append(Segment(name: name, rule: rule))
        }
        return out
    }

    /// The names of the segments among `segments` that `view` is in. The rules ask for event counts as they go
    /// (synchronously); each count they ask for is read, then the rule is evaluated again, until it needs no other.
    private func evaluate(_ segments: [Segment], for view: ProfileView, now: Int64, on c: PostgresConnection) async throws -> [String] {
        struct Missing: Error { var name: String; var since: Int64? }
        var counts: [String: Int64] = [:]
        func key(_ name: String, _ since: Int64?) -> String { "\(since.map(String.init) ?? "-")\u{0}\(name)" }
        var names: [String] = []
        for segment in segments {
            while true {
                do {
                    if try segment.rule.matches(view, now: now, eventCount: { name, since in
                        guard let n = counts[key(name, since)] else { throw Missing(name: name, since: since) }
                        return n
                    }) {
                        names.append(segment.name)
                    }
                    break
                } catch let missing as Missing {
                    var n: Int64 = 0
                    let since = missing.since ?? Int64.min
                    for try await value in try await c.query("""
                        SELECT count(*)::int8 FROM events WHERE profile_id = \(view.id) AND name = \(missing.name) AND occurred_at >= \(since)
                        """, logger: logger).decode(Int64.self) {
                        n = value
                    }
                    counts[key(missing.name, missing.since)] = n
                }
            }
        }
        return names
    }

    // MARK: - Compacting after an erase

    /// The tables that hold a person's data.
    static let personTables = ["profiles", "identities", "events", "consents", "devices"]

    /// What `fleet profiles erase` runs after an erase: `VACUUM ANALYZE` of the person's tables (their dead rows'
    /// space made reusable, and the planner's statistics sampled again without them: `pg_statistic` keeps sampled
    /// column values, e.g. an email address among a histogram's bounds), or with `full` `VACUUM FULL ANALYZE` (the
    /// tables rewritten into new files, under an exclusive lock: no byte of a deleted row stays in them) and `VACUUM
    /// FULL pg_statistic` (its old rows rewritten away; needs the database's owner); then `CHECKPOINT` (the WAL written
    /// so far may be recycled; needs the `pg_checkpoint` role or superuser). Before each `VACUUM FULL` it waits (at
    /// most 30 s) for transactions older than the rows' deletion. Returns whether every step ran and no old
    /// transaction was left (a step refused for want of a privilege is left out, not an error).
    @discardableResult
    public func compact(full: Bool) async throws -> Bool {
        try await ready()
        // VACUUM FULL copies a deleted row that an older snapshot may still see (autovacuum's ANALYZE, a report):
        // wait for those first.
        let waited = full ? try await waitForOlderTransactions() : true
        do {
            let sql = (full ? "VACUUM FULL ANALYZE " : "VACUUM ANALYZE ") + Self.personTables.joined(separator: ", ")
            try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            throw Self.unavailable(error)
        }
        var complete = waited
        if full {
            // The old rows of pg_statistic that ANALYZE just replaced, once no snapshot can see them.
            if try await !waitForOlderTransactions() { complete = false }
            do { try await client.query("VACUUM FULL pg_statistic", logger: logger) } catch { complete = false }
        }
        do { try await client.query("CHECKPOINT", logger: logger) } catch { complete = false }
        return complete
    }

    /// Waits (at most 30 s) until no other transaction of this database (or outside any) that began before now holds a
    /// snapshot: a row deleted before now stays in the files, even through `VACUUM FULL`, while a snapshot that may see
    /// it exists. Measured: while other databases of the server were busy (the test suite), the rows sometimes
    /// survived anyway; waiting for every database's transactions instead took the whole 30 s on such a server, so
    /// the command is to be run again then (README). Returns false when one was still open after the wait.
    private func waitForOlderTransactions() async throws -> Bool {
        do {
            var now = Date()
            for try await t in try await client.query("SELECT now()", logger: logger).decode(Date.self) { now = t }
            for _ in 0..<300 {
                var open = 0
                for try await n in try await client.query("""
                    SELECT count(*)::int8 FROM pg_stat_activity
                    WHERE pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start < \(now)
                      AND (datname = current_database() OR datname IS NULL)
                    """, logger: logger).decode(Int.self) {
                    open = n
                }
                if open == 0 { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        } catch let error as CancellationError {
            throw error
        } catch {
            throw Self.unavailable(error)
        }
    }

    // MARK: - Reading

    public func view(id: String) async throws -> ProfileView? {
        try await ready()
        do {
            return try await client.withConnection { c in
                var found = try await self.loadView(id, on: c)
                if found == nil, let merged = try await self.identityOwner("merged", id, on: c) {
                    found = try await self.loadView(merged, on: c)
                }
                guard var view = found else { return nil }
                let segments = try await self.definedSegments(on: c)
                if !segments.isEmpty { view.segments = try await self.evaluate(segments, for: view, now: ProfileStore.nowMillis(), on: c) }
                return view
            }
        } catch let error as ProfileStoreError {
            throw error
        } catch {
            throw Self.unavailable(error)
        }
    }

    public func view(email: String) async throws -> ProfileView? {
        try await ready()
        let owner: String?
        do {
            owner = try await client.withConnection { c in
                try await self.identityOwner("email", AddressHasher.normalizeEmail(email), on: c)
            }
        } catch {
            throw Self.unavailable(error)
        }
        guard let owner else { return nil }
        return try await view(id: owner)
    }

    public func isSuppressed(address: String, channel: AddressHasher.Channel) async throws -> Bool {
        try await ready()
        do {
            return try await client.withConnection { c in try await self.isSuppressed(address, channel, on: c) }
        } catch {
            throw Self.unavailable(error)
        }
    }

    /// The read model without segments (``view(id:)`` adds them).
    private func loadView(_ id: String, on c: PostgresConnection) async throws -> ProfileView? {
        let rows = try await c.query("""
            SELECT email, phone, fields, created_at, updated_at, order_count, lifetime_value, last_purchase_at,
                   last_purchase_amount, last_purchase_currency FROM profiles WHERE id = \(id)
            """, logger: logger)
        var view: ProfileView?
        for try await r in rows.decode((String?, String?, ByteBuffer, Int64, Int64, Int64, Double, Int64?, Double?, String?).self) {
            let purchases = PurchaseSummary(orderCount: Int(r.5), lifetimeValue: r.6, lastPurchaseAt: r.7,
                                            lastPurchaseAmount: r.8, lastPurchaseCurrency: r.9)
            view = ProfileView(id: id, email: r.0, phone: r.1, traits: try PackedFields.decodeTraits(Array(r.2.readableBytesView)),
                               createdAt: r.3, updatedAt: r.4, purchases: purchases)
        }
        guard var loaded = view else { return nil }
        for try await r in try await c.query("""
            SELECT channel, topic, opted_in, updated_at, source FROM consents WHERE profile_id = \(id) ORDER BY channel, topic
            """, logger: logger).decode((String, String, Bool, Int64, String?).self) {
            loaded.consents.append(ConsentRecord(channel: r.0, topic: r.1, optedIn: r.2, updatedAt: r.3, source: r.4))
        }
        for try await r in try await c.query("""
            SELECT token, platform, app, updated_at, invalid_since FROM devices WHERE profile_id = \(id) ORDER BY token
            """, logger: logger).decode((String, String, String, Int64, Int64?).self) {
            loaded.devices.append(DeviceRecord(token: r.0, platform: r.1, app: r.2, updatedAt: r.3, invalidSince: r.4))
        }
        return loaded
    }

    // MARK: - Helpers

    /// What an identify needs first, in one round trip when the id is not merged (the usual case; its lock is held
    /// from the transaction's start): the profile `rawID` resolves to, its row, and whether it is suppressed. A merged
    /// id's profile is locked, then read.
    private func loadResolved(_ rawID: String, on c: PostgresConnection) async throws -> (id: String, row: ProfileRow?, suppressed: Bool) {
        let hash = ByteBuffer(bytes: AddressHasher.hash(rawID, channel: .profile))
        var out: (String, ProfileRow?, Bool) = (rawID, nil, false)
        for try await r in try await c.query("""
            SELECT m.profile_id, p.email, p.phone, p.fields, p.created_at, p.updated_at,
                   EXISTS (SELECT 1 FROM suppressions WHERE address_hash = \(hash) AND channel = 'profile')
            FROM (SELECT 1) AS one
            LEFT JOIN identities AS m ON m.type = 'merged' AND m.value = \(rawID)
            LEFT JOIN profiles AS p ON p.id = \(rawID) AND m.profile_id IS NULL
            """, logger: logger).decode((String?, String?, String?, ByteBuffer?, Int64?, Int64?, Bool).self) {
            if let merged = r.0, merged != rawID {
                out = (merged, nil, r.6)
            } else if let fields = r.3, let created = r.4, let updated = r.5 {
                out = (rawID, ProfileRow(id: rawID, exists: true, email: r.1, phone: r.2,
                                         fields: try PackedFields.decodeFields(Array(fields.readableBytesView)),
                                         createdAt: created, updatedAt: updated), r.6)
            } else {
                out = (rawID, nil, r.6)
            }
        }
        guard out.0 != rawID else { return out }
        // Merged: the profile it went into, under its own lock, checked under its own id.
        let id = try await resolveLocked(rawID, on: c)
        if out.2 { return (id, nil, true) }
        return (id, try await loadRow(id, on: c), try await isSuppressed(id, .profile, on: c))
    }

    /// The profile `rawID` resolves to (following a merge), with that profile's lock taken too when it is another.
    private func resolveLocked(_ rawID: String, on c: PostgresConnection) async throws -> String {
        guard let merged = try await identityOwner("merged", rawID, on: c), merged != rawID else { return rawID }
        try await Self.lock([Self.lockKey("p", merged)], on: c, logger: logger)
        // A merge of `merged` itself may have committed before the lock was ours: follow it once more.
        return try await identityOwner("merged", rawID, on: c) ?? merged
    }

    private func identityOwner(_ type: String, _ value: String, on c: PostgresConnection) async throws -> String? {
        var owner: String?
        for try await id in try await c.query("SELECT profile_id FROM identities WHERE type = \(type) AND value = \(value)", logger: logger)
            .decode(String.self) {
            owner = id
        }
        return owner
    }

    private func isSuppressed(_ address: String, _ channel: AddressHasher.Channel, on c: PostgresConnection) async throws -> Bool {
        let hash = ByteBuffer(bytes: AddressHasher.hash(address, channel: channel))
        return try await exists(c.query("SELECT 1 FROM suppressions WHERE address_hash = \(hash) AND channel = \(channel.rawValue)", logger: logger))
    }

    private func loadRow(_ id: String, on c: PostgresConnection) async throws -> ProfileRow? {
        var row: ProfileRow?
        for try await r in try await c.query("SELECT email, phone, fields, created_at, updated_at FROM profiles WHERE id = \(id)", logger: logger)
            .decode((String?, String?, ByteBuffer, Int64, Int64).self) {
            row = ProfileRow(id: id, exists: true, email: r.0, phone: r.1, fields: try PackedFields.decodeFields(Array(r.2.readableBytesView)),
                             createdAt: r.3, updatedAt: r.4)
        }
        return row
    }

    private func saveRow(_ row: ProfileRow, on c: PostgresConnection) async throws {
        let fields = ByteBuffer(bytes: PackedFields.encode(row.fields))
        try await c.query("""
            INSERT INTO profiles (id, email, phone, fields, created_at, updated_at)
            VALUES (\(row.id), \(row.email), \(row.phone), \(fields), \(row.createdAt), \(row.updatedAt))
            ON CONFLICT (id) DO UPDATE SET email = excluded.email, phone = excluded.phone, fields = excluded.fields,
              created_at = excluded.created_at, updated_at = excluded.updated_at
            """, logger: logger)
    }

    private func ensureProfile(_ id: String, at time: Int64, on c: PostgresConnection) async throws {
        try await c.query("""
            INSERT INTO profiles (id, created_at, updated_at) VALUES (\(id), \(time), \(time)) ON CONFLICT (id) DO NOTHING
            """, logger: logger)
    }

    /// Whether the query returned a row (the rows are read to the end).
    private func exists(_ rows: PostgresRowSequence) async throws -> Bool {
        var found = false
        for try await _ in rows { found = true }
        return found
    }

    private func applied(_ op: ProfileOperation) -> OperationResult {
        OperationResult(opID: op.opID, op: op.body.name, status: .applied)
    }

    private func skipped(_ op: ProfileOperation, _ reason: String) -> OperationResult {
        OperationResult(opID: op.opID, op: op.body.name, status: .skipped, reason: reason)
    }

    /// The advisory locks of a call: each operation's profile ids (raw, as given) and identities, sorted, so that
    /// two hosts' transactions take the ones they share in the same order.
    static func lockKeys(_ operations: [ProfileOperation]) -> [Int64] {
        var keys = Set<Int64>()
        for op in operations {
            switch op.body {
            case .identify(let id, _, let identities):
                keys.insert(lockKey("p", id))
                for identity in identities { keys.insert(lockKey("i:" + identity.kind.rawValue, identity.value)) }
            case .track(let id, _), .consent(let id, _, _, _, _), .device(let id, _, _, _, _):
                keys.insert(lockKey("p", id))
            case .merge(let id, let previous):
                keys.insert(lockKey("p", id))
                keys.insert(lockKey("p", previous))
            case .erase(.id(let id)):
                keys.insert(lockKey("p", id))
            case .erase(.email(let email)):
                keys.insert(lockKey("i:email", AddressHasher.normalizeEmail(email)))
            }
        }
        return keys.sorted()
    }

    /// 64 bits of SHA-256 over the namespace and value: the same key on every host.
    static func lockKey(_ namespace: String, _ value: String) -> Int64 {
        let digest = Digests.sha256(namespace + "\u{0}" + value)
        return digest.prefix(8).reduce(Int64(0)) { ($0 << 8) | Int64($1) }
    }

    /// Takes transaction-scoped advisory locks, in the order given.
    static func lock(_ keys: [Int64], on c: PostgresConnection, logger: Logger) async throws {
        guard !keys.isEmpty else { return }
        try await c.query("SELECT pg_advisory_xact_lock(k) FROM unnest(\(keys)::int8[]) WITH ORDINALITY AS u(k, n) ORDER BY n", logger: logger)
    }

    static func isTransient(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40P01" || state == "40001"
    }

    /// A failure of the server or connection, as the retryable store error (no query text, no values).
    static func unavailable(_ error: any Error) -> ProfileStoreError {
        if let error = error as? ProfileStoreError { return error }
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return ProfileStoreError(code: "store_unavailable", message: "PostgreSQL: \(error.code)\(state)")
        }
        return ProfileStoreError(code: "store_unavailable", message: "PostgreSQL: \(String(reflecting: type(of: error)))")
    }
}
