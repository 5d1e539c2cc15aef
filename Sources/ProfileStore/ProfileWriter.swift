import CSQLite
import FleetCore
import FleetStore
import Foundation

/// The store's write connection and the operations on it. Confined to the store's writer queue.
///
/// Each operation runs in its own SAVEPOINT inside the caller's transaction: a rejected operation is rolled back
/// alone, and nothing is ever half applied. `PRAGMA secure_delete` is on, so deleted rows are overwritten with
/// zeros in the pages that held them.
final class ProfileWriter {
    let database: SQLiteDatabase
    private let statements: StatementCache

    /// Limits of one operation (bad input beyond them is rejected with `too_large`): `ProfileLimits`, shared by
    /// both backends.
    static let maxIDBytes = ProfileLimits.maxIDBytes
    static let maxJSONBytes = ProfileLimits.maxJSONBytes
    static let maxTokenBytes = ProfileLimits.maxTokenBytes

    init(path: String) throws {
        database = try SQLiteDatabase(path: path)
        statements = StatementCache(database: database, slots: Query.count)
        do {
            try database.execute("PRAGMA secure_delete=ON")
            try ProfileSchema.migrate(database)
        } catch {
            database.close()
            throw error
        }
    }

    func close() {
        statements.close()
        database.close()
    }

    // MARK: - Groups of operations

    /// Applies the requests (lists of operations) in one `BEGIN IMMEDIATE` transaction, each operation in its own
    /// savepoint. Returns the results per request, and whether an erase ran (the caller compacts).
    func apply(_ requests: [[ProfileOperation]], now: Int64) throws -> (results: [[OperationResult]], erased: Bool) {
        var erased = false
        let results = try database.transaction {
            try requests.map { ops in
                try ops.map { op in
                    if case .erase = op.body { erased = true }
                    return try applyInSavepoint(op, now: now)
                }
            }
        }
        return (results, erased)
    }

    private func applyInSavepoint(_ op: ProfileOperation, now: Int64) throws -> OperationResult {
        try run(Query.savepoint)
        do {
            let result = try applyOne(op, now: now)
            try run(Query.release)
            return result
        } catch let error as ProfileStoreError where error.rejectsOperation {
            try run(Query.rollbackTo)
            try run(Query.release)
            return OperationResult(opID: op.opID, op: op.body.name, status: .rejected, reason: error.code,
                                   message: error.message)
        }
    }

    private func applyOne(_ op: ProfileOperation, now: Int64) throws -> OperationResult {
        guard !op.opID.isEmpty else { throw ProfileStoreError.missingField("op_id") }
        guard op.opID.utf8.count <= Self.maxIDBytes else { throw ProfileStoreError.tooLarge("op_id", "\(Self.maxIDBytes) bytes") }
        let opHash = Digests.sha256(op.opID)
        // Recorded up front as applied (one statement answers "seen before?" and records it); a rejected op's
        // savepoint rollback removes the row, another outcome updates its status below.
        let recorded = try statements.with(Query.recordOp) { s -> Bool in
            try s.bind(opHash, at: 1)
            try s.bind(now, at: 2)
            try s.run()
            return database.changes > 0
        }
        if !recorded {
            return OperationResult(opID: op.opID, op: op.body.name, status: .skipped, reason: "duplicate")
        }
        var result: OperationResult
        switch op.body {
        case .identify(let id, let traits, let identities):
            result = try identify(op, id: id, traits: traits, identities: identities)
        case .track(let id, let event):
            result = try track(op, id: id, event: event)
        case .merge(let id, let previous):
            result = try merge(op, id: id, previousID: previous)
        case .consent(let id, let channel, let topic, let optedIn, let source):
            result = try consent(op, id: id, channel: channel, topic: topic, optedIn: optedIn, source: source)
        case .device(let id, let token, let platform, let app, let registered):
            result = try device(op, id: id, token: token, platform: platform, app: app, registered: registered)
        case .erase(let key):
            result = try erase(op, key: key, now: now)
        }
        if result.status != .applied {
            try statements.with(Query.opStatus) { s in
                try s.bind(opHash, at: 1)
                try s.bind(result.status.rawValue, at: 2)
                try s.run()
            }
        }
        return result
    }

