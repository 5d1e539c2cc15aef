import FleetCore
import FleetMarketing
import Foundation
import Liquid
import Synchronization

/// The `copy` templates of a `Templates/` directory:
///
/// ```
/// Templates/content/<name>/meta.json       CopyTemplateMetadata (traits, output, schema, limits, fallback)
/// Templates/content/<name>/prompt.liquid   required: the user message
/// Templates/content/<name>/system.liquid   optional: the system message
/// ```
///
/// A template may read `profile.<trait>` only for the traits `meta.json` lists (checked when it loads: data
/// minimisation). Compiled templates are cached and re-checked at most every `checkInterval`.
public final class CopyTemplateCatalog: Sendable {
    public let directory: String
    public let library: LiquidTemplateLibrary
    private let checkInterval: Duration
    private let cache = Mutex<[String: (template: CopyTemplate, checked: ContinuousClock.Instant)]>([:])

    public init(directory: String, checkInterval: Duration = .seconds(2)) {
        self.directory = directory
        self.checkInterval = checkInterval
        library = LiquidTemplateLibrary(directory: directory, checkInterval: checkInterval)
    }

    /// The compiled template `name`. Throws ``ContentError`` `template_not_found` or `template_error` (the file, line
    /// and column of a syntax error; a trait read but not listed in `traits`).
    public func template(named name: String) throws(ContentError) -> CopyTemplate {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[name] }), now - hit.checked < checkInterval { return hit.template }
        guard LiquidErrorText.isValidTemplateName(name) else { throw ContentError("template_not_found", "illegal template name '\(name)'") }
        let base = "content/\(name)"
        guard FileManager.default.fileExists(atPath: "\(directory)/\(base)/prompt.liquid") else {
            throw ContentError("template_not_found", "no copy template '\(name)' (\(base)/prompt.liquid is missing)")
        }
        var metaJSON: JSONValue = .object(JSONObject())
        if let data = FileManager.default.contents(atPath: "\(directory)/\(base)/meta.json") {
            do { metaJSON = try JSONValue(parsing: [UInt8](data)) } catch {
                throw ContentError("template_error", "\(base)/meta.json is not JSON: \(error)")
            }
        }
        let metadata = try CopyTemplateMetadata(json: metaJSON, template: base)
        let allowed = Set(metadata.traits)
        var sources: [String: String] = [:]
        for file in ["prompt", "system"] {
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(base)/\(file).liquid") else { continue }
            let source = String(decoding: data, as: UTF8.self)
            sources[file] = source
            if let (trait, line) = Self.profileReads(source).first(where: { !allowed.contains($0.trait) }) {
                throw ContentError("template_error", "\(base)/\(file).liquid line \(line): reads profile.\(trait), which meta.json's \"traits\" does not list")
            }
        }
        var fallback: [(String, LiquidTemplate)]?
        switch metadata.fallback {
        case .string(let s)?: fallback = [("text", try Self.compile(s, name: "\(base)/meta.json fallback"))]
        case .object(let o)?:
            fallback = []
            for (field, value) in o { fallback?.append((field, try Self.compile(value.stringValue ?? "", name: "\(base)/meta.json fallback.\(field)"))) }
        default: break
        }
        let template = CopyTemplate(name: name, metadata: metadata, prompt: try load("\(base)/prompt"),
                                    system: FileManager.default.fileExists(atPath: "\(directory)/\(base)/system.liquid") ? try load("\(base)/system") : nil,
                                    fallback: fallback.map { $0.map { (field: $0.0, template: $0.1) } }, sources: sources)
        cache.withLock { $0[name] = (template, now) }
        return template
    }

    /// The `profile.<name>` reads in a template's source, with their lines.
    static func profileReads(_ source: String) -> [(trait: String, line: Int)] {
        var out: [(String, Int)] = []
        for (n, line) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var rest = Substring(line)
            while let r = rest.range(of: "profile.") {
                let before = rest[..<r.lowerBound].last
                rest = rest[r.upperBound...]
                if let b = before, b.isLetter || b.isNumber || b == "_" || b == "." { continue }
                let name = rest.prefix { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
                if !name.isEmpty { out.append((String(name), n + 1)) }
            }
        }
        return out
    }

    private static func compile(_ source: String, name: String) throws(ContentError) -> LiquidTemplate {
        do { return try LiquidTemplate(source, name: name) } catch { throw ContentError("template_error", LiquidErrorText.located(error)) }
    }

    private func load(_ name: String) throws(ContentError) -> LiquidTemplate {
        do {
            return try library.template(named: name)
        } catch {
            if error.code == .templateNotFound { throw ContentError("template_not_found", "missing \(name).liquid") }
            throw ContentError("template_error", LiquidErrorText.located(error))
        }
    }
}
