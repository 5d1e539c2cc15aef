import FleetCore
import FleetTestSupport
import Foundation
import ProfileStore
import Testing

/// The profile store on a real SQLite file, without a broker.
@Suite("Profile store")
struct ProfileStoreTests {
    static func store() throws -> (ProfileStore, URL) {
        let dir = try TestEnvironment.temporaryDirectory()
        return (ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path), dir)
    }

    static func identify(_ op: String, _ id: String, at ms: Int64, _ traits: JSONValue, email: String? = nil) -> ProfileOperation {
        ProfileOperation(opID: op, timestampMillis: ms, body: .identify(
            profileID: id, traits: traits.objectValue ?? JSONObject(), identities: email.map { [ProfileIdentity(.email, $0)] } ?? []))
    }

    @Test("SHA-256 matches the FIPS test vectors")
    func sha256() {
        #expect(Digests.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digests.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digests.sha256Hex(String(repeating: "a", count: 1000)).hasPrefix("41edece42d63e8d9bf515a9ba6932e1c"))
    }

    @Test("per-field last-writer-wins: an older update never overwrites a newer one; a duplicate op id applies once")
    func lastWriterWins() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let r1 = try await store.apply([Self.identify("o2", "p1", at: 2000, ["tier": "gold", "city": "paris"], email: " Anna@Example.COM ")])
        #expect(r1[0].status == .applied)
        // Older: tier is stale, points is new.
        let r2 = try await store.apply([Self.identify("o1", "p1", at: 1000, ["tier": "bronze", "points": 5])])
        #expect(r2[0].status == .applied)
        #expect(r2[0].staleFields == ["tier"])
        // All stale.
        let r3 = try await store.apply([Self.identify("o0", "p1", at: 500, ["tier": "silver"])])
        #expect(r3[0].status == .skipped && r3[0].reason == "stale")
        // Duplicate op id, even with other content.
        let r4 = try await store.apply([Self.identify("o2", "p1", at: 9000, ["tier": "platinum"])])
        #expect(r4[0].status == .skipped && r4[0].reason == "duplicate")
        // Removing a trait with null, then an older value arrives late: stays removed.
        _ = try await store.apply([Self.identify("o3", "p1", at: 3000, ["city": .null])])
        _ = try await store.apply([Self.identify("o4", "p1", at: 2500, ["city": "lyon"])])
        let view = try #require(try await store.view(id: "p1"))
        #expect(view.traits["tier"] == "gold")
        #expect(view.traits["points"] == 5)
        #expect(view.traits["city"] == nil)
        #expect(view.email == "anna@example.com")
        let byEmail = try await store.view(email: "ANNA@example.com")
        #expect(byEmail?.id == "p1")
    }

    @Test("a rejected op in a batch rolls back alone; the others apply; duplicates of events count once")
    func batchIsolation() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let huge = JSONValue.string(String(repeating: "x", count: 40_000))
        let ops: [ProfileOperation] = [
            Self.identify("a", "p1", at: 1000, ["tier": "gold"], email: "p1@example.com"),
            Self.identify("b", "p1", at: 2000, ["bio": huge]),
            ProfileOperation(opID: "c", timestampMillis: 1000, body: .track(profileID: "p1", event: TrackedEvent(
                eventID: "e1", name: "purchase", occurredAt: 1500, amount: 20, currency: "EUR"))),
            ProfileOperation(opID: "d", timestampMillis: 1000, body: .track(profileID: "p1", event: TrackedEvent(
                eventID: "e1", name: "purchase", occurredAt: 1500, amount: 20, currency: "EUR"))),
            // The email of p1 on p2: conflict, rejected, and p2's other fields in that op are not applied.
            Self.identify("e", "p2", at: 1000, ["tier": "silver"], email: "p1@example.com"),
            ProfileOperation(opID: "f", timestampMillis: 3000, body: .track(profileID: "p1", event: TrackedEvent(
                eventID: "e2", name: "purchase", occurredAt: 3000, amount: 5.5, currency: "USD"))),
        ]
        let results = try await store.apply(ops)
        #expect(results.map(\.status) == [.applied, .rejected, .applied, .skipped, .rejected, .applied])
        #expect(results[1].reason == "too_large")
        #expect(results[3].reason == "duplicate_event")
        #expect(results[4].reason == "identity_conflict")
        let view = try #require(try await store.view(id: "p1"))
        #expect(view.traits["bio"] == nil)
        #expect(view.purchases.orderCount == 2)
        #expect(view.purchases.lifetimeValue == 25.5)
        #expect(view.purchases.lastPurchaseAmount == 5.5)
        #expect(view.purchases.lastPurchaseCurrency == "USD")
        #expect(try await store.view(id: "p2") == nil)
        // A rejected op id is not recorded: fixed, it applies.
        let retry = try await store.apply([Self.identify("e", "p2", at: 1000, ["tier": "silver"])])
        #expect(retry[0].status == .applied)
    }

    @Test("merge keeps everything of both profiles")
    func merge() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        _ = try await store.apply([
            Self.identify("a1", "anon", at: 1000, ["city": "berlin", "tier": "bronze"], email: "old@example.com"),
            ProfileOperation(opID: "a2", timestampMillis: 1100, body: .track(profileID: "anon", event: TrackedEvent(
                eventID: "ev-a", name: "purchase", occurredAt: 1100, amount: 10))),
            ProfileOperation(opID: "a3", timestampMillis: 1200, body: .consent(
                profileID: "anon", channel: "email", topic: "news", optedIn: true, source: "web")),
            ProfileOperation(opID: "a4", timestampMillis: 1300, body: .device(
                profileID: "anon", token: "tok-anon", platform: "ios", app: "shop", registered: true)),
            ProfileOperation(opID: "a5", timestampMillis: 5000, body: .consent(
                profileID: "anon", channel: "sms", topic: "", optedIn: false, source: "web")),
            Self.identify("k1", "known", at: 2000, ["tier": "gold", "first_name": "anna"], email: "new@example.com"),
            ProfileOperation(opID: "k2", timestampMillis: 2100, body: .track(profileID: "known", event: TrackedEvent(
                eventID: "ev-k", name: "purchase", occurredAt: 2100, amount: 30))),
            ProfileOperation(opID: "k3", timestampMillis: 2200, body: .consent(
                profileID: "known", channel: "sms", topic: "", optedIn: true, source: "crm")),
            ProfileOperation(opID: "k4", timestampMillis: 2300, body: .device(
                profileID: "known", token: "tok-known", platform: "android", app: "shop", registered: true)),
            ProfileOperation(opID: "m", timestampMillis: 6000, body: .merge(profileID: "known", previousID: "anon")),
        ])
        let view = try #require(try await store.view(id: "known"))
        #expect(view.traits["city"] == "berlin")
        #expect(view.traits["tier"] == "gold")
        #expect(view.traits["first_name"] == "anna")
        #expect(view.email == "new@example.com")
        #expect(view.purchases.orderCount == 2)
        #expect(view.purchases.lifetimeValue == 40)
        #expect(view.consent(channel: "email", topic: "news") == true)
        #expect(view.consent(channel: "sms") == false)  // the newer (anon's, at 5000) wins
        #expect(Set(view.devices.map(\.token)) == ["tok-anon", "tok-known"])
        #expect(try await store.view(email: "old@example.com")?.id == "known")
        #expect(try await store.view(email: "new@example.com")?.id == "known")
        // The old id follows the merge, for reads and for later operations.
        #expect(try await store.view(id: "anon")?.id == "known")
        _ = try await store.apply([Self.identify("late", "anon", at: 7000, ["points": 7])])
        #expect(try await store.view(id: "known")?.traits["points"] == 7)
        let count = try await store.read { try $0.profileCount() }
        #expect(count == 1)
    }

    @Test("erase leaves none of the person's data in the file's bytes, and suppresses the addresses")
    func erase() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let secrets = ["zelda.secret@example.org", "+4915112345678", "Zeldastrasse 42", "tok-ZELDA-0001", "ZeldaFirstName"]
        var ops: [ProfileOperation] = []
        for i in 0..<50 {  // other people around, and many versions of Zelda's row
            ops.append(Self.identify("other-\(i)", "p\(i)", at: 1000, ["first_name": "bob", "n": .int(Int64(i))], email: "p\(i)@example.com"))
            ops.append(Self.identify("z-\(i)", "zelda", at: 1000 + Int64(i), ["street": .string(secrets[2]), "first_name": .string(secrets[4]), "n": .int(Int64(i))], email: secrets[0]))
        }
        ops.append(ProfileOperation(opID: "zp", timestampMillis: 3000, body: .identify(profileID: "zelda", traits: JSONObject(), identities: [ProfileIdentity(.phone, secrets[1])])))
        ops.append(ProfileOperation(opID: "zd", timestampMillis: 3000, body: .device(profileID: "zelda", token: secrets[3], platform: "ios", app: "shop", registered: true)))
        ops.append(ProfileOperation(opID: "ze", timestampMillis: 3000, body: .track(profileID: "zelda", event: TrackedEvent(
            eventID: "zev", name: "viewed", properties: JSONObject(["street": .string(secrets[2])]), occurredAt: 3000))))
        _ = try await store.apply(ops)
        #expect(try await store.view(email: secrets[0]) != nil)
        // Not vacuous: before the erase, the values are in the files.
        let before = ["fleet.sqlite", "fleet.sqlite-wal"].compactMap { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path) }
        for secret in secrets where !secret.hasPrefix("+") {
            #expect(before.contains { $0.range(of: Data(secret.utf8)) != nil }, "the value was never written")
        }

        let result = try await store.erase(.id("zelda"))
        #expect(result.status == .applied)
        #expect(try await store.view(id: "zelda") == nil)
        #expect(try await store.isSuppressed(address: " ZELDA.secret@example.org", channel: .email))
        #expect(try await store.isSuppressed(address: secrets[3], channel: .push))
        #expect(try await store.isSuppressed(address: "+49 151 12345678", channel: .sms))
        #expect(try await !store.isSuppressed(address: "p1@example.com", channel: .email))
        #expect(try await store.view(id: "p1") != nil)

        for file in ["fleet.sqlite", "fleet.sqlite-wal"] {
            let url = dir.appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: url.path) else { continue }
            for secret in secrets + ["zelda.secret"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(file) still holds a value of the erased person")
            }
        }
        // The CRM syncs the person again: suppressed, nothing stored.
        let again = try await store.apply([Self.identify("z-again", "zelda", at: 9000, ["first_name": "zelda"], email: secrets[0])])
        #expect(again[0].status == .skipped && again[0].reason == "suppressed")
        let again2 = try await store.apply([Self.identify("z-again2", "zelda-2", at: 9000, ["first_name": "zelda"], email: secrets[0])])
        #expect(again2[0].status == .skipped && again2[0].reason == "suppressed")
    }

    @Test("segments: traits, events in a window, consent; for one profile and over the store")
    func segments() async throws {
        let (store, dir) = try Self.store()
        defer { store.close(); try? FileManager.default.removeItem(at: dir) }
        let now = ProfileStore.nowMillis()
        var ops: [ProfileOperation] = []
        for i in 0..<20 {
            ops.append(Self.identify("i\(i)", "p\(i)", at: 1000, ["tier": i % 2 == 0 ? "gold" : "silver", "points": .int(Int64(i * 10))]))
            for j in 0..<(i % 4) {
                ops.append(ProfileOperation(opID: "t\(i)-\(j)", timestampMillis: now, body: .track(profileID: "p\(i)", event: TrackedEvent(
                    eventID: "ev\(i)-\(j)", name: "purchase", occurredAt: now - Int64(j) * 86_400_000 * 10, amount: 10))))
            }
            if i % 5 == 0 {
                ops.append(ProfileOperation(opID: "c\(i)", timestampMillis: 1000, body: .consent(profileID: "p\(i)", channel: "email", topic: "", optedIn: true, source: nil)))
            }
        }
        _ = try await store.apply(ops)
        try await store.defineSegment(name: "gold_buyers", rule: [
            "all": [["trait": "tier", "op": "eq", "value": "gold"], ["event": "purchase", "op": "gte", "count": 1, "within_days": 15]],
        ])
        try await store.defineSegment(name: "email_ok", rule: ["consent": "email"])
        // gold: even i; purchases within 15 days: i % 4 >= 1 (the first is now) -> even with i%4 == 2: 2, 6, 10, 14, 18
        let gold = try await store.read { reader in
            try reader.members(of: try #require(try reader.segment(named: "gold_buyers")))
        }
        #expect(gold.count == 5)
        #expect(gold.ids == ["p10", "p14", "p18", "p2", "p6"])
        let view = try #require(try await store.view(id: "p10"))
        #expect(view.segments == ["email_ok", "gold_buyers"])
        #expect(try await store.view(id: "p1")?.segments == [])
    }
}
