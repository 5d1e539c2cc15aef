import Foundation

/// A trained recommendation model: every item of the catalog and the events (skus in byte-wise order, an item's
/// index its place there), each item's train popularity, its top-K neighbours by item-item cosine similarity of
/// co-occurrence, its content vector (TF-IDF of its tags, L2-normalised), and the catalog fields a content block
/// shows. Stored in the profile store (`rec_models`) in a compact binary form (``encoded()``); about 6 MB for
/// MovieLens' 9,066 movies with K = 100.
public struct RecommendationModel: Sendable {
    /// A neighbour of an item and their similarity.
    public struct Neighbor: Sendable, Hashable {
        public var item: Int32
        public var similarity: Double
    }

    /// A catalog item as blocks show it.
    public struct Item: Sendable, Hashable {
        public var sku: String
        public var name: String
        public var price: Double?
        public var currency: String?
        public var category: String?
        public var url: String?
        /// Whether the item is in the catalog (items only seen in events are ranked but never recommended).
        public var inCatalog: Bool
    }

    public var items: [Item]
    /// People who interacted with each item in the training data.
    public var popularity: [Int32]
    public var neighbors: [[Neighbor]]
    /// Sparse content vectors: (feature, weight), unit length (empty for an item without tags).
    public var features: [[(Int32, Double)]]
    public var featureCount: Int
    /// When it was trained (ms since the epoch), and its settings.
    public var trainedAt: Int64
    public var k: Int

    /// The index of each sku.
    public let index: [String: Int32]

    public init(items: [Item], popularity: [Int32], neighbors: [[Neighbor]], features: [[(Int32, Double)]], featureCount: Int,
                trainedAt: Int64, k: Int) {
        self.items = items
        self.popularity = popularity
        self.neighbors = neighbors
        self.features = features
        self.featureCount = featureCount
        self.trainedAt = trainedAt
        self.k = k
        var index: [String: Int32] = [:]
        index.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { index[item.sku] = Int32(i) }
        self.index = index
    }

    // MARK: - Binary form (hand-written: JSON of half a million neighbours took seconds to parse)

    static let magic: [UInt8] = Array("FLRM1".utf8)

    /// The model as bytes: a magic, then counts, then each array, little-endian.
    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Self.magic)
        w.int64(trainedAt)
        w.int32(Int32(k))
        w.int32(Int32(featureCount))
        w.int32(Int32(items.count))
        for (i, item) in items.enumerated() {
            w.string(item.sku)
            w.string(item.name)
            w.optionalDouble(item.price)
            w.optionalString(item.currency)
            w.optionalString(item.category)
            w.optionalString(item.url)
            w.uint8(item.inCatalog ? 1 : 0)
            w.int32(popularity[i])
            w.int32(Int32(neighbors[i].count))
            for n in neighbors[i] {
                w.int32(n.item)
                w.double(n.similarity)
            }
            w.int32(Int32(features[i].count))
            for (f, v) in features[i] {
                w.int32(f)
                w.double(v)
            }
        }
        return w.out
    }

    /// Reads ``encoded()``'s bytes; nil when they are not a model of this format.
    public init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.bytes(Self.magic.count) == Self.magic, let trainedAt = r.int64(), let k = r.int32(), let featureCount = r.int32(),
              let count = r.int32(), count >= 0 else { return nil }
        var items: [Item] = []
        var popularity: [Int32] = []
        var neighbors: [[Neighbor]] = []
        var features: [[(Int32, Double)]] = []
        items.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let sku = r.string(), let name = r.string(), let price = r.optionalDouble(), let currency = r.optionalString(),
                  let category = r.optionalString(), let url = r.optionalString(), let inCatalog = r.uint8(), let pop = r.int32(),
                  let nCount = r.int32(), nCount >= 0 else { return nil }
            var row: [Neighbor] = []
            row.reserveCapacity(Int(nCount))
            for _ in 0..<nCount {
                guard let j = r.int32(), let s = r.double() else { return nil }
                row.append(Neighbor(item: j, similarity: s))
            }
            guard let fCount = r.int32(), fCount >= 0 else { return nil }
            var vector: [(Int32, Double)] = []
            for _ in 0..<fCount {
                guard let f = r.int32(), let v = r.double() else { return nil }
                vector.append((f, v))
            }
            items.append(Item(sku: sku, name: name, price: price, currency: currency, category: category, url: url, inCatalog: inCatalog != 0))
            popularity.append(pop)
            neighbors.append(row)
            features.append(vector)
        }
        self.init(items: items, popularity: popularity, neighbors: neighbors, features: features, featureCount: Int(featureCount),
                  trainedAt: trainedAt, k: Int(k))
    }
}
