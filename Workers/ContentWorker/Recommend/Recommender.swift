import Foundation
import ProfileStore

/// Ranks a model's items for one person: the hybrid of item-item, content and popularity, with business rules.
///
/// score(j) = w_item · item(j) / max item + w_content · content(j) / max content + w_pop · popularity(j) / max popularity,
/// the maxima of item and content taken over this person's candidates (a component whose maximum is not positive
/// counts 0), where item(j) = Σ over the person's items i of w(i) · sim_K(i, j), w(i) the interaction's weight times
/// the time decay 0.5^((t_last − t_i) / half-life) (no decay with half-life 0), and content(j) the cosine of j's
/// vector with the weighted mean of the person's item vectors. A person without interactions (cold start) gets the
/// popularity list; one whose items have no neighbours gets content and popularity. Ties: higher popularity, then
/// the smaller sku.
public struct Recommender: Sendable {
    /// The mix of the three components (they need not sum to 1).
    public struct Weights: Sendable, Hashable {
        public var item: Double
        public var content: Double
        public var popularity: Double

        public init(item: Double, content: Double, popularity: Double) {
            self.item = item
            self.content = content
            self.popularity = popularity
        }

        /// Tuned on MovieLens' validation split (never its test split): 0.5, 0.3, 0.2.
        public static let hybrid = Weights(item: 0.5, content: 0.3, popularity: 0.2)
        public static let itemItem = Weights(item: 1, content: 0, popularity: 0)
        public static let contentOnly = Weights(item: 0, content: 1, popularity: 0)
        public static let popularityOnly = Weights(item: 0, content: 0, popularity: 1)
    }

    /// What a slot accepts.
    public struct Rules: Sendable, Hashable {
        /// Leave out what the person already interacted with (bought, rated, viewed: what the model was fed).
        public var excludeSeen = true
        /// Only items of the catalog (not skus seen in events alone).
        public var catalogOnly = true
        /// At most this many items of one category (nil: no limit).
        public var maxPerCategory: Int?
        public var minPrice: Double?
        public var maxPrice: Double?
        /// Only these categories (nil: any).
        public var categories: Set<String>?

        public init() {}
    }

    public let model: RecommendationModel
    public var weights: Weights
    /// Days; 0: no time decay.
    public var halfLifeDays: Double

    /// Per item, what the rules read (flat arrays: reading the item structs in the candidate loop, strings and all,
    /// cost more than the scoring).
    let inCatalog: [Bool]
    let prices: [Double?]
    let categories: [String?]

    /// The content vectors as flat arrays (each item's features from `featureStart[j]` to `featureStart[j + 1]`):
    /// nested arrays cost a retain and a release per item in the scoring loop, most of a recommendation's time.
    let featureStart: [Int]
    let featureIndex: [Int32]
    let featureValue: [Double]
    let maxPopularity: Double

    public init(model: RecommendationModel, weights: Weights = .hybrid, halfLifeDays: Double = 0) {
        self.model = model
        self.weights = weights
        self.halfLifeDays = halfLifeDays
        inCatalog = model.items.map(\.inCatalog)
        prices = model.items.map(\.price)
        categories = model.items.map(\.category)
        var start = [0], index: [Int32] = [], value: [Double] = []
        for vector in model.features {
            for (f, v) in vector {
                index.append(f)
                value.append(v)
            }
            start.append(index.count)
        }
        featureStart = start
        featureIndex = index
        featureValue = value
        maxPopularity = Double(model.popularity.max() ?? 0)
    }

    /// A ranked item and its score.
    public struct Ranked: Sendable, Hashable {
        public var item: Int32
        public var score: Double
    }

