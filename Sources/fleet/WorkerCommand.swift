import AMQPClient
import ArgumentParser
import CRMWorker
import EmailWorker
import FleetCore
import FleetRuntime
import Foundation
import Logging
import Metrics
import Prometheus
import ProfileStore
import ServiceLifecycle

/// `fleet worker`: consumes the queues of some kinds and runs their jobs until SIGTERM/SIGINT.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run jobs of the given kinds until SIGTERM or SIGINT.",
        discussion: """
            Besides these options the worker reads FLEET_STORE, FLEET_PREFIX, FLEET_QUEUE_TYPE, FLEET_DELIVERY_LIMIT, \
            FLEET_TEMPLATES and the config file's keys, and each kind its own settings. Kind email: \
            \(EmailSettings.settings.compactMap(\.environment).joined(separator: ", ")); FLEET_EMAIL_SECRET is \
            required (a worker with kind email refuses to start without it). 'fleet settings' lists every setting \
            with its default (Docs/settings.md). SIGTERM or SIGINT stops the worker in any state: connecting, \
            reconnecting or running (then the jobs in flight get --grace seconds to finish).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Comma-separated kinds to run (available: \(WorkerCommand.kindNames.joined(separator: ", "))).")
    var kinds: String = "noop"

    @Option(help: "Jobs run at once in this process (default 64).")
    var concurrency: Int?

    @Option(help: "Deliveries the broker sends ahead per queue (default 256).")
    var prefetch: Int?

    @Option(name: .customLong("timeout"), help: "Per-job timeout in seconds (default 60).")
    var timeoutSeconds: Int?

    @Option(name: .customLong("max-attempts"), help: "Attempts before a retryable failure is dead-lettered (default 5).")
    var maxAttempts: Int?

    @Option(name: .customLong("grace"), help: "Seconds in-flight jobs get to finish at shutdown (default 30).")
    var graceSeconds: Int?

    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics, /healthz and /readyz on this port (env FLEET_METRICS_PORT).")
    var metricsPort: Int?

    /// The job kinds this build can run.
    static let available: [String: @Sendable () -> any JobHandler] = [
        "noop": { NoopHandler() },
    ]

    /// The job kinds that work on the store file (`--store` / `FLEET_STORE`, shared with the ledger).
    static let storeBacked: [String: @Sendable (_ storePath: String, _ templates: String, _ logger: Logger) throws -> any JobHandler] = [
        "crm": { path, _, logger in CRMHandler(store: ProfileStore(path: path, logger: logger)) },
        "email": { path, templates, logger in
            EmailHandler(storePath: path, settings: try EmailSettings.fromEnvironment(templatesFallback: templates), logger: logger)
        },
    ]

    static var kindNames: [String] { (Array(available.keys) + Array(storeBacked.keys)).sorted() }

    func validate() throws {
        if let concurrency, !(1...10_000).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 10000") }
        if let prefetch, !(1...65_535).contains(prefetch) { throw ValidationError("--prefetch must be between 1 and 65535") }
        if let timeoutSeconds, timeoutSeconds < 1 { throw ValidationError("--timeout must be at least 1 second") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if let graceSeconds, graceSeconds < 0 { throw ValidationError("--grace must not be negative") }
    }

    func run() async throws {
        let settings = try global.settings()
        let logger = try global.bootstrapLogging(defaultLevel: "info")
        var handlers: [any JobHandler] = []
        for kind in kinds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !kind.isEmpty {
            if let make = Self.storeBacked[kind] {
                do {
                    handlers.append(try make(try global.storePath(), try global.templatesDirectory(nil), logger))
                } catch let error as EmailError {
                    throw CLIError.usage(error.message)  // a setting is missing or wrong: one line, exit 64
                }
                continue
            }
            guard let make = Self.available[kind] else {
                throw CLIError.usage("unknown kind '\(kind)'; available: \(Self.kindNames.joined(separator: ", "))")
            }
            handlers.append(make())
        }
        guard !handlers.isEmpty else { throw CLIError.usage("--kinds names no kind") }

        var base = KindSettings()
        if let t = try timeoutSeconds ?? settings.int("timeout_seconds") { base.timeout = .seconds(t) }
        if let retry = settings.values["retry"]?.objectValue {
            if let m = try settings.int("max_attempts", in: retry) { base.retry.maxAttempts = max(1, m) }
            if let b = try settings.int("base_delay_ms", in: retry) { base.retry.baseDelay = .milliseconds(b) }
            if let x = try settings.int("max_delay_ms", in: retry) { base.retry.maxDelay = .milliseconds(x) }
        }
        if let maxAttempts { base.retry.maxAttempts = maxAttempts }
        var configuration = WorkerConfiguration(ledgerPath: try global.storePath())
        configuration.topology = try global.topology()
        configuration.defaultKindSettings = base
        configuration.kindSettings = try settings.kindSettings(base: base)
        configuration.concurrency = try concurrency ?? settings.int("concurrency") ?? 64
        configuration.prefetch = try prefetch ?? settings.int("prefetch") ?? 256
        configuration.shutdownGracePeriod = .seconds(try graceSeconds ?? settings.int("grace_seconds") ?? 30)

        let amqp = try global.amqpConfiguration(name: "fleet worker \(configuration.workerID) [\(kinds)]")
        let worker = WorkerService(configuration: configuration, amqp: amqp, handlers: handlers, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let port = try metricsPort ?? global.env("FLEET_METRICS_PORT").flatMap(Int.init) ?? settings.int("metrics_port")
        if let port {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            services.append(.init(service: MetricsServer(
                host: "0.0.0.0", port: port, registry: registry, logger: logger, ready: { worker.isReady })))
        }
        services.append(.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                              failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        do {
            try await group.run()
        } catch {
            throw CLIError("worker stopped: \(error)")
        }
    }
}
