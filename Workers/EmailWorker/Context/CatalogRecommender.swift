import FleetCore
import ProfileStore
import Foundation
import Synchronization

/// Product recommendations from the catalog, for now the top sellers of the person's categories: products
/// ranked by how many purchases (events with an amount, in the last 90 days, whose `items` name the sku)
/// included them. The ranking is computed for all categories at once by a reader of the profile store and
/// cached for `refresh` (one query a minute, not one per message).
///
/// A person's categories: the trait `categories` (array of strings) or `favorite_category`; with neither, the
/// top sellers of the whole catalog.
public final class CatalogRecommender: Sendable {
    struct Ranking: Sendable {
        var byCategory: [String: [JSONValue]]
        var overall: [JSONValue]
        var loadedAt: ContinuousClock.Instant
    }

    private let store: any CatalogStore
    private let refresh: Duration
    private let cache = Mutex<Ranking?>(nil)

    public init(store: any CatalogStore, refresh: Duration = .seconds(60)) {
        self.store = store
        self.refresh = refresh
    }

    /// Up to `limit` products for a profile (`{sku, name, price, currency, category, url, sales}`).
    public func recommendations(for profile: JSONObject, limit: Int = 4) async throws -> [JSONValue] {
        let ranking = try await current()
        var categories: [String] = []
        if case .array(let list)? = profile["categories"] { categories = list.compactMap(\.stringValue) }
        if let favorite = profile["favorite_category"]?.stringValue { categories.append(favorite) }
        if categories.isEmpty { return Array(ranking.overall.prefix(limit)) }
        var out: [JSONValue] = []
        var seen = Set<String>()
        for category in categories {
            for p in ranking.byCategory[category] ?? [] where out.count < limit {
                if let sku = p["sku"]?.stringValue, seen.insert(sku).inserted { out.append(p) }
            }
        }
        return out
    }

    private func current() async throws -> Ranking {
        if let r = cache.withLock({ $0 }), ContinuousClock.now - r.loadedAt < refresh { return r }
        let since = Int64(Date().timeIntervalSince1970 * 1000) - 90 * 86_400_000
        let rows = try await store.topSellers(sinceMillis: since, limit: 5000)
        var byCategory: [String: [JSONValue]] = [:]
        for (p, category) in rows {
            if let category, byCategory[category, default: []].count < 20 { byCategory[category, default: []].append(p) }
        }
        let ranking = Ranking(byCategory: byCategory, overall: Array(rows.prefix(20).map(\.0)), loadedAt: .now)
        cache.withLock { $0 = ranking }
        return ranking
    }
}
