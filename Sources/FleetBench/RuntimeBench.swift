import FleetBackoff
import AMQPClient
import FleetAMQP
import FleetCore
import Foundation
import Synchronization

/// `fleet bench runtime` (the default of `fleet bench`): in one run on one broker, (a) the raw broker pipe and (b) the
/// fleet runtime with the `noop` kind in a real `fleet worker` process, doing the same flow on N pre-enqueued
/// persistent jobs; then a paced run of each for enqueue-to-result latency. Prints jobs/s, the ratio b/a, p50/p99
/// latency and the worker's peak RSS. Both are measured the same way: first to last result seen by one consumer.
public struct RuntimeBench: Sendable {
    /// Jobs per throughput run.
    var jobs: Int
    /// Worker concurrency.
    var concurrency: Int
    /// Prefetch of both the raw pipe and the worker.
    var prefetch: Int
    /// Rounds of (a) then (b).
    var rounds: Int
    /// Jobs per second in the latency runs.
    var latencyRate: Int
    /// Length of each latency run in seconds.
    var latencySeconds: Int
    /// The broker's URL (the worker's `FLEET_AMQP_URL`) and its parsed configuration (the raw pipe's).
    var amqpURL: String
    var amqp: AMQPConfiguration
    /// Whether this executable is a debug build (the report warns: measure a release build).
    var debugBuild: Bool
    /// Where the report and the figures go.
    var output: BenchOutput
    /// The worker's `FLEET_STORE` (its job ledger): nil for a fresh SQLite file; a `postgres://` URL measures the
    /// ledger shared across hosts.
    var ledger: String?

    public init(jobs: Int, concurrency: Int, prefetch: Int, rounds: Int, latencyRate: Int, latencySeconds: Int,
                amqpURL: String, amqp: AMQPConfiguration, debugBuild: Bool, output: BenchOutput, ledger: String? = nil) {
        self.ledger = ledger
        self.jobs = jobs
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.rounds = rounds
        self.latencyRate = latencyRate
        self.latencySeconds = latencySeconds
        self.amqpURL = amqpURL
        self.amqp = amqp
        self.debugBuild = debugBuild
        self.output = output
    }

    /// Runs the benchmark on `connection` (the publisher's and the result consumer's) and closes it at the end. A
    /// failure during the runs is a ``BenchError`` (`bench failed: ...`); one while declaring the bench's queues is
    /// the broker's error as it came.
    public func run(connection: AMQPConnection) async throws {
        let prefix = "fleet-bench-\(UUID().uuidString.prefix(6).lowercased())"
        let topology = FleetTopology(prefix: prefix, kinds: ["noop"])
        let rawQueue = "\(prefix).raw"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(prefix)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let benchDeclarations = topology.declarations + [.queue(.init(name: rawQueue))]
        try await connection.declare(benchDeclarations, redeclareOnReconnect: false)
        let results = try await ResultTap.start(connection, queue: topology.resultsQueue)
        let build = debugBuild ? "debug" : "release"
        output.line("fleet bench: \(jobs) persistent jobs per run, prefetch \(prefetch), worker concurrency \(concurrency), \(build) build, broker \(amqp.redactedURL)")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }

