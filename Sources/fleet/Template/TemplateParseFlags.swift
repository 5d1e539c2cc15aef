import ArgumentParser
import Liquid

/// The parse-time strictness flags `template render` and `template check` share.
struct TemplateParseFlags: ParsableArguments {
    @Flag(name: .customLong("strict-parse"), help: "Parse in Liquid's strict error mode (reject markup the lax parser ignores).")
    var strictParse = false

    @Flag(name: .customLong("strict-filters"), help: "An unknown filter is an error (found when parsing).")
    var strictFilters = false

    /// The engine's parse options for these flags; `strict` turns every parse-time strictness on.
    func parseOptions(strict: Bool) -> LiquidParseOptions {
        LiquidParseOptions(errorMode: strict || strictParse ? .strict : .lax, strictFilters: strict || strictFilters)
    }
}
