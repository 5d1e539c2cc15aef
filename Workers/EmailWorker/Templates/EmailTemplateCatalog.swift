import FleetCore
import FleetMarketing
import Foundation
import Liquid
import Synchronization

/// The email templates of a `Templates/` directory:
///
/// ```
/// Templates/email/<name>/meta.json        EmailTemplateMetadata
/// Templates/email/<name>/subject.liquid   required
/// Templates/email/<name>/preheader.liquid optional
/// Templates/email/<name>/html.liquid      required
/// Templates/email/<name>/text.liquid      optional (else derived from the html)
/// Templates/layouts/<layout>.liquid       shared layouts (get the message html as `content`)
/// Templates/partials/_<partial>.liquid    shared partials: {% include 'partials/footer' %}
/// ```
///
/// Compiled templates are cached and re-checked (file stamps, through ``LiquidTemplateLibrary``) at most
/// every `checkInterval`. Reading files happens on first use and on change only.
public final class EmailTemplateCatalog: Sendable {
    /// The `Templates/` directory.
    public let directory: String
    /// The Liquid library over `directory` (also the file system of `include` / `render`).
    public let library: LiquidTemplateLibrary
    private let checkInterval: Duration
    private let cache = Mutex<[String: (template: EmailTemplate, checked: ContinuousClock.Instant)]>([:])

    public init(directory: String, checkInterval: Duration = .seconds(2)) {
        self.directory = directory
        self.checkInterval = checkInterval
        library = LiquidTemplateLibrary(directory: directory, checkInterval: checkInterval)
    }

    /// The compiled template `name`. Throws ``EmailError`` `template_not_found` or `template_error` (with
    /// the file, line and column of a syntax error).
    public func template(named name: String) throws(EmailError) -> EmailTemplate {
        let now = ContinuousClock.now
        if let hit = cache.withLock({ $0[name] }), now - hit.checked < checkInterval { return hit.template }
        guard Self.isValidName(name) else { throw EmailError("template_not_found", "illegal template name '\(name)'") }
        let base = "email/\(name)"
        let metaPath = "\(directory)/\(base)/meta.json"
        guard let metaData = FileManager.default.contents(atPath: metaPath) else {
            throw EmailError("template_not_found", "no email template '\(name)' (\(base)/meta.json is missing)")
        }
        let metaJSON: JSONValue
        do { metaJSON = try JSONValue(parsing: [UInt8](metaData)) } catch {
            throw EmailError("template_error", "\(base)/meta.json is not JSON: \(error)")
        }
        let metadata = try EmailTemplateMetadata(json: metaJSON, template: base)
        let template = EmailTemplate(
            name: name, metadata: metadata,
            subject: try load("\(base)/subject", required: true)!,
            preheader: try load("\(base)/preheader", required: false),
            html: try load("\(base)/html", required: true)!,
            text: try load("\(base)/text", required: false),
            layout: try metadata.layout.map { (layout: String) throws(EmailError) -> LiquidTemplate in
                try load("layouts/\(layout)", required: true)!
            })
        cache.withLock { $0[name] = (template, now) }
        return template
    }

    private func load(_ name: String, required: Bool) throws(EmailError) -> LiquidTemplate? {
        if !required, !FileManager.default.fileExists(atPath: "\(directory)/\(name).liquid") { return nil }
        do {
            return try library.template(named: name)
        } catch {
            if error.code == .templateNotFound {
                throw EmailError("template_not_found", "missing \(name).liquid")
            }
            throw Self.templateError(error)
        }
    }

    /// A Liquid error as a `template_error`, naming the file, line and column.
    static func templateError(_ error: LiquidError) -> EmailError {
        EmailError("template_error", LiquidErrorText.located(error))
    }

    static func isValidName(_ name: String) -> Bool { LiquidErrorText.isValidTemplateName(name) }
}
