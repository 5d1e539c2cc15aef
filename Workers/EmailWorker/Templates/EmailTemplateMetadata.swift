import FleetCore

/// The metadata of an email template (`Templates/email/<name>/meta.json`):
///
/// ```json
/// {"from": "Shop <news@shop.example.com>", "reply_to": "help@shop.example.com",
///  "subscription_group": "newsletter", "category": "marketing", "layout": "base", "list_name": "Shop newsletter"}
/// ```
///
/// `category` is `marketing` (consent and the frequency cap apply) or `transactional` (exempt from both; the
/// suppression list still applies). `uncertain` is what a redelivered job does when an earlier run may or may not
/// have handed the message to the relay (the worker died between the end of DATA and the relay's reply): `skip`
/// (the default: a marketing mail lost is better than one doubled) or `resend` (e.g. a password reset, which a
/// person would rather get twice than not at all). `layout` names `Templates/layouts/<layout>.liquid`, rendered with the
/// message's html as `content`.
public struct EmailTemplateMetadata: Sendable, Hashable {
    /// Marketing or transactional.
    public enum Category: String, Sendable, Hashable {
        case marketing, transactional
    }

    /// The From header (`Name <address>` or an address).
    public var from: String
    /// The Reply-To header, if any.
    public var replyTo: String?
    /// The subscription group (a consent topic on channel `email`); `""` means the channel as a whole.
    public var subscriptionGroup: String
    public var category: Category
    /// A layout under `Templates/layouts/`, if any.
    public var layout: String?
    /// The human name of the list, for `List-ID`.
    public var listName: String?
    /// Resend a message whose earlier delivery is uncertain (`"uncertain": "resend"`), instead of skipping it.
    public var resendIfUncertain: Bool

    public init(from: String, replyTo: String? = nil, subscriptionGroup: String = "", category: Category = .marketing,
                layout: String? = nil, listName: String? = nil, resendIfUncertain: Bool = false) {
        self.from = from
        self.replyTo = replyTo
        self.subscriptionGroup = subscriptionGroup
        self.category = category
        self.layout = layout
        self.listName = listName
        self.resendIfUncertain = resendIfUncertain
    }

    /// Decodes `meta.json`.
    public init(json: JSONValue, template: String) throws(EmailError) {
        guard case .object(let o) = json else { throw EmailError("template_error", "\(template)/meta.json must be a JSON object") }
        guard let from = o["from"]?.stringValue, !from.isEmpty else {
            throw EmailError("template_error", "\(template)/meta.json needs a string 'from'")
        }
        self.from = from
        replyTo = o["reply_to"]?.stringValue
        subscriptionGroup = o["subscription_group"]?.stringValue ?? ""
        let raw = o["category"]?.stringValue ?? "marketing"
        guard let category = Category(rawValue: raw) else {
            throw EmailError("template_error", "\(template)/meta.json: 'category' must be 'marketing' or 'transactional'")
        }
        self.category = category
        layout = o["layout"]?.stringValue
        listName = o["list_name"]?.stringValue
        switch o["uncertain"]?.stringValue ?? "skip" {
        case "skip": resendIfUncertain = false
        case "resend": resendIfUncertain = true
        default: throw EmailError("template_error", "\(template)/meta.json: 'uncertain' must be 'skip' or 'resend'")
        }
    }
}
