import AMQPClient
import ArgumentParser
import CRMWorker
import ContentWorker
import EmailWorker
import FleetAMQP
import FleetCore
import FleetPostgres
import FleetRuntime
import Foundation
import Logging
import Metrics
import Prometheus
import ProfileStore
import PushWorker
import ServiceLifecycle
import Hummingbird
import FleetServe

/// `fleet worker`: consumes the queues of some kinds and runs their jobs until SIGTERM/SIGINT.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run jobs of the given kinds until SIGTERM or SIGINT.",
        discussion: """
            Besides these options the worker reads FLEET_STORE, FLEET_PREFIX, FLEET_QUEUE_TYPE, FLEET_DELIVERY_LIMIT, \
            FLEET_TEMPLATES and the config file's keys, and each kind its own settings. Kind email: \
            \(EmailSettings.settings.compactMap(\.environment).joined(separator: ", ")); FLEET_EMAIL_SECRET is \
            required (a worker with kind email refuses to start without it). Kind push: \
            \(PushSettings.settings.compactMap(\.environment).joined(separator: ", ")). Both: FLEET_FREQUENCY_CAP_ALL. Kind content: \
            \(ContentSettings.settings.compactMap(\.environment).joined(separator: ", ")). 'fleet settings' lists every setting \
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

    @Option(name: .customLong("ledger-retention"), help: "How long finished jobs and effect records stay in the ledger: 7d, 36h, 90m, or 0 to keep them for ever (env FLEET_LEDGER_RETENTION; default 7d).")
    var ledgerRetention: String?

    @Option(help: "The queue: amqp (RabbitMQ, the default) or memory (in process, no broker: runs the jobs of --jobs, prints each result as a JSON line, ends when every job has a final result).")
    var driver: String = "amqp"

    @Option(help: "With --driver memory: an NDJSON file of jobs ('-' for standard input).")
    var jobs: String?

    /// The job kinds this build can run.
    static let available: [String: @Sendable () -> any JobHandler] = [
        "noop": { NoopHandler() },
    ]

    /// The job kinds that work on the store file (`--store` / `FLEET_STORE`, shared with the ledger).
    /// The job kinds that work on the profile store (`--store` / `FLEET_STORE`, shared with the ledger); the
    /// process's handlers share one ``ProfileStore``.
    static let storeBacked: [String: @Sendable (_ store: ProfileStore, _ templates: String) throws -> any JobHandler] = [
        "crm": { store, _ in CRMHandler(store: store) },
        "email": { store, templates in
            EmailHandler(store: store, settings: try EmailSettings.fromEnvironment(templatesFallback: templates))
        },
        "content": { store, templates in
            ContentHandler(store: store, settings: try ContentSettings.fromEnvironment(templatesFallback: templates))
        },
        "push": { store, templates in
            try PushHandler(store: store, settings: try PushSettings.fromEnvironment(templatesFallback: templates))
        },
    ]

    static var kindNames: [String] { (Array(available.keys) + Array(storeBacked.keys)).sorted() }

    func validate() throws {
        if let concurrency, !(1...10_000).contains(concurrency) { throw ValidationError("--concurrency must be between 1 and 10000") }
        if let prefetch, !(1...65_535).contains(prefetch) { throw ValidationError("--prefetch must be between 1 and 65535") }
        if let timeoutSeconds, timeoutSeconds < 1 { throw ValidationError("--timeout must be at least 1 second") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
        if let graceSeconds, graceSeconds < 0 { throw ValidationError("--grace must not be negative") }
        guard ["amqp", "memory"].contains(driver) else { throw ValidationError("--driver must be amqp or memory") }
        if driver == "memory" && jobs == nil { throw ValidationError("--driver memory needs --jobs FILE (or - for standard input)") }
        if driver != "memory" && jobs != nil { throw ValidationError("--jobs goes with --driver memory") }
    }

    /// `7d`, `36h`, `90m`, `3600s` or a number of days; `0`: never. Nil for a bad value.
    static func retention(_ text: String) -> Duration?? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = t.last else { return nil }
        let scale: Double
        var number = String(t)
        switch unit {
        case "d": scale = 86_400; number.removeLast()
        case "h": scale = 3600; number.removeLast()
        case "m": scale = 60; number.removeLast()
        case "s": scale = 1; number.removeLast()
        default: scale = 86_400
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        return .some(value == 0 ? nil : .seconds(value * scale))
    }

    /// Reads the NDJSON jobs of `--jobs` into the memory driver; returns their ids. A line without a valid kind is
    /// put on the first kind's queue (the worker dead-letters it, as it would a malformed message from a broker); a
    /// job of a kind this worker does not run is reported and left out.
    private func pushJobs(into memory: MemoryQueueDriver, kinds: [String]) throws -> [String] {
        let data: Data
        if jobs == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let path = jobs, let contents = FileManager.default.contents(atPath: path) else {
                throw CLIError("cannot read \(jobs ?? "")", exitCode: CLIError.notFound)
            }
            data = contents
        }
        var ids: [String] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) {
            let body = Array(line)
            let parsed = try? JSONValue(parsing: body)
            let id = parsed?["id"]?.stringValue ?? "line-\(n + 1)"
            var kind = parsed?["kind"]?.stringValue ?? kinds[0]
            if !JobEnvelope.isValidKind(kind) { kind = kinds[0] }
            guard kinds.contains(kind) else {
                FileHandle.standardError.write(Data("fleet: line \(n + 1): kind '\(kind)' is not among --kinds; left out\n".utf8))
                continue
            }
            memory.push(body, kind: kind, messageID: id)
            ids.append(id)
        }
        return ids
    }

    func run() async throws {
        let settings = try global.settings()
        let logger = try global.bootstrapLogging(defaultLevel: "info")
        // The metrics system first: counters made before the bootstrap (the runtime's, the handlers') would count
        // into nothing.
        let port = try metricsPort ?? global.env("FLEET_METRICS_PORT").flatMap(Int.init) ?? settings.int("metrics_port")
        var registry: PrometheusCollectorRegistry?
        if let port {
            guard (0...65_535).contains(port) else { throw CLIError.usage("the metrics port must be from 0 to 65535") }
            let r = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: r))
            registry = r
        }
        var handlers: [any JobHandler] = []
        var store: ProfileStore?
        // FLEET_STORE=postgres://...: the job ledger and effects journal on PostgreSQL, shared across hosts, and the
        // profile store's tables that kinds crm and email use. The push and content kinds' (devices' hygiene, models,
        // the LLM cache) are not on PostgreSQL yet: they are refused there.
        let storeText = try global.storeLocation()
        var postgres: PostgresJobLedger?
        var pgStore: PostgresProfileStore?
        if PostgresURL.isPostgres(storeText) {
            let url: PostgresURL
            do { url = try PostgresURL(storeText) } catch { throw CLIError.usage("FLEET_STORE: \(error)") }
            try await GlobalOptions.checkPostgres(url)
            postgres = PostgresJobLedger(url: url, logger: logger)
        }
        for kind in kinds.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !kind.isEmpty {
            if let make = Self.storeBacked[kind] {
                if let postgres {
                    // One pool per process (the ledger service runs it), one store shared by the handlers.
                    if pgStore == nil { pgStore = PostgresProfileStore(client: postgres.client, logger: logger) }
                    switch kind {
                    case "crm":
                        handlers.append(CRMHandler(store: pgStore!))
                    case "email":
                        do {
                            handlers.append(EmailHandler(store: pgStore!, settings: try EmailSettings.fromEnvironment(
                                templatesFallback: try global.templatesDirectory(nil))))
                        } catch let error as EmailError {
                            throw CLIError.usage(error.message)
                        }
                    default:
                        throw CLIError.usage("kind \(kind) needs the profile store's SQLite side so far: a PostgreSQL FLEET_STORE serves kinds crm, email and noop")
                    }
                    continue
                }
                if store == nil { store = ProfileStore(path: try global.storePath(), logger: logger) }
                do {
                    handlers.append(try make(store!, try global.templatesDirectory(nil)))
                } catch let error as EmailError {
                    throw CLIError.usage(error.message)  // a setting is missing or wrong: one line, exit 64
                } catch let error as PushError {
                    throw CLIError.usage(error.message)
                } catch let error as ContentError {
                    throw CLIError.usage(error.message)
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
        var configuration = WorkerConfiguration(ledgerPath: postgres == nil ? try global.storePath() : "")
        configuration.defaultKindSettings = base
        configuration.kindSettings = try settings.kindSettings(base: base)
        configuration.concurrency = try concurrency ?? settings.int("concurrency") ?? 64
        configuration.prefetch = try prefetch ?? settings.int("prefetch") ?? 256
        configuration.shutdownGracePeriod = .seconds(try graceSeconds ?? settings.int("grace_seconds") ?? 30)
        if let text = try ledgerRetention ?? global.env("FLEET_LEDGER_RETENTION") ?? settings.string("ledger_retention") {
            guard let retention = Self.retention(text) else {
                throw CLIError.usage("the ledger retention must be like 7d, 36h, 90m or 0 (--ledger-retention, FLEET_LEDGER_RETENTION)")
            }
            configuration.ledgerRetention = retention
        }
        defer { store?.close() }

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let postgres {
            // The pool runs first (and stops last); the schema is migrated before any job.
            services.append(.init(service: postgres))
        }
        let readiness: @Sendable () -> Bool
        if driver == "memory" {
            let memory = MemoryQueueDriver()
            let pushed = try pushJobs(into: memory, kinds: handlers.map(\.kind))
            let worker = WorkerService(configuration: configuration, driver: memory, handlers: handlers, logger: logger, ledger: postgres)
            readiness = { worker.isReady }
            services.append(.init(service: memory))
            services.append(.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
            services.append(.init(service: MemoryRunPrinter(driver: memory, jobIDs: pushed),
                                  successTerminationBehavior: .gracefullyShutdownGroup))
        } else {
            let amqp = try global.amqpConfiguration(name: "fleet worker \(configuration.workerID) [\(kinds)]")
            let driver = AMQPQueueDriver(amqp: amqp, topology: try global.topology(), workerID: configuration.workerID, logger: logger)
            let worker = WorkerService(configuration: configuration, driver: driver, handlers: handlers, logger: logger, ledger: postgres)
            readiness = { worker.isReady }
            services.append(.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                                  failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let port, let registry {
            let router = Router()
            HealthRoutes.register(on: router, metrics: { var out: [UInt8] = []; registry.emit(into: &out); return out }, ready: readiness)
            services.insert(.init(service: Application(
                router: router, configuration: .init(address: .hostname("0.0.0.0", port: port), serverName: "fleet"),
                onServerRunning: { channel in
                    logger.info("metrics server listening", metadata: ["metrics.address": "0.0.0.0:\(channel.localAddress?.port ?? port)"])
                }, logger: logger)), at: 0)
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        // The push services' HTTP/2 connections close after the jobs (also when the group fails).
        let pushHandlers = handlers.compactMap { $0 as? PushHandler }
        let contentHandlers = handlers.compactMap { $0 as? ContentHandler }
        do {
            try await group.run()
            for h in pushHandlers { await h.shutdown() }
            for h in contentHandlers { await h.shutdown() }
        } catch let error as AMQPError where error.code == .preconditionFailed {
            for h in pushHandlers { await h.shutdown() }
            for h in contentHandlers { await h.shutdown() }
            // The broker holds the prefix's queues with another type or other arguments (FLEET_QUEUE_TYPE differs,
            // or an older fleet declared them): say how to move, as `topology apply` does.
            throw CLIError(TopologyCommand.Apply.migration(error.message, topology: try global.topology()), exitCode: 1)
        } catch {
            for h in pushHandlers { await h.shutdown() }
            for h in contentHandlers { await h.shutdown() }
            throw CLIError("worker stopped: \(error)")
        }
    }
}
