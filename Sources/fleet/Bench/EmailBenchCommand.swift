import ArgumentParser
import FleetBench

/// `fleet bench email`: email jobs/s end to end (profile read, render, MIME, result, ack) through a real worker,
/// next to the raw broker pipe and the Celery peer on the same broker in one run; peak RSS; SMTP throughput
/// (``EmailBench``).
struct EmailBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "email",
        abstract: "Benchmark the email worker against the raw broker pipe and the Celery peer (prints figures).",
        discussion: """
            Needs the shared directory (--shared, env FLEET_SHARED, default <repo>/../shared): peers/make_data.py \
            and peers/celery/. Run it from the repository (its Templates/ and Ops/scripts/smtp_sink.py). The Celery \
            peer needs a python3 with celery and python-liquid (pip install celery python-liquid); without them \
            it is reported and skipped. Measure a release build.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "The shared directory (env FLEET_SHARED; default <repo>/../shared).")
    var shared: String?

    @Option(help: "Email jobs per run, ours, the raw pipe's and the Celery peer's (default 10000).")
    var jobs: Int = 10_000

    @Option(help: "Rounds of raw pipe then worker; the medians are reported (default 3).")
    var rounds: Int = 3

    @Option(help: "Worker concurrency (the worker's default, 64).")
    var concurrency: Int = 64

    @Option(help: "Prefetch of the raw pipe and the worker (the worker's default, 256).")
    var prefetch: Int = 256

    @Option(help: "Delivery of the measured runs: result (the MIME in the result) or outbox (.eml files) (default result).")
    var delivery: String = "result"

    @Option(name: .customLong("smtp-jobs"), help: "Email jobs delivered over SMTP to a local aiosmtpd sink, run (d) (default 2000; 0 skips (d) and (e)).")
    var smtpJobs: Int = 2000

    @Option(name: .customLong("smtp-pool"), help: "The most SMTP sessions of the worker in the SMTP runs (FLEET_EMAIL_SMTP_POOL; default: the worker's, 64).")
    var smtpPool: Int?

    @Option(name: .customLong("smtp-sink"), help: "Postfix's smtp-sink for run (e), SMTP at full speed (default /usr/sbin/smtp-sink; missing: (e) is skipped and says so).")
    var smtpSink: String = "/usr/sbin/smtp-sink"

    @Option(help: "The Python with celery and python-liquid for the peer (default: python3 on PATH).")
    var python: String = "python3"

    @Flag(name: .customLong("no-peers"), help: "Skip the Celery peer.")
    var noPeers = false

    @Flag(name: .customLong("in-process"), help: "Only time the email handler in this process, without a broker (CPU per job, delivery result; for profiling). Uses --jobs and --shared only.")
    var inProcess = false

    @Flag(help: "Print the figures as one JSON object on stdout; the report goes to stderr.")
    var json = false

    func validate() throws {
        guard jobs >= 100 else { throw ValidationError("--jobs must be at least 100") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be between 1 and 20") }
        guard (1...10_000).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 10000") }
        guard (1...65_535).contains(prefetch) else { throw ValidationError("--prefetch must be between 1 and 65535") }
        guard ["result", "outbox"].contains(delivery) else { throw ValidationError("--delivery must be result or outbox") }
        guard smtpJobs == 0 || smtpJobs >= 100 else { throw ValidationError("--smtp-jobs must be 0 or at least 100") }
        guard smtpPool.map({ (1...256).contains($0) }) ?? true else { throw ValidationError("--smtp-pool must be between 1 and 256") }
    }

    func run() async throws {
        let logger = try global.bootstrapLogging()
        let output = BenchOutput(json: json)
        let (sharedDir, repository) = try CLIError.fromBench { try EmailBench.locate(shared: shared) }
        if inProcess {
            try await CLIError.fromBench { try await EmailBench.runInProcess(shared: sharedDir, repository: repository, jobs: jobs, output: output) }
            return
        }
        let amqp = try global.amqpConfiguration(name: "fleet bench")
        let url = try global.resolvedAMQPURL()
        let celeryPython = noPeers ? nil : EmailBench.celeryPeer(python: python, output: output)
        let bench = EmailBench(
            jobs: jobs, rounds: rounds, concurrency: concurrency, prefetch: prefetch, delivery: delivery, smtpJobs: smtpJobs,
            smtpPool: smtpPool, postfixSink: smtpSink, amqpURL: url, amqp: amqp, shared: sharedDir, repository: repository, celeryPython: celeryPython,
            debugBuild: BenchCommand.isDebugBuild, output: output)
        let connection = try await global.connect(name: "fleet bench email", logger: logger)
        try await CLIError.fromBench(on: connection) { try await bench.run(connection: $0) }
    }
}
