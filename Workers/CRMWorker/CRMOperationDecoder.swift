import FleetCore
import FleetRuntime
import ProfileStore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes the `data` of a `crm` job (Docs/contract/crm.md) into profile operations.
///
/// `data` is one operation object, or `{"op": "batch", "ops": [...]}`. An operation that cannot be decoded is
/// returned as a rejection (its op id, op name and reason), so the rest of the batch still applies.
public enum CRMOperationDecoder {
    /// Most operations in one job.
    public static let maxOperations = 1000

    /// One decoded entry: an operation, or why it was rejected.
    public enum Entry: Sendable, Hashable {
        case operation(ProfileOperation)
        case rejected(OperationResult)
    }

    /// Decodes a job's `data`. Throws ``JobParameterError`` (the job is then `dead` with `invalid_crm_job`) when
    /// `data` is not an operation or a batch at all.
    public static func decode(_ data: JSONValue) throws(JobParameterError) -> [Entry] {
        guard case .object(let object) = data else {
            throw JobParameterError(field: "data", "must be an object holding one op or a batch, not \(data.typeName)")
        }
        guard object["op"]?.stringValue == "batch" else { return [entry(data, index: nil)] }
        guard case .array(let ops)? = object["ops"] else {
            throw JobParameterError(field: "data.ops", "is required in a batch, as an array")
        }
        guard ops.count <= maxOperations else {
            throw JobParameterError(field: "data.ops", "holds at most \(maxOperations) ops (got \(ops.count))")
        }
        return ops.enumerated().map { entry($1, index: $0) }
    }

    private static func entry(_ value: JSONValue, index: Int?) -> Entry {
        let opID = value["op_id"]?.stringValue ?? index.map { "#\($0)" } ?? ""
        let name = value["op"]?.stringValue ?? ""
        do throws(ProfileStoreError) {
            return .operation(try operation(value))
        } catch {
            return .rejected(OperationResult(opID: opID, op: String(name.prefix(40)), status: .rejected,
                                             reason: error.code, message: error.message))
        }
    }

    /// Decodes one operation object.
    public static func operation(_ value: JSONValue) throws(ProfileStoreError) -> ProfileOperation {
        guard case .object(let o) = value else { throw .wrongType("op", expected: "an object") }
        guard let nameValue = o["op"] else { throw .missingField("op") }
        guard let name = nameValue.stringValue else { throw .wrongType("op", expected: "a string") }
        let opID = try string(o, "op_id")
        switch name {
        case "identify":
            let id = try string(o, "profile_id")
            let timestamp = try time(o, "timestamp")
            var traits = JSONObject()
            switch o["traits"] {
            case nil, .null?: break
            case .object(let t)?: traits = t
            default: throw .wrongType("traits", expected: "an object")
            }
            var identities: [ProfileIdentity] = []
            for kind in ProfileIdentity.Kind.allCases {
                if let v = try optionalString(o, kind.rawValue) { identities.append(ProfileIdentity(kind, v)) }
            }
            return ProfileOperation(opID: opID, timestampMillis: timestamp,
                                    body: .identify(profileID: id, traits: traits, identities: identities))
        case "track":
            let id = try string(o, "profile_id")
            let stamp = try optionalTime(o, "timestamp")
            guard let occurred = try optionalTime(o, "occurred_at") ?? stamp else { throw .missingField("occurred_at") }
            let timestamp = stamp ?? occurred
            var properties = JSONObject()
            switch o["properties"] {
            case nil, .null?: break
            case .object(let p)?: properties = p
            default: throw .wrongType("properties", expected: "an object")
            }
            var items: [JSONValue] = []
            switch o["items"] {
            case nil, .null?: break
            case .array(let a)?: items = a
            default: throw .wrongType("items", expected: "an array")
            }
            let amount: Double?
            switch o["amount"] {
            case nil, .null?: amount = nil
            case .int(let i)?: amount = Double(i)
            case .double(let d)?: amount = d
            default: throw .wrongType("amount", expected: "a number")
            }
            let event = TrackedEvent(
                eventID: try string(o, "event_id"), name: try string(o, "event"), properties: properties,
                occurredAt: occurred, amount: amount, currency: try optionalString(o, "currency"), items: items)
            return ProfileOperation(opID: opID, timestampMillis: timestamp, body: .track(profileID: id, event: event))
        case "alias", "merge":
            return ProfileOperation(
                opID: opID, timestampMillis: try time(o, "timestamp"),
                body: .merge(profileID: try string(o, "profile_id"), previousID: try string(o, "previous_id")))
        case "consent":
            let optedIn: Bool
            if let state = o["state"] {
                switch state.stringValue {
                case "opted_in"?: optedIn = true
                case "opted_out"?: optedIn = false
                default: throw .invalidValue("state", "must be opted_in or opted_out")
                }
            } else if let flag = o["opted_in"] {
                guard let b = flag.boolValue else { throw .wrongType("opted_in", expected: "a boolean") }
                optedIn = b
            } else {
                throw .missingField("state")
            }
            return ProfileOperation(
                opID: opID, timestampMillis: try time(o, "timestamp"),
                body: .consent(profileID: try string(o, "profile_id"), channel: try string(o, "channel"),
                               topic: try optionalString(o, "topic") ?? "", optedIn: optedIn,
                               source: try optionalString(o, "source")))
        case "device":
            let action = try optionalString(o, "action") ?? "register"
            guard action == "register" || action == "unregister" else {
                throw .invalidValue("action", "must be register or unregister")
            }
            return ProfileOperation(
                opID: opID, timestampMillis: try time(o, "timestamp"),
                body: .device(profileID: try string(o, "profile_id"), token: try string(o, "token"),
                              platform: try string(o, "platform"), app: try optionalString(o, "app") ?? "default",
                              registered: action == "register"))
        case "erase":
            let stamp = try optionalTime(o, "timestamp")
            let timestamp = stamp ?? ProfileStore.nowMillis()
            if let id = try optionalString(o, "profile_id") {
                return ProfileOperation(opID: opID, timestampMillis: timestamp, body: .erase(.id(id)))
            }
            if let email = try optionalString(o, "email") {
                return ProfileOperation(opID: opID, timestampMillis: timestamp, body: .erase(.email(email)))
            }
            throw .missingField("profile_id")
        case "batch":
            throw .invalidValue("op", "batch cannot be nested")
        default:
            throw .unknownOperation(name)
        }
    }

    private static func string(_ o: JSONObject, _ key: String) throws(ProfileStoreError) -> String {
        guard let v = try optionalString(o, key), !v.isEmpty else { throw .missingField(key) }
        return v
    }

    private static func optionalString(_ o: JSONObject, _ key: String) throws(ProfileStoreError) -> String? {
        switch o[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw .wrongType(key, expected: "a string")
        }
    }

    private static func time(_ o: JSONObject, _ key: String) throws(ProfileStoreError) -> Int64 {
        guard let t = try optionalTime(o, key) else { throw .missingField(key) }
        return t
    }

    /// An RFC 3339 string, or an integer of milliseconds since the epoch.
    private static func optionalTime(_ o: JSONObject, _ key: String) throws(ProfileStoreError) -> Int64? {
        switch o[key] {
        case nil, .null?: return nil
        case .int(let ms)?: return ms
        case .string(let s)?:
            guard let date = Timestamp.parse(s) else { throw .invalidValue(key, "must be an RFC 3339 date-time") }
            return Int64((date.timeIntervalSince1970 * 1000).rounded())
        default: throw .wrongType(key, expected: "an RFC 3339 string or milliseconds")
        }
    }
}
