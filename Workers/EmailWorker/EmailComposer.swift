import Liquid

/// Renders an ``EmailTemplate`` for one person: subject, preheader, html (in its layout, links decorated,
/// preheader and pixel inserted) and text (its own template, or derived from the html).
public struct EmailComposer: Sendable {
    /// A rendered message, before MIME.
    public struct Rendered: Sendable, Hashable {
        public var subject: String
        public var preheader: String?
        public var html: String
        public var text: String
    }

    /// What rendering gave.
    public enum Outcome: Sendable, Hashable {
        case rendered(Rendered)
        /// `{% abort_message %}` ran: do not send.
        case aborted(reason: String)
    }

    /// One message's tracking: its open pixel URL, and the tracked form of each link.
    public struct Tracking {
        public var pixelURL: String?
        public var click: ((Int, String) -> String)?

        public init(pixelURL: String? = nil, click: ((Int, String) -> String)? = nil) {
            self.pixelURL = pixelURL
            self.click = click
        }
    }

    public var catalog: EmailTemplateCatalog
    public var decorator: LinkDecorator

    public init(catalog: EmailTemplateCatalog, decorator: LinkDecorator) {
        self.catalog = catalog
        self.decorator = decorator
    }

    /// Renders `template` with `environment` (`profile`, `campaign`, `data`, `recommendations`, `unsubscribe_url`,
    /// `preferences_url`). Throws ``EmailError`` `template_error` with the file, line and column.
    public func render(_ template: EmailTemplate, environment: LiquidObject, tracking: Tracking = Tracking()) throws(EmailError) -> Outcome {
        var options = LiquidRenderOptions(errorMode: .raise)
        options.fileSystem = catalog.library
        var env = environment
        do {
            let subject = Self.oneLine(try template.subject.render(env, options: options))
            let preheader = try template.preheader.map { Self.oneLine(try $0.render(env, options: options)) }
            env["subject"] = .string(subject)
            env["preheader"] = preheader.map { .string($0) } ?? .nil
            // The html stays UTF-8 bytes through its passes (one String at the end, not one per pass).
            var html = try template.html.renderBytes(env, options: options)
            if let layout = template.layout {
                env["content"] = .string(String(decoding: html, as: UTF8.self))
                html = try layout.renderBytes(env, options: options)
            }
            html = decorator.decorate(bytes: html, track: tracking.click)
            let text = try template.text.map { try $0.render(env, options: options) } ?? HTMLText.text(fromBytes: html)
            if let preheader, !preheader.isEmpty { html = Self.insertPreheader(preheader, into: html) }
            if let pixelURL = tracking.pixelURL { html = LinkDecorator.addPixel(bytes: html, url: pixelURL) }
            return .rendered(Rendered(subject: subject, preheader: preheader, html: String(decoding: html, as: UTF8.self), text: text))
        } catch let error as LiquidError {
            if error.code == .aborted { return .aborted(reason: error.message) }
            throw EmailTemplateCatalog.templateError(error)
        } catch {
            throw EmailError("template_error", "\(error)")
        }
    }

    /// Whitespace runs (line breaks included) become single spaces; trimmed.
    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined(separator: " ")
    }

    /// A hidden preheader right after `<body ...>`.
    static func insertPreheader(_ preheader: String, into html: [UInt8]) -> [UInt8] {
        let span = "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">\(LiquidHTML.escape(preheader))</div>"
        guard let body = ByteSearch.firstIndex(of: Array("<body".utf8), in: html, from: 0),
              let close = html[(body + 5)...].firstIndex(of: UInt8(ascii: ">")) else { return Array(span.utf8) + html }
        var out: [UInt8] = []
        out.reserveCapacity(html.count + span.utf8.count)
        out.append(contentsOf: html[...close])
        out.append(contentsOf: span.utf8)
        out.append(contentsOf: html[(close + 1)...])
        return out
    }
}