    // MARK: - Operations

    private func identify(_ op: ProfileOperation, id rawID: String, traits: JSONObject,
                          identities: [ProfileIdentity]) throws -> OperationResult {
        try Self.checkID(rawID, "profile_id")
        try Self.checkTraits(traits)
        for identity in identities {
            guard !identity.value.isEmpty else { throw ProfileStoreError.invalidValue(identity.kind.rawValue, "is empty") }
            guard identity.value.utf8.count <= Self.maxIDBytes else {
                throw ProfileStoreError.tooLarge(identity.kind.rawValue, "\(Self.maxIDBytes) bytes")
            }
        }
        let (id, loaded, suppressed) = try loadResolved(rawID)
        if suppressed { return skipped(op, "suppressed") }
        for identity in identities {
            switch identity.kind {
            case .email: if try isSuppressed(identity.value, .email) { return skipped(op, "suppressed") }
            case .phone: if try isSuppressed(identity.value, .sms) { return skipped(op, "suppressed") }
            case .crmID, .anonymousID: if try isSuppressed(identity.value, .profile) { return skipped(op, "suppressed") }
            }
            if let owner = try identityOwner(identity.kind.rawValue, identity.value), owner != id {
                throw ProfileStoreError.identityConflict(identity.kind.rawValue)
            }
        }
        var row = loaded ?? .new(id: id, at: op.timestamp)
        var (changed, stale) = row.apply(traits: traits, at: op.timestamp)
        if !row.exists { changed = true }
        for identity in identities {
            let inserted = try upsertIdentity(identity.kind.rawValue, identity.value, profileID: id, at: op.timestamp)
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
        try saveRow(row)
        return OperationResult(opID: op.opID, op: op.body.name, status: .applied, staleFields: stale)
    }

    private func track(_ op: ProfileOperation, id rawID: String, event: TrackedEvent) throws -> OperationResult {
        try Self.checkID(rawID, "profile_id")
        try Self.checkID(event.eventID, "event_id")
        try Self.checkID(event.name, "event")
        let json = try ProfileLimits.eventJSON(event)
        let id = try resolve(rawID)
        if try isSuppressed(id, .profile) { return skipped(op, "suppressed") }
        let inserted = try database.withStatement(
            """
            INSERT INTO events (event_id, profile_id, name, properties, occurred_at, amount, currency)
            VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING
            """
        ) { s -> Bool in
            try s.bind(event.eventID, at: 1)
            try s.bind(id, at: 2)
            try s.bind(event.name, at: 3)
            try s.bind(json, at: 4)
            try s.bind(event.occurredAt, at: 5)
            if let amount = event.amount { try s.bind(amount, at: 6) }
            if let currency = event.currency { try s.bind(currency, at: 7) }
            try s.run()
            return database.changes > 0
        }
        guard inserted else { return skipped(op, "duplicate_event") }
        try ensureProfile(id, at: event.occurredAt)
        if let amount = event.amount {
            try database.withStatement(
                """
                UPDATE profiles SET order_count = order_count + 1, lifetime_value = lifetime_value + ?2,
                  last_purchase_amount = CASE WHEN last_purchase_at IS NULL OR ?3 >= last_purchase_at THEN ?2 ELSE last_purchase_amount END,
                  last_purchase_currency = CASE WHEN last_purchase_at IS NULL OR ?3 >= last_purchase_at THEN ?4 ELSE last_purchase_currency END,
                  last_purchase_at = CASE WHEN last_purchase_at IS NULL OR ?3 >= last_purchase_at THEN ?3 ELSE last_purchase_at END,
                  updated_at = max(updated_at, ?3)
                WHERE id = ?1
                """
            ) { s in
                try s.bind(id, at: 1)
                try s.bind(amount, at: 2)
                try s.bind(event.occurredAt, at: 3)
                if let currency = event.currency { try s.bind(currency, at: 4) }
                try s.run()
            }
        }
        return applied(op)
    }

    private func merge(_ op: ProfileOperation, id rawID: String, previousID rawPrevious: String) throws -> OperationResult {
        try Self.checkID(rawID, "profile_id")
        try Self.checkID(rawPrevious, "previous_id")
        let id = try resolve(rawID)
        let previous = try resolve(rawPrevious)
        if id == previous { return skipped(op, "already_merged") }
        if try isSuppressed(id, .profile) || isSuppressed(previous, .profile) { return skipped(op, "suppressed") }
        var row = try loadRow(id) ?? .new(id: id, at: op.timestamp)
        if let old = try loadRow(previous) {
            for field in old.fields {
                let value = old.value(forKey: field.key)
                if row.wins(field.key, at: field.time, value: value) { row.set(field.key, value, at: field.time) }
            }
            row.createdAt = min(row.createdAt, old.createdAt)
            row.updatedAt = max(row.updatedAt, old.updatedAt)
        }
        row.updatedAt = max(row.updatedAt, op.timestamp)
        try saveRow(row)
        for sql in [
            "UPDATE identities SET profile_id = ?1 WHERE profile_id = ?2",
            "UPDATE events SET profile_id = ?1 WHERE profile_id = ?2",
            """
            INSERT INTO consents (profile_id, channel, topic, opted_in, updated_at, source)
            SELECT ?1, channel, topic, opted_in, updated_at, source FROM consents WHERE profile_id = ?2
            ON CONFLICT (profile_id, channel, topic) DO UPDATE SET opted_in = excluded.opted_in,
              updated_at = excluded.updated_at, source = excluded.source
            WHERE excluded.updated_at > consents.updated_at
              OR (excluded.updated_at = consents.updated_at AND excluded.opted_in < consents.opted_in)
            """,
            "DELETE FROM consents WHERE profile_id = ?2",
            "UPDATE devices SET profile_id = ?1 WHERE profile_id = ?2",
            "DELETE FROM profiles WHERE id = ?2",
            """
            INSERT INTO identities (type, value, profile_id, updated_at) VALUES ('merged', ?2, ?1, ?3)
            ON CONFLICT (type, value) DO UPDATE SET profile_id = excluded.profile_id
            """,
        ] {
            try database.withStatement(sql) { s in
                try s.bind(id, at: 1)
                try s.bind(previous, at: 2)
                if s.parameterCount >= 3 { try s.bind(op.timestamp, at: 3) }
                try s.run()
            }
        }
        try recomputePurchases(id)
        // The consents and devices moved over: recount the flags.
        try database.withStatement(
            """
            UPDATE profiles SET flags = EXISTS (SELECT 1 FROM consents WHERE profile_id = ?1)
              | (EXISTS (SELECT 1 FROM devices WHERE profile_id = ?1) << 1) WHERE id = ?1
            """
        ) { s in
            try s.bind(id, at: 1)
            try s.run()
        }
        return applied(op)
    }

    private func consent(_ op: ProfileOperation, id rawID: String, channel: String, topic: String, optedIn: Bool,
                         source: String?) throws -> OperationResult {
        try Self.checkID(rawID, "profile_id")
        try Self.checkID(channel, "channel")
        guard topic.utf8.count <= Self.maxIDBytes else { throw ProfileStoreError.tooLarge("topic", "\(Self.maxIDBytes) bytes") }
        let id = try resolve(rawID)
        if try isSuppressed(id, .profile) { return skipped(op, "suppressed") }
        try ensureProfile(id, at: op.timestamp, flags: ProfileSchema.hasConsents)
        let changed = try database.withStatement(
            """
            INSERT INTO consents (profile_id, channel, topic, opted_in, updated_at, source) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (profile_id, channel, topic) DO UPDATE SET opted_in = excluded.opted_in,
              updated_at = excluded.updated_at, source = excluded.source
            WHERE excluded.updated_at > consents.updated_at
              OR (excluded.updated_at = consents.updated_at AND excluded.opted_in < consents.opted_in)
            """
        ) { s -> Bool in
            try s.bind(id, at: 1)
            try s.bind(channel, at: 2)
            try s.bind(topic, at: 3)
            try s.bind(optedIn ? 1 : 0, at: 4)
            try s.bind(op.timestamp, at: 5)
            if let source { try s.bind(source, at: 6) }
            try s.run()
            return database.changes > 0
        }
        return changed ? applied(op) : skipped(op, "stale")
    }

    private func device(_ op: ProfileOperation, id rawID: String, token: String, platform: String, app: String,
                        registered: Bool) throws -> OperationResult {
        try Self.checkID(rawID, "profile_id")
        guard !token.isEmpty else { throw ProfileStoreError.missingField("token") }
        guard token.utf8.count <= Self.maxTokenBytes else { throw ProfileStoreError.tooLarge("token", "\(Self.maxTokenBytes) bytes") }
        try Self.checkID(platform, "platform")
        try Self.checkID(app, "app")
        let id = try resolve(rawID)
        if try isSuppressed(id, .profile) || isSuppressed(token, .push) { return skipped(op, "suppressed") }
        try ensureProfile(id, at: op.timestamp, flags: ProfileSchema.hasDevices)
        let sql = registered
            ? """
              INSERT INTO devices (token, profile_id, platform, app, updated_at, invalid_since) VALUES (?1, ?2, ?3, ?4, ?5, NULL)
              ON CONFLICT (token) DO UPDATE SET profile_id = excluded.profile_id, platform = excluded.platform,
                app = excluded.app, updated_at = excluded.updated_at, invalid_since = NULL
              WHERE excluded.updated_at > devices.updated_at
              """
            : """
              INSERT INTO devices (token, profile_id, platform, app, updated_at, invalid_since) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
              ON CONFLICT (token) DO UPDATE SET updated_at = excluded.updated_at, invalid_since = excluded.updated_at
              WHERE excluded.updated_at >= devices.updated_at AND devices.invalid_since IS NULL
              """
        let changed = try database.withStatement(sql) { s -> Bool in
            try s.bind(token, at: 1)
            try s.bind(id, at: 2)
            try s.bind(platform, at: 3)
            try s.bind(app, at: 4)
            try s.bind(op.timestamp, at: 5)
            try s.run()
            return database.changes > 0
        }
        return changed ? applied(op) : skipped(op, "stale")
    }

    private func erase(_ op: ProfileOperation, key: ProfileKey, now: Int64) throws -> OperationResult {
        var suppress: [(String, AddressHasher.Channel)] = []
        let id: String?
        switch key {
        case .id(let raw):
            try Self.checkID(raw, "profile_id")
            id = try resolve(raw)
            suppress.append((raw, .profile))
        case .email(let email):
            guard !email.isEmpty else { throw ProfileStoreError.missingField("email") }
            id = try identityOwner("email", AddressHasher.normalizeEmail(email))
            suppress.append((email, .email))
        }
        var found = false
        if let id {
            suppress.append((id, .profile))
            try database.withStatement("SELECT type, value FROM identities WHERE profile_id = ?") { s in
                try s.bind(id, at: 1)
                while try s.step() {
                    guard let type = s.string(at: 0), let value = s.string(at: 1) else { continue }
                    switch type {
                    case "email": suppress.append((value, .email))
                    case "phone": suppress.append((value, .sms))
                    default: suppress.append((value, .profile))
                    }
                }
            }
            if let row = try loadRow(id) {
                found = true
                if let email = row.email { suppress.append((email, .email)) }
                if let phone = row.phone { suppress.append((phone, .sms)) }
            }
            try database.withStatement("SELECT token FROM devices WHERE profile_id = ?") { s in
                try s.bind(id, at: 1)
                while try s.step() { if let token = s.string(at: 0) { suppress.append((token, .push)) } }
            }
            for sql in [
                "DELETE FROM events WHERE profile_id = ?", "DELETE FROM consents WHERE profile_id = ?",
                "DELETE FROM devices WHERE profile_id = ?", "DELETE FROM identities WHERE profile_id = ?",
                "DELETE FROM content_blocks WHERE profile_id = ?", "DELETE FROM llm_cache WHERE profile_id = ?",
                "DELETE FROM profiles WHERE id = ?",
            ] {
                try database.withStatement(sql) { s in
                    try s.bind(id, at: 1)
                    try s.run()
                }
            }
        }
        for (address, channel) in suppress {
            try database.withStatement(
                """
                INSERT INTO suppressions (address_hash, channel, reason, created_at) VALUES (?, ?, 'erased', ?)
                ON CONFLICT (address_hash, channel) DO NOTHING
                """
            ) { s in
                try s.bind(AddressHasher.hash(address, channel: channel), at: 1)
                try s.bind(channel.rawValue, at: 2)
                try s.bind(now, at: 3)
                try s.run()
            }
        }
        return !found
            ? OperationResult(opID: op.opID, op: op.body.name, status: .applied, reason: "not_found",
                              message: "no such profile; the address is suppressed")
            : applied(op)
    }

    // MARK: - Frequency caps and suppressions

    /// Counts job `jobID` against the person's cap on `channel` for `day`, if the cap allows; a job already counted
    /// is allowed again. `channels`: the channels the cap spans (the person's messages on all of them count).
    func reserveCap(jobID: String, profileID: String, channel: String, limits: [CapLimit], day: String,
                    now: Int64) throws -> Bool {
        try database.transaction {
            let exists = try database.withStatement("SELECT 1 FROM caps WHERE job_id = ? AND channel = ?") { s in
                try s.bind(jobID, at: 1)
                try s.bind(channel, at: 2)
                return try s.step()
            }
            if exists { return true }
            for cap in limits where cap.limit > 0 {
                let list = cap.channels.isEmpty ? [channel] : cap.channels
                let marks = Array(repeating: "?", count: list.count).joined(separator: ",")
                let count = try database.withStatement(
                    "SELECT count(*) FROM caps WHERE profile_id = ? AND day = ? AND channel IN (\(marks))"
                ) { s in
                    try s.bind(profileID, at: 1)
                    try s.bind(day, at: 2)
                    for (i, c) in list.enumerated() { try s.bind(c, at: 3 + i) }
                    return try s.step() ? s.int(at: 0) : 0
                }
                guard count < cap.limit else { return false }
            }
            try database.withStatement("INSERT INTO caps (job_id, channel, profile_id, day, created_at) VALUES (?, ?, ?, ?, ?)") { s in
                try s.bind(jobID, at: 1)
                try s.bind(channel, at: 2)
                try s.bind(profileID, at: 3)
                try s.bind(day, at: 4)
                try s.bind(now, at: 5)
                try s.run()
            }
            return true
        }
    }

    /// Uncounts a job (its message was refused for good: it did not reach the person).
    func releaseCap(jobID: String, channel: String) throws {
        try database.withStatement("DELETE FROM caps WHERE job_id = ? AND channel = ?") { s in
            try s.bind(jobID, at: 1)
            try s.bind(channel, at: 2)
            try s.run()
        }
    }

    /// Deletes cap rows created before `millis`; returns the count.
    func pruneCaps(before millis: Int64) throws -> Int {
        try database.transaction {
            try database.withStatement("DELETE FROM caps WHERE created_at < ?") { s in
                try s.bind(millis, at: 1)
                try s.run()
            }
            return database.changes
        }
    }

    /// Adds an address to the suppression list (its hash only), e.g. after a hard bounce.
    func suppress(address: String, channel: AddressHasher.Channel, reason: String, now: Int64) throws {
        try database.withStatement(
            "INSERT OR IGNORE INTO suppressions (address_hash, channel, reason, created_at) VALUES (?, ?, ?, ?)"
        ) { s in
            try s.bind(AddressHasher.hash(address, channel: channel), at: 1)
            try s.bind(channel.rawValue, at: 2)
            try s.bind(reason, at: 3)
            try s.bind(now, at: 4)
            try s.run()
        }
    }

    // MARK: - Catalog and segments

    func upsertProducts(_ products: [CatalogProduct], now: Int64) throws -> Int {
        try database.transaction {
            for p in products {
                try database.withStatement(
                    """
                    INSERT INTO catalog (sku, name, price, currency, category, tags, url, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (sku) DO UPDATE SET name = excluded.name, price = excluded.price, currency = excluded.currency,
                      category = excluded.category, tags = excluded.tags, url = excluded.url, updated_at = excluded.updated_at
                    """
                ) { s in
                    try s.bind(p.sku, at: 1)
                    try s.bind(p.name, at: 2)
                    if let price = p.price { try s.bind(price, at: 3) }
                    if let c = p.currency { try s.bind(c, at: 4) }
                    if let c = p.category { try s.bind(c, at: 5) }
                    try s.bind(JSONValue.array(p.tags.map { .string($0) }).jsonString, at: 6)
                    if let u = p.url { try s.bind(u, at: 7) }
                    try s.bind(now, at: 8)
                    try s.run()
                }
            }
            return products.count
        }
    }

    func defineSegment(name: String, rule: JSONValue, now: Int64) throws {
        try database.transaction {
            try database.withStatement(
                """
                INSERT INTO segments (name, rule, updated_at) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET rule = excluded.rule, updated_at = excluded.updated_at
                """
            ) { s in
                try s.bind(name, at: 1)
                try s.bind(rule.jsonString, at: 2)
                try s.bind(now, at: 3)
                try s.run()
            }
        }
    }

    func removeSegment(name: String) throws -> Bool {
        try database.withStatement("DELETE FROM segments WHERE name = ?") { s in
            try s.bind(name, at: 1)
            try s.run()
            return database.changes > 0
        }
    }

    // MARK: - Compaction

    /// Moves everything from the WAL into the main file and truncates the WAL to zero bytes (so old page versions
    /// are gone), retrying while readers of other connections hold old snapshots; with `vacuum`, rebuilds the
    /// file first. Returns whether the WAL was fully checkpointed.
    @discardableResult
    func compact(vacuum: Bool) throws -> Bool {
        if vacuum { try database.execute("VACUUM") }
        for attempt in 0..<100 {
            let busy = try database.withStatement("PRAGMA wal_checkpoint(TRUNCATE)") { s -> Bool in
                guard try s.step() else { return false }
                return s.int(at: 0) != 0
            }
            if !busy { return true }
            usleep(UInt32(min(50_000, 1_000 * (attempt + 1))))
        }
        return false
    }

    // MARK: - Helpers

    private func run(_ query: StatementCache.Query) throws {
        try statements.with(query) { try $0.run() }
    }

    private func applied(_ op: ProfileOperation) -> OperationResult {
        OperationResult(opID: op.opID, op: op.body.name, status: .applied)
    }

    private func skipped(_ op: ProfileOperation, _ reason: String) -> OperationResult {
        OperationResult(opID: op.opID, op: op.body.name, status: .skipped, reason: reason)
    }

    static func checkID(_ value: String, _ field: String) throws { try ProfileLimits.checkID(value, field) }

    static func checkTraits(_ traits: JSONObject) throws { try ProfileLimits.checkTraits(traits) }

    /// The profile an id was merged into, else the id itself.
    private func resolve(_ id: String) throws -> String {
        try identityOwner("merged", id) ?? id
    }

    /// One statement for what an identify needs first: the profile `rawID` resolves to (following a merge), its
    /// row, and whether that profile id is suppressed.
    private func loadResolved(_ rawID: String) throws -> (id: String, row: ProfileRow?, suppressed: Bool) {
        let (id, row, rawSuppressed) = try statements.with(Query.resolvedRow) { s -> (String, ProfileRow?, Bool) in
            try s.bind(rawID, at: 1)
            try s.bind(AddressHasher.hash(rawID, channel: .profile), at: 2)
            guard try s.step() else { return (rawID, nil, false) }
            let id = s.string(at: 0) ?? rawID
            var row: ProfileRow?
            if s.int(at: 1) != 0 {
                row = ProfileRow(id: id, exists: true, email: s.string(at: 2), phone: s.string(at: 3),
                                 fields: try PackedFields.decodeFields(s.blob(at: 4) ?? []),
                                 createdAt: s.int64(at: 5), updatedAt: s.int64(at: 6))
            }
            return (id, row, s.int(at: 7) != 0)
        }
        // The statement checked the raw id; a merged id's profile is checked under its own id.
        let suppressed = id == rawID ? rawSuppressed : try isSuppressed(id, .profile)
        return (id, row, suppressed)
    }

    private func identityOwner(_ type: String, _ value: String) throws -> String? {
        try statements.with(Query.identityOwner) { s in
            try s.bind(type, at: 1)
            try s.bind(value, at: 2)
            return try s.step() ? s.string(at: 0) : nil
        }
    }

    /// Inserts an identity or moves its time forward; returns whether it was new.
    private func upsertIdentity(_ type: String, _ value: String, profileID: String, at time: Int64) throws -> Bool {
        try statements.with(Query.upsertIdentity) { s -> Bool in
            try s.bind(type, at: 1)
            try s.bind(value, at: 2)
            try s.bind(profileID, at: 3)
            try s.bind(time, at: 4)
            try s.run()
            return database.changes > 0
        }
    }

    private func isSuppressed(_ address: String, _ channel: AddressHasher.Channel) throws -> Bool {
        try statements.with(Query.suppressed) { s in
            try s.bind(AddressHasher.hash(address, channel: channel), at: 1)
            try s.bind(channel.rawValue, at: 2)
            return try s.step()
        }
    }

    private func loadRow(_ id: String) throws -> ProfileRow? {
        try statements.with(Query.loadRow) { s -> ProfileRow? in
            try s.bind(id, at: 1)
            guard try s.step() else { return nil }
            return ProfileRow(id: id, exists: true, email: s.string(at: 0), phone: s.string(at: 1),
                              fields: try PackedFields.decodeFields(s.blob(at: 2) ?? []),
                              createdAt: s.int64(at: 3), updatedAt: s.int64(at: 4))
        }
    }

    private func saveRow(_ row: ProfileRow) throws {
        try statements.with(Query.saveRow) { s in
            try s.bind(row.id, at: 1)
            if let email = row.email { try s.bind(email, at: 2) }
            if let phone = row.phone { try s.bind(phone, at: 3) }
            try s.bind(PackedFields.encode(row.fields), at: 4)
            try s.bind(row.createdAt, at: 5)
            try s.bind(row.updatedAt, at: 6)
            try s.run()
        }
    }

    /// Creates the profile if it does not exist, and sets `flags` bits (`ProfileSchema.hasConsents`, ...).
    private func ensureProfile(_ id: String, at time: Int64, flags: Int64 = 0) throws {
        try statements.with(Query.ensureProfile) { s in
            try s.bind(id, at: 1)
            try s.bind(time, at: 2)
            try s.bind(flags, at: 3)
            try s.run()
        }
    }

    private func recomputePurchases(_ id: String) throws {
        try database.withStatement(
            """
            UPDATE profiles SET
              order_count = (SELECT count(*) FROM events WHERE profile_id = ?1 AND amount IS NOT NULL),
              lifetime_value = (SELECT total(amount) FROM events WHERE profile_id = ?1 AND amount IS NOT NULL),
              last_purchase_at = (SELECT occurred_at FROM events WHERE profile_id = ?1 AND amount IS NOT NULL ORDER BY occurred_at DESC, seq DESC LIMIT 1),
              last_purchase_amount = (SELECT amount FROM events WHERE profile_id = ?1 AND amount IS NOT NULL ORDER BY occurred_at DESC, seq DESC LIMIT 1),
              last_purchase_currency = (SELECT currency FROM events WHERE profile_id = ?1 AND amount IS NOT NULL ORDER BY occurred_at DESC, seq DESC LIMIT 1)
            WHERE id = ?1
            """
        ) { s in
            try s.bind(id, at: 1)
            try s.run()
        }
    }

    // MARK: - Statements

    /// The statements of the per-operation path, prepared once.
    private enum Query {
        static let count = 12
        static let savepoint = StatementCache.Query(slot: 0, sql: "SAVEPOINT profile_op")
        static let release = StatementCache.Query(slot: 1, sql: "RELEASE profile_op")
        static let rollbackTo = StatementCache.Query(slot: 2, sql: "ROLLBACK TO profile_op")
        static let recordOp = StatementCache.Query(slot: 3, sql: """
            INSERT INTO applied_ops (op_hash, status, applied_at) VALUES (?, 'applied', ?) ON CONFLICT (op_hash) DO NOTHING
            """)
        static let opStatus = StatementCache.Query(slot: 4, sql: "UPDATE applied_ops SET status = ?2 WHERE op_hash = ?1")
        static let resolvedRow = StatementCache.Query(slot: 5, sql: """
            SELECT r.id, p.id IS NOT NULL, p.email, p.phone, p.fields, p.created_at, p.updated_at,
                   EXISTS (SELECT 1 FROM suppressions WHERE address_hash = ?2 AND channel = 'profile')
            FROM (SELECT coalesce((SELECT profile_id FROM identities WHERE type = 'merged' AND value = ?1), ?1) AS id) AS r
            LEFT JOIN profiles AS p ON p.id = r.id
            """)
        static let loadRow = StatementCache.Query(
            slot: 6, sql: "SELECT email, phone, fields, created_at, updated_at FROM profiles WHERE id = ?")
        static let saveRow = StatementCache.Query(slot: 7, sql: """
            INSERT INTO profiles (id, email, phone, fields, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET email = excluded.email, phone = excluded.phone, fields = excluded.fields,
              created_at = excluded.created_at, updated_at = excluded.updated_at
            """)
        static let ensureProfile = StatementCache.Query(slot: 8, sql: """
            INSERT INTO profiles (id, created_at, updated_at, flags) VALUES (?1, ?2, ?2, ?3)
            ON CONFLICT (id) DO UPDATE SET flags = flags | excluded.flags WHERE flags & excluded.flags != excluded.flags
            """)
        static let identityOwner = StatementCache.Query(
            slot: 9, sql: "SELECT profile_id FROM identities WHERE type = ? AND value = ?")
        static let suppressed = StatementCache.Query(
            slot: 10, sql: "SELECT 1 FROM suppressions WHERE address_hash = ? AND channel = ?")
        static let upsertIdentity = StatementCache.Query(slot: 11, sql: """
            INSERT INTO identities (type, value, profile_id, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (type, value) DO UPDATE SET updated_at = max(identities.updated_at, excluded.updated_at)
            WHERE excluded.updated_at > identities.updated_at
            """)
    }
}
