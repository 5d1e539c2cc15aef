import FleetCore
import FleetRuntime

/// An error of the content worker with a stable code: `content_configuration` (a setting is wrong, the worker does
/// not start), `template_not_found`, `template_error` (file, line and column), `llm_unavailable`, `llm_throttled`,
/// `llm_timeout`, `llm_malformed` (retryable), `llm_rejected` (the model server refused the request: permanent). Messages never hold a
/// trait value or prompt text.
public struct ContentError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String
    /// The server's `Retry-After`, when it gave one.
    public var retryAfter: Duration?
    /// Whether the request may have reached the model (sent, then the connection failed or timed out; a garbled
    /// answer): the call may have been paid for. False when it never left (no connection) or the server answered
    /// with an error status.
    public var mayHaveRun: Bool

    public init(_ code: String, _ message: String, retryAfter: Duration? = nil, mayHaveRun: Bool = false) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
        self.mayHaveRun = mayHaveRun
    }

    public var description: String { "\(code): \(message)" }

    /// The codes retried through the delay queues.
    public static let retryableCodes: Set<String> = ["llm_unavailable", "llm_throttled", "llm_timeout", "llm_malformed"]
}

extension ContentError: JobErrorConvertible {
    public var jobError: JobError {
        JobError(code: code, message: message, retryable: Self.retryableCodes.contains(code), retryAfter: retryAfter)
    }
}

extension ContentError: EffectNotApplied {
    /// A refusal (an error status, no connection) means the model did not run; after the request was sent and the
    /// answer was lost, timed out or garbled, it may have (and been paid for).
    public var effectNotApplied: Bool { !mayHaveRun }
}
