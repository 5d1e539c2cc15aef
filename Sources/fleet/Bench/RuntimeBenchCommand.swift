import ArgumentParser
import FleetAMQP
import FleetBench

/// `fleet bench runtime` (the default of `fleet bench`): the raw broker pipe against the fleet runtime with the
/// `noop` kind, throughput and latency, in one run (``RuntimeBench``).
struct RuntimeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime", abstract: "Benchmark the fleet runtime against the raw broker pipe (prints figures).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Jobs per throughput run (default 50000).")
    var jobs: Int = 50_000

    @Option(help: "Worker concurrency (the worker's default, 64).")
    var concurrency: Int = 64

    @Option(help: "Prefetch of both the raw pipe and the worker (the worker's default, 256).")
    var prefetch: Int = 256

    @Option(name: .customLong("ledger"), help: "The worker's job ledger: a postgres:// URL (the ledger shared across hosts); default a fresh SQLite file.")
    var ledger: String?

    @Option(help: "Rounds of (a) then (b); each round's ratio is printed, and the median (default 3).")
    var rounds: Int = 3

    @Option(name: .customLong("latency-rate"), help: "Jobs per second in the latency runs (default 1000).")
    var latencyRate: Int = 1000

    @Option(name: .customLong("latency-seconds"), help: "Length of each latency run in seconds (default 5).")
    var latencySeconds: Int = 5

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard jobs >= 100 else { throw ValidationError("--jobs must be at least 100") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
        guard (1...65_535).contains(prefetch) else { throw ValidationError("--prefetch must be between 1 and 65535") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 20") }
        guard latencyRate >= 1, latencySeconds >= 1 else { throw ValidationError("latency rate and seconds must be positive") }
        if let ledger, !(ledger.hasPrefix("postgres://") || ledger.hasPrefix("postgresql://")) {
            throw ValidationError("--ledger must be a postgres:// URL")
        }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let amqp = try global.amqpConfiguration(name: "fleet bench")
        let connection = try await global.connect(name: "fleet bench", logger: logger)
        let bench = RuntimeBench(jobs: jobs, concurrency: concurrency, prefetch: prefetch, rounds: rounds, latencyRate: latencyRate,
                                 latencySeconds: latencySeconds, amqpURL: try global.resolvedAMQPURL(), amqp: amqp,
                                 debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json), ledger: ledger)
        try await CLIError.fromBench { try await bench.run(connection: connection) }
    }
}
