import FleetCore
import FleetRuntime

/// An error of the push worker, with a stable code: `push_configuration` (a setting, key or credentials file
/// unusable), `push_unavailable` (connection, TLS or timeout: retryable), `push_auth_failed` (the service refused
/// our credentials: not retryable until fixed), `template_not_found`, `template_error` (with the file, line and
/// column). Messages never hold a device token, a key or a trait value.
public struct PushError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension PushError: JobErrorConvertible {
    /// `push_unavailable` is retryable; every other code is permanent until someone fixes a file or a setting.
    public var jobError: JobError { JobError(code: code, message: message, retryable: code == "push_unavailable") }
}