        var worker: BenchWorker?
        do {
            let raw = RawPipe(amqp, queue: rawQueue, resultsExchange: topology.resultsExchange, prefetch: UInt16(prefetch))
            // Rounds of (a) then (b): the machine is shared and noisy, so the median ratio is the figure.
            var rawRates: [Double] = []
            var fleetRates: [Double] = []
            var rawCPU = 0.0
            var workerCPU: Double? = 0
            var process: BenchWorker!
            for round in 1...rounds {
                // (a) The raw pipe.
                try await enqueue(connection, count: jobs, exchange: "", routingKey: rawQueue, idPrefix: "raw\(round)")
                results.reset(expecting: jobs)
                rawCPU += try await raw.run(count: jobs)
                let rawRun = try await results.wait()

                // (b) The fleet runtime, noop kind, in a worker process started on the pre-enqueued jobs.
                try await enqueue(connection, count: jobs, exchange: topology.jobsExchange, routingKey: "noop",
                                  idPrefix: "\(prefix)-fleet\(round)")
                results.reset(expecting: jobs)
                process = try BenchWorker.start(kinds: "noop", concurrency: concurrency, prefetch: prefetch, prefix: prefix,
                                                store: ledger ?? directory.appendingPathComponent("fleet.sqlite").path, amqpURL: amqpURL)
                worker = process
                let fleetRun = try await results.wait()
                if let cpu = process.cpuSeconds { workerCPU? += cpu } else { workerCPU = nil }
                rawRates.append(rawRun.rate)
                fleetRates.append(fleetRun.rate)
                output.line(String(format: "round %d: raw pipe %.0f jobs/s, fleet runtime %.0f jobs/s, ratio %.2f",
                                   round, rawRun.rate, fleetRun.rate, fleetRun.rate / rawRun.rate))
                if round < rounds {
                    process.stop()
                    worker = nil
                }
            }

            // Latency: paced publishing while each consumer idles, enqueue to result.
            let paced = latencyRate * latencySeconds
            results.reset(expecting: paced)
            let fleetSent = try await pace(connection, count: paced, exchange: topology.jobsExchange, routingKey: "noop", idPrefix: "\(prefix)-lat-fleet")
            let fleetLatency = try await results.wait().latencies(sentAt: fleetSent)
            let rss = process.peakRSSKiB

            results.reset(expecting: paced)
            async let rawLatencyRun = raw.run(count: paced)
            let rawSent = try await pace(connection, count: paced, exchange: "", routingKey: rawQueue, idPrefix: "lat-raw")
            _ = try await rawLatencyRun
            let rawLatency = try await results.wait().latencies(sentAt: rawSent)

            process.stop()
            worker = nil

            let ratios = zip(fleetRates, rawRates).map { $0 / $1 }
            output.line()
            output.line("(a) raw pipe (rabbitmq-c, one thread): \(Int(BenchWorker.median(rawRates))) jobs/s (median of \(rounds))")
            output.line("(b) fleet runtime, noop kind:          \(Int(BenchWorker.median(fleetRates))) jobs/s (median of \(rounds))")
            let each = ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            output.line(String(format: "ratio b/a:                             %.2f", BenchWorker.median(ratios))
                        + "  median of \(rounds) rounds (\(each); target >= 0.80)")
            output.line("latency, enqueue to result, paced at \(latencyRate) jobs/s for \(latencySeconds) s:")
            output.line(String(format: "  raw pipe:      p50 %.2f ms, p99 %.2f ms", rawLatency.p50, rawLatency.p99))
            output.line(String(format: "  fleet runtime: p50 %.2f ms, p99 %.2f ms", fleetLatency.p50, fleetLatency.p99))
            output.line("worker peak RSS: \(rss.map { String(format: "%.1f MB", Double($0) / 1024) } ?? "unknown")")
            let total = Double(jobs * rounds)
            output.line(String(format: "CPU per job: raw pipe %.0f µs (its thread), ", rawCPU / total * 1e6)
                        + (workerCPU.map { String(format: "fleet worker %.0f µs (the whole process, start-up included)", $0 / total * 1e6) }
                           ?? "fleet worker unknown"))

            var figures = JSONObject()
            figures["jobs"] = .count(jobs)
            figures["rounds"] = .count(rounds)
            figures["raw_jobs_per_s"] = .number(BenchWorker.median(rawRates), places: 1)
            figures["fleet_jobs_per_s"] = .number(BenchWorker.median(fleetRates), places: 1)
            figures["ratio_median"] = .number(BenchWorker.median(ratios), places: 3)
            figures["ratios"] = .array(ratios.map { .number($0, places: 3) })
            figures["latency_rate_jobs_per_s"] = .count(latencyRate)
            figures["raw_latency_p50_ms"] = .number(rawLatency.p50, places: 3)
            figures["raw_latency_p99_ms"] = .number(rawLatency.p99, places: 3)
            figures["fleet_latency_p50_ms"] = .number(fleetLatency.p50, places: 3)
            figures["fleet_latency_p99_ms"] = .number(fleetLatency.p99, places: 3)
            figures["raw_cpu_us_per_job"] = .number(rawCPU / total * 1e6, places: 1)
            figures["worker_cpu_us_per_job"] = .number(workerCPU.map { $0 / total * 1e6 }, places: 1)
            figures["worker_peak_rss_mb"] = .number(rss.map { Double($0) / 1024 }, places: 1)
            output.figures(figures)
        } catch {
            worker?.stop()
            await results.stop()
            await connection.delete(benchDeclarations)
            await connection.close()
            throw BenchError("bench failed: \(error)")
        }
        await results.stop()
        await connection.delete(benchDeclarations)
        await connection.close()
    }

    /// Publishes `count` noop jobs, 512 unconfirmed at a time.
    private func enqueue(_ connection: AMQPConnection, count: Int, exchange: String, routingKey: String, idPrefix: String) async throws {
        let jobs = (0..<count).map { i -> (id: String, body: [UInt8]) in
            let id = "\(idPrefix)-\(i)"
            return (id, JobEnvelope(id: id, kind: "noop").encoded())
        }
        try await BenchJobs.publish(connection, jobs, exchange: exchange, routingKey: routingKey, kind: "noop")
    }

    /// Publishes at a steady rate; returns when each job was sent (by id).
    private func pace(_ connection: AMQPConnection, count: Int, exchange: String, routingKey: String,
                      idPrefix: String) async throws -> [String: ContinuousClock.Instant] {
        let sent = Mutex<[String: ContinuousClock.Instant]>([:])
        let start = ContinuousClock.now
        let interval = Duration.seconds(1) / latencyRate
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<count {
                let due = start + interval * i
                if due > .now { try await Task.sleep(until: due) }
                let id = "\(idPrefix)-\(i)"
                sent.withLock { $0[id] = .now }
                group.addTask {
                    let body = JobEnvelope(id: id, kind: "noop").encoded()
                    _ = try await connection.publish(body, to: exchange, routingKey: routingKey,
                                                     properties: .persistentJSON(messageID: id, type: "noop"))
                }
            }
            try await group.waitForAll()
        }
        return sent.withLock { $0 }
    }
}
