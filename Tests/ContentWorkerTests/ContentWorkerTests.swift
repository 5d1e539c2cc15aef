@testable import ContentWorker
import FleetCore
import FleetRuntime
import FleetTestSupport
import Foundation
import Logging
import ProfileStore
import Testing

@Suite("Content worker: recommendations")
struct ContentWorkerTests {
    static func product(_ sku: String, _ category: String, tags: [String], price: Double? = nil) -> CatalogProduct {
        CatalogProduct(sku: sku, name: "Item \(sku)", price: price, currency: "EUR", category: category, tags: tags)
    }

    static func i(_ person: String, _ sku: String, at: Int64 = 0, weight: Double = 1) -> Interaction {
        Interaction(profileID: person, sku: sku, occurredAt: at, weight: weight)
    }

    /// a and b are bought together by three people, a and c by one; d is popular alone; e has no buyer.
    static let catalog = [
        product("a", "shoes", tags: ["shoes", "running"], price: 80), product("b", "shoes", tags: ["shoes", "running"], price: 90),
        product("c", "socks", tags: ["socks"], price: 5), product("d", "bags", tags: ["bags"], price: 40),
        product("e", "shoes", tags: ["shoes", "trail"], price: 120),
    ]
    static let interactions = [
        i("u1", "a"), i("u1", "b"), i("u2", "a"), i("u2", "b"), i("u3", "a"), i("u3", "b"), i("u4", "a"), i("u4", "c"),
        i("u5", "d"), i("u6", "d"), i("u7", "d"), i("u8", "d"), i("u9", "d"),
    ]

    @Test("item-item cosine of co-occurrence with the item itself excluded, top K with the smaller sku on ties; popularity; content TF-IDF of tags")
    func training() throws {
        let model = RecommendationTrainer(k: 1).train(interactions: Self.interactions, catalog: Self.catalog, now: 0)
        #expect(model.items.map(\.sku) == ["a", "b", "c", "d", "e"])
        #expect(model.popularity == [4, 3, 1, 5, 0])
        let a = model.neighbors[0]
        // sim(a,b) = 3/sqrt(4*3) = 0.866; sim(a,c) = 1/sqrt(4*1) = 0.5: K = 1 keeps b.
        #expect(a.count == 1 && a[0].item == 1 && abs(a[0].similarity - 3 / 12.0.squareRoot()) < 1e-12)
        #expect(model.neighbors[3].isEmpty, "d is never bought with anything")
        // Content: "shoes" is in 3 of 5 items (idf ln 5/3), "running" in 2 (ln 5/2); a unit vector.
        let va = model.features[0]
        #expect(abs(va.reduce(0) { $0 + $1.1 * $1.1 } - 1) < 1e-12)
        let decoded = try #require(RecommendationModel(decoding: model.encoded()))
        #expect(decoded.items == model.items && decoded.popularity == model.popularity && decoded.neighbors == model.neighbors)
        #expect(decoded.features.map { $0.map(\.0) } == model.features.map { $0.map(\.0) })
        #expect(RecommendationModel(decoding: Array("garbage".utf8)) == nil)
    }

