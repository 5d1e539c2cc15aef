import FleetCore

/// What became of one operation.
public struct OperationResult: Sendable, Hashable {
    /// The three outcomes.
    public enum Status: String, Sendable {
        /// Applied (fully, in its own savepoint). Some fields may have been stale: see `staleFields`.
        case applied
        /// Nothing to do: `stale` (every field older than the stored one), `duplicate` (op id or event id
        /// seen before), `suppressed` (the person was erased), `already_merged`.
        case skipped
        /// Bad input; nothing of it was applied. `reason` is an error code, `message` says more.
        case rejected
    }

    public var opID: String
    public var op: String
    public var status: Status
    /// `nil` for a plain `applied`; a code otherwise.
    public var reason: String?
    /// Details (no personal data).
    public var message: String?
    /// Trait keys (never values) that were older than the stored ones.
    public var staleFields: [String]

    /// Creates a result.
    public init(opID: String, op: String, status: Status, reason: String? = nil, message: String? = nil,
                staleFields: [String] = []) {
        self.opID = opID
        self.op = op
        self.status = status
        self.reason = reason
        self.message = message
        self.staleFields = staleFields
    }

    /// The result as JSON, as the CRM worker reports it.
    public var json: JSONValue {
        var object = JSONObject()
        object["op_id"] = .string(opID)
        object["op"] = .string(op)
        object["status"] = .string(status.rawValue)
        if let reason { object["reason"] = .string(reason) }
        if let message { object["message"] = .string(message) }
        if !staleFields.isEmpty { object["stale_fields"] = .array(staleFields.map { .string($0) }) }
        return .object(object)
    }
}
