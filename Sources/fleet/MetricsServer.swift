#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// A failure of the metrics server, with a stable machine-readable `code`.
///
/// Codes: `invalid_address` (the host is not an IPv4 address, or the port is out of range),
/// `socket_failed` (the socket could not be created or configured), `bind_failed` (for example the
/// port is in use), `listen_failed`.
struct MetricsServerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable identifier of the failure, e.g. `bind_failed`.
    var code: String
    /// A human-readable explanation, e.g. `cannot listen on 127.0.0.1:9464: Address already in use`.
    var message: String

    init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    var description: String { "\(code): \(message)" }
}

/// A minimal HTTP/1.1 server for Prometheus scraping and orchestrator probes, as a `Service`.
///
/// Routes (`GET`, and `HEAD` without the body):
/// - `/metrics`: 200 with the registry's text exposition (`text/plain; version=0.0.4`).
/// - `/healthz`: 200 `ok` while the process runs (liveness).
/// - `/readyz`: 200 `ready` when `ready()` last answered true, else 503 `not ready` (readiness:
///   connected to the broker).
/// - any other path: 404; another method on a known path: 405; a malformed request: 400; a request
///   head over 8 KiB: 431; no complete request head within 2 s: 408.
///
/// Every response carries `Connection: close` and the connection is closed after it.
///
/// It uses plain POSIX sockets on a dedicated `Thread`, so it never blocks Swift's cooperative thread
/// pool: the thread polls the listening socket every 200 ms and stops once the stop flag is set.
/// Connections are served one at a time on that thread, which is plenty for scrapes and probes. The
/// thread cannot call the async `ready()` itself; `run()` refreshes a cached readiness value once a
/// second, and `/readyz` answers from that cache.
///
/// IPv4 only: `host` is a dotted-quad address such as `0.0.0.0` or `127.0.0.1` (`localhost` is taken
/// as `127.0.0.1`). Run it once per instance.
final class MetricsServer: Service, Sendable {
    /// The largest request head (request line and headers) accepted.
    static let maxRequestBytes = 8 * 1024
    /// How long a connection may take to send its request head.
    static let readTimeoutMilliseconds: Int32 = 2_000
    /// How often the accept loop wakes up to check the stop flag.
    static let pollIntervalMilliseconds: Int32 = 200
    /// How often the cached readiness is refreshed.
    static let readinessRefreshInterval: Duration = .seconds(1)

    private let host: String
    private let port: Int
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let ready: @Sendable () async -> Bool

    /// Set when the accept loop must end.
    private let stopping = Atomic<Bool>(false)
    /// The last answer of `ready()`; read by the accept thread.
    private let readyCache = Atomic<Bool>(false)

