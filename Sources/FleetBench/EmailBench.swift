import AMQPClient
import FleetAMQP
import FleetCore
import Foundation

/// `fleet bench email`: end-to-end email jobs/s on the shared workload (`peers/make_data.py`: profile read,
/// render of `newsletter`, MIME, delivery `result` or `outbox`, result published, ack) through a real
/// `fleet worker --kinds email`, next to the raw broker pipe and the Celery peer (`peers/celery/run.py`) on
/// the same broker in the same run; the worker's peak RSS; and SMTP delivery throughput to a local sink.
public struct EmailBench: Sendable {
    var jobs: Int
    var rounds: Int
    var concurrency: Int
    var prefetch: Int
    /// `result` or `outbox`.
    var delivery: String
    var smtpJobs: Int
    /// FLEET_EMAIL_SMTP_POOL of the SMTP runs (nil: the worker's default).
    var smtpPool: Int?
    /// Postfix's smtp-sink binary, for run (e).
    var postfixSink: String
    var amqpURL: String
    var amqp: AMQPConfiguration
    var shared: String
    var repository: String
    /// The Python with celery and python-liquid, or nil to skip the Celery peer.
    var celeryPython: String?
    /// Whether this executable is a debug build (the report warns: measure a release build).
    var debugBuild: Bool
    /// Where the report and the figures go.
    var output: BenchOutput

    public init(jobs: Int, rounds: Int, concurrency: Int, prefetch: Int, delivery: String, smtpJobs: Int, smtpPool: Int?,
                postfixSink: String = "/usr/sbin/smtp-sink", amqpURL: String, amqp: AMQPConfiguration, shared: String, repository: String, celeryPython: String?,
                debugBuild: Bool, output: BenchOutput) {
        self.jobs = jobs
        self.rounds = rounds
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.delivery = delivery
        self.smtpJobs = smtpJobs
        self.smtpPool = smtpPool
        self.postfixSink = postfixSink
        self.amqpURL = amqpURL
        self.amqp = amqp
        self.shared = shared
        self.repository = repository
        self.celeryPython = celeryPython
        self.debugBuild = debugBuild
        self.output = output
    }

    /// The shared directory (`option`, else found: ``BenchPaths/shared(_:)``) and the repository (its templates and
    /// SMTP sink), which the bench must be run from.
    public static func locate(shared option: String?) throws -> (shared: String, repository: String) {
        let shared = try BenchPaths.shared(option)
        guard let repository = BenchPaths.repository(holding: "Templates/email/newsletter/html.liquid") else {
            throw BenchError.usage("cannot find the repository (Templates/email/newsletter); run the bench from it")
        }
        return (shared, repository)
    }

    /// `python` when it imports celery and python-liquid (the Celery peer can run), else nil; prints which.
    public static func celeryPeer(python: String, output: BenchOutput) -> String? {
        let probe = BenchSubprocess.run(python, ["-c", "import celery, liquid; print(celery.__version__)"])
        guard probe?.status == 0 else {
            output.line("Celery peer: NOT AVAILABLE (\(python) cannot import celery and liquid; \(python) -m pip install celery python-liquid); skipped")
            return nil
        }
        output.line("Celery \(probe?.lastLine ?? "") with python-liquid (\(python))")
        return python
    }

    /// What one measured run of the worker gave.
    struct WorkerRun {
        var rate: Double
        var peakRSSKiB: Int?
        var cpuSeconds: Double?
        /// Mean body size of its results.
        var resultBytes: Int
        /// Results with status `succeeded`.
        var succeeded = 0
    }

    /// The workload of one bench run in a directory of its own: make_data.py's files and a profile store with
    /// its profiles (the import is not measured).
    struct Workload {
        var directory: URL
        var profiles: String
        var store: String
        var jobs: [JSONObject]
    }

