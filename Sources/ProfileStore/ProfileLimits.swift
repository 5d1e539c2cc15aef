import FleetCore

/// The limits of one profile operation and their checks, the same on every backend of the store (bad input
/// beyond them is rejected with `too_large` or `invalid_value`; Docs/contract/crm.md lists them).
package enum ProfileLimits {
    package static let maxIDBytes = 200
    package static let maxTraitKeys = 256
    package static let maxKeyBytes = 128
    package static let maxJSONBytes = 32 * 1024
    package static let maxTokenBytes = 4096

    /// A required id-like field: present and at most `maxIDBytes`.
    package static func checkID(_ value: String, _ field: String) throws {
        guard !value.isEmpty else { throw ProfileStoreError.missingField(field) }
        guard value.utf8.count <= maxIDBytes else { throw ProfileStoreError.tooLarge(field, "\(maxIDBytes) bytes") }
    }

    /// The traits of an identify: key count, key size, no `$` keys, serialized size.
    package static func checkTraits(_ traits: JSONObject) throws {
        guard traits.count <= maxTraitKeys else { throw ProfileStoreError.tooLarge("traits", "\(maxTraitKeys) keys") }
        for key in traits.keys {
            guard !key.isEmpty, key.utf8.count <= maxKeyBytes else {
                throw ProfileStoreError.invalidValue("traits", "keys must be 1 to \(maxKeyBytes) bytes")
            }
            guard !key.hasPrefix("$") else { throw ProfileStoreError.invalidValue("traits", "keys must not start with '$'") }
        }
        // Serializing is exact but costs; most traits are far below the limit even if every byte were escaped
        // to six (`\u00XX`) and every value took the widest form, so only larger ones are serialized.
        guard jsonBound(.object(traits)) > maxJSONBytes else { return }
        guard JSONValue.object(traits).serialized().count <= maxJSONBytes else {
            throw ProfileStoreError.tooLarge("traits", "\(maxJSONBytes) bytes")
        }
    }

    /// An upper bound of the serialized size of `value` (compact JSON, as `JSONWriter` writes it).
    package static func jsonBound(_ value: JSONValue) -> Int {
        switch value {
        case .null, .bool: return 5
        case .int, .double: return 32
        case .string(let s): return 2 + 6 * s.utf8.count
        case .array(let a): return a.reduce(2) { $0 + 1 + jsonBound($1) }
        case .object(let o): return o.reduce(2) { $0 + 2 + 6 * $1.0.utf8.count + 2 + jsonBound($1.1) }
        }
    }

    /// The stored JSON of a tracked event's properties (its items under `items`), checked against `maxJSONBytes`.
    package static func eventJSON(_ event: TrackedEvent) throws -> String {
        var properties = event.properties
        if !event.items.isEmpty { properties["items"] = .array(event.items) }
        let json = JSONValue.object(properties).serialized()
        guard json.count <= maxJSONBytes else { throw ProfileStoreError.tooLarge("properties", "\(maxJSONBytes) bytes") }
        if let amount = event.amount, !amount.isFinite { throw ProfileStoreError.invalidValue("amount", "must be a finite number") }
        return String(decoding: json, as: UTF8.self)
    }
}
