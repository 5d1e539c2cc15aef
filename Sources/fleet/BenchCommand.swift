import ArgumentParser

/// `fleet bench`: the raw broker pipe against the fleet runtime (see FleetBench).
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmark the runtime against the raw broker pipe.")
    @OptionGroup var global: GlobalOptions
    func run() async throws { throw CLIError("not built yet") }
}
