import FleetBackoff
import AMQPClient
import Foundation

/// A `fleet worker` process a benchmark starts from its own executable, with what the benchmarks read of
/// it: CPU time and peak RSS from /proc.
struct BenchWorker {
    let process: Process

    /// Starts `fleet worker --kinds KINDS` with the given settings, warnings-only logging, and this process's
    /// environment plus `environment`.
    static func start(kinds: String, concurrency: Int, prefetch: Int, prefix: String, store: String, amqpURL: String,
                      environment: [String: String] = [:]) throws -> BenchWorker {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BenchPaths.executable)
        process.arguments = ["worker", "--kinds", kinds, "--concurrency", String(concurrency), "--prefetch", String(prefetch),
                             "--prefix", prefix, "--store", store, "--log-level", "warning"]
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["FLEET_AMQP_URL"] = amqpURL
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        // This process's stdout is its report, or with --json its figures alone: the worker's output goes to stderr.
        process.standardOutput = FileHandle.standardError
        try process.run()
        return BenchWorker(process: process)
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM (a graceful stop), then waits for the exit.
    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// User + system CPU seconds of the process so far.
    var cpuSeconds: Double? { ProcessCPU.seconds(pid: process.processIdentifier) }

    /// Peak resident set size in KiB (VmHWM), while the process runs.
    var peakRSSKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// Waits until `queue` has a consumer (a worker is up and consuming), at most 60 s.
    static func waitForConsumer(_ connection: AMQPConnection, queue: String) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let status = try await connection.queueStatus(queue), status.consumers > 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("the bench worker did not start consuming \(queue) within 60 s")
    }

    /// The median of `values` (NaN when empty).
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
