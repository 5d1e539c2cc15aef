import Foundation

/// A job as schedulers publish it (Docs/contract/README.md, `job.schema.json`): what every kind has.
///
/// The minimal valid job is `{"id":"j1","kind":"noop"}`. A kind's own parameters (`profile_id`, `template`,
/// `campaign` of `email`, the ops of `crm`) are not read here: each kind decodes them from ``data`` and the other
/// top-level ``fields`` as its ``JobParameters`` type (`<kind>-job.schema.json`).
public struct JobEnvelope: Sendable, Hashable {
    /// The idempotency key: a job id with a final result is never run again.
    public var id: String
    public var kind: String
    public var createdAt: Date?
    /// Not to be run before this time (the job waits in the delay queues).
    public var notBefore: Date?
    /// Not to be run after this time (the job becomes `dead` with `deadline_exceeded`).
    public var deadline: Date?
    /// Free JSON for the kind.
    public var data: JSONValue
    /// The top-level fields besides the envelope's own (`id`, `kind`, `created_at`, `not_before`, `deadline`,
    /// `data`): where kinds read parameters schedulers give at the top level (`profile_id`, `template`, ...).
    public var fields: JSONObject
    /// The scheduler's correlation id (the AMQP `correlation_id` property), copied into every result.
    public var correlationID: String?

    public static let maxIDLength = 200

    /// The envelope's own top-level fields.
    public static let envelopeFields: Set<String> = ["id", "kind", "created_at", "not_before", "deadline", "data"]

    public init(id: String, kind: String, createdAt: Date? = nil, notBefore: Date? = nil, deadline: Date? = nil,
                data: JSONValue = .null, fields: JSONObject = JSONObject(), correlationID: String? = nil) {
        self.id = id
        self.kind = kind
        self.createdAt = createdAt
        self.notBefore = notBefore
        self.deadline = deadline
        self.data = data
        self.fields = fields
        self.correlationID = correlationID
    }

    /// Decodes and validates a job body. Every failure is a permanent ``JobError`` whose code says what
    /// is wrong (`malformed_json`, `invalid_utf8`, `invalid_envelope`, `missing_id`, `unknown_kind`,
    /// `body_too_large`) and whose message names the field.
    public static func decode(_ body: [UInt8], maxBytes: Int = 1 << 20) throws(JobError) -> JobEnvelope {
        try decode(try parse(body, maxBytes: maxBytes))
    }

    /// Parses a job body as JSON (I-JSON: a key twice in one object is `invalid_envelope`, since JSON libraries
    /// disagree on which value wins and the id is the idempotency key), without validating the envelope.
    public static func parse(_ body: [UInt8], maxBytes: Int = 1 << 20) throws(JobError) -> JSONValue {
        guard body.count <= maxBytes else {
            throw .permanent(JobError.bodyTooLarge, "the body has \(body.count) bytes; the limit is \(maxBytes)")
        }
        do {
            return try JSONValue(parsing: body)
        } catch {
            switch error.reason {
            case .invalidUTF8: throw .permanent(JobError.invalidUTF8, "the body is not valid UTF-8 (byte \(error.offset))")
            case .duplicateKey: throw .permanent(JobError.invalidEnvelope, "the body is not I-JSON: \(error)")
            case .syntax, .tooDeep: throw .permanent(JobError.malformedJSON, "the body is not JSON: \(error)")
            }
        }
    }

    /// Checks the AMQP `content_type` of a job: absent, empty or `application/json` (any case, with an optional
    /// `charset=utf-8` parameter). Anything else is `unsupported_content_type`: the body is not read as JSON.
    public static func checkContentType(_ contentType: String?) throws(JobError) {
        guard let contentType, !contentType.isEmpty else { return }
        // The common case without Foundation's string work (which cost about 4 µs a job in `fleet bench`).
        if contentType.utf8.elementsEqual("application/json".utf8) { return }
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let parameters = parts.dropFirst()
        if parts.first == "application/json",
            parameters.allSatisfy({ $0.replacingOccurrences(of: "\"", with: "") == "charset=utf-8" })
        {
            return
        }
        throw .permanent(JobError.unsupportedContentType,
                         "content_type '\(contentType.prefix(100))' is not application/json (omit it or set application/json)")
    }

