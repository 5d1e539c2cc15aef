/// Why a job did not succeed: a code that goes into results and dead-letter headers, a message for
/// people (never personal data), and whether trying again may help.
///
/// Handlers throw it (`throw JobError.retryable("smtp_unavailable", "the relay answered 421")`), or throw
/// their own error types conforming to ``JobErrorConvertible``, which the runtime turns into one in a single
/// place (a store that cannot be reached is `store_unavailable`, retried, whatever handler met it).
public struct JobError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A snake_case code, stable for schedulers to match on.
    public var code: String
    public var message: String
    /// Retryable errors are retried with backoff (``JobRetryStrategy``); the others dead-letter the job at once.
    public var retryable: Bool
    /// What the handler has to say beyond the message (the per-op outcomes of a `crm` job whose ops were all
    /// rejected): the `output` of the `failed` or `dead` result. Never personal data.
    public var output: JSONValue
    /// The earliest the job should run again, when the failure says so (an HTTP `Retry-After`, a rate limit):
    /// the retry waits at least this long.
    public var retryAfter: Duration?

    public init(code: String, message: String, retryable: Bool, output: JSONValue = .null, retryAfter: Duration? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable
        self.output = output
        self.retryAfter = retryAfter
    }

    /// An error worth retrying (a peer is down, a rate limit).
    public static func retryable(_ code: String, _ message: String, after: Duration? = nil) -> JobError {
        JobError(code: code, message: message, retryable: true, retryAfter: after)
    }

    /// An error that will not go away by retrying (bad input, a template error).
    public static func permanent(_ code: String, _ message: String) -> JobError {
        JobError(code: code, message: message, retryable: false)
    }

    public var description: String { "\(code): \(message)" }

    // The codes of the runtime itself (Docs/contract/README.md lists them).
    public static let malformedJSON = "malformed_json"
    public static let invalidUTF8 = "invalid_utf8"
    public static let invalidEnvelope = "invalid_envelope"
    public static let invalidParameters = "invalid_parameters"
    public static let missingID = "missing_id"
    public static let unknownKind = "unknown_kind"
    public static let bodyTooLarge = "body_too_large"
    public static let unsupportedContentType = "unsupported_content_type"
    public static let deadlineExceeded = "deadline_exceeded"
    public static let retriesExhausted = "retries_exhausted"
    public static let timeout = "timeout"
    public static let deliveryLimit = "delivery_limit"
    public static let handlerError = "handler_error"
    public static let storeUnavailable = "store_unavailable"
    public static let cancelled = "cancelled"
}

/// An error type that knows which ``JobError`` it is: thrown by a handler, the runtime converts it (so the
/// mapping of, say, a database failure to `store_unavailable` lives with the error type, not in each handler).
public protocol JobErrorConvertible: Error {
    var jobError: JobError { get }
}
