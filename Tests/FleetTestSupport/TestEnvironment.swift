import Foundation

/// What the integration tests need from their environment: the broker `Ops/scripts/test.sh` started,
/// the repository, temporary directories, and polling.
public enum TestEnvironment {
    /// A loopback port nobody listens on now, chosen at random below the kernel's ephemeral range (as
    /// `Ops/scripts/broker.sh` does): servers that bind port 0 and client connections take ports from that range,
    /// so a port released here is not handed to another process before the caller's server binds it.
    public static func freeLoopbackPort() throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) } ?? []
        let low = min(range.first ?? 32768, 65535)
        let candidates = low > 12000 ? 10000..<low : 1024..<low
        for _ in 0..<200 {
            let port = Int.random(in: candidates)
            if bindable(port) { return port }
        }
        throw SetupError(description: "no free loopback port below \(low)")
    }

    private static func bindable(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 }
        }
    }

    /// A test cannot run because something it needs is missing.
    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// `FLEET_TEST_AMQP_URL`, set by `Ops/scripts/test.sh`.
    public static var amqpURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FLEET_TEST_AMQP_URL"], !url.isEmpty else {
                throw SetupError(description: """
                    FLEET_TEST_AMQP_URL is not set: run the tests with 'bash Ops/scripts/test.sh', which starts \
                    a private RabbitMQ and sets it
                    """)
            }
            return url
        }
    }

    /// `FLEET_TEST_PG_URL`: the test PostgreSQL cluster's database `fleet`, shared by the tests that use it (unique
    /// job ids keep them apart), set by `Ops/scripts/test.sh`.
    public static var postgresURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FLEET_TEST_PG_URL"], !url.isEmpty else {
                throw SetupError(description: "FLEET_TEST_PG_URL is not set: run the tests with 'bash Ops/scripts/test.sh', which starts a private PostgreSQL cluster and sets it")
            }
            return url
        }
    }

    /// `FLEET_TEST_PG_ADMIN_URL`: the test PostgreSQL cluster's database `postgres` (tests create their own
    /// databases there), set by `Ops/scripts/test.sh`.
    public static var postgresAdminURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FLEET_TEST_PG_ADMIN_URL"], !url.isEmpty else {
                throw SetupError(description: """
                    FLEET_TEST_PG_ADMIN_URL is not set: run the tests with 'bash Ops/scripts/test.sh', which starts \
                    a private PostgreSQL cluster and sets it
                    """)
            }
            return url
        }
    }

    /// The local model server's fault proxy (`FLEET_TEST_LLM_PROXY`, e.g. `http://127.0.0.1:41000`), set by
    /// `Ops/scripts/test.sh`, which starts SmolLM2-135M behind llama-cpp-python's OpenAI-compatible server and
    /// Ops/llm/fault_proxy.py in front of it. The API is at `<proxy>/v1`; `<proxy>/_proxy/...` injects faults.
    public static var llmProxyURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["FLEET_TEST_LLM_PROXY"], !url.isEmpty else {
                throw SetupError(description: """
                    FLEET_TEST_LLM_PROXY is not set: run the tests with 'bash Ops/scripts/test.sh', which starts the \
                    local model server and its fault proxy
                    """)
            }
            return url
        }
    }

    /// The repository root (`FLEET_REPO`, else derived from this file's path).
    public static var repo: URL {
        if let r = ProcessInfo.processInfo.environment["FLEET_REPO"], !r.isEmpty { return URL(fileURLWithPath: r) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// A new empty directory under the system's temporary directory.
    public static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Polls until `condition` holds or `timeout` passes; returns whether it held.
    public static func eventually(timeout: Duration = .seconds(30), every: Duration = .milliseconds(50),
                                  _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: every)
        }
        return try await condition()
    }
}

extension TestEnvironment {
    /// Runs a short command that leaves nothing behind (found on PATH, or a path), with `environment` added;
    /// returns (status, combined output). For daemons, ``runLeavingDaemons(_:environment:)``.
    public static func run(_ arguments: [String], environment extra: [String: String] = [:],
                           replacing environment: [String: String]? = nil) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        var env = environment ?? ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs a command that may leave a daemon behind (a broker, an SMTP sink): posix_spawn and waitpid, output
    /// to a file, because Foundation's `Process.waitUntilExit` can spin forever when a grandchild lives on.
    public static func runLeavingDaemons(_ arguments: [String], environment extra: [String: String] = [:]) async throws
        -> (status: Int32, output: String)
    {
        let assignments = extra.sorted { $0.key < $1.key }.map { "\($0.key)=\(PrivateBroker.quote($0.value))" }
        let command = (["env"] + assignments + arguments.map(PrivateBroker.quote)).joined(separator: " ")
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (status, output) = try await PrivateBroker.shell(command, dir: directory)
        return (status, output)
    }
}
