import ArgumentParser
import FleetBench

/// `fleet bench campaign`: `fleet campaign send` of a segment against `fleet enqueue` of the same jobs from a
/// file, jobs confirmed per second (``CampaignBench``).
struct CampaignBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Benchmark the campaign fan-out against fleet enqueue of the same jobs (prints figures).",
        discussion: "Builds a store of --members profiles in a temporary directory, then alternates the two commands on a queue of its own. Measure a release build.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Members of the segment (default 100000).")
    var members: Int = 100_000

    @Option(help: "Rounds of enqueue then send; the medians are reported (default 3).")
    var rounds: Int = 3

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard members >= 100 else { throw ValidationError("--members must be at least 100") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 20") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let connection = try await global.connect(name: "fleet bench campaign", logger: logger)
        let bench = CampaignBench(members: members, rounds: rounds, amqpURL: try global.resolvedAMQPURL(),
                                  debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json))
        try await CLIError.fromBench(on: connection) { try await bench.run(connection: $0) }
    }
}