    /// Writes the workload (at least `jobs` jobs) into a fresh directory named `name` and imports its profiles.
    static func prepare(shared: String, jobs: Int, name: String) throws -> Workload {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        do {
            try BenchPaths.makeData(shared: shared, into: work.path, jobs: jobs)
            let profiles = work.path + "/profiles.ndjson"
            let store = work.path + "/fleet.sqlite"
            // The workload's `email_opt_in` stays a plain trait, as the Celery peer reads it (it renders for everyone).
            guard let imported = BenchSubprocess.run(BenchPaths.executable, ["profiles", "import", profiles, "--store", store, "--no-progress", "--allow-consent-traits"]),
                  imported.status == 0 else {
                throw BenchError("cannot import the workload's profiles into \(store)", code: .workload)
            }
            return Workload(directory: work, profiles: profiles, store: store, jobs: try readJobs(work.path + "/jobs.ndjson"))
        } catch {
            try? FileManager.default.removeItem(at: work)
            throw error
        }
    }

    /// `fleet bench email --in-process`: only the email handler in this process (no broker), CPU per job.
    public static func runInProcess(shared: String, repository: String, jobs: Int, output: BenchOutput) async throws {
        try await BenchError.failing { try await measureInProcess(shared: shared, repository: repository, jobs: jobs, output: output) }
    }

    private static func measureInProcess(shared: String, repository: String, jobs: Int, output: BenchOutput) async throws {
        let workload = try prepare(shared: shared, jobs: jobs, name: "fleet-bench-email-\(UUID().uuidString.prefix(6).lowercased())")
        defer { try? FileManager.default.removeItem(at: workload.directory) }
        let us = try await handlerCPU(workload, repository: repository, jobs: jobs)
        output.line(String(format: "email handler in process (no broker, no job ledger, one task), delivery result: %.1f µs CPU per job over %d jobs", us, jobs))
        output.figures(["jobs": .count(jobs), "email_handler_cpu_us_per_job": .number(us, places: 1)])
    }

    /// CPU µs per job of the email handler alone on `workload` (``EmailHandlerLoop``), over `jobs` jobs.
    static func handlerCPU(_ workload: Workload, repository: String, jobs: Int) async throws -> Double {
        let loop = EmailHandlerLoop(store: workload.store, templates: repository + "/Templates")
        return try await loop.run(tagged(workload.jobs, count: min(jobs, workload.jobs.count), tag: "loop"), count: jobs)
    }

    /// Runs the benchmark on `connection` (the publisher's and the result consumer's) and prints the report, then with
    /// `--json` the figures. Throws ``BenchError`` only (`bench failed: ...` for a failure it does not name).
    public func run(connection: AMQPConnection) async throws {
        try await BenchError.failing { try await measure(connection: connection) }
    }

