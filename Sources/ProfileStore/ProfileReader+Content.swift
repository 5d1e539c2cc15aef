import FleetCore

extension ProfileReader {
    /// The interactions of every person (`profileID` nil) or of one, from events whose name has a weight in
    /// `weights`, or that carry an amount (purchases, weight `purchaseWeight`), and whose `properties.items` name a sku.
    public func interactions(weights: [String: Double], purchaseWeight: Double, profileID: String? = nil) throws -> [Interaction] {
        let names = weights.keys.sorted()
        let marks = names.isEmpty ? "NULL" : Array(repeating: "?", count: names.count).joined(separator: ",")
        let sql = """
            SELECT e.profile_id, json_extract(i.value, '$.sku'), e.occurred_at, e.name, e.amount IS NOT NULL
            FROM events e, json_each(e.properties, '$.items') i
            WHERE (e.name IN (\(marks)) OR e.amount IS NOT NULL) AND i.type = 'object'\(profileID == nil ? "" : " AND e.profile_id = ?")
            """
        return try database.withStatement(sql) { s in
            for (n, name) in names.enumerated() { try s.bind(name, at: n + 1) }
            if let profileID { try s.bind(profileID, at: names.count + 1) }
            var out: [Interaction] = []
            while try s.step() {
                guard let profile = s.string(at: 0), let sku = s.string(at: 1) else { continue }
                let weight = s.int(at: 4) != 0 ? max(purchaseWeight, weights[s.string(at: 3) ?? ""] ?? 0) : weights[s.string(at: 3) ?? ""] ?? 0
                out.append(Interaction(profileID: profile, sku: sku, occurredAt: s.int64(at: 2), weight: weight))
            }
            return out
        }
    }

    /// The whole catalog, by sku.
    public func catalog() throws -> [CatalogProduct] {
        try database.withStatement("SELECT sku, name, price, currency, category, tags, url FROM catalog ORDER BY sku") { s in
            var out: [CatalogProduct] = []
            while try s.step() {
                let tags = (try? JSONValue(parsing: s.string(at: 5) ?? "[]"))?.arrayValue?.compactMap(\.stringValue) ?? []
                out.append(CatalogProduct(sku: s.string(at: 0) ?? "", name: s.string(at: 1) ?? "", price: s.isNull(at: 2) ? nil : s.double(at: 2),
                                          currency: s.string(at: 3), category: s.string(at: 4), tags: tags, url: s.string(at: 6)))
            }
            return out
        }
    }

    /// The newest recommendation model's version, if any.
    public func latestModelVersion() throws -> Int64? {
        try database.withStatement("SELECT max(version) FROM rec_models") { s in
            try s.step() && !s.isNull(at: 0) ? s.int64(at: 0) : nil
        }
    }

    /// A recommendation model's bytes.
    public func model(version: Int64) throws -> [UInt8]? {
        try database.withStatement("SELECT model FROM rec_models WHERE version = ?") { s in
            try s.bind(version, at: 1)
            return try s.step() ? s.blob(at: 0) ?? [] : nil
        }
    }

    /// The person's content blocks that have not expired at `now` (ms), by slot.
    public func contentBlocks(profileID: String, now: Int64) throws -> [String: JSONValue] {
        try database.withStatement("SELECT slot, block FROM content_blocks WHERE profile_id = ? AND expires_at > ?") { s in
            try s.bind(profileID, at: 1)
            try s.bind(now, at: 2)
            var out: [String: JSONValue] = [:]
            while try s.step() {
                if let slot = s.string(at: 0), let block = try? JSONValue(parsing: s.string(at: 1) ?? "") { out[slot] = block }
            }
            return out
        }
    }

    /// The cached model answer of a prompt hash, unless it expired at `now` (ms).
    public func cachedAnswer(promptHash: String, now: Int64) throws -> JSONValue? {
        try database.withStatement("SELECT answer FROM llm_cache WHERE prompt_hash = ? AND expires_at > ?") { s in
            try s.bind(promptHash, at: 1)
            try s.bind(now, at: 2)
            return try s.step() ? try? JSONValue(parsing: s.string(at: 0) ?? "") : nil
        }
    }
}
