import FleetCore

/// The product catalog on either backend: imported by `fleet catalog import`, read by sku, and ranked by purchases
/// (the email worker's fallback recommendations).
///
/// `ProfileStore` (SQLite) and `PostgresProfileStore` implement it; Tests/FleetPostgresTests/ProfileBackendTests
/// runs one suite against both.
public protocol CatalogStore: Sendable {
    /// Inserts or replaces products (by sku); returns the count.
    func importCatalog(_ products: [CatalogProduct]) async throws -> Int

    /// A product by sku, or nil.
    func product(sku: String) async throws -> CatalogProduct?

    /// The catalog's products ranked by how many purchases since `sinceMillis` (events with an amount whose `items`
    /// name the sku) included them, best first, then by sku (bytewise): `({sku, name, price, currency, category, url,
    /// sales}, category)`, at most `limit`.
    func topSellers(sinceMillis: Int64, limit: Int) async throws -> [(product: JSONValue, category: String?)]
}

extension ProfileStore: CatalogStore {
    public func product(sku: String) async throws -> CatalogProduct? {
        try await read { try $0.product(sku: sku) }
    }

    public func topSellers(sinceMillis: Int64, limit: Int) async throws -> [(product: JSONValue, category: String?)] {
        try await read { try $0.topSellers(sinceMillis: sinceMillis, limit: limit) }
    }
}