    private func measure(connection: AMQPConnection) async throws {
        let prefix = "fleet-bench-email-\(UUID().uuidString.prefix(6).lowercased())"
        let topology = FleetTopology(prefix: prefix, kinds: ["email", "noop"])
        let rawQueue = "\(prefix).raw"
        let prepared = try Self.prepare(shared: shared, jobs: max(jobs, smtpJobs), name: prefix)
        let work = prepared.directory
        defer { try? FileManager.default.removeItem(at: work) }
        let profiles = prepared.profiles
        let store = prepared.store
        let workload = prepared.jobs

        let declarations = topology.declarations + [.queue(.init(name: rawQueue))]
        try await connection.declare(declarations, redeclareOnReconnect: false)
        let results = try await ResultTap.start(connection, queue: topology.resultsQueue)
        output.line("fleet bench email: \(jobs) email jobs per run (peers/make_data.py: 2,000 profiles, template newsletter), delivery \(delivery), worker concurrency \(concurrency), prefetch \(prefetch), \(debugBuild ? "debug" : "release") build, broker \(amqp.redactedURL)")
        output.line("each run: jobs pre-enqueued, then timed from the first result to the last seen by one consumer")
        if debugBuild { output.line("warning: this is a debug build; measure with 'swift build -c release'") }

        var worker: BenchWorker?
        var sink: SMTPSinkProcess?
        var postfix: SMTPSinkProcess?
        defer { postfix?.stop() }
        do {
            let raw = RawPipe(amqp, queue: rawQueue, resultsExchange: topology.resultsExchange, prefetch: UInt16(prefetch))
            var rawRates: [Double] = []
            var sizedRates: [Double] = []
            var noopRates: [Double] = []
            var burnRates: [Double] = []
            var burnMicros: [Double] = []
            var rawResultBytes = 0
            var fleetRuns: [WorkerRun] = []
            var environment = workerEnvironment()
            var budget = CPUBudget(host: amqp.host, port: amqp.port)
            if delivery == "outbox" {
                environment["FLEET_EMAIL_DELIVERY"] = "outbox"
                environment["FLEET_EMAIL_OUTBOX"] = work.path + "/outbox"
            }
            // (e) The same worker delivering over SMTP to Postfix's smtp-sink, every round right after (b).
            var postfixNote = "skipped (--smtp-jobs 0)"
            var postfixEnvironment = environment
            if smtpJobs > 0 {
                do {
                    postfix = try await SMTPSinkProcess.startPostfix(binary: postfixSink)
                    postfixEnvironment["FLEET_EMAIL_DELIVERY"] = "smtp"
                    postfixEnvironment["FLEET_EMAIL_SMTP_HOST"] = "127.0.0.1"
                    postfixEnvironment["FLEET_EMAIL_SMTP_PORT"] = String(postfix!.port)
                    postfixEnvironment["FLEET_EMAIL_SMTP_POOL"] = smtpPool.map(String.init)
                } catch let error as BenchError {
                    postfixNote = "skipped: \(error.message)"
                }
            }
            var postfixRuns: [WorkerRun] = []
            for round in 1...rounds {
                // (a) The raw pipe on the same job bodies.
                let rawRun = try await measureRaw(connection, raw, results: results, jobs: Self.tagged(workload, count: jobs, tag: "raw\(round)"),
                                                  queue: rawQueue, budget: &budget, as: "a")
                rawRates.append(rawRun.rate)
                rawResultBytes = rawRun.meanBytes

                // (b) A fleet worker started on the pre-enqueued jobs.
                let fleetRun = try await measureWorker(
                    connection, topology: topology, results: results, jobs: Self.tagged(workload, count: jobs, tag: "fleet\(round)"),
                    prefix: prefix, store: store, environment: environment, worker: &worker, budget: &budget, as: "b")
                fleetRuns.append(fleetRun)
                if postfix != nil {
                    postfixRuns.append(try await measureWorker(
                        connection, topology: topology, results: results, jobs: Self.tagged(workload, count: jobs, tag: "pf\(round)"),
                        prefix: prefix, store: store, environment: postfixEnvironment, worker: &worker, budget: &budget, as: "e"))
                }
                // The filler that brings the raw pipe's and the noop worker's results to the email results' size.
                let filler = max(0, fleetRun.resultBytes - rawResultBytes)

                // (a2) The raw pipe again, its results padded to the size of the worker's: what the broker
                // alone allows a worker that returns results of that size.
                let sized = RawPipe(amqp, queue: rawQueue, resultsExchange: topology.resultsExchange, prefetch: UInt16(prefetch),
                                    outputBytes: filler)
                sizedRates.append(try await measureRaw(connection, sized, results: results, jobs: Self.tagged(workload, count: jobs, tag: "sized\(round)"),
                                                       queue: rawQueue, budget: &budget, as: "a2").rate)

                // (b0) A fleet worker of the `noop` kind on as many jobs, its results padded to the same size: the
                // runtime and the broker with no email work at all.
                let noopRun = try await measureWorker(
                    connection, topology: topology, results: results, jobs: Self.noopJobs(jobs, tag: "noop\(round)", filler: filler), kind: "noop",
                    prefix: prefix, store: store, environment: environment, worker: &worker, budget: &budget, as: "b0")
                noopRates.append(noopRun.rate)

                // (b1) The same, burning as much CPU per job as the email work took in (b) beyond (b0): whether
                // (b)'s rate is what its CPU per job allows on these cores, whatever that CPU is spent on.
                let emailWork = max(0, (fleetRun.cpuSeconds ?? 0) - (noopRun.cpuSeconds ?? 0)) * 1e6 / Double(jobs)
                let burnRun = try await measureWorker(
                    connection, topology: topology, results: results, jobs: Self.noopJobs(jobs, tag: "burn\(round)", filler: filler, cpuMicros: Int(emailWork)),
                    kind: "noop", prefix: prefix, store: store, environment: environment, worker: &worker, budget: &budget, as: "b1")
                burnRates.append(burnRun.rate)
                burnMicros.append(emailWork)
                output.line(String(format: "round %d: raw pipe %.0f jobs/s, fleet email %.0f jobs/s, ratio %.2f; with results of %d bytes: raw pipe %.0f jobs/s, fleet noop %.0f jobs/s (its results: %d bytes), fleet noop burning %.0f µs per job %.0f jobs/s",
                                   round, rawRates[round - 1], fleetRun.rate, fleetRun.rate / rawRates[round - 1],
                                   fleetRun.resultBytes, sizedRates[round - 1], noopRun.rate, noopRun.resultBytes, emailWork, burnRun.rate))
            }

            // (c) The Celery peer on the same broker.
            var celery: Double?
            var celeryNote = "skipped (--no-peers)"
            var celeryCPU: Double?
            if let python = celeryPython {
                let peer = runCelery(python: python, profiles: profiles, jobsFile: work.path + "/jobs.ndjson", dbPath: work.path + "/peer.sqlite")
                (celery, celeryNote) = (peer.rate, peer.note)
                celeryCPU = peer.rate == nil ? nil : peer.workerCPUSeconds
                try? await connection.delete(queue: "peer.email")
            }

            // (d) SMTP delivery to a local sink.
            var smtp: (rate: Double, delivered: Int)?
            if smtpJobs > 0 {
                let maildir = work.path + "/maildir"
                sink = try await SMTPSinkProcess.start(script: repository + "/Ops/scripts/smtp_sink.py", maildir: maildir,
                                                       rules: work.path + "/rules.json")
                var env = workerEnvironment()
                env["FLEET_EMAIL_DELIVERY"] = "smtp"
                env["FLEET_EMAIL_SMTP_HOST"] = "127.0.0.1"
                env["FLEET_EMAIL_SMTP_PORT"] = String(sink!.port)
                env["FLEET_EMAIL_SMTP_POOL"] = smtpPool.map(String.init)
                let run = try await measureWorker(
                    connection, topology: topology, results: results, jobs: Self.tagged(workload, count: smtpJobs, tag: "smtp"),
                    prefix: prefix, store: store, environment: env, worker: &worker, budget: &budget, as: "d")
                let delivered = (try? FileManager.default.contentsOfDirectory(atPath: maildir + "/new").count) ?? 0
                smtp = (run.rate, delivered)
                sink?.stop()
                sink = nil
            }
            await results.stop()
            await connection.delete(declarations)
            let inProcess = try await Self.handlerCPU(prepared, repository: repository, jobs: jobs)

            // The median of the per-round ratios x/y, and formatted.
            func median(_ x: [Double], over y: [Double]) -> Double { BenchWorker.median(zip(x, y).map { $0 / $1 }) }
            func medianRatio(_ x: [Double], _ y: [Double]) -> String { String(format: "%.2f", median(x, over: y)) }
            let rawMedian = BenchWorker.median(rawRates)
            let fleetMedian = BenchWorker.median(fleetRuns.map(\.rate))
            let ratios = zip(fleetRuns, rawRates).map { $0.rate / $1 }
            let ratio = BenchWorker.median(ratios)
            let rss = fleetRuns.compactMap(\.peakRSSKiB).max()
            let f = BenchFormat.thousands
            let poolLabel = smtpPool.map(String.init) ?? "the default, 64"
            output.line()
            output.line("| measure | jobs/s | ratio |")
            output.line("| --- | ---: | ---: |")
            output.line("| (a) raw broker pipe (rabbitmq-c, one thread, no work) | \(f(rawMedian)) | |")
            let sizedMedian = BenchWorker.median(sizedRates)
            let resultBytes = BenchWorker.median(fleetRuns.map { Double($0.resultBytes) })
            output.line("| (a2) raw broker pipe, results padded to the worker's mean result size (\(f(resultBytes)) bytes) | \(f(sizedMedian)) | a2/a \(medianRatio(sizedRates, rawRates)) |")
            let noopMedian = BenchWorker.median(noopRates)
            output.line("| (b0) fleet noop worker, results padded to about the same size (no email work) | \(f(noopMedian)) | b0/a \(medianRatio(noopRates, rawRates)) |")
            output.line(String(format: "| (b1) fleet noop worker, padded results, burning the email work's CPU (%.0f µs per job) | %@ | b1/a %@, b/b1 %@ |",
                               BenchWorker.median(burnMicros), f(BenchWorker.median(burnRates)), medianRatio(burnRates, rawRates), medianRatio(fleetRuns.map(\.rate), burnRates)))
            output.line("| (b) fleet email worker, delivery \(delivery) | \(f(fleetMedian)) | b/a \(String(format: "%.2f", ratio)), b/b0 \(medianRatio(fleetRuns.map(\.rate), noopRates)) |")
            if let celery {
                output.line("| (c) Celery peer (prefork, \(ProcessInfo.processInfo.activeProcessorCount) processes, python-liquid) | \(f(celery)) | b/c \(String(format: "%.1f", fleetMedian / celery)) |")
            } else {
                output.line("| (c) Celery peer | \(celeryNote) | |")
            }
            if let smtp {
                output.line("| (d) fleet email worker, delivery smtp to a local aiosmtpd sink (pool \(poolLabel)) | \(f(smtp.rate)) | \(smtp.delivered) of \(smtpJobs) messages in the Maildir |")
            }
            let postfixRates = postfixRuns.map(\.rate)
            let postfixRatios = zip(postfixRates, fleetRuns.map(\.rate)).map { $0 / $1 }
            if !postfixRuns.isEmpty {
                let sent = postfixRuns.map(\.succeeded).reduce(0, +)
                output.line("| (e) fleet email worker, delivery smtp to Postfix's smtp-sink (pool \(poolLabel)) | \(f(BenchWorker.median(postfixRates))) | e/b \(String(format: "%.2f", BenchWorker.median(postfixRatios))); \(sent) of \(jobs * rounds) succeeded |")
            } else {
                output.line("| (e) fleet email worker, delivery smtp to Postfix's smtp-sink | \(postfixNote) | |")
            }
            output.line()
            output.line("medians of \(rounds) rounds; b/a per round: \(ratios.map { String(format: "%.2f", $0) }.joined(separator: ", "))")
            if celery != nil { output.line("Celery: \(celeryNote)") }
            if !postfixRuns.isEmpty {
                output.line("e/b per round (SMTP to smtp-sink over the same worker's delivery \(delivery)): \(postfixRatios.map { String(format: "%.2f", $0) }.joined(separator: ", "))")
                let cpu = postfixRuns.compactMap(\.cpuSeconds)
                if cpu.count == postfixRuns.count {
                    output.line(String(format: "fleet worker CPU per email job delivered over SMTP: %.0f µs (the whole process, start-up included)",
                                       cpu.reduce(0, +) / Double(jobs * rounds) * 1e6))
                }
            }
            let cpu = fleetRuns.compactMap(\.cpuSeconds)
            let workerMicros = cpu.count == fleetRuns.count ? cpu.reduce(0, +) / Double(jobs * rounds) * 1e6 : nil
            if let workerMicros {
                output.line(String(format: "fleet worker CPU per email job: %.0f µs (the whole process, start-up included)", workerMicros))
            }
            // The peer's worker and its pool processes, start-up and stop included; run.py (enqueue, results) not.
            let celeryMicros = celeryCPU.map { $0 / Double(jobs) * 1e6 }
            if let celeryMicros {
                output.line(String(format: "Celery worker CPU per email job: %.0f µs (its worker's process tree: the main process and its pool, start-up included)", celeryMicros)
                            + (workerMicros.map { String(format: "; Celery / fleet worker CPU per job: %.1f", celeryMicros / $0) } ?? ""))
            } else if celery != nil {
                output.line("Celery worker CPU per email job: not measured (no process of the peer's worker was read)")
            }
            output.line(String(format: "email handler in process (no broker, no job ledger, one task), delivery result: %.0f µs CPU per job", inProcess))
            output.line()
            let runs = [("a", "(a) raw pipe"), ("a2", "(a2) raw pipe, padded results"), ("b0", "(b0) fleet noop worker, padded results"),
                        ("b1", "(b1) fleet noop worker, padded, burning CPU"),
                        ("b", "(b) fleet email worker")] + (postfixRuns.isEmpty ? [] : [("e", "(e) fleet email worker, SMTP to smtp-sink (sink's CPU not counted)")])
            for line in budget.report(runs: runs.map { (key: $0.0, label: $0.1) }, reference: "a", measured: "b", baseline: "b0", ratio: 0.7,
                                      peerRate: celery, peerFactor: 10) {
                output.line(line)
            }
            output.line()
            output.line("worker peak RSS at concurrency \(concurrency): \(rss.map { String(format: "%.1f MB", Double($0) / 1024) } ?? "unknown")")
            output.line("targets: b/a >= 0.70: \(ratio >= 0.7 ? "met" : "NOT met"); "
                        + "b/c >= 10: \(celery.map { fleetMedian / $0 >= 10 ? "met" : "NOT met" } ?? "not measured"); "
                        + "RSS < 100 MB: \(rss.map { $0 < 100 * 1024 ? "met" : "NOT met" } ?? "not measured")")

            let fleetRates = fleetRuns.map(\.rate)
            var figures = JSONObject()
            figures["jobs"] = .count(jobs)
            figures["rounds"] = .count(rounds)
            figures["raw_jobs_per_s"] = .number(rawMedian, places: 1)
            figures["raw_padded_jobs_per_s"] = .number(sizedMedian, places: 1)
            figures["result_bytes"] = .number(resultBytes, places: 0)
            figures["noop_jobs_per_s"] = .number(noopMedian, places: 1)
            figures["noop_burn_jobs_per_s"] = .number(BenchWorker.median(burnRates), places: 1)
            figures["noop_burn_cpu_us_per_job"] = .number(BenchWorker.median(burnMicros), places: 1)
            figures["email_jobs_per_s"] = .number(fleetMedian, places: 1)
            figures["celery_jobs_per_s"] = .number(celery, places: 1)
            figures["smtp_jobs_per_s"] = .number(smtp?.rate, places: 1)
            figures["smtp_delivered"] = .count(smtp?.delivered)
            figures["smtp_sink_jobs_per_s"] = .number(postfixRuns.isEmpty ? nil : BenchWorker.median(postfixRates), places: 1)
            figures["smtp_sink_vs_result_ratio"] = .number(postfixRuns.isEmpty ? nil : BenchWorker.median(postfixRatios), places: 3)
            figures["smtp_sink_ratios"] = .array(postfixRatios.map { .number($0, places: 3) })
            figures["smtp_sink_succeeded"] = .count(postfixRuns.isEmpty ? nil : postfixRuns.map(\.succeeded).reduce(0, +))
            figures["smtp_sink_worker_cpu_us_per_job"] = .number(
                postfixRuns.isEmpty || postfixRuns.contains { $0.cpuSeconds == nil } ? nil
                    : postfixRuns.compactMap(\.cpuSeconds).reduce(0, +) / Double(jobs * rounds) * 1e6, places: 1)
            figures["ratio_median"] = .number(ratio, places: 3)
            figures["ratios"] = .array(ratios.map { .number($0, places: 3) })
            figures["raw_padded_vs_raw_ratio"] = .number(median(sizedRates, over: rawRates), places: 3)
            figures["noop_vs_raw_ratio"] = .number(median(noopRates, over: rawRates), places: 3)
            figures["noop_burn_vs_raw_ratio"] = .number(median(burnRates, over: rawRates), places: 3)
            figures["email_vs_noop_ratio"] = .number(median(fleetRates, over: noopRates), places: 3)
            figures["email_vs_noop_burn_ratio"] = .number(median(fleetRates, over: burnRates), places: 3)
            figures["email_vs_celery_ratio"] = .number(celery.map { fleetMedian / $0 }, places: 3)
            figures["email_worker_cpu_us_per_job"] = .number(workerMicros, places: 1)
            figures["celery_worker_cpu_us_per_job"] = .number(celeryMicros, places: 1)
            figures["email_vs_celery_cpu_ratio"] = .number(celeryMicros.flatMap { c in workerMicros.map { c / $0 } }, places: 3)
            figures["email_handler_cpu_us_per_job"] = .number(inProcess, places: 1)
            figures["worker_peak_rss_mb"] = .number(rss.map { Double($0) / 1024 }, places: 1)
            figures["cpu_budget"] = .object(budget.figures(runs: runs.map(\.0)))
            output.figures(figures)
        } catch {
            worker?.stop()
            sink?.stop()
            await results.stop()
            await connection.delete(declarations)
            throw error
        }
    }

