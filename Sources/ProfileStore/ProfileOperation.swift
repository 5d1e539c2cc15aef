import FleetCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One change to the profile store, as a CRM sync sends it: an op id (idempotency key), the source's
/// timestamp (last-writer-wins order) and what to change.
public struct ProfileOperation: Sendable, Hashable {
    /// The idempotency key: an op id already applied is skipped as `duplicate`.
    public var opID: String
    /// The source's time of the change, in milliseconds since the Unix epoch: per field, the newest wins.
    public var timestamp: Int64
    /// What to change.
    public var body: Body

    /// Creates an operation.
    public init(opID: String, timestamp: Date, body: Body) {
        self.opID = opID
        self.timestamp = Int64((timestamp.timeIntervalSince1970 * 1000).rounded())
        self.body = body
    }

    /// Creates an operation with a timestamp in milliseconds since the epoch.
    public init(opID: String, timestampMillis: Int64, body: Body) {
        self.opID = opID
        self.timestamp = timestampMillis
        self.body = body
    }

    /// The operations.
    public enum Body: Sendable, Hashable {
        /// Upserts traits (a `null` value removes the trait) and identities, field by field, newest wins.
        case identify(profileID: String, traits: JSONObject, identities: [ProfileIdentity])
        /// Appends an event, de-duplicated by its event id; an event with an amount is a purchase.
        case track(profileID: String, event: TrackedEvent)
        /// Merges `previousID` into `profileID`: identities, traits (newest wins), events, consents,
        /// devices. Later operations for `previousID` reach `profileID`.
        case merge(profileID: String, previousID: String)
        /// Opts in or out of a subscription group of a channel.
        case consent(profileID: String, channel: String, topic: String, optedIn: Bool, source: String?)
        /// Registers (or, with `registered: false`, unregisters) a push token.
        case device(profileID: String, token: String, platform: String, app: String, registered: Bool)
        /// Deletes the person's data and suppresses their addresses (hashed) on every channel.
        case erase(ProfileKey)

        /// The op name as in the job contract.
        public var name: String {
            switch self {
            case .identify: "identify"
            case .track: "track"
            case .merge: "merge"
            case .consent: "consent"
            case .device: "device"
            case .erase: "erase"
            }
        }
    }
}

/// How to find a profile: by id or by an email address.
public enum ProfileKey: Sendable, Hashable {
    case id(String)
    case email(String)
}

/// An identity that points to a profile.
public struct ProfileIdentity: Sendable, Hashable {
    /// Identity types.
    public enum Kind: String, Sendable, CaseIterable {
        case email, phone
        case crmID = "crm_id"
        case anonymousID = "anonymous_id"
    }

    public var kind: Kind
    /// The value, normalized on creation (emails lower-cased and trimmed, phones `+` and digits).
    public var value: String

    /// Creates an identity, normalizing the value.
    public init(_ kind: Kind, _ value: String) {
        self.kind = kind
        switch kind {
        case .email: self.value = AddressHasher.normalizeEmail(value)
        case .phone: self.value = AddressHasher.normalizePhone(value)
        case .crmID, .anonymousID: self.value = value.trimmingWhitespace()
        }
    }
}

/// An event to append to a profile.
public struct TrackedEvent: Sendable, Hashable {
    /// De-duplication key (unique in the store).
    public var eventID: String
    public var name: String
    public var properties: JSONObject
    /// When it happened, in milliseconds since the epoch.
    public var occurredAt: Int64
    /// The order total: set for purchases only.
    public var amount: Double?
    public var currency: String?
    /// Purchased items (any JSON objects: sku, name, price, quantity...).
    public var items: [JSONValue]

    /// Creates an event.
    public init(eventID: String, name: String, properties: JSONObject = JSONObject(), occurredAt: Int64,
                amount: Double? = nil, currency: String? = nil, items: [JSONValue] = []) {
        self.eventID = eventID
        self.name = name
        self.properties = properties
        self.occurredAt = occurredAt
        self.amount = amount
        self.currency = currency
        self.items = items
    }
}
