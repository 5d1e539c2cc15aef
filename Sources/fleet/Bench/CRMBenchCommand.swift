import ArgumentParser
import FleetBench

/// `fleet bench crm`: CRM sync ops/s through the broker (batches of 100 and of 1) and profile read-model
/// reads/s, next to raw SQLite inserts and reads with the same durability settings, in one run (``CRMBench``); with
/// `--postgres URL` also the sync runs with the store on PostgreSQL.
struct CRMBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crm",
        abstract: "Benchmark CRM sync and profile reads against raw SQLite (prints figures).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("ops"), help: "Identify ops in the batched run (default 100000; the batch-of-1 run uses a tenth).")
    var ops: Int = 100_000

    @Option(help: "Worker concurrency (the worker's default, 64).")
    var concurrency: Int = 64

    @Option(help: "Worker prefetch (the worker's default, 256).")
    var prefetch: Int = 256

    @Option(name: .customLong("postgres"), help: "Also run the two sync runs with the worker's store on this PostgreSQL database (a postgres:// URL), in the same run.")
    var postgres: String?

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard ops >= 1000 else { throw ValidationError("--ops must be at least 1000") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
        guard (1...65_535).contains(prefetch) else { throw ValidationError("--prefetch must be between 1 and 65535") }
        if let postgres, !(postgres.hasPrefix("postgres://") || postgres.hasPrefix("postgresql://")) {
            throw ValidationError("--postgres must be a postgres:// URL")
        }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let amqp = try global.amqpConfiguration(name: "fleet bench")
        let connection = try await global.connect(name: "fleet bench crm", logger: logger)
        let url = try global.resolvedAMQPURL()
        let bench = CRMBench(ops: ops, concurrency: concurrency, prefetch: prefetch, amqpURL: url, amqp: amqp,
                             debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json), postgres: postgres)
        try await CLIError.fromBench(on: connection) { try await bench.run(connection: $0) }
    }
}
