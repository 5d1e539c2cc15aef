/// Why a text is not valid JSON, and where.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is.
    public enum Reason: String, Sendable {
        /// The bytes are not valid UTF-8.
        case invalidUTF8 = "invalid_utf8"
        /// The text is not JSON.
        case syntax
        /// Nesting deeper than the parser allows.
        case tooDeep = "too_deep"
        /// An object holds the same key twice. JSON libraries disagree on which value wins, so the fleet
        /// refuses such text (I-JSON, RFC 7493 §2.3).
        case duplicateKey = "duplicate_key"
    }

    public var reason: Reason
    public var message: String
    /// Byte offset where the problem was found.
    public var offset: Int

    public init(_ reason: Reason, _ message: String, offset: Int) {
        self.reason = reason
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(message) at byte \(offset)" }
}
