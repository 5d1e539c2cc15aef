import FleetCore
import FleetMarketing
import Liquid

/// Renders a push template and builds what APNs and FCM are sent: the APNs JSON payload and the FCM `message`
/// object (without its `token`), both within the services' 4,096-byte limit.
public struct PushComposer: Sendable {
    /// APNs' limit on the payload, and FCM's on the notification and data keys and values.
    public static let maxPayloadBytes = 4096

    let catalog: PushTemplateCatalog

    /// A rendered notification.
    public struct Content: Sendable {
        public var title: String?
        public var subtitle: String?
        public var body: String?
        public var image: String?
        public var link: String?
        /// Custom data (strings: FCM's data map holds strings).
        public var data: [(String, String)]
    }

    public enum Outcome: Sendable {
        case rendered(Content)
        /// `{% abort_message %}` ran: do not send.
        case aborted(reason: String)
    }

    /// What goes to the services for one job: the same for every device of a platform.
    public struct Payloads: Sendable {
        /// The APNs request body.
        public var apns: [UInt8]
        /// The FCM `message` object, without `token`.
        public var fcm: JSONObject
        /// FCM's counted size (the keys and string values of `notification` and `data`).
        public var fcmBytes: Int
        /// Whether the body was cut to fit.
        public var truncated: Bool
    }

    /// Renders `template` with `environment` (`profile`, `campaign`, `data`). Throws ``PushError`` `template_error`.
    public func render(_ template: PushTemplate, environment: LiquidObject) throws(PushError) -> Outcome {
        var options = LiquidRenderOptions(errorMode: .raise)
        options.fileSystem = catalog.library
        do {
            func line(_ t: LiquidTemplate?) throws -> String? {
                guard let t else { return nil }
                let s = Self.oneLine(try t.render(environment, options: options))
                return s.isEmpty ? nil : s
            }
            var content = Content(title: try line(template.title), subtitle: try line(template.subtitle),
                                  body: try template.body.map { Self.trimmed(try $0.render(environment, options: options)) },
                                  image: try line(template.image), link: try line(template.link), data: [])
            if content.body?.isEmpty == true { content.body = nil }
            if let data = template.data {
                let text = try data.render(environment, options: options)
                guard case .object(let o)? = try? JSONValue(parsing: Array(text.utf8)) else {
                    throw PushError("template_error", "push/\(template.name)/data.liquid did not render a JSON object")
                }
                for (key, value) in o {
                    guard !Self.reservedDataKeys.contains(key), !key.hasPrefix("google."), !key.hasPrefix("gcm.") else {
                        throw PushError("template_error", "push/\(template.name)/data.liquid: '\(key)' is reserved by FCM")
                    }
                    switch value {
                    case .null: continue
                    case .string(let s): content.data.append((key, s))
                    default: content.data.append((key, String(decoding: value.serialized(), as: UTF8.self)))
                    }
                }
            }
            if template.metadata.pushType == "alert" && content.title == nil && content.body == nil {
                throw PushError("template_error", "push/\(template.name): the title and body rendered empty")
            }
            return .rendered(content)
        } catch let error as PushError {
            throw error
        } catch let error as LiquidError {
            if error.code == .aborted { return .aborted(reason: error.message) }
            throw PushError("template_error", LiquidErrorText.located(error))
        } catch {
            throw PushError("template_error", "\(error)")
        }
    }

    /// Keys FCM refuses in `data`.
    static let reservedDataKeys: Set<String> = ["from", "message_type", "notification", "collapse_key"]

