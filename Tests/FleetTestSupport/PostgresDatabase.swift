import FleetPostgres
import Foundation
import Logging
import PostgresNIO

/// A database of the test's own on the test cluster (`FLEET_TEST_PG_ADMIN_URL`, started by `Ops/scripts/test.sh`),
/// dropped afterwards.
public enum PostgresDatabase {
    static let logger: Logger = {
        var l = Logger(label: "fleet.test.pg")
        l.logLevel = .warning
        return l
    }()

    /// Runs `body` with the URL of a new, empty database; drops it afterwards (also when `body` throws).
    public static func withFresh<T: Sendable>(_ body: @Sendable (PostgresURL) async throws -> T) async throws -> T {
        let admin = try PostgresURL(try TestEnvironment.postgresAdminURL)
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let client = PostgresClient(configuration: admin.configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
            var url = admin
            url.database = name
            do {
                let value = try await body(url)
                try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"))
                return value
            } catch {
                _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"))
                throw error
            }
        }
    }

    /// `url` as a `FLEET_STORE` value for a worker process.
    public static func string(_ url: PostgresURL) -> String {
        let password = url.password.map { ":" + $0 } ?? ""
        return "postgres://\(url.username)\(password)@\(url.host):\(url.port)/\(url.database)?sslmode=\(url.sslMode)"
    }

    /// Runs `body` with a client of `url` (running while `body` runs).
    public static func withClient<T: Sendable>(_ url: PostgresURL, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
