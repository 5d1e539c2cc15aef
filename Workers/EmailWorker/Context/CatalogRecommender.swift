import FleetCore
import FleetStore
import Foundation
import Synchronization

/// Product recommendations from the catalog, for now the top sellers of the person's categories: products
/// ranked by how many purchases (events with an amount, in the last 90 days, whose `items` name the sku)
/// included them. The ranking is computed for all categories at once on the ledger's connection and cached
/// for `refresh` (one query a minute, not one per message).
///
/// A person's categories: the trait `categories` (array of strings) or `favorite_category`; with neither, the
/// top sellers of the whole catalog.
public final class CatalogRecommender: Sendable {
    struct Ranking: Sendable {
        var byCategory: [String: [JSONValue]]
        var overall: [JSONValue]
        var loadedAt: ContinuousClock.Instant
    }

    private let ledger: EmailLedger
    private let refresh: Duration
    private let cache = Mutex<Ranking?>(nil)

    public init(ledger: EmailLedger, refresh: Duration = .seconds(60)) {
        self.ledger = ledger
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
        let rows: [(JSONValue, String?)] = try await ledger.run { db in
            let hasCatalog = try db.withStatement("SELECT 1 FROM sqlite_master WHERE name = 'catalog'") { try $0.step() }
            guard hasCatalog else { return [] }
            return try db.withStatement("""
                WITH sales AS (
                    SELECT json_extract(i.value, '$.sku') AS sku, count(*) AS n
                    FROM events e, json_each(e.properties, '$.items') i
                    WHERE e.amount IS NOT NULL AND e.occurred_at >= ?
                    GROUP BY 1)
                SELECT c.sku, c.name, c.price, c.currency, c.category, c.url, coalesce(s.n, 0) AS n
                FROM catalog c LEFT JOIN sales s ON s.sku = c.sku
                ORDER BY n DESC, c.sku LIMIT 5000
                """) { s in
                try s.bind(since, at: 1)
                var out: [(JSONValue, String?)] = []
                while try s.step() {
                    var o = JSONObject()
                    o["sku"] = .string(s.string(at: 0) ?? "")
                    o["name"] = .string(s.string(at: 1) ?? "")
                    o["price"] = s.isNull(at: 2) ? .null : .double(s.double(at: 2))
                    o["currency"] = s.string(at: 3).map { .string($0) } ?? .null
                    o["category"] = s.string(at: 4).map { .string($0) } ?? .null
                    o["url"] = s.string(at: 5).map { .string($0) } ?? .null
                    o["sales"] = .int(s.int64(at: 6))
                    out.append((.object(o), s.string(at: 4)))
                }
                return out
            }
        }
        var byCategory: [String: [JSONValue]] = [:]
        for (p, category) in rows {
            if let category, byCategory[category, default: []].count < 20 { byCategory[category, default: []].append(p) }
        }
        let ranking = Ranking(byCategory: byCategory, overall: Array(rows.prefix(20).map(\.0)), loadedAt: .now)
        cache.withLock { $0 = ranking }
        return ranking
    }
}
