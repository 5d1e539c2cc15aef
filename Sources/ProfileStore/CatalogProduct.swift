import FleetCore

/// A product of the catalog.
public struct CatalogProduct: Sendable, Hashable {
    public var sku: String
    public var name: String
    public var price: Double?
    public var currency: String?
    public var category: String?
    public var tags: [String]
    public var url: String?

    public init(sku: String, name: String, price: Double? = nil, currency: String? = nil, category: String? = nil,
                tags: [String] = [], url: String? = nil) {
        self.sku = sku
        self.name = name
        self.price = price
        self.currency = currency
        self.category = category
        self.tags = tags
        self.url = url
    }

    /// Reads a product from a flat JSON object (`sku` and `name` required; `price` a number or numeric string;
    /// `tags` an array of strings or a `|`/`,`-separated string).
    public init(json: JSONValue) throws(ProfileStoreError) {
        guard case .object(let o) = json else { throw .wrongType("product", expected: "an object") }
        guard let sku = Self.text(o["sku"]), !sku.isEmpty else { throw .missingField("sku") }
        guard let name = Self.text(o["name"]), !name.isEmpty else { throw .missingField("name") }
        self.sku = sku
        self.name = name
        switch o["price"] {
        case nil, .null?: price = nil
        case .int(let i)?: price = Double(i)
        case .double(let d)?: price = d
        case .string(let s)? where Double(s) != nil: price = Double(s)
        default: throw .wrongType("price", expected: "a number")
        }
        currency = Self.text(o["currency"])
        category = Self.text(o["category"])
        url = Self.text(o["url"])
        switch o["tags"] {
        case .array(let a)?: tags = a.compactMap(\.stringValue)
        case .string(let s)?: tags = s.split(whereSeparator: { $0 == "|" || $0 == "," }).map { String($0).trimmingWhitespace() }
        default: tags = []
        }
    }

    private static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: s.isEmpty ? nil : s
        case .int(let i)?: String(i)
        default: nil
        }
    }

    /// The product as JSON (for templates).
    public var json: JSONValue {
        var o = JSONObject()
        o["sku"] = .string(sku)
        o["name"] = .string(name)
        o["price"] = price.map { .double($0) } ?? .null
        o["currency"] = currency.map { .string($0) } ?? .null
        o["category"] = category.map { .string($0) } ?? .null
        o["tags"] = .array(tags.map { .string($0) })
        o["url"] = url.map { .string($0) } ?? .null
        return .object(o)
    }
}
