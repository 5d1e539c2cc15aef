/// Partials from a dictionary of sources (tests, golden-liquid `templates`). Looks `name` up as given,
/// then as `name.liquid` and `_name.liquid` (in the same directory). Parses on each lookup; a render caches
/// the partials it used.
public struct LiquidInMemoryFileSystem: LiquidFileSystem {
    /// Sources by name.
    public var sources: [String: String]

    /// A file system over `sources`.
    public init(_ sources: [String: String]) { self.sources = sources }

    public func template(named name: String, options: LiquidParseOptions) throws(LiquidError) -> LiquidTemplate {
        for candidate in LiquidTemplateLibrary.candidatePaths(for: name) {
            if let source = sources[candidate] {
                return try LiquidTemplate(source, name: name, options: options)
            }
        }
        if let source = sources[name] { return try LiquidTemplate(source, name: name, options: options) }
        throw LiquidError(.templateNotFound, "Could not find asset \(name)")
    }
}