    /// The job's `id` when it is usable as one (a string of 1 to 200 bytes without control characters), even if
    /// the rest of the envelope is not valid: the `job_id` of the `dead` result.
    public static func usableID(in value: JSONValue) -> String? {
        guard case .string(let id)? = value["id"], isUsableID(id) else { return nil }
        return id
    }

    static func isUsableID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxIDLength && !id.unicodeScalars.contains(where: isControl)
    }

    /// C0 and C1 control characters and DEL: they would travel into AMQP `message_id`, headers and logs.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// Validates an already parsed envelope.
    public static func decode(_ value: JSONValue) throws(JobError) -> JobEnvelope {
        guard case .object(let o) = value else {
            throw .permanent(JobError.invalidEnvelope, "the job must be a JSON object, not \(value.typeName)")
        }
        guard let idValue = o["id"], idValue != .null else {
            throw .permanent(JobError.missingID, "the job has no 'id'")
        }
        guard case .string(let id) = idValue else {
            throw .permanent(JobError.invalidEnvelope, "'id' must be a string, not \(idValue.typeName)")
        }
        guard !id.isEmpty, id.utf8.count <= maxIDLength else {
            throw .permanent(JobError.invalidEnvelope, "'id' must have 1 to \(maxIDLength) bytes")
        }
        guard !id.unicodeScalars.contains(where: isControl) else {
            throw .permanent(JobError.invalidEnvelope, "'id' must not contain control characters (U+0000 to U+001F, U+007F to U+009F)")
        }
        guard let kindValue = o["kind"], kindValue != .null else {
            throw .permanent(JobError.unknownKind, "the job has no 'kind'")
        }
        guard case .string(let kind) = kindValue else {
            throw .permanent(JobError.invalidEnvelope, "'kind' must be a string, not \(kindValue.typeName)")
        }
        guard isValidKind(kind) else {
            throw .permanent(JobError.unknownKind, "'kind' must match ^[a-z][a-z0-9_-]{0,63}$")
        }
        var job = JobEnvelope(id: id, kind: kind)
        job.createdAt = try date(o, "created_at")
        job.notBefore = try date(o, "not_before")
        job.deadline = try date(o, "deadline")
        job.data = o["data"] ?? .null
        for (key, value) in o where !envelopeFields.contains(key) { job.fields[key] = value }
        return job
    }

    /// Whether a kind name is valid: `^[a-z][a-z0-9_-]{0,63}$`.
    public static func isValidKind(_ kind: String) -> Bool {
        let u = Array(kind.utf8)
        guard (1...64).contains(u.count), (0x61...0x7A).contains(u[0]) else { return false }
        return u.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F || $0 == 0x2D }
    }

    private static func string(_ o: JSONObject, _ key: String) throws(JobError) -> String? {
        guard let v = o[key], v != .null else { return nil }
        guard case .string(let s) = v else {
            throw .permanent(JobError.invalidEnvelope, "'\(key)' must be a string, not \(v.typeName)")
        }
        return s
    }

    private static func date(_ o: JSONObject, _ key: String) throws(JobError) -> Date? {
        guard let s = try string(o, key) else { return nil }
        guard let d = Timestamp.parse(s) else {
            throw .permanent(JobError.invalidEnvelope, "'\(key)' must be an RFC 3339 date-time like 2026-11-23T10:00:00Z")
        }
        return d
    }

    /// The envelope as JSON (the other top-level fields after the envelope's own).
    public var json: JSONValue {
        var o = JSONObject()
        o["id"] = .string(id)
        o["kind"] = .string(kind)
        if let createdAt { o["created_at"] = .string(Timestamp.format(createdAt)) }
        if let notBefore { o["not_before"] = .string(Timestamp.format(notBefore)) }
        if let deadline { o["deadline"] = .string(Timestamp.format(deadline)) }
        for (key, value) in fields where o[key] == nil && key != "data" { o[key] = value }
        if data != .null { o["data"] = data }
        return .object(o)
    }

    /// The envelope as JSON bytes.
    public func encoded() -> [UInt8] { json.serialized() }
}
