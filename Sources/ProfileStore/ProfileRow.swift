import FleetCore

/// A profile row being changed by the writer: fields, traits and each field's last-writer-wins timestamp.
///
/// Traits and their times are `fields` (stored packed, see `PackedFields`); the email and phone fields' times use
/// the keys `$email` and `$phone` (their values are columns). A removed trait keeps its field with no value (a
/// tombstone), so an older value arriving late cannot bring it back. Lookups scan: profiles hold a few dozen
/// fields at most, and a scan of small strings beats hashing them.
package struct ProfileRow: Sendable {
    package var id: String
    package var exists: Bool
    package var email: String?
    package var phone: String?
    package var fields: [PackedFields.Field]
    package var createdAt: Int64
    package var updatedAt: Int64

    package init(id: String, exists: Bool, email: String?, phone: String?, fields: [PackedFields.Field], createdAt: Int64,
                 updatedAt: Int64) {
        self.id = id
        self.exists = exists
        self.email = email
        self.phone = phone
        self.fields = fields
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    package static func new(id: String, at time: Int64) -> ProfileRow {
        ProfileRow(id: id, exists: false, email: nil, phone: nil, fields: [], createdAt: time, updatedAt: time)
    }

    @inline(__always)
    private func index(of key: String) -> Int? {
        fields.firstIndex { $0.key == key }
    }

    /// The stored time of a field, if it was ever written.
    package func time(forKey key: String) -> Int64? {
        index(of: key).map { fields[$0].time }
    }

    package func value(forKey key: String) -> JSONValue? {
        switch key {
        case "$email": email.map { .string($0) }
        case "$phone": phone.map { .string($0) }
        default: index(of: key).flatMap { fields[$0].value }
        }
    }

    /// The present traits, in field order.
    package var traits: JSONObject {
        var o = JSONObject()
        for f in fields where f.value != nil && f.key.utf8.first != UInt8(ascii: "$") { o[f.key] = f.value }
        return o
    }

    /// Whether a write of `value` at `time` wins over the stored one: newer time, or on a tie the greater
    /// serialized value (so every process ends in the same state whatever the order).
    package func wins(_ key: String, at time: Int64, value: JSONValue?) -> Bool {
        guard let stored = self.time(forKey: key) else { return true }
        if time != stored { return time > stored }
        let mine = (value ?? .null).jsonString
        let theirs = (self.value(forKey: key) ?? .null).jsonString
        return mine > theirs
    }

    /// Sets a field (nil or JSON null removes a trait) with its timestamp.
    package mutating func set(_ key: String, _ value: JSONValue?, at time: Int64) {
        let value = value == .null ? nil : value
        var stored = value
        switch key {
        case "$email": email = value?.stringValue; stored = nil
        case "$phone": phone = value?.stringValue; stored = nil
        default: break
        }
        if let i = index(of: key) {
            fields[i].time = time
            fields[i].value = stored
        } else {
            fields.append(PackedFields.Field(key: key, time: time, value: stored))
        }
    }

    /// An identify's traits, each last-writer-wins at `time`: whether any won, and the keys that lost (stale).
    package mutating func apply(traits: JSONObject, at time: Int64) -> (changed: Bool, stale: [String]) {
        var changed = false
        var stale: [String] = []
        for (key, value) in traits {
            if wins(key, at: time, value: value) {
                set(key, value, at: time)
                changed = true
            } else {
                stale.append(key)
            }
        }
        return (changed, stale)
    }

    /// An identity that is also a field (email: `$email`, phone: `$phone`), last-writer-wins at `time`: whether it
    /// won; nil for an identity without a field (crm_id, anonymous_id).
    package mutating func apply(identity: ProfileIdentity, at time: Int64) -> Bool? {
        let field: String
        switch identity.kind {
        case .email: field = "$email"
        case .phone: field = "$phone"
        case .crmID, .anonymousID: return nil
        }
        guard wins(field, at: time, value: .string(identity.value)) else { return false }
        set(field, .string(identity.value), at: time)
        return true
    }
}
