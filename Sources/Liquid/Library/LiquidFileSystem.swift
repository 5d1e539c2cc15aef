/// Where `include` and `render` find partials by name. ``LiquidTemplateLibrary`` (a directory, cached,
/// reloaded on change) and ``LiquidInMemoryFileSystem`` implement it.
public protocol LiquidFileSystem: Sendable {
    /// The compiled template `name` refers to, parsed with `options` (the including template's).
    /// Throws `.templateNotFound` when there is none.
    func template(named name: String, options: LiquidParseOptions) throws(LiquidError) -> LiquidTemplate
}
