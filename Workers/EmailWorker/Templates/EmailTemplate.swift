import Liquid

/// One email template, compiled: subject, preheader, html and (optionally) text, with its metadata.
/// Without a text template the text part is derived from the html (``HTMLText``).
public struct EmailTemplate: Sendable {
    /// The template's name (`newsletter`: the folder `Templates/email/newsletter/`).
    public var name: String
    public var metadata: EmailTemplateMetadata
    public var subject: LiquidTemplate
    public var preheader: LiquidTemplate?
    public var html: LiquidTemplate
    public var text: LiquidTemplate?
    /// The layout the html is wrapped in, if any.
    public var layout: LiquidTemplate?

    public init(name: String, metadata: EmailTemplateMetadata, subject: LiquidTemplate, preheader: LiquidTemplate?,
                html: LiquidTemplate, text: LiquidTemplate?, layout: LiquidTemplate?) {
        self.name = name
        self.metadata = metadata
        self.subject = subject
        self.preheader = preheader
        self.html = html
        self.text = text
        self.layout = layout
    }
}
