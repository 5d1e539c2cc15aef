/// The standard filters of Shopify Liquid 5, by name.
public enum LiquidFilters {
    /// Every standard filter (the 59 golden-liquid tests, abs to where, plus the alias `h`), looked up once
    /// at parse time.
    public static let standard: [String: LiquidFilterFunction] = {
        var all: [String: LiquidFilterFunction] = [:]
        for group in [
            StringFilters.all, MathFilters.all, ArrayFilters.all, HTMLFilters.all, URLFilters.all,
            Base64Filters.all, DateFilter.all,
        ] {
            all.merge(group) { first, _ in first }
        }
        return all
    }()
}
