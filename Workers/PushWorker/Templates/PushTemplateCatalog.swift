import FleetCore
import FleetMarketing
import Foundation
import Liquid
import Synchronization

/// The push templates of a `Templates/` directory:
///
/// ```
/// Templates/push/<name>/meta.json       PushTemplateMetadata (optional: all keys have defaults)
/// Templates/push/<name>/title.liquid    required for push_type alert
/// Templates/push/<name>/subtitle.liquid optional (iOS shows it; FCM has none)
/// Templates/push/<name>/body.liquid     required for push_type alert
/// Templates/push/<name>/image.liquid    optional: an image URL
/// Templates/push/<name>/link.liquid     optional: the deep link
/// Templates/push/<name>/data.liquid     optional: a JSON object of custom data
/// Templates/partials/_<partial>.liquid  shared partials
/// ```
///
/// Compiled templates are cached and re-checked (file stamps) at most every `checkInterval`.
public final class PushTemplateCatalog: Sendable {
    public let directory: String
    public let library: LiquidTemplateLibrary
    private let checkInterval: Duration
    private let cache = Mutex<[String: (template: PushTemplate, checked: ContinuousClock.Instant)]>([:])

    public init(directory: String, checkInterval: Duration = .seconds(2)) {
        self.directory = directory
        self.checkInterval = checkInterval
        library = LiquidTemplateLibrary(directory: directory, checkInterval: checkInterval)
    }

    /// The compiled template `name`. Throws ``PushError`` `template_not_found` or `template_error` (with the file,
    /// line and column of a syntax error).
    public func template(named name: String) throws(PushError) -> PushTemplate {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[name] }), now - hit.checked < checkInterval { return hit.template }
        guard LiquidErrorText.isValidTemplateName(name) else { throw PushError("template_not_found", "illegal template name '\(name)'") }
        let base = "push/\(name)"
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "\(directory)/\(base)", isDirectory: &isDirectory), isDirectory.boolValue else {
            throw PushError("template_not_found", "no push template '\(name)' (\(base)/ is missing)")
        }
        var metaJSON: JSONValue = .object(JSONObject())
        if let data = FileManager.default.contents(atPath: "\(directory)/\(base)/meta.json") {
            do { metaJSON = try JSONValue(parsing: [UInt8](data)) } catch {
                throw PushError("template_error", "\(base)/meta.json is not JSON: \(error)")
            }
        }
        let metadata = try PushTemplateMetadata(json: metaJSON, template: base)
        let alert = metadata.pushType == "alert"
        let template = PushTemplate(
            name: name, metadata: metadata,
            title: try load("\(base)/title", required: alert), subtitle: try load("\(base)/subtitle", required: false),
            body: try load("\(base)/body", required: alert), image: try load("\(base)/image", required: false),
            link: try load("\(base)/link", required: false), data: try load("\(base)/data", required: false))
        cache.withLock { $0[name] = (template, now) }
        return template
    }

    private func load(_ name: String, required: Bool) throws(PushError) -> LiquidTemplate? {
        if !required, !FileManager.default.fileExists(atPath: "\(directory)/\(name).liquid") { return nil }
        do {
            return try library.template(named: name)
        } catch {
            if error.code == .templateNotFound { throw PushError("template_not_found", "missing \(name).liquid") }
            throw PushError("template_error", LiquidErrorText.located(error))
        }
    }
}
