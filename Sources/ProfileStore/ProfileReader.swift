import FleetCore
import FleetStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A synchronous reader of the profile store over its own SQLite connection (WAL: readers never block the
/// writer or each other).
///
/// Not thread-safe: confine it to one thread or serial queue. `ProfileStore` keeps a small pool of them on
/// their own queues; open one directly to read from a dedicated thread (the benchmark does).
///
/// A read of the read model is one prepared statement for a profile without consents or devices (two or three
/// otherwise, see `ProfileSchema`'s flags), a decode of the packed traits, and the segments (their definitions
/// cached for `segmentCacheTTL`, checked against a coarse monotonic clock).
public final class ProfileReader {
    let database: SQLiteDatabase
    private let statements: StatementCache
    private var segmentCache: (loadedAt: Int64, segments: [Segment])?

    /// How long the segment definitions are cached before being read again.
    public var segmentCacheTTL: Duration = .seconds(1) {
        didSet { segmentCacheTTLNanos = Self.nanoseconds(segmentCacheTTL) }
    }
    private var segmentCacheTTLNanos: Int64 = 1_000_000_000

    /// Opens a reader on the store at `path` (the store must exist; `ProfileStore` creates it).
    public init(path: String) throws {
        database = try SQLiteDatabase(path: path, create: false)
        statements = StatementCache(database: database, slots: Query.count)
        try database.execute("PRAGMA query_only=1")
    }

    /// Closes the connection.
    public func close() {
        statements.close()
        database.close()
    }

    // MARK: - The read model

    /// The read model of the profile with id `id` (or of the profile it was merged into), or nil.
    ///
    /// `segments`: the segments to evaluate (`nil`: every defined segment, cached for `segmentCacheTTL`).
    public func view(id: String, segments: [Segment]? = nil) throws -> ProfileView? {
        guard var view = try loadView(id: id) ?? resolveMerged(id).flatMap({ try loadView(id: $0) }) else {
            return nil
        }
        let rules = try segments ?? definedSegments()
        if !rules.isEmpty {
            view.segments = try evaluate(rules, for: view)
        }
        return view
    }

    /// The read model of the profile with this email (normalized first), or nil.
    public func view(email: String, segments: [Segment]? = nil) throws -> ProfileView? {
        guard let id = try profileID(email: email) else { return nil }
        return try view(id: id, segments: segments)
    }

    /// The read model by id, else by email (for `fleet profiles show ID|EMAIL`).
    public func view(idOrEmail key: String) throws -> ProfileView? {
        if let v = try view(id: key) { return v }
        return key.contains("@") ? try view(email: key) : nil
    }

    /// The id of the profile an email belongs to.
    public func profileID(email: String) throws -> String? {
        try statements.with(Query.emailOwner) { s in
            try s.bind(AddressHasher.normalizeEmail(email), at: 1)
            return try s.step() ? s.string(at: 0) : nil
        }
    }

    /// Whether `address` (an email, phone, push token or profile id, normalized for `channel`) is suppressed on
    /// `channel`. Erased people stay suppressed: only a hash of the address is kept.
    /// The catalog's products ranked by how many purchases since `sinceMillis` (events with an amount whose
    /// `items` name the sku) included them, best first: `({sku, name, price, currency, category, url, sales},
    /// category)`, at most `limit`.
    public func topSellers(sinceMillis: Int64, limit: Int = 5000) throws -> [(product: JSONValue, category: String?)] {
        try database.withStatement("""
            WITH sales AS (
                SELECT json_extract(i.value, '$.sku') AS sku, count(*) AS n
                FROM events e, json_each(e.properties, '$.items') i
                WHERE e.amount IS NOT NULL AND e.occurred_at >= ? AND i.type = 'object'
                GROUP BY 1)
            SELECT c.sku, c.name, c.price, c.currency, c.category, c.url, coalesce(s.n, 0) AS n
            FROM catalog c LEFT JOIN sales s ON s.sku = c.sku
            ORDER BY n DESC, c.sku LIMIT ?
            """) { s in
            try s.bind(sinceMillis, at: 1)
            try s.bind(limit, at: 2)
            var out: [(JSONValue, String?)] = []
            while try s.step() {
                var o = JSONObject()
                o["sku"] = .string(s.string(at: 0) ?? "")
                o["name"] = .string(s.string(at: 1) ?? "")
                o["price"] = s.isNull(at: 2) ? .null : .double(s.double(at: 2))
                o["currency"] = s.string(at: 3).map { .string($0) } ?? .null
                o["category"] = s.string(at: 4).map { .string($0) } ?? .null
                o["url"] = s.string(at: 5).map { .string($0) } ?? .null
                o["sales"] = .int(s.int64(at: 6))
                out.append((.object(o), s.string(at: 4)))
            }
            return out
        }
    }

    public func isSuppressed(address: String, channel: AddressHasher.Channel) throws -> Bool {
        try statements.with(Query.suppressed) { s in
            try s.bind(AddressHasher.hash(address, channel: channel), at: 1)
            try s.bind(channel.rawValue, at: 2)
            return try s.step()
        }
    }

    /// The number of events named `name` of a profile, optionally since a time (milliseconds since the epoch).
    public func eventCount(profileID: String, name: String, since: Int64? = nil) throws -> Int64 {
        try statements.with(Query.eventCount) { s in
            try s.bind(profileID, at: 1)
            try s.bind(name, at: 2)
            try s.bind(since ?? Int64.min, at: 3)
            return try s.step() ? s.int64(at: 0) : 0
        }
    }

    /// A product of the catalog.
    public func product(sku: String) throws -> CatalogProduct? {
        try database.withStatement(
            "SELECT sku, name, price, currency, category, tags, url FROM catalog WHERE sku = ?"
        ) { s in
            try s.bind(sku, at: 1)
            guard try s.step() else { return nil }
            let tags = (try? JSONValue(parsing: s.string(at: 5) ?? "[]"))
            return CatalogProduct(
                sku: s.string(at: 0) ?? sku, name: s.string(at: 1) ?? "", price: s.isNull(at: 2) ? nil : s.double(at: 2),
                currency: s.string(at: 3), category: s.string(at: 4),
                tags: { if case .array(let a)? = tags { return a.compactMap(\.stringValue) } else { return [] } }(),
                url: s.string(at: 6))
        }
    }

    /// The number of profiles.
    public func profileCount() throws -> Int {
        try database.withStatement("SELECT count(*) FROM profiles") { try $0.step() ? $0.int(at: 0) : 0 }
    }

    /// Profile ids in id order after `after`, at most `limit` (for scanning the store).
    public func profileIDs(after: String?, limit: Int) throws -> [String] {
        try database.withStatement("SELECT id FROM profiles WHERE id > ? ORDER BY id LIMIT ?") { s in
            try s.bind(after ?? "", at: 1)
            try s.bind(limit, at: 2)
            var ids: [String] = []
            while try s.step() { if let id = s.string(at: 0) { ids.append(id) } }
            return ids
        }
    }

    // MARK: - Segments

    /// The defined segments, in name order.
    public func definedSegments() throws -> [Segment] {
        let now = Self.coarseNanos()
        if let cache = segmentCache, now &- cache.loadedAt < segmentCacheTTLNanos { return cache.segments }
        let segments = try database.withStatement("SELECT name, rule FROM segments ORDER BY name") { s in
            var out: [Segment] = []
            while try s.step() {
                guard let name = s.string(at: 0), let text = s.string(at: 1),
                      let json = try? JSONValue(parsing: text), let rule = try? SegmentRule(json: json)
                else { continue }
                out.append(Segment(name: name, rule: rule))
            }
            return out
        }
        segmentCache = (now, segments)
        return segments
    }

    /// The defined segment named `name`.
    public func segment(named name: String) throws -> Segment? {
        segmentCache = nil
        return try definedSegments().first { $0.name == name }
    }

    /// The names of the segments among `segments` that `view` is in.
    public func evaluate(_ segments: [Segment], for view: ProfileView, now: Int64 = ProfileStore.nowMillis()) throws -> [String] {
        try segments.filter { segment in
            try segment.rule.matches(view, now: now) { name, since in
                try eventCount(profileID: view.id, name: name, since: since)
            }
        }.map(\.name)
    }

    /// Scans the store: the ids of the profiles in `segment`, in id order (at most `limit`), and how many match.
    public func members(of segment: Segment, limit: Int = Int.max) throws -> (count: Int, ids: [String]) {
        var count = 0
        var ids: [String] = []
        var after: String?
        let now = ProfileStore.nowMillis()
        repeat {
            let page = try memberPage(of: segment, after: after, now: now)
            count += page.members.count
            for member in page.members where ids.count < limit { ids.append(member.id) }
            after = page.last
        } while after != nil
        return (count, ids)
    }

    // MARK: - Loading

    func resolveMerged(_ id: String) throws -> String? {
        try statements.with(Query.merged) { s in
            try s.bind(id, at: 1)
            return try s.step() ? s.string(at: 0) : nil
        }
    }

    /// One prepared statement for the profile row (fields, packed traits, purchase summary, flags), and the
    /// consents and devices statements only when the flags say the profile may have some.
    func loadView(id: String) throws -> ProfileView? {
        var flags: Int64 = 0
        var loaded: ProfileView?
        try statements.with(Query.profile) { s in
            try s.bind(id, at: 1)
            guard try s.step() else { return }
            let traits = try PackedFields.decodeTraits(s.blob(at: 2) ?? [])
            let purchases = PurchaseSummary(
                orderCount: s.int(at: 5), lifetimeValue: s.double(at: 6),
                lastPurchaseAt: s.isNull(at: 7) ? nil : s.int64(at: 7),
                lastPurchaseAmount: s.isNull(at: 8) ? nil : s.double(at: 8), lastPurchaseCurrency: s.string(at: 9))
            loaded = ProfileView(
                id: id, email: s.string(at: 0), phone: s.string(at: 1), traits: traits, createdAt: s.int64(at: 3),
                updatedAt: s.int64(at: 4), purchases: purchases)
            flags = s.int64(at: 10)
        }
        guard flags != 0, var full = loaded else { return loaded }
        if flags & ProfileSchema.hasConsents != 0 {
            full.consents = try statements.with(Query.consents) { s in
                try s.bind(id, at: 1)
                var out: [ConsentRecord] = []
                while try s.step() {
                    out.append(ConsentRecord(
                        channel: s.string(at: 0) ?? "", topic: s.string(at: 1) ?? "", optedIn: s.int(at: 2) != 0,
                        updatedAt: s.int64(at: 3), source: s.string(at: 4)))
                }
                return out
            }
        }
        if flags & ProfileSchema.hasDevices != 0 {
            full.devices = try statements.with(Query.devices) { s in
                try s.bind(id, at: 1)
                var out: [DeviceRecord] = []
                while try s.step() {
                    out.append(DeviceRecord(
                        token: s.string(at: 0) ?? "", platform: s.string(at: 1) ?? "", app: s.string(at: 2) ?? "",
                        updatedAt: s.int64(at: 3), invalidSince: s.isNull(at: 4) ? nil : s.int64(at: 4)))
                }
                return out
            }
        }
        return full
    }

    // MARK: - Statements and clock

    private enum Query {
        static let count = 7
        static let profile = StatementCache.Query(slot: 0, sql: """
            SELECT email, phone, fields, created_at, updated_at, order_count, lifetime_value, last_purchase_at,
                   last_purchase_amount, last_purchase_currency, flags FROM profiles WHERE id = ?
            """)
        static let consents = StatementCache.Query(
            slot: 1, sql: "SELECT channel, topic, opted_in, updated_at, source FROM consents WHERE profile_id = ?")
        static let devices = StatementCache.Query(
            slot: 2, sql: "SELECT token, platform, app, updated_at, invalid_since FROM devices WHERE profile_id = ?")
        static let merged = StatementCache.Query(
            slot: 3, sql: "SELECT profile_id FROM identities WHERE type = 'merged' AND value = ?")
        static let emailOwner = StatementCache.Query(
            slot: 4, sql: "SELECT profile_id FROM identities WHERE type = 'email' AND value = ?")
        static let eventCount = StatementCache.Query(
            slot: 5, sql: "SELECT count(*) FROM events WHERE profile_id = ? AND name = ? AND occurred_at >= ?")
        static let suppressed = StatementCache.Query(
            slot: 6, sql: "SELECT 1 FROM suppressions WHERE address_hash = ? AND channel = ?")
    }

    /// A monotonic time in nanoseconds from the coarse clock (a few nanoseconds to read, milliseconds of
    /// resolution: plenty for a cache TTL of a second).
    private static func coarseNanos() -> Int64 {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #endif
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    private static func nanoseconds(_ d: Duration) -> Int64 {
        let c = d.components
        return c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    }
}