    /// The payloads of `content`; `fleet` holds the ids the app reports engagement with (`campaign_id`, `variant`,
    /// `message_id`). Over 4,096 bytes: with `truncateBody`, the body is cut on a character boundary (an ellipsis
    /// added) until both fit; else, or when even an empty body does not fit, throws `payload_too_large` with the size.
    /// `tag`: FCM's `android.notification.tag` (a notification with the same tag replaces the older one on the device).
    public func payloads(_ content: Content, metadata: PushTemplateMetadata, ids: [(String, String)],
                         ttlSeconds: Int, collapseKey: String?, tag: String) throws(PushError) -> Payloads {
        var payloads = build(content, metadata: metadata, ids: ids, ttlSeconds: ttlSeconds, collapseKey: collapseKey, tag: tag)
        if fits(payloads) { return payloads }
        let size = max(payloads.apns.count, payloads.fcmBytes)
        guard metadata.truncateBody, let body = content.body, !body.isEmpty else {
            throw PushError("payload_too_large", "the payload is \(size) bytes; APNs and FCM take at most \(Self.maxPayloadBytes)")
        }
        // The longest prefix (in characters) that fits: a binary search over the body's characters.
        let characters = Array(body)
        var low = 0, high = characters.count - 1, best: Payloads?
        while low <= high {
            let mid = (low + high) / 2
            var cut = content
            cut.body = String(characters[..<mid]).trimmingTrailingSpace() + "…"
            let candidate = build(cut, metadata: metadata, ids: ids, ttlSeconds: ttlSeconds, collapseKey: collapseKey, tag: tag)
            if fits(candidate) {
                best = candidate
                low = mid + 1
            } else {
                high = mid - 1
            }
        }
        guard var fitted = best else {
            throw PushError("payload_too_large", "the payload is \(size) bytes, and more than \(Self.maxPayloadBytes) even with the body cut")
        }
        fitted.truncated = true
        payloads = fitted
        return payloads
    }

    private func fits(_ p: Payloads) -> Bool { p.apns.count <= Self.maxPayloadBytes && p.fcmBytes <= Self.maxPayloadBytes }

    private func build(_ content: Content, metadata: PushTemplateMetadata, ids: [(String, String)], ttlSeconds: Int,
                       collapseKey: String?, tag: String) -> Payloads {
        // APNs: the aps dictionary, then the custom keys at the top level.
        var aps = JSONObject()
        if metadata.pushType == "alert" {
            var alert = JSONObject()
            if let t = content.title { alert["title"] = .string(t) }
            if let s = content.subtitle { alert["subtitle"] = .string(s) }
            if let b = content.body { alert["body"] = .string(b) }
            aps["alert"] = .object(alert)
            if let sound = metadata.sound { aps["sound"] = .string(sound) }
            if content.image != nil { aps["mutable-content"] = 1 }
        } else {
            aps["content-available"] = 1
        }
        var apns = JSONObject()
        apns["aps"] = .object(aps)
        var custom: [(String, String)] = content.data
        if let link = content.link { custom.append(("link", link)) }
        if let image = content.image { custom.append(("image", image)) }
        for (k, v) in custom where apns[k] == nil { apns[k] = .string(v) }
        var fleet = JSONObject()
        for (k, v) in ids { fleet[k] = .string(v) }
        apns["fleet"] = .object(fleet)

        // FCM: notification and a string data map (the ids as fleet_<key>).
        var message = JSONObject()
        var counted = 0
        if metadata.pushType == "alert" {
            var notification = JSONObject()
            if let t = content.title { notification["title"] = .string(t) }
            if let b = content.body { notification["body"] = .string(b) }
            if let i = content.image { notification["image"] = .string(i) }
            for (k, v) in notification { counted += k.utf8.count + (v.stringValue?.utf8.count ?? 0) }
            message["notification"] = .object(notification)
        }
        var data = JSONObject()
        for (k, v) in custom where data[k] == nil { data[k] = .string(v) }
        for (k, v) in ids { data["fleet_\(k)"] = .string(v) }
        for (k, v) in data { counted += k.utf8.count + (v.stringValue?.utf8.count ?? 0) }
        message["data"] = .object(data)
        var android = JSONObject()
        if let collapseKey { android["collapse_key"] = .string(collapseKey) }
        android["ttl"] = .string("\(ttlSeconds)s")
        android["priority"] = metadata.highPriority ? "HIGH" : "NORMAL"
        if metadata.pushType == "alert" {
            android["notification"] = ["tag": .string(tag)]
            counted += "tag".utf8.count + tag.utf8.count
        }
        message["android"] = .object(android)
        return Payloads(apns: JSONValue.object(apns).serialized(), fcm: message, fcmBytes: counted, truncated: false)
    }

    /// Whitespace runs (line breaks included) become single spaces; trimmed.
    static func oneLine(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\r" || $0 == "\t" }).joined(separator: " ")
    }

    /// Leading and trailing whitespace removed; inner line breaks kept (a body may have several lines).
    static func trimmed(_ s: String) -> String {
        String(s.drop(while: \.isWhitespace)).trimmingTrailingSpace()
    }
}

extension String {
    func trimmingTrailingSpace() -> String {
        var s = Substring(self)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
