/// A push token of a profile, per platform and app.
public struct DeviceRecord: Sendable, Hashable {
    /// The token: personal data, never log it.
    public var token: String
    public var platform: String
    public var app: String
    /// Milliseconds since the epoch.
    public var updatedAt: Int64
    /// When the token was unregistered (or reported invalid by the push service); nil while valid.
    public var invalidSince: Int64?

    public init(token: String, platform: String, app: String, updatedAt: Int64, invalidSince: Int64?) {
        self.token = token
        self.platform = platform
        self.app = app
        self.updatedAt = updatedAt
        self.invalidSince = invalidSince
    }

    /// Whether the token may be sent to.
    public var isValid: Bool { invalidSince == nil }
}
