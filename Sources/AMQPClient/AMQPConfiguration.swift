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

    /// A broker node's address.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// The first address (``addresses`` holds them all).
    public var host: String {
        get { addresses[0].host }
        set { addresses[0].host = newValue }
    }
    public var port: Int {
        get { addresses[0].port }
        set { addresses[0].port = newValue }
    }
    /// The nodes to connect to: a connection tries them in a shuffled order, moves to the next on failure, and
    /// reconnects to any live one. One for a single broker; the nodes of a cluster (or one load balancer's).
    public var addresses: [Address]
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
        self.addresses = [Address(host: host, port: port)]
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
    ///
    /// Several nodes: `amqp://user:pass@host1:5672,host2:5673/vhost` (one URL, the hosts comma-separated), or
    /// whole URLs separated by commas (`amqp://u:p@host1/v,amqp://u:p@host2/v`, as Celery and pika take them),
    /// which must then agree on everything but the host and port.
    public init(url: String) throws {
        let trimmed = url.trimmingCharacters(in: .whitespaces)
        guard trimmed.contains(",") else {
            try self.init(single: trimmed)
            return
        }
        var urls: [String] = []
        if let schemeEnd = trimmed.range(of: "://"), !trimmed[schemeEnd.upperBound...].contains("://") {
            // One URL with a host list: expand it into one URL per host.
            let scheme = trimmed[..<schemeEnd.upperBound]
            let rest = trimmed[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            let tail = rest[authorityEnd...]
            let at = authority.lastIndex(of: "@")
            let userinfo = at.map { authority[...$0] } ?? ""
            let hosts = at.map { authority[authority.index(after: $0)...] } ?? authority
            let list = hosts.split(separator: ",", omittingEmptySubsequences: false)
            guard list.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
                throw AMQPError(.invalidURL, "an empty host in the broker URL's host list")
            }
            urls = list.map { "\(scheme)\(userinfo)\($0.trimmingCharacters(in: .whitespaces))\(tail)" }
        } else {
            // Whole URLs: split where the next one starts, so that one of them may itself hold a host list.
            var pieces: [String] = []
            for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                let piece = part.trimmingCharacters(in: .whitespaces)
                let lower = piece.lowercased()
                if pieces.isEmpty || lower.hasPrefix("amqp://") || lower.hasPrefix("amqps://") {
                    pieces.append(piece)
                } else {
                    pieces[pieces.count - 1] += "," + piece
                }
            }
            guard pieces.allSatisfy({ !$0.isEmpty && !$0.hasSuffix(",") && !$0.contains(",,") }) else {
                throw AMQPError(.invalidURL, "an empty address in the broker URL list")
            }
            var merged = try AMQPConfiguration(url: pieces[0])
            for piece in pieces.dropFirst() {
                let other = try AMQPConfiguration(url: piece)
                guard other.virtualHost == merged.virtualHost, other.user == merged.user, other.password == merged.password,
                      other.tls == merged.tls, other.heartbeatSeconds == merged.heartbeatSeconds else {
                    throw AMQPError(.invalidURL, "the URLs of a list must differ only in host and port (same scheme, user, password, vhost and options)")
                }
                merged.addresses.append(contentsOf: other.addresses)
            }
            self = merged
            return
        }
        guard urls.allSatisfy({ !$0.isEmpty }) else { throw AMQPError(.invalidURL, "an empty address in the broker URL list") }
        var parsed = try urls.map { try AMQPConfiguration(single: $0) }
        var first = parsed.removeFirst()
        for other in parsed {
            guard other.virtualHost == first.virtualHost, other.user == first.user, other.password == first.password,
                  (other.tls == nil) == (first.tls == nil) else {
                throw AMQPError(.invalidURL, "the URLs of a list must differ only in host and port (same scheme, user, password and vhost)")
            }
            first.addresses.append(contentsOf: other.addresses)
        }
        self = first
    }

    private init(single url: String) throws {
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

    /// The URL without the password, for logs (every address, comma-separated).
    public var redactedURL: String { redactedURL(addresses) }

    /// The URL of `address` alone without the password (the node a connection reached).
    public func redactedURL(_ address: Address) -> String { redactedURL([address]) }

    private func redactedURL(_ list: [Address]) -> String {
        let vhost = virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? virtualHost
        return "\(tls == nil ? "amqp" : "amqps")://\(user)@\(list.map(\.description).joined(separator: ","))/\(vhost)"
    }
}
