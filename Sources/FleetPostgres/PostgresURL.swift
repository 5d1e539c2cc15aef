import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://user:password@host:port/database?sslmode=...&sslrootcert=...&pool_size=...` URL as a
/// ``PostgresClient`` configuration (`postgresql://` too). `pool_size`: the most connections the process opens
/// (default 20, postgres-nio's), so a fleet needs at most replicas x pool_size of the server's `max_connections`. `sslmode`, as libpq's: `disable`; `prefer` (the default: TLS when the server
/// offers it, its certificate not checked); `require` (TLS, certificate not checked); `verify-full` (TLS, the
/// certificate checked against the system's CAs, or the PEM file `sslrootcert`, and the host name).
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: String
    /// A PEM file of CAs for `verify-full`.
    public var sslRootCert: String?
    /// The most connections of the process's pool.
    public var poolSize: Int = 20

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
        // URLComponents decodes the user and password already.
        username = user
        password = components.password
        self.database = database
        sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        sslRootCert = components.queryItems?.first { $0.name == "sslrootcert" }?.value
        if let text = components.queryItems?.first(where: { $0.name == "pool_size" })?.value {
            guard let n = Int(text), (1...1000).contains(n) else { throw PostgresURLError("pool_size must be from 1 to 1000") }
            poolSize = n
        }
        guard ["disable", "prefer", "require", "verify-full"].contains(sslMode) else {
            throw PostgresURLError("sslmode must be disable, prefer, require or verify-full")
        }
    }

    /// The client configuration.
    public var configuration: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        var unchecked = TLSConfiguration.makeClientConfiguration()
        unchecked.certificateVerification = .none
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(unchecked)
        case "require": tls = .require(unchecked)
        default:
            var checked = TLSConfiguration.makeClientConfiguration()
            if let sslRootCert { checked.trustRoots = .file(sslRootCert) }
            tls = .require(checked)
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.maximumConnections = poolSize
        return configuration
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
