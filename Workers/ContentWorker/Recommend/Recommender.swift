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

    public init(model: RecommendationModel, weights: Weights = .hybrid, halfLifeDays: Double = 0) {
        self.model = model
        self.weights = weights
        self.halfLifeDays = halfLifeDays
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
                    for j in 0..<count {
                        var dot = 0.0
                        for (f, v) in model.features[j] { dot += profile[Int(f)] * v }
                        contentScore[j] = dot / norm
                    }
                }
            }
        }
        func allowed(_ j: Int) -> Bool {
            let item = model.items[j]
            if rules.catalogOnly && !item.inCatalog { return false }
            if rules.excludeSeen && weightOf[Int32(j)] != nil { return false }
            if let min = rules.minPrice, (item.price ?? -.infinity) < min { return false }
            if let max = rules.maxPrice, (item.price ?? .infinity) > max { return false }
            if let cs = rules.categories, !cs.contains(item.category ?? "") { return false }
            return true
        }
        var maxItem = 0.0, maxContent = 0.0
        var candidates: [Int] = []
        candidates.reserveCapacity(count)
        for j in 0..<count where allowed(j) {
            candidates.append(j)
            maxItem = max(maxItem, itemScore[j])
            maxContent = max(maxContent, contentScore[j])
        }
        let maxPopularity = Double(model.popularity.max() ?? 0)
        var ranked: [Ranked] = candidates.map { j in
            var s = 0.0
            if maxItem > 0 { s += weights.item * itemScore[j] / maxItem }
            if maxContent > 0 { s += weights.content * contentScore[j] / maxContent }
            if maxPopularity > 0 { s += weights.popularity * Double(model.popularity[j]) / maxPopularity }
            return Ranked(item: Int32(j), score: s)
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
            for r in ranked { top.offer(r) }
            return (top.sorted(), cold)
        }
        ranked.sort(by: before)
        var out: [Ranked] = []
        var perCount: [String: Int] = [:]
        for r in ranked where out.count < n {
            let c = model.items[Int(r.item)].category ?? ""
            if perCount[c, default: 0] < perCategory {
                perCount[c, default: 0] += 1
                out.append(r)
            }
        }
        return (out, cold)
    }
}
