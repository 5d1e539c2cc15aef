import ArgumentParser
import Foundation

/// `fleet`: the marketing-personalization worker fleet's command line.
struct Fleet: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Run and operate the RabbitMQ worker fleet.",
        subcommands: [
            WorkerCommand.self, EnqueueCommand.self, TopologyCommand.self, StatusCommand.self, DLQCommand.self,
            ResultsCommand.self, TemplateCommand.self, BenchCommand.self,
            ProfilesCommand.self, CatalogCommand.self, SegmentCommand.self, CampaignCommand.self, EmailCommand.self, PushCommand.self, ServeCommand.self, SettingsCommand.self,
        ])
}

/// The entry point: errors become one line on stderr and a non-zero exit, never a stack trace.
@main
enum FleetMain {
    static func main() async {
        do {
            var command = try Fleet.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("fleet: \(error.message)\n".utf8))
            exit(error.exitCode)
        } catch {
            let code = Fleet.exitCode(for: error)
            if code == .success {
                Fleet.exit(withError: error)  // --help, --version: prints and exits 0
            }
            let message = Fleet.message(for: error)
                .split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("fleet: \(message.replacingOccurrences(of: "Error: ", with: ""))\n".utf8))
            exit(code == .validationFailure ? 64 : code.rawValue == 0 ? 1 : code.rawValue)
        }
    }
}
