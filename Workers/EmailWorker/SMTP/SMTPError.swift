import FleetRuntime

/// An SMTP failure: the server's reply (with its code) at a stage of the transaction, or a connection
/// problem. Never holds an address.
public struct SMTPError: Error, Sendable, Hashable, CustomStringConvertible, EffectNotApplied {
    /// `smtp_rejected` (5xx), `smtp_temporary` (4xx), `smtp_unavailable` (connect, closed, timeout),
    /// `smtp_protocol` (a malformed reply, data after the STARTTLS reply), `smtp_tls_unavailable` (TLS is
    /// required and the relay does not offer or refuses STARTTLS), `smtp_tls_failed` (the TLS handshake or the
    /// certificate check failed, or the CA file is unusable). All but `smtp_rejected` are transient.
    public var code: String
    public var message: String
    /// The server's reply code, if a reply caused it.
    public var replyCode: Int?
    /// `connect`, `greeting`, `ehlo`, `starttls`, `auth`, `mail`, `rcpt`, `data`, `message`.
    public var stage: String?

    public init(code: String, message: String, replyCode: Int? = nil, stage: String? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.stage = stage
    }

    /// The error for a negative reply at `stage`.
    static func reply(_ reply: SMTPReply, stage: String) -> SMTPError {
        SMTPError(code: reply.isPermanent ? "smtp_rejected" : "smtp_temporary",
                  message: "relay answered \(reply.code) to \(stage): \(reply.redactedText)", replyCode: reply.code, stage: stage)
    }

    /// Whether a retry may succeed (4xx, connection and TLS problems: a relay's TLS set-up can be fixed while
    /// the job waits, as an MTA defers mail it cannot send securely).
    public var isTransient: Bool { code != "smtp_rejected" }

    public var description: String { "\(code): \(message)" }
}

extension SMTPError {
    /// A negative reply means the relay did not take the message; with no reply (the connection broke, the reply
    /// timed out) it may have.
    public var effectNotApplied: Bool { replyCode != nil }
}
