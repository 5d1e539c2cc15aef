import AMQPClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A private RabbitMQ node for one test, started and stopped with Ops/scripts/broker.sh: for tests that
/// would disturb the shared test broker (restarts, memory alarms) or need a TLS listener.
public final class PrivateBroker: Sendable {
    public let directory: URL
    /// The settings broker.sh wrote to `broker.env` (FLEET_AMQP_URL, FLEET_BROKER_CTL, ...).
    public let environment: [String: String]
    private let connections = Mutex<[AMQPConnection]>([])

    static var script: String { TestEnvironment.repo.appendingPathComponent("Ops/scripts/broker.sh").path }

    /// Starts a broker, runs `body`, then closes the connections made with ``connect(_:)`` and stops the
    /// broker, whatever happened.
    /// - Parameter management: load the management plugin (`FLEET_BROKER_MANAGEMENT_URL` in ``environment``).
    public static func with(tls: Bool = false, management: Bool = false, _ body: (PrivateBroker) async throws -> Void) async throws {
        let directory = try TestEnvironment.temporaryDirectory()
        let broker: PrivateBroker
        do {
            broker = try await PrivateBroker(directory: directory, tls: tls, management: management)
        } catch {
            _ = try? await shell(command(["stop"], dir: directory), dir: directory)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        do {
            try await body(broker)
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    private init(directory: URL, tls: Bool, management: Bool = false) async throws {
        self.directory = directory
        let (status, output) = try await Self.shell(
            Self.command(["start"], dir: directory, extra: "FLEET_BROKER_TLS=\(tls ? 1 : 0) FLEET_BROKER_MANAGEMENT=\(management ? 1 : 0)"), dir: directory)
        guard status == 0 else {
            throw TestEnvironment.SetupError(description: "broker.sh start failed (\(status)):\n\(output)")
        }
        let text = try String(contentsOf: directory.appendingPathComponent("broker.env"), encoding: .utf8)
        var environment: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            environment[String(line[..<eq])] = String(line[line.index(after: eq)...])
                .trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        }
        self.environment = environment
    }

    /// A value of `broker.env`.
    public func value(_ key: String) throws -> String {
        guard let value = environment[key], !value.isEmpty else {
            throw TestEnvironment.SetupError(description: "no \(key) in \(directory.path)/broker.env: \(environment)")
        }
        return value
    }

    /// The broker's `amqp://` URL.
    public var url: String { get throws { try value("FLEET_AMQP_URL") } }

    /// Connects; the connection is closed before the broker stops.
    public func connect(_ configuration: AMQPConfiguration) async throws -> AMQPConnection {
        let connection = try await AMQPConnection.connect(configuration)
        connections.withLock { $0.append(connection) }
        return connection
    }

    /// Runs `$FLEET_BROKER_CTL ARGS`; returns its output, throws if it fails.
    @discardableResult
    public func ctl(_ arguments: String...) async throws -> String {
        let ctl = try value("FLEET_BROKER_CTL")
        let (status, output) = try await Self.shell(ctl + " " + arguments.map(Self.quote).joined(separator: " "),
                                                    dir: directory)
        guard status == 0 else {
            throw TestEnvironment.SetupError(description: "rabbitmqctl \(arguments) failed (\(status)):\n\(output)")
        }
        return output
    }

    /// Runs `broker.sh COMMAND` (`stop-app`, `start-app`, `restart-app`) for this node.
    public func run(_ command: String) async throws {
        let (status, output) = try await Self.shell(Self.command([command], dir: directory), dir: directory)
        guard status == 0 else {
            throw TestEnvironment.SetupError(description: "broker.sh \(command) failed (\(status)):\n\(output)")
        }
    }

    func stop() async {
        for connection in connections.withLock({ $0 }) { await connection.close() }
        _ = try? await Self.shell(Self.command(["stop"], dir: directory), dir: directory)
        try? FileManager.default.removeItem(at: directory)
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    static func command(_ arguments: [String], dir: URL, extra: String = "") -> String {
        "\(extra) FLEET_BROKER_DIR=\(quote(dir.path)) bash \(quote(script)) " + arguments.map(quote).joined(separator: " ")
    }

    /// Runs `bash -c COMMAND`, output to a file. posix_spawn and waitpid rather than Foundation's Process,
    /// whose waitUntilExit can hang when a grandchild (the broker) lives on.
    static func shell(_ command: String, dir: URL) async throws -> (Int32, String) {
        let log = dir.appendingPathComponent("sh-\(UUID().uuidString.prefix(8)).log").path
        let line = "\(command) >\(quote(log)) 2>&1 </dev/null"
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/bash"), strdup("-c"), strdup(line), nil]
        defer { for p in argv { free(p) } }
        // The child starts with no signal blocked (this thread's mask would be inherited: SIGTERM blocked).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let spawned = posix_spawn(&pid, "/bin/bash", nil, &attributes, argv, environ)
        guard spawned == 0 else { throw TestEnvironment.SetupError(description: "posix_spawn failed: \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            // Even when the test is cancelled (time limit): the broker must still be stopped.
            do { try await Task.sleep(for: .milliseconds(100)) } catch { usleep(100_000) }
        }
        let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: log)
        return (exitCode, output)
    }
}
