/// An error of the AMQP client: a code to match on, and a message for people.
///
/// Codes are structs over a private enum (as in swift-jobs and async-http-client), so new codes can be
/// added without breaking users' `switch` statements.
public struct AMQPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Value: String, Sendable {
            case invalidURL = "invalid_url"
            case connectionFailed = "connection_failed"
            case authenticationFailed = "authentication_failed"
            case tlsFailed = "tls_failed"
            case notConnected = "not_connected"
            case connectionLost = "connection_lost"
            case closed
            case channelClosed = "channel_closed"
            case notFound = "not_found"
            case preconditionFailed = "precondition_failed"
            case accessRefused = "access_refused"
            case protocolError = "protocol_error"
            case timeout
        }
        fileprivate let value: Value
        private init(_ value: Value) { self.value = value }

        /// The URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// A TCP connection or the AMQP handshake could not be established.
        public static let connectionFailed = Code(.connectionFailed)
        /// The broker refused the credentials.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// TLS set-up or the handshake failed (certificates, verification).
        public static let tlsFailed = Code(.tlsFailed)
        /// The operation needs a live connection and there is none right now (reconnecting).
        public static let notConnected = Code(.notConnected)
        /// The connection died before the operation completed (a publish without its confirm, say).
        public static let connectionLost = Code(.connectionLost)
        /// The connection was closed by its owner.
        public static let closed = Code(.closed)
        /// The broker closed a channel because of an operation (the reply code tells why).
        public static let channelClosed = Code(.channelClosed)
        /// A queue or exchange does not exist (reply code 404).
        public static let notFound = Code(.notFound)
        /// A declaration does not match what the broker has (reply code 406), or a similar precondition.
        public static let preconditionFailed = Code(.preconditionFailed)
        /// The user may not do this (reply code 403).
        public static let accessRefused = Code(.accessRefused)
        /// The broker or the library saw a protocol violation.
        public static let protocolError = Code(.protocolError)
        /// An operation did not complete in time.
        public static let timeout = Code(.timeout)

        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, for logs and operators.
    public var message: String
    /// The AMQP reply code when the broker closed a channel or connection (404, 406, 320, ...).
    public var replyCode: UInt16?

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String {
        if let replyCode { return "\(code): \(message) (reply code \(replyCode))" }
        return "\(code): \(message)"
    }

    /// Maps a broker's close reply code to an error.
    static func fromReply(code: UInt16, text: String, context: String) -> AMQPError {
        let kind: Code
        switch code {
        case 404: kind = .notFound
        case 406: kind = .preconditionFailed
        case 403: kind = .accessRefused
        case 320, 541: kind = .connectionLost
        default: kind = .channelClosed
        }
        return AMQPError(kind, "\(context): \(text)", replyCode: code)
    }
}
