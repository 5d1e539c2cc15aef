import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetBackoff
import FleetCore
import Foundation

/// `fleet enqueue FILE|-`: publishes NDJSON job envelopes with confirms.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Publish jobs (NDJSON, one envelope a line) to the jobs exchange, with publisher confirms.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "An NDJSON file, or - for standard input.")
    var file: String

    @Option(name: .customLong("in-flight"), help: "Unconfirmed publishes at once (default 512).")
    var inFlight: Int = 512

    @Flag(name: .customLong("no-progress"), help: "No progress bar, even on a terminal.")
    var noProgress = false

    func validate() throws {
        guard (1...10_000).contains(inFlight) else { throw ValidationError("--in-flight must be between 1 and 10000") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let topology = try global.topology()
        let input: FileHandle
        if file == "-" {
            input = .standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw CLIError.usage("cannot read \(file)") }
            input = handle
        }
        let total = file == "-" ? nil : try? countLines(file)
        let connection = try await global.connect(name: "fleet enqueue", logger: logger)
        let progress = ProgressBar(total: total, enabled: !noProgress && isatty(STDERR_FILENO) == 1, label: "enqueue")
        let start = ContinuousClock.now
        var stats = Stats()

        try await withThrowingTaskGroup(of: Outcome.self) { group in
            var running = 0
            var lineNumber = 0
            for try await line in LineReader(handle: input) {
                lineNumber += 1
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                let job: JobEnvelope
                do throws(JobError) {
                    job = try JobEnvelope.decode(line)
                } catch {
                    stats.rejected += 1
                    progress.clear()
                    FileHandle.standardError.write(Data("fleet: line \(lineNumber): \(error.code): \(error.message)\n".utf8))
                    continue
                }
                if running >= inFlight, let outcome = try await group.next() {
                    running -= 1
                    stats.add(outcome)
                    progress.update(stats.done)
                }
                let properties = AMQPProperties(
                    contentType: "application/json", deliveryMode: 2, messageID: job.id,
                    timestamp: UInt64(Date().timeIntervalSince1970), type: job.kind)
                let exchange = topology.jobsExchange
                group.addTask {
                    do {
                        let confirm = try await connection.publish(line, to: exchange, routingKey: job.kind, properties: properties)
                        switch confirm {
                        case .acked: return .published
                        case .returned: return .unroutable(job.kind)
                        case .nacked: return .nacked
                        }
                    } catch {
                        return .failed("\(error)")
                    }
                }
                running += 1
            }
            for try await outcome in group {
                stats.add(outcome)
                progress.update(stats.done)
            }
        }
        progress.finish()
        await connection.close()
        let seconds = max(0.001, start.duration(to: .now).seconds)
        var summary = "enqueued \(stats.published) jobs in \(String(format: "%.2f", seconds)) s (\(Int(Double(stats.published) / seconds)) jobs/s)"
        if stats.rejected > 0 { summary += "; \(stats.rejected) invalid lines skipped" }
        if !stats.unroutableKinds.isEmpty {
            summary += "; \(stats.unroutable) unroutable (no queue for kind \(stats.unroutableKinds.sorted().joined(separator: ", ")); run 'fleet topology apply'?)"
        }
        if stats.nacked > 0 { summary += "; \(stats.nacked) refused by the broker" }
        if stats.failed > 0 { summary += "; \(stats.failed) not confirmed (\(stats.lastFailure ?? ""))" }
        print(summary)
        if stats.rejected + stats.unroutable + stats.nacked + stats.failed > 0 {
            throw CLIError("\(stats.rejected + stats.unroutable + stats.nacked + stats.failed) jobs were not enqueued", exitCode: 65)
        }
    }

    enum Outcome: Sendable { case published, unroutable(String), nacked, failed(String) }

    struct Stats {
        var published = 0, rejected = 0, unroutable = 0, nacked = 0, failed = 0
        var unroutableKinds: Set<String> = []
        var lastFailure: String?
        var done: Int { published + unroutable + nacked + failed + rejected }
        mutating func add(_ outcome: Outcome) {
            switch outcome {
            case .published: published += 1
            case .unroutable(let kind): unroutable += 1; unroutableKinds.insert(kind)
            case .nacked: nacked += 1
            case .failed(let reason): failed += 1; lastFailure = reason
            }
        }
    }

    private func countLines(_ path: String) throws -> Int {
        guard let data = FileManager.default.contents(atPath: path) else { return 0 }
        return data.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
    }
}
