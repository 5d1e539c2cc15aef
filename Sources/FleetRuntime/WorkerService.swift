import Clocks
import Dispatch
import FleetCore
import FleetStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A worker process's job loop, as a swift-service-lifecycle `Service`, on any ``JobQueueDriver``.
///
/// It opens the ledger, starts the driver (which waits for its queue; SIGTERM/SIGINT stop that wait), runs up to
/// `concurrency` jobs at once, and prunes the ledger on a schedule. On graceful shutdown (SIGTERM, SIGINT through
/// `ServiceGroup`) it stops taking jobs, lets the ones in flight finish within the grace period (then cancels
/// them; the queue delivers them again), and closes the driver and the ledger.
public final class WorkerService<Driver: JobQueueDriver>: Service, Sendable {
    public let configuration: WorkerConfiguration
    public let driver: Driver
    private let handlers: [String: any JobHandler]
    private let logger: Logger
    private let shuttingDown = StopFlag()
    private let metrics: WorkerMetrics
    /// When the jobs in flight must have finished: set the moment the shutdown is noticed.
    private let graceDeadline = Mutex<AnyClock<Duration>.Instant?>(nil)

    /// True while the driver is connected and delivering (for readiness probes).
    public var isReady: Bool { !shuttingDown.isSet && driver.isReady }

    /// The ledger handed in, if any (see ``init(configuration:driver:handlers:logger:ledger:)``).
    let sharedLedger: (any JobLedgerStore)?

    /// - Parameters:
    ///   - handlers: one per kind to run; the worker consumes exactly their kinds' queues.
    ///   - ledger: a ledger shared with other hosts (PostgreSQL), owned and closed by the caller; nil opens the SQLite
    ///     file at `configuration.ledgerPath`.
    public init(configuration: WorkerConfiguration, driver: Driver, handlers: [any JobHandler],
                logger: Logger = Logger(label: "fleet.worker"), ledger: (any JobLedgerStore)? = nil) {
        self.sharedLedger = ledger
        self.configuration = configuration
        self.driver = driver
        var byKind: [String: any JobHandler] = [:]
        for handler in handlers { byKind[handler.kind] = handler }
        self.handlers = byKind
        self.logger = logger
        self.metrics = WorkerMetrics(kinds: Array(byKind.keys))
    }

