import FleetCore
import FleetStore
import FleetTestSupport
import Foundation
import ProfileStore
import Testing

/// A store written by the first schema (traits and their times as JSON columns) opened by this build: migration 2
/// packs the fields, sets the consent/device flags, and nothing is lost (values, tombstones, per-field times).
@Suite("Profile store migration")
struct ProfileMigrationTests {
    /// The first schema's `profiles` table and the tables a view reads, as version 1 created them.
    static let version1 = """
        CREATE TABLE profile_schema (version INTEGER NOT NULL);
        INSERT INTO profile_schema (version) VALUES (1);
        CREATE TABLE profiles (
            id TEXT NOT NULL UNIQUE, email TEXT, phone TEXT, traits TEXT NOT NULL, trait_times TEXT NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, order_count INTEGER NOT NULL DEFAULT 0,
            lifetime_value REAL NOT NULL DEFAULT 0, last_purchase_at INTEGER, last_purchase_amount REAL,
            last_purchase_currency TEXT);
        CREATE TABLE identities (type TEXT NOT NULL, value TEXT NOT NULL, profile_id TEXT NOT NULL,
            updated_at INTEGER NOT NULL, PRIMARY KEY (type, value)) WITHOUT ROWID;
        CREATE INDEX identities_profile ON identities(profile_id);
        CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, profile_id TEXT NOT NULL,
            name TEXT NOT NULL, properties TEXT NOT NULL, occurred_at INTEGER NOT NULL, amount REAL, currency TEXT);
        CREATE INDEX events_profile ON events(profile_id, name, occurred_at);
        CREATE TABLE consents (profile_id TEXT NOT NULL, channel TEXT NOT NULL, topic TEXT NOT NULL,
            opted_in INTEGER NOT NULL, updated_at INTEGER NOT NULL, source TEXT,
            PRIMARY KEY (profile_id, channel, topic)) WITHOUT ROWID;
        CREATE TABLE devices (token TEXT PRIMARY KEY, profile_id TEXT NOT NULL, platform TEXT NOT NULL,
            app TEXT NOT NULL, updated_at INTEGER NOT NULL, invalid_since INTEGER) WITHOUT ROWID;
        CREATE INDEX devices_profile ON devices(profile_id);
        CREATE TABLE suppressions (address_hash BLOB NOT NULL, channel TEXT NOT NULL, reason TEXT NOT NULL,
            created_at INTEGER NOT NULL, PRIMARY KEY (address_hash, channel)) WITHOUT ROWID;
        CREATE TABLE applied_ops (op_hash BLOB PRIMARY KEY, status TEXT NOT NULL, applied_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE catalog (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price REAL, currency TEXT, category TEXT,
            tags TEXT NOT NULL, url TEXT, updated_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE segments (name TEXT PRIMARY KEY, rule TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO profiles (id, email, traits, trait_times, created_at, updated_at) VALUES
          ('m1', 'ana@example.com',
           '{"tier":"gold","points":42,"vip":true,"ratio":0.5,"name":"Zoë \\"Z\\" Ñ","recs":[{"sku":"A/1","price":9.5},null,[1,2]]}',
           '{"tier":2000,"points":2000,"vip":2000,"ratio":2000,"name":2000,"recs":2000,"city":3000,"$email":2000}',
           1000, 3000),
          ('m2', NULL, '{}', '{}', 1000, 1000),
          ('m3', NULL, '{"tier":"silver"}', '{"tier":1000}', 1000, 1000);
        INSERT INTO consents VALUES ('m1', 'email', '', 1, 2000, 'web');
        INSERT INTO devices VALUES ('tok-m3', 'm3', 'ios', 'shop', 1000, NULL);
        """

    @Test("a version-1 store opens, migrated: traits, times and tombstones kept; consents and devices still read")
    func migrateVersion1() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("fleet.sqlite").path
        let old = try SQLiteDatabase(path: path)
        try old.execute(Self.version1)
        old.close()

        let store = ProfileStore(path: path)
        defer { store.close() }
        let m1 = try #require(try await store.view(id: "m1"))
        #expect(m1.traits["tier"] == "gold")
        #expect(m1.traits["points"] == 42)
        #expect(m1.traits["vip"] == true)
        #expect(m1.traits["ratio"] == 0.5)
        #expect(m1.traits["name"] == "Zoë \"Z\" Ñ")
        #expect(m1.traits["recs"] == [["sku": "A/1", "price": 9.5], nil, [1, 2]])
        #expect(m1.traits["city"] == nil)
        #expect(m1.traits.count == 6)
        #expect(m1.email == "ana@example.com")
        #expect(m1.consent(channel: "email") == true)
        #expect(try await store.view(id: "m2")?.traits.isEmpty == true)
        #expect(try await store.view(id: "m3")?.devices.map(\.token) == ["tok-m3"])

        // The times came along: older writes lose, newer win, the removed `city` stays removed for older writes.
        let ops = [
            ProfileOperation(opID: "late", timestampMillis: 1500, body: .identify(
                profileID: "m1", traits: JSONObject(["tier": "bronze", "city": "rome"]), identities: [])),
            ProfileOperation(opID: "new", timestampMillis: 5000, body: .identify(
                profileID: "m1", traits: JSONObject(["points": 43]), identities: [])),
        ]
        let results = try await store.apply(ops)
        #expect(results[0].status == .skipped && results[0].reason == "stale")
        #expect(results[1].status == .applied)
        let after = try #require(try await store.view(id: "m1"))
        #expect(after.traits["tier"] == "gold")
        #expect(after.traits["points"] == 43)
        #expect(after.traits["city"] == nil)
        #expect(after.traits["recs"] == m1.traits["recs"])
    }

    @Test("every kind of trait value survives a write and a read unchanged")
    func roundTrip() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        let long = String(repeating: "ü€𝄞x", count: 300)
        let value: JSONValue = [
            "s": "", "long": .string(long), "neg": -9_223_372_036_854_775_807, "max": .int(Int64.max), "zero": 0,
            "d": -1.25e-300, "f": false, "t": true, "empty_array": [], "empty_object": [:],
            "nested": ["a": [["b": [nil, 1, "x"]]], "c": ["d": ["e": 1.5]]], "k\u{1}ey\"": "v\n\t\\",
        ]
        let traits = try #require(value.objectValue)
        let r = try await store.apply([ProfileOperation(
            opID: "rt", timestampMillis: -5, body: .identify(profileID: "rt", traits: traits, identities: []))])
        #expect(r[0].status == .applied)
        let view = try #require(try await store.view(id: "rt"))
        #expect(view.traits == traits)
        #expect(view.createdAt == -5)
    }
}
