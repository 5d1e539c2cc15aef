import FleetCore

/// An error of the profile store: a stable snake_case code and a message without personal data.
///
/// Codes that reject a single operation (bad input) have `rejectsOperation` set: the store rolls that
/// operation back alone and reports it; the others fail the whole call (the caller may retry).
public struct ProfileStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable snake_case code (`missing_field`, `too_large`, `store_unavailable`, ...).
    public var code: String
    /// A message for people; never holds a trait value, an address or a token.
    public var message: String

    /// Creates an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// Whether this error rejects one operation (bad input) rather than failing the store call.
    public var rejectsOperation: Bool { Self.rejectionCodes.contains(code) }

    public var description: String { "\(code): \(message)" }

    /// An operation is missing a required field.
    public static func missingField(_ field: String) -> Self {
        Self(code: "missing_field", message: "\(field) is required")
    }

    /// A field has the wrong JSON type.
    public static func wrongType(_ field: String, expected: String) -> Self {
        Self(code: "wrong_type", message: "\(field) must be \(expected)")
    }

    /// A field's value is not allowed.
    public static func invalidValue(_ field: String, _ why: String) -> Self {
        Self(code: "invalid_value", message: "\(field) \(why)")
    }

    /// A value is larger than the limits.
    public static func tooLarge(_ field: String, _ limit: String) -> Self {
        Self(code: "too_large", message: "\(field) exceeds \(limit)")
    }

    /// The operation name is unknown.
    public static func unknownOperation(_ name: String) -> Self {
        Self(code: "unknown_op", message: "unknown op '\(name.prefix(40))'")
    }

    /// An identity (email, phone, ...) already belongs to another profile.
    public static func identityConflict(_ type: String) -> Self {
        Self(code: "identity_conflict", message: "the \(type) belongs to another profile; merge the profiles first")
    }

    /// The store is closed.
    public static let closed = Self(code: "store_closed", message: "the profile store is closed")

    static let rejectionCodes: Set<String> = [
        "missing_field", "wrong_type", "invalid_value", "too_large", "unknown_op", "identity_conflict",
    ]
}

extension ProfileStoreError: JobErrorConvertible {
    /// An operation's rejection keeps its code (permanent); anything else means the store could not be used:
    /// retryable `store_unavailable`, whatever handler met it.
    public var jobError: JobError {
        rejectsOperation
            ? JobError.permanent(code, message)
            : JobError.retryable(JobError.storeUnavailable, "the profile store is unavailable: \(code): \(message)")
    }
}