    /// The email worker's settings for the bench: the repository's templates, a throwaway secret.
    private func workerEnvironment() -> [String: String] {
        ["FLEET_EMAIL_TEMPLATES": repository + "/Templates", "FLEET_EMAIL_SECRET": "fleet-bench-secret",
         "FLEET_EMAIL_DELIVERY": "result"]
    }

    /// Publishes `jobs` to the raw pipe's `queue`, runs `pipe` on them and times first to last result.
    private func measureRaw(_ connection: AMQPConnection, _ pipe: RawPipe, results: ResultTap, jobs: [(id: String, body: [UInt8])],
                            queue: String, budget: inout CPUBudget, as key: String) async throws -> ResultTap.Run {
        try await BenchJobs.publish(connection, jobs, exchange: "", routingKey: queue, kind: "email")
        results.reset(expecting: jobs.count)
        let meter = budget.start()
        try await pipe.run(count: jobs.count)
        let run = try await results.wait()
        budget.record(meter.finish(jobs: jobs.count), as: key)
        return run
    }

    /// Publishes `jobs`, starts a fresh worker on them and times first to last result; the worker is stopped after.
    private func measureWorker(_ connection: AMQPConnection, topology: FleetTopology, results: ResultTap,
                               jobs: [(id: String, body: [UInt8])], kind: String = "email", prefix: String, store: String,
                               environment: [String: String], worker: inout BenchWorker?,
                               budget: inout CPUBudget, as key: String) async throws -> WorkerRun {
        try await BenchJobs.publish(connection, jobs, exchange: topology.jobsExchange, routingKey: kind, kind: kind)
        results.reset(expecting: jobs.count)
        let meter = budget.start()
        let started = try BenchWorker.start(kinds: kind, concurrency: concurrency, prefetch: prefetch, prefix: prefix,
                                            store: store, amqpURL: amqpURL, environment: environment)
        worker = started
        let run = try await results.wait(while: { started.isRunning }, what: "the bench's \(kind) worker")
        let cpu = started.cpuSeconds
        budget.record(meter.finish(jobs: jobs.count, workerSeconds: cpu), as: key)
        let outcome = WorkerRun(rate: run.rate, peakRSSKiB: started.peakRSSKiB, cpuSeconds: cpu, resultBytes: run.meanBytes,
                                succeeded: run.succeeded)
        started.stop()
        worker = nil
        return outcome
    }

