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

    public init(_ code: String, _ message: String, retryAfter: Duration? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
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
    /// A refusal (429, 5xx, 4xx, no connection) means the model did not run; after a timeout or a garbled answer it
    /// may have (and been paid for).
    public var effectNotApplied: Bool { code != "llm_timeout" && code != "llm_malformed" }
}
