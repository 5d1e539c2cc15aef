import FleetCore
import FleetPostgres
import FleetTestSupport
import Foundation
import Logging
import PostgresNIO
import ProfileStore
import Testing

/// The CRM side of the profile store, one suite over both backends: SQLite (two stores on one file, as two processes
/// of one host) and PostgreSQL (two stores with pools of their own on one database, as two hosts; a database per
/// test). The SQLite-only behaviour (erased bytes gone from the file, segments) stays in ProfileStoreTests.
@Suite("Profile store on SQLite and PostgreSQL", .timeLimit(.minutes(3)))
struct ProfileBackendTests {
    typealias Backend = LedgerBackendTests.Backend

    /// Runs `body` with two stores ("hosts") on one fresh store of `backend`.
    static func withStores<T: Sendable>(_ backend: Backend,
                                        _ body: @Sendable (any ProfileOperationStore, any ProfileOperationStore) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite:
            let dir = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("fleet.sqlite").path
            let a = ProfileStore(path: path), b = ProfileStore(path: path)
            defer { a.close(); b.close() }
            try await a.open()
            return try await body(a, b)
        case .postgres:
            return try await PostgresDatabase.withFresh { url in
                let ca = PostgresClient(configuration: url.configuration, backgroundLogger: LedgerBackendTests.logger)
                let cb = PostgresClient(configuration: url.configuration, backgroundLogger: LedgerBackendTests.logger)
                return try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await ca.run() }
                    group.addTask { await cb.run() }
                    defer { group.cancelAll() }
                    let a = PostgresProfileStore(client: ca, logger: LedgerBackendTests.logger)
                    let b = PostgresProfileStore(client: cb, logger: LedgerBackendTests.logger)
                    // Both migrate at once, as workers starting together on two hosts do.
                    async let ma: Void = a.migrate()
                    async let mb: Void = b.migrate()
                    _ = try await (ma, mb)
                    return try await body(a, b)
                }
            }
        }
    }

    static func identify(_ op: String, _ id: String, at ms: Int64, _ traits: JSONValue, email: String? = nil) -> ProfileOperation {
        ProfileOperation(opID: op, timestampMillis: ms, body: .identify(
            profileID: id, traits: traits.objectValue ?? JSONObject(), identities: email.map { [ProfileIdentity(.email, $0)] } ?? []))
    }

    @Test("per-field last-writer-wins: an older update never overwrites a newer one; a duplicate op id applies once, also from the other host",
          arguments: Backend.allCases)
    func lastWriterWins(_ backend: Backend) async throws {
        try await Self.withStores(backend) { store, other in
            let r1 = try await store.apply([Self.identify("o2", "p1", at: 2000, ["tier": "gold", "city": "paris"], email: " Anna@Example.COM ")])
            #expect(r1[0].status == .applied)
            // Older, through the other host: tier is stale, points is new.
            let r2 = try await other.apply([Self.identify("o1", "p1", at: 1000, ["tier": "bronze", "points": 5])])
            #expect(r2[0].status == .applied)
            #expect(r2[0].staleFields == ["tier"])
            let r3 = try await store.apply([Self.identify("o0", "p1", at: 500, ["tier": "silver"])])
            #expect(r3[0].status == .skipped && r3[0].reason == "stale")
            // Duplicate op id, even with other content, on the other host.
            let r4 = try await other.apply([Self.identify("o2", "p1", at: 9000, ["tier": "platinum"])])
            #expect(r4[0].status == .skipped && r4[0].reason == "duplicate")
            // Removing a trait with null, then an older value arrives late: stays removed.
            _ = try await store.apply([Self.identify("o3", "p1", at: 3000, ["city": .null])])
            _ = try await other.apply([Self.identify("o4", "p1", at: 2500, ["city": "lyon"])])
            for s in [store, other] {
                let view = try #require(try await s.view(id: "p1"))
                #expect(view.traits["tier"] == "gold")
                #expect(view.traits["points"] == 5)
                #expect(view.traits["city"] == nil)
                #expect(view.email == "anna@example.com")
                #expect(try await s.view(email: "ANNA@example.com")?.id == "p1")
            }
        }
    }

    @Test("a rejected op in a batch rolls back alone; the others apply; duplicates of events count once", arguments: Backend.allCases)
    func batchIsolation(_ backend: Backend) async throws {
        try await Self.withStores(backend) { store, _ in
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
    }

    @Test("merge keeps everything of both profiles; the old id follows the merge on either host", arguments: Backend.allCases)
    func merge(_ backend: Backend) async throws {
        try await Self.withStores(backend) { store, other in
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
            ])
            _ = try await other.apply([ProfileOperation(opID: "m", timestampMillis: 6000, body: .merge(profileID: "known", previousID: "anon"))])
            let view = try #require(try await store.view(id: "known"))
            #expect(view.traits["city"] == "berlin")
            #expect(view.traits["tier"] == "gold")
            #expect(view.traits["first_name"] == "anna")
            #expect(view.email == "new@example.com")
            #expect(view.purchases.orderCount == 2)
            #expect(view.purchases.lifetimeValue == 40)
            #expect(view.purchases.lastPurchaseAmount == 30)
            #expect(view.consent(channel: "email", topic: "news") == true)
            #expect(view.consent(channel: "sms") == false)  // the newer (anon's, at 5000) wins
            #expect(Set(view.devices.map(\.token)) == ["tok-anon", "tok-known"])
            #expect(try await store.view(email: "old@example.com")?.id == "known")
            #expect(try await other.view(email: "new@example.com")?.id == "known")
            #expect(try await other.view(id: "anon")?.id == "known")
            _ = try await other.apply([Self.identify("late", "anon", at: 7000, ["points": 7])])
            #expect(try await store.view(id: "known")?.traits["points"] == 7)
            let again = try await store.apply([ProfileOperation(opID: "m2", timestampMillis: 8000, body: .merge(profileID: "known", previousID: "anon"))])
            #expect(again[0].status == .skipped && again[0].reason == "already_merged")
        }
    }

    @Test("erase deletes the person and suppresses every address they had; a later sync of them is skipped", arguments: Backend.allCases)
    func erase(_ backend: Backend) async throws {
        try await Self.withStores(backend) { store, other in
            _ = try await store.apply([
                Self.identify("z1", "zelda", at: 1000, ["first_name": "zelda"], email: "Zelda@example.org"),
                ProfileOperation(opID: "z2", timestampMillis: 1100, body: .identify(profileID: "zelda", traits: JSONObject(),
                                                                                     identities: [ProfileIdentity(.phone, "+49 151 1234")])),
                ProfileOperation(opID: "z3", timestampMillis: 1200, body: .device(profileID: "zelda", token: "tok-z", platform: "ios", app: "shop", registered: true)),
                ProfileOperation(opID: "z4", timestampMillis: 1300, body: .track(profileID: "zelda", event: TrackedEvent(eventID: "ze", name: "viewed", occurredAt: 1300))),
                Self.identify("b1", "bob", at: 1000, ["first_name": "bob"], email: "bob@example.org"),
            ])
            let result = try await other.erase(.email("ZELDA@example.org"))
            #expect(result.status == .applied && result.reason == nil)
            #expect(try await store.view(id: "zelda") == nil)
            #expect(try await store.view(email: "zelda@example.org") == nil)
            #expect(try await store.isSuppressed(address: " zelda@EXAMPLE.org", channel: .email))
            #expect(try await store.isSuppressed(address: "+491511234", channel: .sms))
            #expect(try await store.isSuppressed(address: "tok-z", channel: .push))
            #expect(try await store.isSuppressed(address: "zelda", channel: .profile))
            #expect(try await !store.isSuppressed(address: "bob@example.org", channel: .email))
            #expect(try await other.view(id: "bob")?.traits["first_name"] == "bob")
            let again = try await store.apply([Self.identify("z5", "zelda", at: 9000, ["first_name": "zelda"])])
            #expect(again[0].status == .skipped && again[0].reason == "suppressed")
            let byEmail = try await other.apply([Self.identify("z6", "zelda-2", at: 9000, [:], email: "zelda@example.org")])
            #expect(byEmail[0].status == .skipped && byEmail[0].reason == "suppressed")
            let unknown = try await store.erase(.id("nobody"))
            #expect(unknown.status == .applied && unknown.reason == "not_found")
        }
    }

    @Test("frequency caps: across two hosts at once a cap is never exceeded; a job counts once; the cross-channel cap; release and prune",
          arguments: Backend.allCases)
    func frequencyCaps(_ backend: Backend) async throws {
        try await Self.withStores(backend) { a, b in
            let ca = try #require(a as? any FrequencyCapStore), cb = try #require(b as? any FrequencyCapStore)
            let day = "2026-12-06"
            let email = [CapLimit(channels: ["email"], limit: 3), CapLimit(channels: ["email", "push"], limit: 4)]
            // 20 jobs for one person at once, through both hosts: the email cap lets 3 through.
            let allowed = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for i in 0..<20 {
                    group.addTask {
                        (i, try await (i % 2 == 0 ? ca : cb).reserveCap(jobID: "j\(i)", profileID: "p1", channel: "email", day: day, limits: email))
                    }
                }
                return try await group.reduce(into: [Int]()) { if $1.1 { $0.append($1.0) } }
            }
            #expect(allowed.count == 3, "\(allowed)")
            let first = try #require(allowed.first)
            // A retry of a counted job, on the other host: allowed, and not counted again.
            #expect(try await cb.reserveCap(jobID: "j\(first)", profileID: "p1", channel: "email", day: day, limits: email))
            #expect(try await !ca.reserveCap(jobID: "j-more", profileID: "p1", channel: "email", day: day, limits: email))
            // Across channels: 4 a day in all, so one push goes and a second does not.
            let push = [CapLimit(channels: ["push"], limit: 5), CapLimit(channels: ["email", "push"], limit: 4)]
            #expect(try await ca.reserveCap(jobID: "push1", profileID: "p1", channel: "push", day: day, limits: push))
            #expect(try await !cb.reserveCap(jobID: "push2", profileID: "p1", channel: "push", day: day, limits: push))
            // Another day, another person: room.
            #expect(try await ca.reserveCap(jobID: "j-next", profileID: "p1", channel: "email", day: "2026-12-07", limits: email))
            #expect(try await cb.reserveCap(jobID: "j-other", profileID: "p2", channel: "email", day: day, limits: email))
            // A released job (its message refused for good) frees its place.
            try await cb.releaseCap(jobID: "j\(first)", channel: "email")
            #expect(try await ca.reserveCap(jobID: "j-late", profileID: "p1", channel: "email", day: day, limits: email))
            #expect(try await ca.pruneCaps(before: Date(timeIntervalSinceNow: -3600)) == 0)
            #expect(try await cb.pruneCaps(before: Date(timeIntervalSinceNow: 60)) == 6)
            #expect(try await ca.reserveCap(jobID: "j-after", profileID: "p1", channel: "email", day: day, limits: email))
        }
    }

    @Test("segments: traits, events in a window, consent; for one profile (its view) and over the store; redefined, removed",
          arguments: Backend.allCases)
    func segments(_ backend: Backend) async throws {
        try await Self.withStores(backend) { a, b in
            let store = try #require(a as? any ProfileBackend), other = try #require(b as? any ProfileBackend)
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
            try await other.defineSegment(name: "email_ok", rule: ["consent": "email"])
            // gold: even i; a purchase within 15 days: i % 4 >= 1 (the first is now) -> even with i % 4 == 2: 2, 6, 10, 14, 18
            let gold = try #require(try await other.segmentMembers(named: "gold_buyers", limit: 3))
            #expect(gold.count == 5)
            #expect(gold.ids == ["p10", "p14", "p18"])
            #expect(try await store.segmentMembers(named: "email_ok", limit: 100)?.ids == ["p0", "p10", "p15", "p5"])
            #expect(try await store.segmentMembers(named: "nope", limit: 10) == nil)
            #expect(try await other.view(id: "p10")?.segments == ["email_ok", "gold_buyers"])
            #expect(try await store.view(id: "p1")?.segments == [])
            // Redefined (a bad rule is refused and changes nothing), then removed.
            await #expect(throws: ProfileStoreError.self) { try await store.defineSegment(name: "email_ok", rule: ["nonsense": 1]) }
            try await store.defineSegment(name: "email_ok", rule: ["trait": "points", "op": "gte", "value": 150])
            #expect(try await other.segmentMembers(named: "email_ok", limit: 100)?.ids == ["p15", "p16", "p17", "p18", "p19"])
            #expect(try await other.removeSegment(name: "gold_buyers"))
            #expect(try await !store.removeSegment(name: "gold_buyers"))
            #expect(try await store.segmentMembers(named: "gold_buyers", limit: 10) == nil)
            // (A view's segments follow a change within the SQLite readers' definition cache, 1 s: not asserted here.)
        }
    }

    @Test("the catalog: import (a sku again replaces it), read by sku, top sellers by purchases since a time, ties by sku",
          arguments: Backend.allCases)
    func catalog(_ backend: Backend) async throws {
        try await Self.withStores(backend) { a, b in
            let store = try #require(a as? any ProfileBackend), other = try #require(b as? any ProfileBackend)
            #expect(try await store.importCatalog([
                CatalogProduct(sku: "b-2", name: "Boots", price: 80, currency: "EUR", category: "shoes", tags: ["winter"], url: "https://shop.example/b2"),
                CatalogProduct(sku: "a-1", name: "Apron", price: nil, category: "home"),
                CatalogProduct(sku: "c-3", name: "Cap", price: 12.5, currency: "EUR", category: "hats"),
                CatalogProduct(sku: "Z-9", name: "Zither"),
            ]) == 4)
            #expect(try await other.importCatalog([CatalogProduct(sku: "b-2", name: "Boots II", price: 90, currency: "EUR", category: "shoes",
                                                                  tags: ["winter", "sale"], url: "https://shop.example/b2")]) == 1)
            let boots = try #require(try await store.product(sku: "b-2"))
            #expect(boots.name == "Boots II" && boots.price == 90 && boots.tags == ["winter", "sale"] && boots.category == "shoes")
            #expect(try await other.product(sku: "a-1")?.price == nil)
            #expect(try await other.product(sku: "nope") == nil)
            func purchase(_ op: String, _ at: Int64, _ skus: [String]) -> ProfileOperation {
                ProfileOperation(opID: op, timestampMillis: at, body: .track(profileID: "p1", event: TrackedEvent(
                    eventID: op, name: "purchase", occurredAt: at, amount: 10, items: skus.map { ["sku": .string($0)] })))
            }
            _ = try await store.apply([
                purchase("o1", 1000, ["c-3"]), purchase("o2", 5000, ["c-3", "a-1"]), purchase("o3", 6000, ["a-1"]),
                purchase("o4", 7000, ["a-1"]),
                // Not counted: a view with items, a purchase whose items are not a list, items that are not objects
                // (CRM input allows all three: none may break the ranking).
                ProfileOperation(opID: "v1", timestampMillis: 7000, body: .track(profileID: "p1", event: TrackedEvent(
                    eventID: "v1", name: "viewed", occurredAt: 7000, items: [["sku": "b-2"]]))),
                ProfileOperation(opID: "o5", timestampMillis: 7000, body: .track(profileID: "p1", event: TrackedEvent(
                    eventID: "o5", name: "purchase", properties: ["items": "c-3"], occurredAt: 7000, amount: 5))),
                ProfileOperation(opID: "o6", timestampMillis: 7000, body: .track(profileID: "p1", event: TrackedEvent(
                    eventID: "o6", name: "purchase", occurredAt: 7000, amount: 5, items: ["c-3", 4, .null]))),
            ])
            let all = try await other.topSellers(sinceMillis: 0, limit: 10)
            #expect(all.map { $0.product["sku"]?.stringValue ?? "" } == ["a-1", "c-3", "Z-9", "b-2"])
            #expect(all.map { $0.product["sales"]?.intValue ?? -1 } == [3, 2, 0, 0])
            #expect(all.map(\.category) == ["home", "hats", nil, "shoes"])
            #expect(all[1].product["price"] == .double(12.5) && all[0].product["price"] == .null)
            let recent = try await store.topSellers(sinceMillis: 5500, limit: 2)
            #expect(recent.map { $0.product["sku"]?.stringValue ?? "" } == ["a-1", "Z-9"])
        }
    }

    @Test("what a send reads of a person: the view, a suppressed address (after suppress, on the other host), an erased person, no campaign",
          arguments: Backend.allCases)
    func personRead(_ backend: Backend) async throws {
        try await Self.withStores(backend) { a, b in
            let store = try #require(a as? any EmailStore & ProfileOperationStore), other = try #require(b as? any EmailStore)
            _ = try await store.apply([Self.identify("i1", "p1", at: 1000, ["first_name": "anna"], email: "anna@example.com"),
                                       Self.identify("i2", "p2", at: 1000, ["first_name": "bob"], email: "bob@example.com")])
            let p1 = try await other.person(id: "p1", campaignID: "c-unknown", now: ProfileStore.nowMillis())
            #expect(p1.view?.traits["first_name"] == "anna" && !p1.emailSuppressed && !p1.profileSuppressed && !p1.campaignCancelled)
            #expect(p1.content.isEmpty)
            try await other.suppress(address: " ANNA@example.com", channel: .email, reason: "hard_bounce")
            try await store.suppress(address: "anna@example.com", channel: .email, reason: "again")
            #expect(try await store.person(id: "p1", campaignID: nil, now: 0).emailSuppressed)
            _ = try await store.erase(.id("p2"))
            let p2 = try await other.person(id: "p2", campaignID: nil, now: 0)
            #expect(p2.view == nil && p2.profileSuppressed)
            let nobody = try await other.person(id: "nobody", campaignID: nil, now: 0)
            #expect(nobody.view == nil && !nobody.profileSuppressed)
        }
    }

    /// 400 identify and consent ops on 8 people, with colliding timestamps (ties are broken by value), in random
    /// batches: the expected state is that of the ops applied one by one in order on a fresh SQLite store.
    static func concurrentWorkload() -> [ProfileOperation] {
        var random = SeededRandom(seed: 42)
        var ops: [ProfileOperation] = []
        for i in 0..<400 {
            let person = "p\(random.next() % 8)"
            let at = Int64(1000 + random.next() % 50)  // few distinct times: many ties
            if i % 5 == 4 {
                ops.append(ProfileOperation(opID: "op-\(i)", timestampMillis: at, body: .consent(
                    profileID: person, channel: "email", topic: "news", optedIn: random.next() % 2 == 0, source: "crm")))
            } else {
                var traits = JSONObject()
                for key in ["tier", "city", "points"] where random.next() % 2 == 0 {
                    traits[key] = random.next() % 7 == 0 ? .null : .string("\(key)-\(random.next() % 20)")
                }
                ops.append(Self.identify("op-\(i)", person, at: at, .object(traits)))
            }
        }
        return ops
    }

    @Test("two hosts applying interleaved ops on the same people at once end in the state of the ops applied one by one; each op id once",
          arguments: Backend.allCases)
    func concurrentHosts(_ backend: Backend) async throws {
        let ops = Self.concurrentWorkload()
        // The reference: one by one, on a fresh SQLite store.
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = ProfileStore(path: dir.appendingPathComponent("ref.sqlite").path)
        defer { reference.close() }
        for op in ops { _ = try await reference.apply([op]) }
        var views: [String: ProfileView] = [:]
        for i in 0..<8 { views["p\(i)"] = try await reference.view(id: "p\(i)") }
        let expected = views

        try await Self.withStores(backend) { a, b in
            // Batches of 1 to 6 ops, each sent through both hosts at once (every op id twice, concurrently).
            var batches: [[ProfileOperation]] = []
            var i = 0
            while i < ops.count {
                let n = 1 + (i * 7) % 6
                batches.append(Array(ops[i..<min(ops.count, i + n)]))
                i += n
            }
            let statuses = try await withThrowingTaskGroup(of: [OperationResult].self) { group in
                for (k, batch) in batches.enumerated() {
                    group.addTask { try await (k % 2 == 0 ? a : b).apply(batch) }
                    group.addTask { try await (k % 2 == 0 ? b : a).apply(batch.reversed()) }
                }
                return try await group.reduce(into: [OperationResult]()) { $0 += $1 }
            }
            // Every op id was sent twice: one copy counted (applied or stale), the other a duplicate.
            let byOp = Dictionary(grouping: statuses, by: \.opID)
            #expect(byOp.count == ops.count)
            for (id, results) in byOp {
                #expect(results.filter { $0.reason == "duplicate" }.count == 1, "\(id): \(results.map { $0.reason ?? "applied" })")
            }
            for i in 0..<8 {
                let id = "p\(i)"
                let got = try await a.view(id: id)
                let want = expected[id]
                // The same traits and values (their order follows which op first wrote each, so it differs).
                func fields(_ v: ProfileView?) -> [String: JSONValue] {
                    guard let t = v?.traits else { return [:] }
                    return Dictionary(uniqueKeysWithValues: t.keys.map { ($0, t[$0] ?? .null) })
                }
                #expect(got != nil && fields(got) == fields(want), "\(id)")
                #expect(got?.consents.map(\.optedIn) == want?.consents.map(\.optedIn), "\(id)")
                #expect(got?.consents.map(\.updatedAt) == want?.consents.map(\.updatedAt), "\(id)")
            }
        }
    }
}

/// A small deterministic generator (SplitMix64), so the workload is the same in every run.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
    }
}