    /// What the Celery peer's run gave.
    struct PeerRun {
        /// Jobs/s, first to last result (nil when it did not run or failed).
        var rate: Double?
        /// Its own last line, or why it is missing.
        var note: String
        /// CPU seconds of the processes run.py started (its Celery worker and the worker's pool), when read.
        var workerCPUSeconds: Double?
    }

    /// Runs `peers/celery/run.py` against this broker: its jobs/s, a note, and its worker's CPU.
    private func runCelery(python: String, profiles: String, jobsFile: String, dbPath: String) -> PeerRun {
        let vhost = amqp.virtualHost == "/" ? "/" : (amqp.virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let url = "amqp://\(amqp.user):\(amqp.password)@\(amqp.host):\(amqp.port)/\(vhost)"
        guard let outcome = BenchSubprocess.run(python, [shared + "/peers/celery/run.py", profiles, jobsFile, String(jobs)],
                                                environment: ["PEER_AMQP_URL": url, "PEER_DB": dbPath], descendantsCPU: true) else {
            return PeerRun(rate: nil, note: "NOT AVAILABLE (cannot run \(python))")
        }
        guard outcome.status == 0,
              let range = outcome.output.range(of: #"[0-9][0-9.]* jobs/s"#, options: .regularExpression),
              let rate = Double(outcome.output[range].split(separator: " ")[0]) else {
            return PeerRun(rate: nil, note: "FAILED (exit \(outcome.status)): \(outcome.lastLine)")
        }
        return PeerRun(rate: rate, note: outcome.lastLine, workerCPUSeconds: outcome.descendantsCPUSeconds)
    }

    /// `count` noop jobs with ids `TAG-N` whose results carry `filler` bytes and which burn `cpuMicros` of CPU each.
    static func noopJobs(_ count: Int, tag: String, filler: Int, cpuMicros: Int = 0) -> [(id: String, body: [UInt8])] {
        var options = JSONObject(["output_bytes": .int(Int64(filler))])
        if cpuMicros > 0 { options["cpu_us"] = .int(Int64(cpuMicros)) }
        return (0..<count).map { i in
            let id = "\(tag)-\(i)"
            let job = JSONObject(["id": .string(id), "kind": .string("noop"), "data": .object(JSONObject(["noop": .object(options)]))])
            return (id, JSONValue.object(job).serialized())
        }
    }

    /// The workload's job envelopes, in file order.
    static func readJobs(_ path: String) throws -> [JSONObject] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("make_data.py wrote no \(path)", code: .unavailable) }
        var jobs: [JSONObject] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.isEmpty {
            guard case .object(let job)? = try? JSONValue(parsing: line) else {
                throw BenchError("\(path) line \(n + 1): not a JSON object", code: .badData)
            }
            jobs.append(job)
        }
        guard !jobs.isEmpty else { throw BenchError("\(path) holds no jobs", code: .badData) }
        return jobs
    }

    /// The first `count` jobs (cycling) with ids made unique to one run (`TAG-<id>`), as bodies.
    static func tagged(_ jobs: [JSONObject], count: Int, tag: String) -> [(id: String, body: [UInt8])] {
        (0..<count).map { i in
            var job = jobs[i % jobs.count]
            let id = "\(tag)-\(job["id"]?.stringValue ?? String(i))"
            job["id"] = .string(id)
            return (id, JSONValue.object(job).serialized())
        }
    }
}
