import FleetCore
import FleetMarketing

/// The metadata of a push template (`Templates/push/<name>/meta.json`), every key optional:
///
/// ```json
/// {"category": "marketing", "subscription_group": "offers", "push_type": "alert", "priority": "high",
///  "ttl_seconds": 86400, "collapse_key": "spring-sale", "quiet_hours": "21:00-08:00", "truncate_body": true,
///  "sound": "default", "uncertain": "resend"}
/// ```
///
/// `category`: `marketing` (consent on channel `push` and the group, frequency caps, quiet hours apply) or
/// `transactional` (exempt; suppressions still apply). `quiet_hours` `off` exempts a marketing template from the
/// worker's default. `truncate_body`: a payload over 4,096 bytes gets its body cut (on a character boundary, with
/// an ellipsis) until it fits, instead of the job being `dead` / `payload_too_large`. `uncertain`: what a
/// redelivered job does for a device whose earlier push may or may not have been accepted (the worker died while
/// waiting for the answer): `resend` (the default; with the same `apns-id` and collapse key, so the device shows
/// one notification) or `skip`.
public struct PushTemplateMetadata: Sendable, Hashable {
    public enum Category: String, Sendable, Hashable {
        case marketing, transactional
    }

    public var category: Category
    /// A consent topic on channel `push`; `""` is the channel as a whole.
    public var subscriptionGroup: String
    /// `apns-push-type`: `alert` or `background` (a background push carries only `data`, priority 5).
    public var pushType: String
    /// `high` (apns-priority 10, FCM HIGH) or `normal` (5, NORMAL).
    public var highPriority: Bool
    public var ttlSeconds: Int?
    public var collapseKey: String?
    /// nil: the worker's default applies; `.some(nil)`: `off`.
    public var quietHours: QuietHours??
    public var truncateBody: Bool
    public var sound: String?
    public var resendIfUncertain: Bool

    public init(json: JSONValue, template: String) throws(PushError) {
        func bad(_ message: String) -> PushError { PushError("template_error", "\(template)/meta.json: \(message)") }
        guard case .object(let o) = json else { throw bad("must be a JSON object") }
        guard let category = Category(rawValue: o["category"]?.stringValue ?? "marketing") else {
            throw bad("'category' must be 'marketing' or 'transactional'")
        }
        self.category = category
        subscriptionGroup = o["subscription_group"]?.stringValue ?? ""
        pushType = o["push_type"]?.stringValue ?? "alert"
        guard ["alert", "background"].contains(pushType) else { throw bad("'push_type' must be 'alert' or 'background'") }
        switch o["priority"]?.stringValue ?? (pushType == "alert" ? "high" : "normal") {
        case "high": highPriority = true
        case "normal": highPriority = false
        default: throw bad("'priority' must be 'high' or 'normal'")
        }
        if pushType == "background" && highPriority { throw bad("a background push must have priority 'normal' (APNs refuses 10)") }
        switch o["ttl_seconds"] {
        case nil, .null?: ttlSeconds = nil
        case let v?:
            guard let n = v.intValue, (0...2_419_200).contains(n) else { throw bad("'ttl_seconds' must be an integer from 0 to 2419200 (28 days)") }
            ttlSeconds = Int(n)
        }
        collapseKey = o["collapse_key"]?.stringValue
        if let key = collapseKey, key.utf8.count > 64 || key.isEmpty { throw bad("'collapse_key' must be 1 to 64 bytes") }
        switch o["quiet_hours"] {
        case nil, .null?: quietHours = nil
        case .string("off")?, .bool(false)?: quietHours = .some(nil)
        case .string(let text)?:
            guard let q = QuietHours(text) else { throw bad("'quiet_hours' must be HH:MM-HH:MM or 'off'") }
            quietHours = .some(q)
        default: throw bad("'quiet_hours' must be HH:MM-HH:MM or 'off'")
        }
        truncateBody = o["truncate_body"]?.boolValue ?? false
        sound = o["sound"]?.stringValue
        switch o["uncertain"]?.stringValue ?? "resend" {
        case "resend": resendIfUncertain = true
        case "skip": resendIfUncertain = false
        default: throw bad("'uncertain' must be 'resend' or 'skip'")
        }
    }
}
