import Foundation
import ProfileStore

/// Trains a ``RecommendationModel`` from interactions and the catalog:
///
/// - **popularity**: the number of people who interacted with each item;
/// - **item-item**: sim(i, j) = c(i, j) / √(n(i)·n(j)) over binary person×item interactions (c: people with both,
///   n: people with each), the item itself excluded, each row keeping its `k` most similar (ties: the smaller sku);
/// - **content**: one feature per tag (a product without tags: its category), TF-IDF with tf 1 and idf ln(N/df) over
///   the N catalog items, each vector L2-normalised.
///
/// Written for speed (dense counters reused across rows, no dictionaries in the inner loop): on MovieLens
/// (41,000 interactions, 671 people, 9,066 items) it trains in a fraction of a second.
public struct RecommendationTrainer: Sendable {
    public var k: Int

    public init(k: Int = 100) {
        self.k = k
    }

    /// Rows as one array of entries and the offset of each row's first (one more offset at the end).
    static func flatten(_ rows: [[Int32]]) -> (start: [Int], entries: [Int32]) {
        var start = [Int](repeating: 0, count: rows.count + 1)
        var entries: [Int32] = []
        entries.reserveCapacity(rows.reduce(0) { $0 + $1.count })
        for (n, row) in rows.enumerated() {
            entries.append(contentsOf: row)
            start[n + 1] = entries.count
        }
        return (start, entries)
    }

    public func train(interactions: [Interaction], catalog: [CatalogProduct], now: Int64) -> RecommendationModel {
        // Items: the catalog's and the events', in byte-wise sku order.
        var bySku: [String: RecommendationModel.Item] = [:]
        for p in catalog {
            bySku[p.sku] = .init(sku: p.sku, name: p.name, price: p.price, currency: p.currency, category: p.category, url: p.url, inCatalog: true)
        }
        for i in interactions where bySku[i.sku] == nil {
            bySku[i.sku] = .init(sku: i.sku, name: i.sku, price: nil, currency: nil, category: nil, url: nil, inCatalog: false)
        }
        let items = bySku.values.sorted { $0.sku.utf8.lexicographicallyPrecedes($1.sku.utf8) }
        var index: [String: Int32] = [:]
        for (n, item) in items.enumerated() { index[item.sku] = Int32(n) }
        let count = items.count

        // Binary person × item sets.
        var people: [String: Int32] = [:]
        var itemsOf: [[Int32]] = []
        var seen = Set<Int64>()
        for i in interactions {
            guard let item = index[i.sku] else { continue }
            let person: Int32
            if let p = people[i.profileID] { person = p } else {
                person = Int32(itemsOf.count)
                people[i.profileID] = person
                itemsOf.append([])
            }
            if seen.insert(Int64(person) << 32 | Int64(item)).inserted { itemsOf[Int(person)].append(item) }
        }
        // Both directions as flat arrays (offsets and entries): nested arrays cost a retain and a release per row
        // read in the inner loop, which was most of the training time.
        let (personStart, personItems) = Self.flatten(itemsOf)
        var usersOf = [[Int32]](repeating: [], count: count)
        for (p, list) in itemsOf.enumerated() { for item in list { usersOf[Int(item)].append(Int32(p)) } }
        let popularity = usersOf.map { Int32($0.count) }
        let (itemStart, itemUsers) = Self.flatten(usersOf)

        // Item-item: co-occurrence counts per row in a dense counter, then the row's top k.
        var counts = [Int32](repeating: 0, count: count)
        var touched: [Int32] = []
        var neighbors = [[RecommendationModel.Neighbor]](repeating: [], count: count)
        let better: (RecommendationModel.Neighbor, RecommendationModel.Neighbor) -> Bool = {
            $0.similarity != $1.similarity ? $0.similarity > $1.similarity : $0.item < $1.item
        }
        personItems.withUnsafeBufferPointer { pItems in
            itemUsers.withUnsafeBufferPointer { iUsers in
                counts.withUnsafeMutableBufferPointer { c in
                    for i in 0..<count where popularity[i] > 0 {
                        touched.removeAll(keepingCapacity: true)
                        for x in itemStart[i]..<itemStart[i + 1] {
                            let u = Int(iUsers[x])
                            for y in personStart[u]..<personStart[u + 1] {
                                let j = Int(pItems[y])
                                if j == i { continue }
                                if c[j] == 0 { touched.append(Int32(j)) }
                                c[j] += 1
                            }
                        }
                        // The row's top k (a full sort of each row made training 2.1 times implicit's time).
                        var heap = TopK<RecommendationModel.Neighbor>(k, by: better)
                        let ni = Double(popularity[i])
                        for j in touched {
                            heap.offer(.init(item: j, similarity: Double(c[Int(j)]) / (ni * Double(popularity[Int(j)])).squareRoot()))
                            c[Int(j)] = 0
                        }
                        neighbors[i] = heap.sorted()
                    }
                }
            }
        }

        // Content: TF-IDF of tags over the catalog.
        var featureIndex: [String: Int32] = [:]
        var rawFeatures = [[Int32]](repeating: [], count: count)
        var tagsBySku: [String: [String]] = [:]
        for p in catalog {
            var tags = Array(Set(p.tags.filter { !$0.isEmpty }))
            if tags.isEmpty, let c = p.category, !c.isEmpty { tags = [c] }
            tagsBySku[p.sku] = tags.sorted()
        }
        var df: [Int] = []
        for (n, item) in items.enumerated() {
            for tag in tagsBySku[item.sku] ?? [] {
                let f: Int32
                if let known = featureIndex[tag] { f = known } else {
                    f = Int32(df.count)
                    featureIndex[tag] = f
                    df.append(0)
                }
                df[Int(f)] += 1
                rawFeatures[n].append(f)
            }
        }
        let catalogSize = Double(max(1, catalog.count))
        let features: [[(Int32, Double)]] = rawFeatures.map { fs in
            let weights = fs.map { (f: $0, w: log(catalogSize / Double(df[Int($0)]))) }
            let norm = weights.reduce(0) { $0 + $1.w * $1.w }.squareRoot()
            guard norm > 0 else { return [] }
            return weights.map { ($0.f, $0.w / norm) }
        }
        return RecommendationModel(items: items, popularity: popularity, neighbors: neighbors, features: features,
                                   featureCount: df.count, trainedAt: now, k: k)
    }
}
