import FleetCore
import FleetMarketing
import Liquid

/// A compiled `copy` template (Templates/content/<name>/): the prompt, the optional system text, the metadata, and
/// the fallback copy's Liquid texts.
public struct CopyTemplate: Sendable {
    public var name: String
    public var metadata: CopyTemplateMetadata
    public var prompt: LiquidTemplate
    public var system: LiquidTemplate?
    /// The fallback's texts by field (`text` for `output: text`).
    public var fallback: [(field: String, template: LiquidTemplate)]?
    /// The sources of the prompt and system files (to locate an undefined variable by line).
    public var sources: [String: String] = [:]

    /// `error` with its file and, for an undefined variable the engine reports without a line, the first line of
    /// `file` that reads it.
    func located(_ error: LiquidError, file: String) -> String {
        let base = LiquidErrorText.located(error)
        guard error.line == nil, let source = sources[file], let r = error.message.range(of: "undefined variable ") else { return base }
        let path = error.message[r.upperBound...].prefix { !$0.isWhitespace }
        guard let n = source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex(where: { $0.contains(path) }) else { return base }
        return "content/\(name)/\(file).liquid line \(n + 1): \(error.message)"
    }
}
