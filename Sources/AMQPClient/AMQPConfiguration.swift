import Foundation

/// How to reach a broker and how the connection behaves.
public struct AMQPConfiguration: Sendable {
    /// TLS settings for `amqps://` URLs.
    public struct TLS: Sendable, Hashable {
        /// A PEM file of CA certificates to trust. Without it, the system's default store is used.
        public var caCertificatePath: String?
        /// A client certificate and key (PEM) for mutual TLS.
        public var clientCertificatePath: String?
        public var clientKeyPath: String?
        /// Verify the broker's certificate chain (default true).
        public var verifyPeer: Bool
        /// Verify that the certificate names the host (default true).
        public var verifyHostname: Bool

        public init(caCertificatePath: String? = nil, clientCertificatePath: String? = nil,
                    clientKeyPath: String? = nil, verifyPeer: Bool = true, verifyHostname: Bool = true) {
            self.caCertificatePath = caCertificatePath
            self.clientCertificatePath = clientCertificatePath
            self.clientKeyPath = clientKeyPath
            self.verifyPeer = verifyPeer
            self.verifyHostname = verifyHostname
        }
    }

    public var host: String
    public var port: Int
    public var virtualHost: String
    public var user: String
    public var password: String
    /// Non-nil for `amqps://`.
    public var tls: TLS?
    /// Heartbeat interval in seconds proposed to the broker (0 disables; default 30).
    public var heartbeatSeconds: Int
    /// Timeout for the TCP connect and the handshake.
    public var connectTimeout: Duration
    /// Timeout for a synchronous broker call (declare, qos, consume).
    public var rpcTimeout: Duration
    /// First delay before reconnecting; doubles each failed attempt up to `reconnectMaxDelay`.
    public var reconnectInitialDelay: Duration
    public var reconnectMaxDelay: Duration
    /// Shown in the broker's connection list.
    public var connectionName: String

    public init(host: String = "127.0.0.1", port: Int = 5672, virtualHost: String = "/", user: String = "guest",
                password: String = "guest", tls: TLS? = nil, heartbeatSeconds: Int = 30,
                connectTimeout: Duration = .seconds(10), rpcTimeout: Duration = .seconds(30),
                reconnectInitialDelay: Duration = .milliseconds(200), reconnectMaxDelay: Duration = .seconds(15),
                connectionName: String = "fleet") {
        self.host = host
        self.port = port
        self.virtualHost = virtualHost
        self.user = user
        self.password = password
        self.tls = tls
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.reconnectInitialDelay = reconnectInitialDelay
        self.reconnectMaxDelay = reconnectMaxDelay
        self.connectionName = connectionName
    }

    /// Parses an `amqp://user:pass@host:port/vhost` or `amqps://...` URL (the RabbitMQ URI spec:
    /// the vhost is the percent-decoded path without its leading slash; an empty path means `/`).
    /// Query parameters `heartbeat`, `connection_timeout` (ms), `cacertfile`, `certfile`, `keyfile`,
    /// `verify` (`verify_peer` or `verify_none`) are honoured (`certfile` needs `keyfile`).
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw AMQPError(.invalidURL, "not a URL: expected amqp://user:password@host:port/vhost")
        }
        guard scheme == "amqp" || scheme == "amqps" else {
            throw AMQPError(.invalidURL, "unsupported scheme '\(scheme)': expected amqp:// or amqps://")
        }
        self.init()
        let secure = scheme == "amqps"
        var host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }  // IPv6 literal
        self.host = host
        if let port = components.port {
            guard (1...65535).contains(port) else { throw AMQPError(.invalidURL, "port \(port) is out of range") }
            self.port = port
        } else {
            port = secure ? 5671 : 5672
        }
        // URLComponents.user and .password are already percent-decoded.
        if let user = components.user { self.user = user }
        if let password = components.password { self.password = password }
        let path = components.percentEncodedPath
        if path.isEmpty || path == "/" {
            virtualHost = "/"
        } else {
            let raw = String(path.dropFirst())
            guard !raw.contains("/") else {
                throw AMQPError(.invalidURL, "the vhost must be one path segment (encode '/' as %2F)")
            }
            virtualHost = raw.removingPercentEncoding ?? raw
        }
        if secure { tls = TLS() }
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "heartbeat":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw AMQPError(.invalidURL, "heartbeat must be a number of seconds")
                }
                heartbeatSeconds = seconds
            case "connection_timeout":
                guard let ms = Int(value), ms > 0 else {
                    throw AMQPError(.invalidURL, "connection_timeout must be a number of milliseconds")
                }
                connectTimeout = .milliseconds(ms)
            case "cacertfile": tls?.caCertificatePath = value
            case "certfile": tls?.clientCertificatePath = value
            case "keyfile": tls?.clientKeyPath = value
            case "verify":
                guard value == "verify_peer" || value == "verify_none" else {
                    throw AMQPError(.invalidURL, "verify must be verify_peer or verify_none")
                }
                tls?.verifyPeer = value == "verify_peer"
                tls?.verifyHostname = value == "verify_peer"
            default:
                continue  // unknown parameters are ignored, as other clients do
            }
        }
        if let tls, (tls.clientCertificatePath == nil) != (tls.clientKeyPath == nil) {
            throw AMQPError(.invalidURL, "certfile and keyfile go together")
        }
    }

    /// The URL without the password, for logs.
    public var redactedURL: String {
        let vhost = virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? virtualHost
        return "\(tls == nil ? "amqp" : "amqps")://\(user)@\(host):\(port)/\(vhost)"
    }
}
