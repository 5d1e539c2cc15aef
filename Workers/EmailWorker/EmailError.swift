import FleetCore

/// An error of the email worker, with a stable snake_case code. Messages never hold an address, a token or
/// a trait value.
public struct EmailError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable snake_case code (`template_error`, `template_not_found`, `configuration`, ...).
    public var code: String
    /// What went wrong, for people.
    public var message: String
    /// Whether retrying may help.
    public var retryable: Bool

    public init(_ code: String, _ message: String, retryable: Bool = false) {
        self.code = code
        self.message = message
        self.retryable = retryable
    }

    public var description: String { "\(code): \(message)" }

    /// The same error as the runtime's ``JobError``.
    public var jobError: JobError { JobError(code: code, message: message, retryable: retryable) }

    public static func configuration(_ message: String) -> EmailError { EmailError("email_configuration", message) }
}
