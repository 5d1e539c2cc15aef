/// A link or key problem, with a stable code: `invalid_keys` (FLEET_LINK_KEYS or FLEET_EMAIL_SECRET unusable),
/// `invalid_url` (FLEET_PUBLIC_URL is not an http(s) URL), `invalid_settings` (FLEET_LINK_MAX_AGE_DAYS).
public struct LinkError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
