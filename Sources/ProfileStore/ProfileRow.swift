import FleetCore

/// A profile row being changed by the writer: fields, traits and each field's last-writer-wins timestamp.
///
/// Per-field timestamps live in `times` (key -> milliseconds); the email and phone fields use the keys
/// `$email` and `$phone`. A removed trait keeps its timestamp (a tombstone), so an older value arriving late
/// cannot bring it back.
struct ProfileRow {
    var id: String
    var exists: Bool
    var email: String?
    var phone: String?
    var traits: JSONObject
    var times: JSONObject
    var createdAt: Int64
    var updatedAt: Int64

    static func new(id: String, at time: Int64) -> ProfileRow {
        ProfileRow(id: id, exists: false, email: nil, phone: nil, traits: JSONObject(), times: JSONObject(),
                   createdAt: time, updatedAt: time)
    }

    func value(forKey key: String) -> JSONValue? {
        switch key {
        case "$email": email.map { .string($0) }
        case "$phone": phone.map { .string($0) }
        default: traits[key]
        }
    }

    /// Whether a write of `value` at `time` wins over the stored one: newer time, or on a tie the greater
    /// serialized value (so every process ends in the same state whatever the order).
    func wins(_ key: String, at time: Int64, value: JSONValue?) -> Bool {
        guard let stored = times[key]?.intValue else { return true }
        if time != stored { return time > stored }
        let mine = (value ?? .null).jsonString
        let theirs = (self.value(forKey: key) ?? .null).jsonString
        return mine > theirs
    }

    /// Sets a field (nil or JSON null removes a trait) with its timestamp.
    mutating func set(_ key: String, _ value: JSONValue?, at time: Int64) {
        let value = value == .null ? nil : value
        switch key {
        case "$email": email = value?.stringValue
        case "$phone": phone = value?.stringValue
        default: traits[key] = value
        }
        times[key] = .int(time)
    }
}
