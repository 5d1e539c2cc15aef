import ArgumentParser
import FleetBench

/// `fleet bench liquid`: our Liquid engine's renders/s on one thread against Ruby Liquid and python-liquid, in one
/// run (``LiquidBench``).
struct LiquidBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liquid",
        abstract: "Benchmark the Liquid engine on one thread against Ruby Liquid and python-liquid (prints figures).",
        discussion: """
            Needs the shared directory (--shared, env FLEET_SHARED, default <repo>/../shared found by walking up \
            from the current directory or the executable): peers/make_data.py, peers/liquid/ and \
            conformance/golden-liquid/benchmark_fixtures/. Peers run as subprocesses (ruby with ruby-liquid, \
            python3 with python-liquid); a missing peer is reported and skipped. Measure a release build.
            """)

    @Option(help: "The shared directory (env FLEET_SHARED; default <repo>/../shared).")
    var shared: String?

    @Option(help: "Renders of the newsletter template per measurement, ours and each peer's (default 20000).")
    var renders: Int = 20_000

    @Option(name: .customLong("fixture-renders"), help: "Renders of each golden-liquid fixture, ours and each peer's (default 1000).")
    var fixtureRenders: Int = 1_000

    @Option(name: .customLong("min-seconds"), help: "Our newsletter measurement repeats its renders until at least this long has passed, each fixture's a quarter of it (default 2).")
    var minSeconds: Double = 2

    @Option(help: "The Ruby with ruby-liquid (default: ruby on PATH).")
    var ruby: String = "ruby"

    @Option(help: "The Python with python-liquid (default: python3 on PATH).")
    var python: String = "python3"

    @Flag(name: .customLong("no-peers"), help: "Measure ours only (and skip the comparison with Ruby).")
    var noPeers = false

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard renders >= 1, fixtureRenders >= 1 else { throw ValidationError("--renders and --fixture-renders must be positive") }
        guard minSeconds >= 0 else { throw ValidationError("--min-seconds must not be negative") }
    }

    func run() throws {
        try CLIError.fromBench {
            try LiquidBench(shared: shared, renders: renders, fixtureRenders: fixtureRenders, minSeconds: minSeconds, ruby: ruby,
                            python: python, noPeers: noPeers, debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json)).run()
        }
    }
}
