import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetCore
import FleetPostgres
import Foundation
import Logging
import PostgresNIO
import ProfileStore

/// Options every command takes: where the broker and the store are, and the config file.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"),
            help: "Broker URL (env FLEET_AMQP_URL; default amqp://guest:guest@127.0.0.1:5672/%2F). A cluster's nodes: comma-separated, or the option repeated.")
    var amqpURLs: [String] = []

    /// `--amqp-url` as given: the repeated ones joined into one list.
    var amqpURL: String? { amqpURLs.isEmpty ? nil : amqpURLs.joined(separator: ",") }

    @Option(help: "SQLite file of the ledger and store (env FLEET_STORE; default ./fleet.sqlite).")
    var store: String?

    @Option(help: "Name prefix of exchanges and queues (env FLEET_PREFIX; default fleet).")
    var prefix: String?

    @Option(help: "JSON config file (env FLEET_CONFIG). Also read from the environment: FLEET_QUEUE_TYPE (classic or quorum) and FLEET_DELIVERY_LIMIT, which workers and 'topology apply' must agree on.")
    var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env FLEET_LOG_LEVEL; default info).")
    var logLevel: String?

    func settings() throws -> FleetSettings {
        try FleetSettings.load(path: config ?? env("FLEET_CONFIG"))
    }

    func env(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    /// The broker URL: `--amqp-url`, else FLEET_AMQP_URL, else the config file's `amqp_url`, else the local default.
    func resolvedAMQPURL() throws -> String {
        try amqpURL ?? env("FLEET_AMQP_URL") ?? settings().string("amqp_url") ?? "amqp://guest:guest@127.0.0.1:5672/%2F"
    }

    func amqpConfiguration(name: String) throws -> AMQPConfiguration {
        let url = try resolvedAMQPURL()
        do {
            var configuration = try AMQPConfiguration(url: url)
            configuration.connectionName = name
            return configuration
        } catch let error as AMQPError {
            throw CLIError.usage("bad broker URL: \(error.message)")
        }
    }

    /// `--store` / `FLEET_STORE` / config `store` as given: a file, or a `postgres://` URL (``fleet worker`` only).
    func storeLocation() throws -> String {
        try store ?? env("FLEET_STORE") ?? settings().string("store") ?? "fleet.sqlite"
    }

    /// Runs `body` with what both backends of the profile store offer (``ProfileBackend``): the SQLite `ProfileStore` of the file (closed afterwards),
    /// or on a `postgres://` URL a `PostgresProfileStore` with a connection pool of its own for the command's duration.
    func withProfileStore<T: Sendable>(readers: Int = 2, _ body: (any ProfileBackend) async throws -> T) async throws -> T {
        let location = try storeLocation()
        guard PostgresURL.isPostgres(location) else {
            let store = ProfileStore(path: location, readers: readers)
            defer { store.close() }
            return try await body(store)
        }
        let url: PostgresURL
        do { url = try PostgresURL(location) } catch { throw CLIError.usage("FLEET_STORE: \(error)") }
        var logger = Logger(label: "fleet.profiles")
        logger.logLevel = .error
        let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await Self.reach(client, url: url, logger: logger)
            return try await body(PostgresProfileStore(client: client, logger: logger))
        }
    }

    /// A worker's check before it starts: exit 69 in one line unless the server answers within 10 s (a supervisor
    /// restarts it after its own delay, rather than a worker waiting without a word for a server that is not there).
    static func checkPostgres(_ url: PostgresURL) async throws {
        var logger = Logger(label: "fleet.store")
        logger.logLevel = .error
        let client = PostgresClient(configuration: url.configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await reach(client, url: url, logger: logger)
        }
    }

    /// One query within 10 s, else exit 69 in one line naming the server (not the URL: it may hold a password). The
    /// pool retries a server that refuses or does not answer; a command should not wait for it.
    static func reach(_ client: PostgresClient, url: PostgresURL, logger: Logger) async throws {
        let reached = try await withThrowingTaskGroup(of: Bool.self) { probe in
            probe.addTask {
                try await client.query("SELECT 1", logger: logger)
                return true
            }
            probe.addTask {
                try await Task.sleep(for: .seconds(10))
                return false
            }
            defer { probe.cancelAll() }
            do {
                return try await probe.next() ?? false
            } catch let error as PSQLError {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                throw CLIError("cannot use the PostgreSQL server at \(url.host):\(url.port): \(error.code)\(state)", exitCode: 69)
            }
        }
        guard reached else {
            throw CLIError("cannot connect to the PostgreSQL server at \(url.host):\(url.port) within 10 s", exitCode: 69)
        }
    }

    /// The SQLite file of the profile store and ledger. A PostgreSQL URL is refused in one line (without the URL,
    /// which may hold a password): only `fleet worker` (kinds crm, email and noop), `fleet profiles`, `fleet segment` and `fleet catalog` run on one so far.
    func storePath() throws -> String {
        let location = try storeLocation()
        if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            throw CLIError.usage("FLEET_STORE is a PostgreSQL URL: this command works on the SQLite profile store only so far (on PostgreSQL so far: fleet worker --kinds crm,email,noop, fleet profiles, fleet segment and fleet catalog)")
        }
        return location
    }

    func topology() throws -> FleetTopology {
        let prefix = try self.prefix ?? env("FLEET_PREFIX") ?? settings().string("prefix") ?? "fleet"
        guard !prefix.isEmpty, prefix.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw CLIError.usage("the prefix may hold letters, digits, '-', '_' and '.' only")
        }
        var topology = FleetTopology(prefix: prefix)
        // Workers declare the topology too, so they must agree with `fleet topology apply` on these.
        if let type = try env("FLEET_QUEUE_TYPE") ?? settings().string("queue_type") {
            guard let t = FleetTopology.QueueType(rawValue: type) else {
                throw CLIError.usage("the queue type must be classic or quorum (FLEET_QUEUE_TYPE, queue_type)")
            }
            topology.queueType = t
        }
        let limitText: String? = try env("FLEET_DELIVERY_LIMIT") ?? settings().int("delivery_limit").map(String.init)
        if let limitText {
            guard let limit = Int(limitText), limit >= 1 else {
                throw CLIError.usage("the delivery limit must be a positive integer (FLEET_DELIVERY_LIMIT, delivery_limit)")
            }
            topology.deliveryLimit = limit
        }
        return topology
    }

    /// The templates directory: `flag` (`--templates`), else FLEET_TEMPLATES, else `templates` in the config
    /// file, else `Templates` (relative to the current directory).
    func templatesDirectory(_ flag: String?) throws -> String {
        try flag ?? env("FLEET_TEMPLATES") ?? settings().string("templates") ?? "Templates"
    }

    func level(default fallback: String) throws -> Logger.Level {
        let name = try logLevel ?? env("FLEET_LOG_LEVEL") ?? settings().string("log_level") ?? fallback
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw CLIError.usage("unknown log level '\(name)'")
        }
        return level
    }

    /// Sets up logging to stderr once, at the configured level (default: info for workers, warning for
    /// one-shot commands, whose output is their report).
    func bootstrapLogging(defaultLevel: String = "warning") throws -> Logger {
        let level = try self.level(default: defaultLevel)
        LoggingBootstrap.once(level: level)
        return Logger(label: "fleet")
    }

    /// Connects for a one-shot command; a broker that cannot be reached is one line and exit 69.
    func connect(name: String, logger: Logger) async throws -> AMQPConnection {
        let configuration = try amqpConfiguration(name: name)
        do {
            return try await AMQPConnection.connect(configuration, logger: logger)
        } catch let error as AMQPError {
            throw CLIError("cannot connect to the broker at \(configuration.redactedURL): \(error.message)", exitCode: 69)
        }
    }
}

/// Logging is bootstrapped at most once per process.
enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false
    private static let lock = NSLock()

    static func once(level: Logger.Level) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
