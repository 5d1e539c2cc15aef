/// How a template is parsed.
public struct LiquidParseOptions: Sendable {
    /// Shopify's error modes: `.lax` (the default, as Ruby's `Liquid::Template.parse`) tries the strict
    /// grammar for outputs and falls back to the permissive regex-based parsing that ignores garbage;
    /// `.strict` (`error_mode: :strict`) rejects anything outside the grammar.
    public enum ErrorMode: Sendable, Hashable {
        case lax
        case strict
    }

    /// Lax or strict parsing.
    public var errorMode: ErrorMode
    /// When true, an unknown filter name is a syntax error (Ruby's `strict_filters`, raised at parse time
    /// here); when false it passes its input through, as Liquid does.
    public var strictFilters: Bool
    /// Extra filters by name, looked up before ``LiquidFilters/standard`` (so they may override one).
    public var filters: [String: LiquidFilterFunction]
    /// How deeply blocks may nest (Ruby's `Block::MAX_DEPTH`, 100).
    public var maxNestingDepth: Int

    /// Options; the defaults are Ruby Liquid's.
    public init(
        errorMode: ErrorMode = .lax, strictFilters: Bool = false, filters: [String: LiquidFilterFunction] = [:],
        maxNestingDepth: Int = 100
    ) {
        self.errorMode = errorMode
        self.strictFilters = strictFilters
        self.filters = filters
        self.maxNestingDepth = maxNestingDepth
    }

    /// Ruby's `error_mode: :strict`.
    public static var strict: LiquidParseOptions { LiquidParseOptions(errorMode: .strict) }

    func filter(named name: String) -> LiquidFilterFunction? {
        filters[name] ?? LiquidFilters.standard[name]
    }
}
