import FleetCore

/// An event as stored (a `track` op's), for reports.
public struct StoredEvent: Sendable, Hashable {
    public var profileID: String
    public var name: String
    public var properties: JSONObject
    /// Milliseconds since the epoch.
    public var occurredAt: Int64
    public var amount: Double?

    public init(profileID: String, name: String, properties: JSONObject, occurredAt: Int64, amount: Double?) {
        self.profileID = profileID
        self.name = name
        self.properties = properties
        self.occurredAt = occurredAt
        self.amount = amount
    }
}

extension ProfileReader {
    /// The events since `since` (milliseconds) that are named one of `names` or carry an amount (purchases when
    /// `purchases`), in time order.
    public func events(since: Int64, named names: Set<String>, purchases: Bool) throws -> [StoredEvent] {
        try database.withStatement(
            "SELECT profile_id, name, properties, occurred_at, amount FROM events WHERE occurred_at >= ? ORDER BY occurred_at, seq"
        ) { s in
            try s.bind(since, at: 1)
            var out: [StoredEvent] = []
            while try s.step() {
                guard let profile = s.string(at: 0), let name = s.string(at: 1) else { continue }
                let amount = s.isNull(at: 4) ? nil : s.double(at: 4)
                guard names.contains(name) || (purchases && amount != nil) else { continue }
                let properties = (try? JSONValue(parsing: s.blob(at: 2) ?? []))?.objectValue ?? JSONObject()
                out.append(StoredEvent(profileID: profile, name: name, properties: properties, occurredAt: s.int64(at: 3), amount: amount))
            }
            return out
        }
    }
}
