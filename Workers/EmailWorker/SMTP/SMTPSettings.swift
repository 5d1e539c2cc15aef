import FleetRuntime
import NIOCore

/// Where and how the SMTP client connects.
public struct SMTPSettings: Sendable, Hashable {
    /// AUTH mechanisms.
    public enum Auth: String, Sendable, Hashable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    /// When the session is upgraded to TLS with STARTTLS (RFC 3207).
    public enum StartTLS: String, Sendable, Hashable, CaseIterable {
        /// Never: the whole session, AUTH included, is in clear.
        case off
        /// When the relay's EHLO offers STARTTLS; else (or when the relay answers STARTTLS with a 4xx/5xx) the
        /// session goes on in clear. A handshake that fails fails the delivery: no fallback to clear text.
        case opportunistic
        /// Always: a relay that does not offer STARTTLS, refuses it, or fails the handshake fails the
        /// delivery (retryable), before any AUTH or MAIL is sent.
        case require
    }

    /// How the relay's certificate is checked once STARTTLS is under way.
    public enum Verification: String, Sendable, Hashable, CaseIterable {
        /// The chain must lead to a trusted CA (``SMTPSettings/caFile`` or the system store) and name the
        /// relay (``SMTPSettings/tlsName``, else ``SMTPSettings/host``; an IP address host is matched against
        /// the certificate's IP addresses, and swift-nio-ssl accepts a certificate carrying the address
        /// connected to whatever the name).
        case peer
        /// No check at all: encryption without authentication of the relay (a test relay, a pinned network).
        case none
    }

    public var host: String
    public var port: Int
    /// The EHLO name.
    public var helo: String
    public var username: String?
    public var password: String?
    /// The SASL mechanism; nil (the default): the relay's choice from its EHLO `AUTH` line, PLAIN before LOGIN
    /// (PLAIN when the relay lists none).
    public var auth: Auth?
    /// The most sessions open at once to the relay. The pool opens a session when a message waits and none is
    /// free, up to this number, and closes sessions idle for ``idleTimeoutSeconds``: it follows the work.
    public var poolSize: Int
    /// Seconds a session may stay idle before the pool closes it (QUIT).
    public var idleTimeoutSeconds: Int64
    /// Messages sent over one session before the pool closes it and opens a fresh one (relays cap them); 0: no cap.
    public var maxMessagesPerSession: Int
    /// Seconds the pool stays smaller after the relay answered 421 or refused a connection: the most sessions
    /// drops to half of those open (at least one) for this long, then grows back by one a second, so a busy relay
    /// is not met by a storm.
    public var backoffSeconds: Int64
    /// Use PIPELINING (RFC 2920) when the relay's EHLO offers it.
    public var pipelining: Bool
    /// Use CHUNKING/BDAT (RFC 3030) when the relay's EHLO offers it.
    public var chunking: Bool
    /// The most messages this worker process hands the relay per second, minute or hour (nil: no limit).
    public var rate: RateLimit?
    /// Seconds to wait for each reply (and for the TLS handshake).
    public var replyTimeoutSeconds: Int64
    /// STARTTLS policy.
    public var startTLS: StartTLS
    /// Certificate checking under TLS.
    public var verification: Verification
    /// A PEM file of CA certificates trusted instead of the system store (nil: the system store).
    public var caFile: String?
    /// The name the relay's certificate must carry and the TLS SNI name (nil: ``host``).
    public var tlsName: String?

    public init(host: String, port: Int = 25, helo: String = "localhost", username: String? = nil, password: String? = nil,
                auth: Auth? = nil, poolSize: Int = 64, replyTimeoutSeconds: Int64 = 30, startTLS: StartTLS = .opportunistic,
                verification: Verification = .peer, caFile: String? = nil, tlsName: String? = nil,
                idleTimeoutSeconds: Int64 = 30, maxMessagesPerSession: Int = 100, backoffSeconds: Int64 = 30,
                pipelining: Bool = true, chunking: Bool = true) {
        self.host = host
        self.port = port
        self.helo = helo
        self.username = username
        self.password = password
        self.auth = auth
        self.poolSize = max(1, poolSize)
        self.replyTimeoutSeconds = replyTimeoutSeconds
        self.startTLS = startTLS
        self.verification = verification
        self.caFile = caFile
        self.tlsName = tlsName
        self.idleTimeoutSeconds = max(1, idleTimeoutSeconds)
        self.maxMessagesPerSession = max(0, maxMessagesPerSession)
        self.backoffSeconds = max(0, backoffSeconds)
        self.pipelining = pipelining
        self.chunking = chunking
    }

    /// The name sent in SNI and matched against the certificate: ``tlsName``, else ``host``; nil when that is
    /// an IP address (SNI cannot carry one; the certificate is then matched against the peer's address).
    public var tlsServerHostname: String? {
        let name = tlsName ?? host
        return Self.isIPAddress(name) ? nil : name
    }

    /// Whether `text` is an IPv4 or IPv6 address literal (brackets allowed around IPv6).
    static func isIPAddress(_ text: String) -> Bool {
        var t = Substring(text)
        if t.hasPrefix("[") && t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        return (try? SocketAddress(ipAddress: String(t), port: 0)) != nil
    }
}
