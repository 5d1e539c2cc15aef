import ArgumentParser
import FleetBench
import Foundation

/// `fleet bench serve`: click redirects per second of `fleet serve` against nginx's static 302 (``ServeBench``).
struct ServeBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Benchmark fleet serve's click redirects (each recording its event) against nginx answering a static 302 (prints figures).",
        discussion: "Needs wrk, nginx (nginx-light) and taskset; both servers run on CPU 1, wrk on CPU 0. Measure a release build. Exit 1 if fleet serve answered errors or lost an event.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Seconds of load per server (default 5).")
    var seconds: Int = 5

    @Option(help: "wrk connections (default 32).")
    var connections: Int = 32

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard (1...60).contains(seconds) else { throw ValidationError("--seconds must be between 1 and 60") }
        guard (1...1000).contains(connections) else { throw ValidationError("--connections must be between 1 and 1000") }
    }

    func run() async throws {
        _ = try global.bootstrapLogging()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        let bench = ServeBench(seconds: seconds, connections: connections, fleetBinary: binary.hasPrefix("/") ? binary : FileManager.default.currentDirectoryPath + "/" + binary,
                               debugBuild: BenchCommand.isDebugBuild, output: BenchOutput(json: json))
        do { try await bench.run() } catch let error as BenchError { throw CLIError(error.message, exitCode: 1) }
    }
}
