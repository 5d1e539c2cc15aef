import AMQPClient
import Dispatch
import FleetCore
import FleetStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A worker process's job loop, as a swift-service-lifecycle `Service`.
///
/// It connects (retrying until the broker is there), declares the topology, opens the ledger, consumes
/// the queues of its kinds and runs up to `concurrency` jobs at once. On graceful shutdown (SIGTERM,
/// SIGINT through `ServiceGroup`) it stops consuming, lets in-flight jobs finish within the grace period
/// (then cancels them; the broker redelivers those), and closes the connection and the ledger.
public final class WorkerService: Service, Sendable {
    public let configuration: WorkerConfiguration
    public let amqp: AMQPConfiguration
    private let handlers: [String: any JobHandler]
    private let logger: Logger
    private let ready = Atomic<Bool>(false)
    private let shuttingDown = StopFlag()

    /// True while connected and consuming (for readiness probes).
    public var isReady: Bool { ready.load(ordering: .relaxed) }

    /// - Parameters:
    ///   - handlers: one per kind to run; the worker consumes exactly their kinds' queues.
    public init(configuration: WorkerConfiguration, amqp: AMQPConfiguration, handlers: [any JobHandler],
                logger: Logger = Logger(label: "fleet.worker")) {
        self.configuration = configuration
        self.amqp = amqp
        var byKind: [String: any JobHandler] = [:]
        for handler in handlers { byKind[handler.kind] = handler }
        self.handlers = byKind
        self.logger = logger
    }

    public func run() async throws {
        let kinds = handlers.keys.sorted()
        var topology = configuration.topology
        for kind in kinds where !topology.kinds.contains(kind) { topology.kinds.append(kind) }
        // Opening (and migrating) the SQLite file blocks: do it off the cooperative pool.
        let path = configuration.ledgerPath
        let logger = self.logger
        let ledger = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<JobLedger, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try JobLedger(path: path, logger: logger) })
            }
        }
        defer { ledger.close() }
        // SIGTERM/SIGINT while the broker cannot be reached ends the attempts: nothing ran, nothing to drain.
        let connection: AMQPConnection
        do {
            connection = try await cancelWhenGracefulShutdown {
                try await AMQPConnection.connect(self.amqp, retryUntilConnected: true, logger: logger)
            }
        } catch where Task.isShuttingDownGracefully || Task.isCancelled {
            logger.info("worker stopped before it reached the broker")
            return
        }
        do {
            try await connection.declare(topology.declarations)
            var kindsByQueue: [String: String] = [:]
            for kind in kinds { kindsByQueue[topology.queue(forKind: kind)] = kind }
            let consumer = try await connection.consume(
                queues: kinds.map(topology.queue(forKind:)), prefetch: UInt16(clamping: configuration.prefetch))
            logger.info(
                "worker started",
                metadata: ["worker.kinds": "\(kinds.joined(separator: ","))", "worker.concurrency": "\(configuration.concurrency)",
                           "worker.prefetch": "\(configuration.prefetch)", "worker.id": "\(configuration.workerID)"])
            var config = configuration
            config.topology = topology
            let processor = JobProcessor(
                connection: connection, ledger: ledger, configuration: config, handlers: handlers,
                kindsByQueue: kindsByQueue, logger: logger, metrics: WorkerMetrics(kinds: kinds), watchdog: JobWatchdog(),
                handlerSlots: ConcurrencyLimiter(limit: configuration.concurrency), stopping: shuttingDown)
            ready.store(true, ordering: .relaxed)
            let stoppedByShutdown = try await runUntilShutdown(connection: connection, consumer: consumer, processor: processor)
            ready.store(false, ordering: .relaxed)
            await connection.close()
            if !stoppedByShutdown {
                throw WorkerError(code: "consumer_cancelled", message: "the broker cancelled the consumer (was a queue deleted?)")
            }
            logger.info("worker stopped")
        } catch {
            await connection.close()
            throw error
        }
    }

    private enum Finished { case shutdownRequested, jobsDone, background }

    /// Runs jobs until the consumer ends; returns true when that was because of a graceful shutdown.
    private func runUntilShutdown(connection: AMQPConnection, consumer: AMQPConsumer, processor: JobProcessor) async throws -> Bool {
        try await withThrowingTaskGroup(of: Finished.self) { group in
            group.addTask {
                // Readiness follows the connection: not ready while reconnecting.
                for await event in connection.events {
                    switch event {
                    case .connected: self.ready.store(true, ordering: .relaxed)
                    case .disconnected: self.ready.store(false, ordering: .relaxed)
                    default: break
                    }
                }
                return .background
            }
            group.addTask {
                await processor.watchdog.run()
                return .background
            }
            group.addTask {
                try await gracefulShutdown()
                // Set before cancelling: the job loop may see its stream end before this task resumes.
                self.shuttingDown.set()
                await consumer.cancel()
                return .shutdownRequested
            }
            group.addTask {
                await self.runJobs(consumer: consumer, processor: processor)
                return .jobsDone
            }
            while let finished = try await group.next() {
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

    private func runJobs(consumer: AMQPConsumer, processor: JobProcessor) async {
        // One task per delivery: the broker's prefetch bounds how many are in flight (per queue); the
        // processor's handler slots bound how many handlers run at once (the concurrency).
        let inFlight = InFlightCounter()
        let grace = configuration.shutdownGracePeriod
        let logger = self.logger
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for await batch in consumer.batches {
                    // One ledger query for the batch instead of one per job (each job still checks
                    // its own id when the message id is not the job id).
                    let known = await processor.ledgerEntries(for: batch)
                    inFlight.add(batch.count)
                    for delivery in batch {
                        group.addTask {
                            await processor.process(delivery, known: known)
                            inFlight.add(-1)
                        }
                    }
                }
                // The consumer ended: what is in flight gets the grace period, then is cancelled (a
                // thrown error cancels the group's other tasks; their jobs are redelivered by the broker).
                group.addTask {
                    let deadline = ContinuousClock.now + grace
                    while inFlight.value > 0 {
                        if ContinuousClock.now >= deadline {
                            logger.warning("grace period over; cancelling jobs in flight (the broker will redeliver them)",
                                           metadata: ["worker.in_flight": "\(inFlight.value)"])
                            throw GracePeriodOver()
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
        } catch {
            // GracePeriodOver, or cancellation: either way the jobs left were not acked.
        }
    }
}

/// A one-way flag: set once, read from any task.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { flag.load(ordering: .sequentiallyConsistent) }
}

/// The number of jobs in flight.
final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ n: Int) { count.add(n, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// A worker-level failure (not a job's).
public struct WorkerError: Error, CustomStringConvertible, Sendable {
    public var code: String
    public var message: String
    public var description: String { "\(code): \(message)" }
}
