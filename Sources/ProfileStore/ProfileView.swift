import FleetCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The read model of one profile, as templates and workers see it: fields, traits, consents, devices,
/// the purchase summary and segment membership. Loaded with a few prepared statements.
///
/// Holds personal data: never log it.
public struct ProfileView: Sendable, Hashable {
    public var id: String
    /// The primary email (normalized) and phone, if known.
    public var email: String?
    public var phone: String?
    /// The traits as the CRM sent them (newest value per key).
    public var traits: JSONObject
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var consents: [ConsentRecord]
    public var devices: [DeviceRecord]
    public var purchases: PurchaseSummary
    /// Names of the segments the profile is in (only those asked for when loading).
    public var segments: [String]

    public init(id: String, email: String? = nil, phone: String? = nil, traits: JSONObject = JSONObject(),
                createdAt: Int64, updatedAt: Int64, consents: [ConsentRecord] = [], devices: [DeviceRecord] = [],
                purchases: PurchaseSummary = PurchaseSummary(), segments: [String] = []) {
        self.id = id
        self.email = email
        self.phone = phone
        self.traits = traits
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.consents = consents
        self.devices = devices
        self.purchases = purchases
        self.segments = segments
    }

    /// The `locale` trait, if it is a string.
    public var locale: String? { traits["locale"]?.stringValue }
    /// The `timezone` trait, if it is a string (an IANA name such as `Europe/Berlin`).
    public var timezone: String? { traits["timezone"]?.stringValue }

    /// Whether the profile may be sent to on `channel` for `topic`: the topic's own consent if any, else the
    /// channel's (`topic` `""`); `nil` when neither was recorded (the caller's policy decides).
    public func consent(channel: String, topic: String = "") -> Bool? {
        if !topic.isEmpty, let c = consents.first(where: { $0.channel == channel && $0.topic == topic }) {
            return c.optedIn
        }
        return consents.first(where: { $0.channel == channel && $0.topic.isEmpty })?.optedIn
    }

    /// The valid push tokens.
    public var validDevices: [DeviceRecord] { devices.filter(\.isValid) }

    /// The profile for templates: the traits at the top level (so `profile.first_name` works), then the fields
    /// `id`, `email`, `phone`, `created_at`, `updated_at` (which win over traits of the same name), and
    /// `traits`, `consents` (`{channel: {topic: bool}}`, topic `""` for the channel), `purchases`,
    /// `segments`, `devices` (platform, app and validity; never the tokens).
    public var templateValue: JSONValue {
        var o = traits
        o["id"] = .string(id)
        o["email"] = email.map { .string($0) } ?? .null
        o["phone"] = phone.map { .string($0) } ?? .null
        o["created_at"] = .string(Self.format(createdAt))
        o["updated_at"] = .string(Self.format(updatedAt))
        o["traits"] = .object(traits)
        var consentObject = JSONObject()
        for c in consents {
            var topics = consentObject[c.channel]?.objectValue ?? JSONObject()
            topics[c.topic] = .bool(c.optedIn)
            consentObject[c.channel] = .object(topics)
        }
        o["consents"] = .object(consentObject)
        o["purchases"] = [
            "order_count": .int(Int64(purchases.orderCount)),
            "lifetime_value": .double(purchases.lifetimeValue),
            "last_purchase_at": purchases.lastPurchaseAt.map { .string(Self.format($0)) } ?? .null,
            "last_purchase_amount": purchases.lastPurchaseAmount.map { .double($0) } ?? .null,
            "last_purchase_currency": purchases.lastPurchaseCurrency.map { .string($0) } ?? .null,
        ]
        o["segments"] = .array(segments.map { .string($0) })
        o["devices"] = .array(devices.map {
            ["platform": .string($0.platform), "app": .string($0.app), "valid": .bool($0.isValid)]
        })
        return .object(o)
    }

    /// The full view as JSON, tokens included (for `fleet profiles show`).
    public var json: JSONValue {
        guard case .object(var o) = templateValue else { return .null }
        o["devices"] = .array(devices.map {
            var d = JSONObject(["token": .string($0.token), "platform": .string($0.platform), "app": .string($0.app)])
            d["invalid_since"] = $0.invalidSince.map { .string(Self.format($0)) } ?? .null
            return .object(d)
        })
        o["consents"] = .array(consents.map {
            var c = JSONObject(["channel": .string($0.channel), "topic": .string($0.topic),
                                 "opted_in": .bool($0.optedIn), "updated_at": .string(Self.format($0.updatedAt))])
            c["source"] = $0.source.map { .string($0) } ?? .null
            return .object(c)
        })
        // The traits are under `traits` only here.
        var out = JSONObject()
        for key in ["id", "email", "phone", "created_at", "updated_at", "traits", "consents", "devices", "purchases", "segments"] {
            out[key] = o[key]
        }
        return .object(out)
    }

    static func format(_ millis: Int64) -> String {
        Timestamp.format(Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}
