/// A problem of `fleet serve`'s configuration, with a stable code: `invalid_settings` (a `FLEET_SERVE_*`,
/// `FLEET_CONVERSION_*` or link setting is malformed; the message names it).
public struct ServeError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String = "invalid_settings", _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