    public func run() async throws {
        let kinds = handlers.keys.sorted()
        // Opening (and migrating) the SQLite file blocks: do it off the cooperative pool.
        let path = configuration.ledgerPath
        let logger = self.logger
        let ledger: any JobLedgerStore
        if let shared = sharedLedger {
            try await shared.prepare()
            ledger = shared
        } else {
            let opened = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JobLedger, any Error>) in
                DispatchQueue.global().async {
                    continuation.resume(with: Result { try JobLedger(path: path, logger: logger) })
                }
            }
            ledger = opened
        }
        // A ledger handed in (PostgreSQL, a Service of its own) is closed by its owner.
        defer { if sharedLedger == nil { ledger.close() } }
        // SIGTERM/SIGINT while the queue cannot be reached end the wait: nothing ran, nothing to drain.
        let batches: Driver.Batches
        do {
            batches = try await cancelWhenGracefulShutdown {
                try await self.driver.start(kinds: kinds, prefetch: self.configuration.prefetch)
            }
        } catch where Task.isShuttingDownGracefully || Task.isCancelled {
            logger.info("worker stopped before it reached the broker")
            await driver.close()
            return
        }
        logger.info(
            "worker started",
            metadata: ["worker.kinds": "\(kinds.joined(separator: ","))", "worker.concurrency": "\(configuration.concurrency)",
                       "worker.prefetch": "\(configuration.prefetch)", "worker.id": "\(configuration.workerID)"])
        let processor = JobProcessor(
            driver: driver, ledger: ledger, configuration: configuration, handlers: handlers, logger: logger,
            metrics: metrics, watchdog: JobWatchdog(clock: configuration.clock),
            handlerSlots: ConcurrencyLimiter(limit: configuration.concurrency), stopping: shuttingDown)
        let stoppedByShutdown = await runUntilShutdown(batches: batches, processor: processor, ledger: ledger)
        await driver.close()
        if !stoppedByShutdown {
            throw WorkerError(code: "consumer_cancelled", message: "the queue stopped delivering (was a queue deleted?)")
        }
        logger.info("worker stopped")
    }

    private enum Finished: Sendable { case shutdownRequested, jobsDone, background }

    /// Runs jobs until the deliveries end; returns true when that was because of a graceful shutdown.
    private func runUntilShutdown(batches: Driver.Batches, processor: JobProcessor<Driver>, ledger: any JobLedgerStore) async -> Bool {
        await withTaskGroup(of: Finished.self) { group in
            group.addTask {
                await processor.watchdog.run()
                return .background
            }
            group.addTask {
                await self.pruneOnSchedule(ledger)
                return .background
            }
            group.addTask {
                do { try await gracefulShutdown() } catch { return .background }
                // Set before stopping: the job loop may see its sequence end before this task resumes.
                self.graceDeadline.withLock { $0 = self.configuration.clock.now.advanced(by: self.configuration.shutdownGracePeriod) }
                self.shuttingDown.set()
                processor.handlerSlots.close()
                await self.driver.stopDelivering()
                return .shutdownRequested
            }
            group.addTask {
                await self.runJobs(batches: batches, processor: processor)
                return .jobsDone
            }
            while let finished = await group.next() {
                switch finished {
                case .shutdownRequested:
                    logger.info("shutting down: no new jobs; waiting for the jobs in flight",
                                metadata: ["worker.grace_s": "\(configuration.shutdownGracePeriod)"])
                case .jobsDone:
                    group.cancelAll()
                    return shuttingDown.isSet
                case .background:
                    continue
                }
            }
            return shuttingDown.isSet
        }
    }

    private struct GracePeriodOver: Error {}

    private func runJobs(batches: Driver.Batches, processor: JobProcessor<Driver>) async {
        // One task per delivery: the driver's prefetch bounds how many are in flight (per kind); the processor's
        // handler slots bound how many handlers run at once (the concurrency).
        let inFlight = InFlightCounter()
        let clock = configuration.clock
        let grace = configuration.shutdownGracePeriod
        let logger = self.logger
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for await batch in batches {
                    // One ledger query for the batch instead of one per job (each job still checks its own id when
                    // the message id is not the job id).
                    let known = await processor.ledgerEntries(for: batch)
                    inFlight.add(batch.count)
                    for delivery in batch {
                        group.addTask {
                            await processor.process(delivery, known: known)
                            inFlight.add(-1)
                        }
                    }
                }
                // The deliveries ended: what is in flight gets the grace period, then is cancelled (a thrown error
                // cancels the group's other tasks; their jobs come back from the queue).
                group.addTask {
                    let deadline = self.graceDeadline.withLock { $0 } ?? clock.now.advanced(by: grace)
                    let done = await inFlight.waitUntilZero(clock: clock, deadline: deadline)
                    if !done {
                        logger.warning("grace period over; cancelling jobs in flight (the queue delivers them again)",
                                       metadata: ["worker.in_flight": "\(inFlight.value)"])
                        throw GracePeriodOver()
                    }
                }
            }
        } catch {
            // GracePeriodOver, or cancellation: either way the jobs left were not settled.
        }
    }

    /// Prunes the ledger, the effects journal and the kinds' own tables past the retention, now and then every
    /// ``WorkerConfiguration/retentionInterval``, until cancelled.
    private func pruneOnSchedule(_ ledger: any JobLedgerStore) async {
        guard let retention = configuration.ledgerRetention else { return }
        while !Task.isCancelled {
            await pruneOnce(ledger, retention: retention)
            do { try await configuration.clock.sleep(for: configuration.retentionInterval) } catch { return }
        }
    }

    /// One retention sweep; returns the rows deleted by table.
    @discardableResult
    func pruneOnce(_ ledger: any JobLedgerStore, retention: Duration) async -> [String: Int] {
        let cutoff = configuration.now().addingTimeInterval(-retention.seconds)
        var pruned: [String: Int] = [:]
        do {
            let (jobs, effects) = try await ledger.prune(finishedBefore: cutoff)
            pruned["fleet_job_ledger"] = jobs
            pruned["fleet_effects"] = effects
        } catch {
            logger.warning("ledger retention sweep failed", metadata: ["error": "\(error)"])
        }
        for handler in handlers.values {
            do {
                for (table, count) in try await handler.prune(now: configuration.now(), retention: retention) {
                    pruned[table, default: 0] += count
                }
            } catch {
                logger.warning("retention sweep of a kind failed", metadata: ["job.kind": "\(handler.kind)", "error": "\(error)"])
            }
        }
        for (table, count) in pruned where count > 0 { metrics.pruned(table: table, rows: count) }
        if pruned.values.contains(where: { $0 > 0 }) {
            logger.info("retention sweep", metadata: ["retention.pruned": "\(pruned.filter { $0.value > 0 })"])
        }
        return pruned
    }
}

import FleetBackoff

/// A one-way flag: set once, read from any task.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
}

/// The number of jobs in flight, and a way to wait until it is zero.
final class InFlightCounter: Sendable {
    private struct State {
        var value = 0
        var waiter: CheckedContinuation<Void, Never>?
        /// The wait gave up (its task was cancelled): a waiter installed later resumes at once.
        var gaveUp = false
    }

    private let state = Mutex(State())

    func add(_ n: Int) {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.value += n
            guard s.value == 0 else { return nil }
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    var value: Int { state.withLock { $0.value } }

    /// Waits until nothing is in flight (true) or `deadline` passed on `clock` (false).
    func waitUntilZero(clock: AnyClock<Duration>, deadline: AnyClock<Duration>.Instant) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let now = self.state.withLock { s -> Bool in
                            if s.value == 0 || s.gaveUp { return true }
                            s.waiter = continuation
                            return false
                        }
                        if now { continuation.resume() }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { s -> CheckedContinuation<Void, Never>? in
                        s.gaveUp = true
                        defer { s.waiter = nil }
                        return s.waiter
                    }
                    waiter?.resume()
                }
                return self.value == 0
            }
            group.addTask {
                if clock.now < deadline { try? await clock.sleep(until: deadline) }
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }
}

/// A worker-level failure (not a job's).
public struct WorkerError: Error, CustomStringConvertible, Sendable {
    public var code: String
    public var message: String
    public var description: String { "\(code): \(message)" }
}