    /// The top `n` items for a person with these interactions, under `rules`; also whether it was a cold start.
    public func recommend(_ interactions: [Interaction], n: Int, rules: Rules = Rules()) -> (items: [Ranked], coldStart: Bool) {
        let count = model.items.count
        var weightOf: [Int32: Double] = [:]
        var timeOf: [Int32: Int64] = [:]
        var last: Int64 = .min
        for i in interactions {
            guard let item = model.index[i.sku] else { continue }
            weightOf[item] = max(weightOf[item] ?? 0, i.weight)
            timeOf[item] = max(timeOf[item] ?? .min, i.occurredAt)
            last = max(last, i.occurredAt)
        }
        if halfLifeDays > 0 {
            let halfLife = halfLifeDays * 86_400_000
            for (item, w) in weightOf { weightOf[item] = w * pow(0.5, Double(last - timeOf[item]!) / halfLife) }
        }
        let cold = weightOf.isEmpty
        var itemScore = [Double](repeating: 0, count: count)
        var contentScore = [Double](repeating: 0, count: count)
        if !cold {
            if weights.item != 0 {
                for (i, w) in weightOf {
                    for nb in model.neighbors[Int(i)] { itemScore[Int(nb.item)] += w * nb.similarity }
                }
            }
            if weights.content != 0 {
                var profile = [Double](repeating: 0, count: model.featureCount)
                var total = 0.0
                for (i, w) in weightOf {
                    total += w
                    for (f, v) in model.features[Int(i)] { profile[Int(f)] += w * v }
                }
                if total > 0 { for f in 0..<profile.count { profile[f] /= total } }
                let norm = profile.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0 {
                    featureIndex.withUnsafeBufferPointer { fi in
                        featureValue.withUnsafeBufferPointer { fv in
                            profile.withUnsafeBufferPointer { pr in
                                contentScore.withUnsafeMutableBufferPointer { cs in
                                    for j in 0..<count {
                                        var dot = 0.0
                                        for x in featureStart[j]..<featureStart[j + 1] { dot += pr[Int(fi[x])] * fv[x] }
                                        cs[j] = dot / norm
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var seen = [Bool](repeating: false, count: count)
        for i in weightOf.keys { seen[Int(i)] = true }
        let checksPrice = rules.minPrice != nil || rules.maxPrice != nil
        func allowed(_ j: Int) -> Bool {
            if rules.catalogOnly && !inCatalog[j] { return false }
            if rules.excludeSeen && seen[j] { return false }
            if checksPrice {
                if let min = rules.minPrice, (prices[j] ?? -.infinity) < min { return false }
                if let max = rules.maxPrice, (prices[j] ?? .infinity) > max { return false }
            }
            if let cs = rules.categories, !cs.contains(categories[j] ?? "") { return false }
            return true
        }
        // Two passes over the candidates: their maxima, then their scores straight into the top n (no array of
        // every candidate's score).
        var allowedMask = [Bool](repeating: false, count: count)
        var maxItem = 0.0, maxContent = 0.0
        for j in 0..<count where allowed(j) {
            allowedMask[j] = true
            maxItem = max(maxItem, itemScore[j])
            maxContent = max(maxContent, contentScore[j])
        }
        let maxPopularity = self.maxPopularity
        let weights = self.weights
        func score(_ j: Int) -> Double {
            // As written in the type's documentation, in this order (the quality figures depend on exact ties).
            var s = 0.0
            if maxItem > 0 { s += weights.item * itemScore[j] / maxItem }
            if maxContent > 0 { s += weights.content * contentScore[j] / maxContent }
            if maxPopularity > 0 { s += weights.popularity * Double(model.popularity[j]) / maxPopularity }
            return s
        }
        let popularity = model.popularity
        func before(_ a: Ranked, _ b: Ranked) -> Bool {
            if a.score != b.score { return a.score > b.score }
            let pa = popularity[Int(a.item)], pb = popularity[Int(b.item)]
            if pa != pb { return pa > pb }
            return a.item < b.item
        }
        guard let perCategory = rules.maxPerCategory else {
            var top = TopK<Ranked>(n, by: before)
            for j in 0..<count where allowedMask[j] { top.offer(Ranked(item: Int32(j), score: score(j))) }
            return (top.sorted(), cold)
        }
        var ranked: [Ranked] = []
        for j in 0..<count where allowedMask[j] { ranked.append(Ranked(item: Int32(j), score: score(j))) }
        ranked.sort(by: before)
        var out: [Ranked] = []
        var perCount: [String: Int] = [:]
        for r in ranked where out.count < n {
            let c = categories[Int(r.item)] ?? ""
            if perCount[c, default: 0] < perCategory {
                perCount[c, default: 0] += 1
                out.append(r)
            }
        }
        return (out, cold)
    }
}
