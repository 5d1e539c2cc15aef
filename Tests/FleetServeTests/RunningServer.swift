import FleetServe
import Foundation
import Logging
import ServiceLifecycle

/// `fleet serve`'s application on a free loopback port for the length of `body`, for clients outside the process
/// (Chromium, wrk).
func withRunningServer<T: Sendable>(_ f: ServeFixture, _ body: @escaping @Sendable (Int) async throws -> T) async throws -> T {
    var logger = Logger(label: "fleet.serve.test")
    logger.logLevel = .warning
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = EngagementServer.application(settings: f.settings, store: f.store, logger: logger, metrics: nil,
                                           onRunning: { port in continuation.yield(port) })
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await app.runService(); return nil }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        let result = try await body(port)
        group.cancelAll()
        while let next = try await group.next() { if let next { return next } }
        return result
    }
}

/// Runs a program to its end without blocking a thread of the pool; returns its exit status and standard output.
func runProgram(_ path: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.standardError
    let collected = Task.detached { out.fileHandleForReading.readDataToEndOfFile() }
    return try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { p in
            Task { continuation.resume(returning: (p.terminationStatus, String(decoding: await collected.value, as: UTF8.self))) }
        }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
}

/// Polls `condition` every 100 ms until it holds (true) or `timeout` passes (false).
func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

