import FleetBackoff
import AMQPClient
import FleetAMQP
import FleetCampaign
import FleetCore
import Foundation

/// `fleet bench campaign`: the fan-out of a segment into jobs (`fleet campaign send`: members read from the
/// store, planned, published with confirms, recorded) against `fleet enqueue` of the same jobs from a file (the
/// publishing ceiling), both as the `fleet` executable a scheduler runs, on one broker, alternating, N rounds.
/// Jobs/s is members over the command's wall time (start-up included, the same for both).
public struct CampaignBench: Sendable {
    var members: Int
    var rounds: Int
    var amqpURL: String
    var debugBuild: Bool
    var output: BenchOutput

    public init(members: Int, rounds: Int, amqpURL: String, debugBuild: Bool, output: BenchOutput) {
        self.members = members
        self.rounds = rounds
        self.amqpURL = amqpURL
        self.debugBuild = debugBuild
        self.output = output
    }

    public func run(connection: AMQPConnection) async throws {
        try await BenchError.failing { try await measure(connection: connection) }
    }

    private func measure(connection: AMQPConnection) async throws {
        let prefix = "fleet-bench-campaign-\(UUID().uuidString.prefix(6).lowercased())"
        let topology = FleetTopology(prefix: prefix, kinds: ["email"])
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let store = work.appendingPathComponent("fleet.sqlite").path
        let fleet = BenchPaths.executable
        let environment = ["FLEET_AMQP_URL": amqpURL, "FLEET_STORE": store, "FLEET_PREFIX": prefix, "FLEET_LOG_LEVEL": "error"]
        func run(_ arguments: [String]) throws -> (seconds: Double, output: String) {
            let start = ContinuousClock.now
            guard let outcome = BenchSubprocess.run(fleet, arguments, environment: environment) else {
                throw BenchError("cannot start \(fleet)", code: .unavailable)
            }
            let seconds = start.duration(to: .now).seconds
            guard outcome.status == 0 else { throw BenchError("fleet \(arguments.prefix(2).joined(separator: " ")) failed: \(outcome.lastLine)") }
            return (seconds, outcome.output)
        }

        output.line("fleet bench campaign: a segment of \(members) members fanned out by 'fleet campaign send', against 'fleet enqueue' of the same jobs from a file; \(rounds) rounds, alternating; \(debugBuild ? "debug" : "release") build")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }

        // The members: profiles with a time zone each, one segment of them all.
        let zones = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Paris"]
        var profiles = ""
        profiles.reserveCapacity(members * 90)
        for i in 0..<members {
            profiles += #"{"id":"m\#(i)","email":"m\#(i)@example.com","first_name":"Ann","timezone":"\#(zones[i % zones.count])"}"# + "\n"
        }
        let profilesFile = work.appendingPathComponent("profiles.ndjson").path
        try profiles.write(toFile: profilesFile, atomically: true, encoding: .utf8)
        let imported = try run(["profiles", "import", profilesFile])
        output.line(String(format: "imported %d profiles in %.1f s", members, imported.seconds))
        _ = try run(["segment", "define", "everyone", #"{"all": []}"#])
        try await connection.declare(topology.declarations, redeclareOnReconnect: false)
        do {
            try await rounds(connection: connection, topology: topology, run: run, work: work)
        } catch {
            await connection.delete(topology.declarations)
            throw error
        }
        await connection.delete(topology.declarations)
    }

    private func rounds(connection: AMQPConnection, topology: FleetTopology,
                        run: (_ arguments: [String]) throws -> (seconds: Double, output: String), work: URL) async throws {
        let queue = topology.queue(forKind: "email")

        var enqueueRates: [Double] = []
        var campaignRates: [Double] = []
        for round in 1...rounds {
            let campaignID = "bench\(round)"
            // The same jobs the send publishes (ids <campaign>:<profile>, no not_before: sent now), as a file.
            var request = CampaignFanOut.Request(campaignID: "file\(round)", kind: "email", template: "welcome", segment: "everyone")
            request.name = "bench"
            let campaign = CampaignFanOut.campaignObject(request)
            let now = Date()
            var lines: [UInt8] = []
            lines.reserveCapacity(members * 160)
            for i in 0..<members {
                lines += CampaignFanOut.job(request, profileID: "m\(i)", notBefore: now, now: now, campaign: campaign)
                lines.append(0x0A)
            }
            let jobsFile = work.appendingPathComponent("jobs.ndjson").path
            try Data(lines).write(to: URL(fileURLWithPath: jobsFile))

            let enqueue = try run(["enqueue", jobsFile, "--no-progress"])
            enqueueRates.append(Double(members) / enqueue.seconds)
            _ = try await connection.purge(queue: queue)
            let send = try run(["campaign", "send", "--segment", "everyone", "--kind", "email", "--template", "welcome",
                                "--campaign-id", campaignID, "--name", "bench", "--no-progress", "--json"])
            campaignRates.append(Double(members) / send.seconds)
            _ = try await connection.purge(queue: queue)
            output.line(String(format: "round %d: fleet enqueue %.0f jobs/s (%.2f s), fleet campaign send %.0f jobs/s (%.2f s), ratio %.2f",
                               round, enqueueRates[round - 1], enqueue.seconds, campaignRates[round - 1], send.seconds,
                               campaignRates[round - 1] / enqueueRates[round - 1]))
        }
        let ratios = zip(campaignRates, enqueueRates).map { $0 / $1 }
        let ratio = BenchWorker.median(ratios)
        let f = BenchFormat.thousands
        output.line()
        output.line("| measure | jobs/s | ratio |")
        output.line("| --- | ---: | ---: |")
        output.line("| (a) fleet enqueue of the jobs from a file (the ceiling) | \(f(BenchWorker.median(enqueueRates))) | |")
        output.line("| (b) fleet campaign send of a \(f(Double(members)))-member segment | \(f(BenchWorker.median(campaignRates))) | b/a \(String(format: "%.2f", ratio)) |")
        output.line()
        output.line("medians of \(rounds) rounds; b/a per round: \(ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "))")
        output.line("target: b/a >= 0.80: \(ratio >= 0.8 ? "met" : "NOT met")")

        var figures = JSONObject()
        figures["members"] = .count(members)
        figures["rounds"] = .count(rounds)
        figures["enqueue_jobs_per_s"] = .number(BenchWorker.median(enqueueRates), places: 1)
        figures["campaign_jobs_per_s"] = .number(BenchWorker.median(campaignRates), places: 1)
        figures["ratio_median"] = .number(ratio, places: 3)
        figures["ratios"] = .array(ratios.map { .number($0, places: 3) })
        output.figures(figures)
    }
}
