/// An error of the content worker with a stable code (`content_configuration`: a setting is wrong, the worker does
/// not start). Messages never hold a trait value or prompt text.
public struct ContentError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
