import ArgumentParser

/// `fleet bench`: benchmarks that print figures next to their baselines, measured in the same run.
/// `fleet bench` alone runs `fleet bench runtime`.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks, each next to its baseline measured in the same run (prints figures).",
        subcommands: [RuntimeBenchCommand.self, LiquidBenchCommand.self, CRMBenchCommand.self, EmailBenchCommand.self, CampaignBenchCommand.self, ServeBenchCommand.self, PushBenchCommand.self, ContentBenchCommand.self],
        defaultSubcommand: RuntimeBenchCommand.self)
}

extension BenchCommand {
    /// Whether this executable is a debug build (benchmarks warn: measure a release build).
    static var isDebugBuild: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }
}
