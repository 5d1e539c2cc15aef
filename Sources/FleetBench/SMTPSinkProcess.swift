import FleetBackoff
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The local SMTP sink (`Ops/scripts/smtp_sink.py`, Debian's python3-aiosmtpd writing a Maildir) as a child
/// of the benchmark, on a free loopback port.
///
/// Started with posix_spawn (`ChildSpawn`), not Foundation's `Process`: while a `Process` child lives on,
/// Foundation's child monitor blocks in `wait4` on it and never reaps the bench's workers (their `waitUntilExit`
/// hangs).
struct SMTPSinkProcess {
    let pid: pid_t
    let port: Int

    /// Starts the sink and waits (at most 10 s) until it accepts connections.
    static func start(script: String, maildir: String, rules: String) async throws -> SMTPSinkProcess {
        guard FileManager.default.fileExists(atPath: script) else {
            throw BenchError("no SMTP sink at \(script) (run the bench from the repository)", code: .unavailable)
        }
        try "{}".write(toFile: rules, atomically: true, encoding: .utf8)
        let port = try freePort()
        let arguments = ["/usr/bin/python3", script, "127.0.0.1", String(port), maildir, rules]
        guard let pid = ChildSpawn.spawn(arguments, output: .discard) else {
            throw BenchError("cannot start the SMTP sink with /usr/bin/python3 (apt-get install python3-aiosmtpd)", code: .unavailable)
        }
        return try await SMTPSinkProcess(pid: pid, port: port).listening(
            exited: "the SMTP sink exited at start (is python3-aiosmtpd installed?)", name: "the SMTP sink")
    }

    /// Starts Postfix's `smtp-sink` (a C server that accepts mail as fast as it reads and keeps nothing; it offers
    /// PIPELINING, not CHUNKING) and waits (at most 10 s) until it accepts connections. Run as root it needs
    /// `-u nobody`.
    static func startPostfix(binary: String) async throws -> SMTPSinkProcess {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw BenchError("no \(binary) (apt-get install postfix)", code: .unavailable)
        }
        let port = try freePort()
        var arguments = [binary]
        if geteuid() == 0 { arguments += ["-u", "nobody"] }
        arguments += ["127.0.0.1:\(port)", "256"]
        guard let pid = ChildSpawn.spawn(arguments, output: .discard) else {
            throw BenchError("cannot start \(binary)", code: .unavailable)
        }
        return try await SMTPSinkProcess(pid: pid, port: port).listening(exited: "\(binary) exited at start", name: binary)
    }

    /// Starts any server of a benchmark (`arguments[0]` a path) that listens on loopback `port`, and waits (at most
    /// 10 s) until it accepts connections (`fleet bench serve` starts nginx and `fleet serve` this way).
    static func startServer(_ arguments: [String], port: Int, environment: [String: String]? = nil, name: String) async throws -> SMTPSinkProcess {
        guard let pid = ChildSpawn.spawn(arguments, environment: environment, output: .discard) else {
            throw BenchError("cannot start \(name)", code: .unavailable)
        }
        return try await SMTPSinkProcess(pid: pid, port: port).listening(exited: "\(name) exited at start", name: name)
    }

    /// Waits (at most 10 s) until the started sink accepts connections; stops it and throws if it exits first or
    /// does not listen in time.
    private func listening(exited: String, name: String) async throws -> SMTPSinkProcess {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            guard isRunning else { throw BenchError(exited, code: .unavailable) }
            if Self.accepts(port: port) { return self }
            try await Task.sleep(for: .milliseconds(100))
        }
        stop()
        throw BenchError("\(name) did not listen on 127.0.0.1:\(port) within 10 s", code: .unavailable)
    }

    private var isRunning: Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 5 s).
    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<50 {
            if waitpid(pid, &status, WNOHANG) != 0 { return }
            usleep(100_000)
        }
        kill(pid, SIGKILL)
        _ = waitpid(pid, &status, 0)
    }

    /// A loopback port nobody listens on now, chosen at random below the kernel's ephemeral range: servers that
    /// bind port 0 and client connections take theirs from that range, so the port is not handed to another
    /// process before the server started on it binds it (the bench runs beside other servers in the test suite).
    static func freePort() throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) } ?? []
        let low = min(range.first ?? 32768, 65535)
        let candidates = low > 12000 ? 10000..<low : 1024..<low
        for _ in 0..<200 {
            let port = Int.random(in: candidates)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw BenchError("cannot create a socket") }
            var address = loopback(port: port)
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if bound { return port }
        }
        throw BenchError("cannot find a free loopback port")
    }

    private static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}
