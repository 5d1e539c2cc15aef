/// Where and how the SMTP client connects.
public struct SMTPSettings: Sendable, Hashable {
    /// AUTH mechanisms.
    public enum Auth: String, Sendable, Hashable {
        case plain = "PLAIN"
        case login = "LOGIN"
    }

    public var host: String
    public var port: Int
    /// The EHLO name.
    public var helo: String
    public var username: String?
    public var password: String?
    public var auth: Auth
    /// Connections kept open and reused across jobs.
    public var poolSize: Int
    /// Seconds to wait for each reply.
    public var replyTimeoutSeconds: Int64

    public init(host: String, port: Int = 25, helo: String = "localhost", username: String? = nil, password: String? = nil,
                auth: Auth = .plain, poolSize: Int = 4, replyTimeoutSeconds: Int64 = 30) {
        self.host = host
        self.port = port
        self.helo = helo
        self.username = username
        self.password = password
        self.auth = auth
        self.poolSize = max(1, poolSize)
        self.replyTimeoutSeconds = replyTimeoutSeconds
    }
}
