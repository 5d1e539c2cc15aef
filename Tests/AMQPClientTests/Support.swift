import AMQPClient
import FleetTestSupport
import Foundation
import Logging
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real RabbitMQ the broker tests run against: `FLEET_TEST_AMQP_URL`, set by `Ops/scripts/test.sh`.
enum TestBroker {
    typealias SetupError = TestEnvironment.SetupError

    static var url: String { get throws { try TestEnvironment.amqpURL } }

    static var configuration: AMQPConfiguration {
        get throws { try AMQPConfiguration(url: url) }
    }

    static func connect() async throws -> AMQPConnection {
        try await AMQPConnection.connect(try configuration)
    }

    /// A name no other test (or test run) uses: `amqptest.<what>.<uuid>`.
    static func uniqueName(_ what: String) -> String {
        "amqptest.\(what).\(UUID().uuidString.lowercased())"
    }

    /// Polls until `condition` holds or `timeout` passes (10 s by default); returns whether it held.
    /// The default limit is generous: at the start of a full parallel run every suite opens connections and boots
    /// private brokers on two cores, and a broker's redelivery has been seen to take over 10 s then. Waits end as
    /// soon as the condition holds, so a long limit costs nothing when things work.
    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
        try await TestEnvironment.eventually(timeout: timeout, every: .milliseconds(20), condition)
    }

    /// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
    static func closedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw SetupError(description: "bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// A connection plus the queues and exchanges a test declared, deleted again by ``finish()``.
final class BrokerScratch: Sendable {
    let connection: AMQPConnection
    private let names = Mutex<(queues: [String], exchanges: [String])>(([], []))

    init() async throws {
        connection = try await TestBroker.connect()
    }

    /// Declares a non-durable queue with a unique name and returns the name.
    func queue(_ what: String = "q", arguments: [String: AMQPFieldValue] = [:]) async throws -> String {
        let name = TestBroker.uniqueName(what)
        names.withLock { $0.queues.append(name) }
        try await connection.declare([.queue(.init(name: name, durable: false, arguments: arguments))],
                                     redeclareOnReconnect: false)
        return name
    }

    /// Declares a non-durable exchange with a unique name and returns the name.
    func exchange(_ what: String = "x", type: String = "direct") async throws -> String {
        let name = TestBroker.uniqueName(what)
        names.withLock { $0.exchanges.append(name) }
        try await connection.declare([.exchange(.init(name: name, type: type, durable: false))], redeclareOnReconnect: false)
        return name
    }

    func bind(_ queue: String, to exchange: String, key: String) async throws {
        try await connection.declare([.binding(.init(queue: queue, exchange: exchange, routingKey: key))],
                                     redeclareOnReconnect: false)
    }

    /// Remembers a name declared another way, for deletion.
    func track(queue: String) { names.withLock { $0.queues.append(queue) } }

    /// Deletes what was declared (on a fresh connection, in case the test closed its own) and closes.
    func finish() async {
        let (queues, exchanges) = names.withLock { ($0.queues, $0.exchanges) }
        await connection.close()
        guard !queues.isEmpty || !exchanges.isEmpty, let cleaner = try? await TestBroker.connect() else { return }
        for q in queues { try? await cleaner.delete(queue: q) }
        for x in exchanges { try? await cleaner.delete(exchange: x) }
        await cleaner.close()
    }

    /// Runs a test body with a scratch connection, always cleaning up.
    static func with(_ body: (BrokerScratch) async throws -> Void) async throws {
        let scratch = try await BrokerScratch()
        do {
            try await body(scratch)
        } catch {
            await scratch.finish()
            throw error
        }
        await scratch.finish()
    }
}

/// Reads a consumer in the background and keeps what it got, so tests can wait for counts with a timeout.
final class Collector: Sendable {
    private final class State: Sendable {
        let mutex = Mutex<(deliveries: [AMQPDelivery], ended: Bool)>(([], false))
    }

    private let state = State()

    init(_ consumer: AMQPConsumer) {
        let state = self.state
        Task {
            for await delivery in consumer { state.mutex.withLock { $0.deliveries.append(delivery) } }
            state.mutex.withLock { $0.ended = true }
        }
    }

    var deliveries: [AMQPDelivery] { state.mutex.withLock { $0.deliveries } }
    var count: Int { state.mutex.withLock { $0.deliveries.count } }
    /// Whether the consumer's sequence has ended.
    var ended: Bool { state.mutex.withLock { $0.ended } }

    /// Waits until at least `count` deliveries arrived; returns whether they did in time.
    func wait(for count: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await TestBroker.eventually(timeout: timeout) { self.count >= count }
    }

    func waitForEnd(timeout: Duration = .seconds(30)) async -> Bool {
        await TestBroker.eventually(timeout: timeout) { self.ended }
    }
}

extension AMQPPublishConfirm {
    /// The reply code of a returned message, else nil.
    var returnedReplyCode: UInt16? {
        if case .returned(let code, _) = self { return code }
        return nil
    }
}

/// A logger that keeps the messages logged through it, so that a test can wait for the connection to log
/// something (a reconnect attempt, say) instead of sleeping.
final class LogCapture: Sendable {
    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.lines.withLock { $0.append(event.message.description) }
        }
    }

    private let lines = Mutex<[String]>([])

    var logger: Logger { Logger(label: "amqptest") { _ in Handler(capture: self) } }

    /// How many messages were exactly `message`.
    func count(_ message: String) -> Int { lines.withLock { $0.filter { $0 == message }.count } }
}
