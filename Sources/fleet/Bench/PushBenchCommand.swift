import ArgumentParser
import FleetAMQP
import FleetBench

/// `fleet bench push`: push jobs/s and CPU per job of the push worker against the local APNs/FCM emulator, next to
/// the noop worker and the Python peer (``PushBench``).
struct PushBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Benchmark the push worker against the noop worker and a Python peer, to the local APNs/FCM emulator (prints figures).",
        discussion: """
            Run it from the repository (its Templates/, Ops/push-emulator/ and Ops/bench/push_peer.py). Needs a python3 \
            with h2, pyjwt, cryptography, trustme and httpx[http2] (Ops/scripts/install-deps.sh installs them). Measure \
            a release build. Exit 1 if a push job did not succeed.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Push jobs (and noop jobs, and the peer's pushes) (default 5000).")
    var jobs: Int = 5000

    @Option(help: "Worker concurrency, and the peer's requests in flight (the worker's default, 64).")
    var concurrency: Int = 64

    @Option(help: "The Python for the emulator and the peer (default: python3 on PATH).")
    var python: String = "python3"

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard jobs >= 100 else { throw ValidationError("--jobs must be at least 100") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let amqp = try global.amqpConfiguration(name: "fleet bench")
        let repository = try CLIError.fromBench { try PushBench.locate() }
        let connection = try await global.connect(name: "fleet bench", logger: logger)
        let bench = PushBench(jobs: jobs, concurrency: concurrency, amqpURL: try global.resolvedAMQPURL(), amqp: amqp,
                              repository: repository, python: python, debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json))
        try await CLIError.fromBench { try await bench.run(connection: connection) }
    }
}
