import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=...` URL as a ``PostgresClient`` configuration
/// (`postgresql://` too). `sslmode`: `disable`, `prefer` (the default: TLS when the server offers it) or
/// `require`/`verify-full` (TLS, the server's certificate checked against the system's CAs).
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: String

    /// Whether `text` names a PostgreSQL server rather than a file.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses `text`; a wrong URL throws a message naming the part (never the password).
    public init(_ text: String) throws(PostgresURLError) {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw PostgresURLError("must be postgres://user[:password]@host[:port]/database")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresURLError("has no host") }
        guard let user = components.user, !user.isEmpty else { throw PostgresURLError("has no user name") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw PostgresURLError("names no database (…/database)") }
        self.host = host
        port = components.port ?? 5432
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database
        sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require", "verify-full"].contains(sslMode) else {
            throw PostgresURLError("sslmode must be disable, prefer, require or verify-full")
        }
    }

    /// The client configuration.
    public var configuration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        default: tls = .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
    }

    /// The URL without its password (for logs and messages).
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }
}

/// A `FLEET_STORE` PostgreSQL URL that cannot be used.
public struct PostgresURLError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "the PostgreSQL URL \(message)" }
}