    /// - Parameters:
    ///   - host: The IPv4 address to listen on (`0.0.0.0` for all interfaces, `127.0.0.1` for local only).
    ///   - port: The TCP port (0 picks a free port).
    ///   - registry: The registry whose metrics `/metrics` serves.
    ///   - logger: For start, stop and socket errors.
    ///   - ready: Whether the process is ready for work (connected to the broker); asked once a second.
    ///     It should answer at once (e.g. read an atomic flag): shutdown waits for a call in progress.
    init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
         ready: @escaping @Sendable () async -> Bool) {
        self.host = host
        self.port = port
        self.registry = registry
        self.logger = logger
        self.ready = ready
    }

    /// Listens, serves until graceful shutdown (or cancellation), then stops the accept thread and
    /// waits for it to exit.
    ///
    /// - Throws: ``MetricsServerError`` when the socket cannot be opened, bound or listened on (e.g.
    ///   code `bind_failed` when the port is in use).
    func run() async throws {
        let listener = try openListener()
        let exit = ThreadExit()
        let thread = Thread { [self] in
            acceptLoop(listener)
            close(listener)
            exit.finish()
        }
        thread.name = "fleet-metrics-http"
        thread.start()
        logger.info("metrics server listening", metadata: ["metrics.address": "\(host):\(boundPort(listener))"])

        await withDiscardingTaskGroup { group in
            group.addTask { await self.refreshReadiness() }
            try? await gracefulShutdown()
            stopping.store(true, ordering: .relaxed)
            group.cancelAll()
            await exit.wait()
        }
        logger.info("metrics server stopped")
    }

    // MARK: - Readiness bridge

    /// Asks `ready()` once a second, until stopped or cancelled.
    private func refreshReadiness() async {
        while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
            let isReady = await ready()
            readyCache.store(isReady, ordering: .relaxed)
            try? await Task.sleep(for: Self.readinessRefreshInterval)
        }
    }

    // MARK: - Listening socket

    /// Creates, binds and listens on a non-blocking IPv4 socket with `SO_REUSEADDR`.
    private func openListener() throws -> Int32 {
        let address = "\(host):\(port)"
        guard (0...65_535).contains(port) else {
            throw MetricsServerError(code: "invalid_address", message: "invalid port \(port) in \(address)")
        }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = in_port_t(UInt16(port)).bigEndian
        let literal = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, literal, &sin.sin_addr) == 1 else {
            throw MetricsServerError(code: "invalid_address",
                                     message: "cannot listen on \(address): not an IPv4 address")
        }

        let fd = socket(AF_INET, Self.streamType, 0)
        guard fd >= 0 else {
            throw MetricsServerError(code: "socket_failed", message: "cannot create a socket: \(Self.errnoText())")
        }
        var on: Int32 = 1
        guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            let text = Self.errnoText()
            close(fd)
            throw MetricsServerError(code: "socket_failed", message: "cannot set SO_REUSEADDR: \(text)")
        }
        // Non-blocking, so that accept never blocks when a connection vanishes between poll and accept.
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)

        let bound = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let text = Self.errnoText()
            close(fd)
            throw MetricsServerError(code: "bind_failed", message: "cannot listen on \(address): \(text)")
        }
        guard listen(fd, 64) == 0 else {
            let text = Self.errnoText()
            close(fd)
            throw MetricsServerError(code: "listen_failed", message: "cannot listen on \(address): \(text)")
        }
        return fd
    }

    /// The port the socket is bound to (differs from `port` when that is 0).
    private func boundPort(_ fd: Int32) -> Int {
        var sin = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? Int(UInt16(bigEndian: sin.sin_port)) : port
    }

    // MARK: - Accept loop (on the dedicated thread)

    /// Accepts and serves connections one by one until the stop flag is set.
    private func acceptLoop(_ listener: Int32) {
        var metricsBuffer: [UInt8] = []
        while !stopping.load(ordering: .relaxed) {
            var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let polled = poll(&pfd, 1, Self.pollIntervalMilliseconds)
            if polled < 0 {
                if errno == EINTR { continue }
                logger.error("metrics server poll failed; stopping", metadata: ["error": "\(Self.errnoText())"])
                return
            }
            if polled == 0 { continue }
            let client = accept(listener, nil, nil)
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of resources: back off for a poll interval rather than spin.
                    logger.warning("metrics server cannot accept", metadata: ["error": "\(Self.errnoText())"])
                    usleep(UInt32(Self.pollIntervalMilliseconds) * 1_000)
                    continue
                default:
                    logger.error("metrics server accept failed; stopping",
                                 metadata: ["error": "\(Self.errnoText())"])
                    return
                }
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            serve(client, metricsBuffer: &metricsBuffer)
            // Half-close first, so the client reads the whole response before the socket goes away.
            shutdown(client, Int32(SHUT_WR))
            close(client)
        }
    }

    /// Reads one request from `client` and writes one response.
    private func serve(_ client: Int32, metricsBuffer: inout [UInt8]) {
        // Bound writes too: a client that stops reading cannot hold the thread for long.
        var timeout = timeval(tv_sec: Int(Self.readTimeoutMilliseconds / 1_000), tv_usec: 0)
        _ = setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        #if canImport(Darwin)
        var on: Int32 = 1  // Darwin has no MSG_NOSIGNAL: never raise SIGPIPE on this socket.
        _ = setsockopt(client, SOL_SOCKET, SO_NOSIGPIPE, &on, socklen_t(MemoryLayout<Int32>.size))
        #endif

        let response: Response
        switch readRequestHead(client) {
        case .closed:
            return
        case .timedOut:
            response = .text(408, "request timeout\n")
        case .tooLarge:
            response = .text(431, "request too large\n")
        case .head(let head):
            response = respond(to: head, metricsBuffer: &metricsBuffer)
        }
        write(response, to: client)
    }

    // MARK: - HTTP

    private enum ReadResult {
        case head([UInt8])
        case closed
        case timedOut
        case tooLarge
    }

    /// Reads until the end of the request head (an empty line), within the size cap and read timeout.
    private func readRequestHead(_ client: Int32) -> ReadResult {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1_024)
        var chunk = [UInt8](repeating: 0, count: 2_048)
        let deadline = ContinuousClock.now + .milliseconds(Int(Self.readTimeoutMilliseconds))
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return .timedOut }
            let (seconds, attoseconds) = remaining.components
            let wait = Int32(clamping: seconds * 1_000 + attoseconds / 1_000_000_000_000_000 + 1)
            var pfd = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            let polled = poll(&pfd, 1, wait)
            if polled < 0 {
                if errno == EINTR { continue }
                return .closed
            }
            if polled == 0 { return .timedOut }
            let count = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                return .closed
            }
            if count == 0 {
                // The peer closed: an incomplete head is malformed; nothing at all is no request.
                return buffer.isEmpty ? .closed : .head(buffer)
            }
            let scanFrom = max(0, buffer.count - 3)
            buffer.append(contentsOf: chunk[0..<count])
            if let end = Self.endOfHead(in: buffer, from: scanFrom) {
                return end <= Self.maxRequestBytes ? .head(Array(buffer[0..<end])) : .tooLarge
            }
            if buffer.count > Self.maxRequestBytes { return .tooLarge }
        }
    }

    /// The index just past the blank line ending a request head (`\r\n\r\n`, or a bare `\n\n`).
    private static func endOfHead(in bytes: [UInt8], from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n") { return index + 2 }
                if index + 2 < bytes.count && bytes[index + 1] == UInt8(ascii: "\r")
                    && bytes[index + 2] == UInt8(ascii: "\n") {
                    return index + 3
                }
            }
            index += 1
        }
        return nil
    }

    private struct Response {
        var status: Int
        var contentType: String
        var body: [UInt8]
        var includeBody = true

        static func text(_ status: Int, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
        }
    }

    /// Routes a complete request head.
    private func respond(to head: [UInt8], metricsBuffer: inout [UInt8]) -> Response {
        guard let lineEnd = head.firstIndex(of: UInt8(ascii: "\n")) else { return .text(400, "bad request\n") }
        var line = head[0..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3,
              let method = String(validating: parts[0], as: UTF8.self),
              let target = String(validating: parts[1], as: UTF8.self),
              let version = String(validating: parts[2], as: UTF8.self),
              !method.isEmpty, method.utf8.allSatisfy({ (65...90).contains($0) }),
              target.hasPrefix("/"),
              version == "HTTP/1.1" || version == "HTTP/1.0"
        else {
            return .text(400, "bad request\n")
        }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]

        var response: Response
        switch path {
        case "/metrics":
            metricsBuffer.removeAll(keepingCapacity: true)
            registry.emit(into: &metricsBuffer)
            response = Response(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8",
                                body: metricsBuffer)
        case "/healthz":
            response = .text(200, "ok\n")
        case "/readyz":
            response = readyCache.load(ordering: .relaxed) ? .text(200, "ready\n") : .text(503, "not ready\n")
        default:
            return .text(404, "not found\n")
        }
        switch method {
        case "GET":
            return response
        case "HEAD":
            response.includeBody = false
            return response
        default:
            return .text(405, "method not allowed\n")
        }
    }

    /// Writes the status line, headers and body; gives up on error or when the send timeout expires.
    private func write(_ response: Response, to client: Int32) {
        var head = "HTTP/1.1 \(response.status) \(Self.reason(response.status))\r\n"
        head += "Content-Type: \(response.contentType)\r\n"
        head += "Content-Length: \(response.body.count)\r\n"
        head += "Cache-Control: no-store\r\n"
        if response.status == 405 { head += "Allow: GET, HEAD\r\n" }
        head += "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if response.includeBody { bytes.append(contentsOf: response.body) }

        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                send(client, $0.baseAddress! + offset, $0.count - offset, Self.sendFlags)
            }
            if sent < 0 {
                if errno == EINTR { continue }
                logger.debug("metrics server write failed", metadata: ["error": "\(Self.errnoText())"])
                return
            }
            offset += sent
        }
    }

    private static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 431: "Request Header Fields Too Large"
        case 503: "Service Unavailable"
        default: "Unknown"
        }
    }

    // MARK: - Platform

    #if canImport(Glibc)
    private static let streamType = Int32(SOCK_STREAM.rawValue)
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    #else
    private static let streamType = SOCK_STREAM
    private static let sendFlags: Int32 = 0
    #endif

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// Lets `run()` wait, without blocking a thread, for the accept thread to exit.
private final class ThreadExit: Sendable {
    private enum State {
        case running
        case waiting(CheckedContinuation<Void, Never>)
        case finished
    }

    private let state = Mutex<State>(.running)

    /// Called by the thread as it exits; resumes a waiter if there is one.
    func finish() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            defer { state = .finished }
            if case .waiting(let continuation) = state { return continuation }
            return nil
        }
        waiter?.resume()
    }

    /// Returns once `finish()` has been called (at once if it already has).
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = state.withLock { state -> Bool in
                if case .finished = state { return true }
                state = .waiting(continuation)
                return false
            }
            if finished { continuation.resume() }
        }
    }
}
