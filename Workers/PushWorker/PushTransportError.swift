/// A push service could not be reached or answered outside its protocol, with a stable code:
/// `push_configuration` (a key or credentials file unusable), `push_unavailable` (connection, TLS or timeout:
/// retryable), `push_auth_failed` (the service refused our credentials: not retryable until fixed).
public struct PushTransportError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