    @Test("recommend: what the person has is left out; neighbours first; a cold start gets the popularity list; rules filter by price, category and a per-category limit")
    func recommending() {
        let model = RecommendationTrainer(k: 100).train(interactions: Self.interactions, catalog: Self.catalog, now: 0)
        let r = Recommender(model: model)
        let skus = { (list: [Recommender.Ranked]) in list.map { model.items[Int($0.item)].sku } }
        let someone = r.recommend([Self.i("x", "a")], n: 3)
        #expect(!someone.coldStart)
        #expect(skus(someone.items).first == "b", "a's strongest neighbour")
        #expect(!skus(someone.items).contains("a"))
        let cold = r.recommend([], n: 5)
        #expect(cold.coldStart && skus(cold.items) == ["d", "a", "b", "c", "e"], "popularity, then the smaller sku")
        var rules = Recommender.Rules()
        rules.maxPrice = 100
        rules.minPrice = 10
        #expect(Set(skus(r.recommend([Self.i("x", "a")], n: 5, rules: rules).items)) == ["b", "d"])
        rules = Recommender.Rules()
        rules.maxPerCategory = 1
        let diverse = skus(r.recommend([Self.i("x", "c")], n: 5, rules: rules).items)
        #expect(diverse.count == 2 && Set(diverse.map { sku in Self.catalog.first { $0.sku == sku }!.category! }).count == 2,
                "one shoe and one bag: \(diverse)")
        rules = Recommender.Rules()
        rules.categories = ["bags"]
        #expect(skus(r.recommend([Self.i("x", "a")], n: 5, rules: rules).items) == ["d"])
    }

    @Test("the handler: train stores a model version; recommend stores the block the email templates read; bad input is a clear dead letter")
    func handler() async throws {
        let dir = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = ProfileStore(path: dir.appendingPathComponent("fleet.sqlite").path)
        defer { store.close() }
        let handler = ContentHandler(store: store, settings: ContentSettings())
        let logger = Logger(label: "test")
        func run(_ data: JSONObject, fields: JSONObject = [:]) async throws -> JobOutcome {
            let job = JobEnvelope(id: "j-\(UUID().uuidString)", kind: "content", data: .object(data), fields: fields)
            return try await handler.handle(job: job, context: JobContext(job: job, logger: logger))
        }
        await #expect(throws: JobError.self) { try await run(["op": "train"]) }  // empty catalog
        _ = try await store.importCatalog(Self.catalog)
        var ops: [ProfileOperation] = []
        for (n, x) in Self.interactions.enumerated() {
            ops.append(ProfileOperation(opID: "e\(n)", timestampMillis: 1_000 + Int64(n), body: .track(profileID: x.profileID, event: TrackedEvent(
                eventID: "e\(n)", name: "rated", properties: ["items": [["sku": .string(x.sku), "quantity": 1]]], occurredAt: 1_000 + Int64(n)))))
        }
        ops.append(ProfileOperation(opID: "new", timestampMillis: 1, body: .identify(profileID: "newcomer", traits: [:], identities: [])))
        _ = try await store.apply(ops)
        do {
            _ = try await run(["op": "recommend", "slot": "email_hero"], fields: ["profile_id": "u4"])
            Issue.record("recommend before train succeeded")
        } catch let e as JobError { #expect(e.code == "no_model") }
        guard case .succeeded(let trained) = try await run(["op": "train"]) else { Issue.record("train failed"); return }
        #expect(trained["version"] == 1 && trained["items"] == 5 && trained["interactions"] == 13)
        guard case .succeeded(let block) = try await run(["op": "recommend", "slot": "email_hero", "n": 2], fields: ["profile_id": "u4"]) else {
            Issue.record("recommend failed"); return
        }
        #expect(block["strategy"] == "hybrid" && block["model_version"] == 1)
        #expect(block["items"]?.arrayValue?.first?["sku"] == "b" && block["items"]?.arrayValue?.count == 2)
        let stored = try await store.read { try $0.contentBlocks(profileID: "u4", now: ProfileStore.nowMillis()) }
        #expect(stored["email_hero"]?["items"] == block["items"])
        guard case .succeeded(let cold) = try await run(["op": "recommend", "slot": "push"], fields: ["profile_id": "newcomer"]) else {
            Issue.record("cold start failed"); return
        }
        #expect(cold["strategy"] == "popularity" && cold["items"]?.arrayValue?.first?["sku"] == "d")
        do {
            _ = try await run(["op": "recommend", "slot": "x"], fields: ["profile_id": "nobody"])
            Issue.record("an unknown profile was accepted")
        } catch let e as JobError { #expect(e.code == "profile_not_found") }
        do {
            _ = try await run(["op": "copy"], fields: ["profile_id": "u1"])
            Issue.record("copy without a template was accepted")
        } catch let e as JobError { #expect(e.code == JobError.invalidParameters && e.message.contains("data.template")) }
        for (bad, field) in [(["op": "recommend", "slot": "Bad Slot"] as JSONObject, "'data.slot'"), (["op": "nope"], "'data.op'"),
                             (["op": "recommend", "slot": "s", "n": 0], "'data.n'")] {
            do {
                _ = try await run(bad, fields: ["profile_id": "u1"])
                Issue.record("\(bad) was accepted")
            } catch let e as JobError { #expect(e.code == "invalid_parameters" && e.message.contains(field), "\(e.message)") }
        }
        // Erasing the person removes their blocks.
        _ = try await store.apply([ProfileOperation(opID: "erase-u4", timestampMillis: 9_999, body: .erase(.id("u4")))])
        #expect(try await store.read { try $0.contentBlocks(profileID: "u4", now: 0) }.isEmpty)
    }
}
