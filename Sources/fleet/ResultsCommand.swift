import AMQPClient
import ArgumentParser
import FleetAMQP
import FleetCore
import Foundation

/// `fleet results`: reads the default results sink (`<prefix>.results.all`).
struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "results",
        abstract: "Show results from the default results queue (they stay there unless --consume).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Show at most this many results, oldest first (default 10).")
    var limit: Int = 10

    @Flag(help: "Count every result in the queue by kind and status instead of listing them.")
    var summary = false

    @Flag(help: "Remove the results read from the queue.")
    var consume = false

    @Flag(help: "Print the result envelopes as JSON, one a line.")
    var json = false

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let topology = try global.topology()
        let connection = try await global.connect(name: "fleet results", logger: logger)
        guard let status = try await connection.queueStatus(topology.resultsQueue) else {
            await connection.close()
            throw CLIError("no queue \(topology.resultsQueue): run 'fleet topology apply'", exitCode: CLIError.notFound)
        }
        let wanted = summary ? Int(status.messages) : limit
        let box = LinesBox()
        let consume = self.consume
        if wanted > 0 {
            _ = try await QueueReader.read(connection, queue: topology.resultsQueue, limit: wanted) { delivery in
                box.append((try? JSONValue(parsing: delivery.body)) ?? .string("(not JSON)"))
                if consume { connection.ack(delivery) }
            }
        }
        await connection.close()
        let results = box.values
        if summary {
            var counts: [String: Int] = [:]
            // Why: `output.reason` of suppressed and deferred results, `error.code` of failed and dead ones.
            var reasons: [String: [String: Int]] = [:]
            var runMs: [Double] = []
            for r in results {
                let key = "\(r["kind"]?.stringValue ?? "?") \(r["status"]?.stringValue ?? "?")"
                counts[key, default: 0] += 1
                if let why = r["output"]?["reason"]?.stringValue ?? r["error"]?["code"]?.stringValue {
                    reasons[key, default: [:]][why, default: 0] += 1
                }
                if let ms = r["timings"]?["run_ms"]?.intValue { runMs.append(Double(ms)) }
            }
            print("\(results.count) results in \(topology.resultsQueue)")
            for key in counts.keys.sorted() {
                let why = (reasons[key] ?? [:]).sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("  \(key): \(counts[key]!)" + (why.isEmpty ? "" : " (\(why))"))
            }
            if !runMs.isEmpty {
                runMs.sort()
                print(String(format: "  handler run time: p50 %.0f ms, p99 %.0f ms", runMs[runMs.count / 2], runMs[min(runMs.count - 1, runMs.count * 99 / 100)]))
            }
            return
        }
        if results.isEmpty { print("no results in \(topology.resultsQueue)") }
        for r in results {
            if json { print(r.jsonString); continue }
            let id = r["job_id"]?.stringValue ?? "?"
            let kind = r["kind"]?.stringValue ?? "?"
            let st = r["status"]?.stringValue ?? "?"
            let attempt = r["attempt"]?.intValue ?? 0
            var line = "\(id)  \(kind)  \(st)  attempt \(attempt)"
            if let code = r["error"]?["code"]?.stringValue { line += "  \(code): \(r["error"]?["message"]?.stringValue ?? "")" }
            if let ms = r["timings"]?["run_ms"]?.intValue { line += "  run \(ms) ms" }
            print(line)
        }
    }
}
