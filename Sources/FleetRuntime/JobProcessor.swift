import FleetBackoff
import FleetCore
import FleetStore
import Foundation
import Logging

/// Runs one delivery through the job life cycle, on any ``JobQueueDriver``:
///
/// 1. decode and validate the envelope (malformed → dead-lettered with the reason; not recorded);
/// 2. look the job id up in the ledger (already final → its stored result is published again);
/// 3. honour `deadline` (passed → dead) and `not_before` (future → a delayed copy, no result);
/// 4. decode the kind's parameters (bad → dead with the kind's `invalid_parameters` code; not recorded) and run
///    the handler with the kind's timeout;
/// 5. final outcome → ledger (group commit) → the driver's `finish` (result stored, then ack); retryable failure
///    or deferral → delayed copy → `failed`/`deferred` result → ack; permanent failure or retries exhausted →
///    dead letter → ledger → `dead` result → ack.
///
/// Nothing is settled before what replaces it is safely stored: the driver's `finish` is the only way a
/// delivery is acknowledged, and it is called after the copies it depends on were confirmed. If anything fails
/// on the way, the delivery comes back and the ledger keeps the second run from doing the work again.
///
/// A class, not a struct: each job's task holds the processor, and a copy of a struct of references costs a
/// reference count per field.
final class JobProcessor<Driver: JobQueueDriver>: Sendable {
    typealias Delivery = JobDelivery<Driver.Handle>

    let driver: Driver
    let ledger: any JobLedgerStore
    let configuration: WorkerConfiguration
    let handlers: [String: any JobHandler]
    let logger: Logger
    let metrics: WorkerMetrics
    let watchdog: JobWatchdog
    /// Bounds the handlers running at once (the worker's concurrency).
    let handlerSlots: ConcurrencyLimiter
    /// Set at graceful shutdown: jobs still waiting for a slot go back to the queue instead of starting.
    let stopping: StopFlag

    init(driver: Driver, ledger: any JobLedgerStore, configuration: WorkerConfiguration, handlers: [String: any JobHandler],
         logger: Logger, metrics: WorkerMetrics, watchdog: JobWatchdog, handlerSlots: ConcurrencyLimiter, stopping: StopFlag) {
        self.driver = driver
        self.ledger = ledger
        self.configuration = configuration
        self.handlers = handlers
        self.logger = logger
        self.metrics = metrics
        self.watchdog = watchdog
        self.handlerSlots = handlerSlots
        self.stopping = stopping
    }

    /// The ledger's answer for a batch of deliveries, by message id (the job id of a well-formed job), or nil when
    /// the lookup failed (each job then asks on its own).
    func ledgerEntries(for batch: [Delivery]) async -> KnownEntries? {
        let ids = batch.compactMap(\.messageID)
        guard !ids.isEmpty else { return nil }
        guard let found = try? await ledger.lookup(ids) else { return nil }
        return KnownEntries(ids: Set(ids), found: found)
    }

    /// Ledger entries looked up ahead for a batch: `ids` were asked, `found` are those with an entry.
    struct KnownEntries: Sendable {
        var ids: Set<String>
        var found: [String: LedgerEntry]

        /// The answer for `id`: `.some(entry or nil)` when it was asked, nil when not.
        func answer(for id: String) -> LedgerEntry?? {
            ids.contains(id) ? .some(found[id]) : nil
        }
    }

    /// Handles a delivery completely; never throws, never crashes on input.
    ///
    /// - Parameter known: ledger entries looked up for the delivery's batch, if any.
    func process(_ delivery: Delivery, known: KnownEntries? = nil) async {
        let receivedAt = configuration.now()
        let kind = delivery.kind
        metrics.received(kind: kind)

        var job: JobEnvelope
        let parsed: JSONValue
        do {
            try JobEnvelope.checkContentType(delivery.contentType)
            parsed = try JobEnvelope.parse(delivery.body, maxBytes: configuration.maxBodyBytes)
        } catch {
            await deadLetter(delivery, job: nil, attempt: delivery.attempt, error: error, receivedAt: receivedAt)
            return
        }
        do {
            job = try JobEnvelope.decode(parsed)
        } catch {
            await deadLetter(delivery, job: nil, attempt: delivery.attempt, error: error, receivedAt: receivedAt,
                             usableID: JobEnvelope.usableID(in: parsed))
            return
        }
        job.correlationID = delivery.correlationID
        guard job.kind == kind else {
            let error = JobError.permanent(JobError.unknownKind, "kind '\(job.kind)' arrived on the queue of kind '\(kind)'")
            await deadLetter(delivery, job: nil, attempt: delivery.attempt, error: error, receivedAt: receivedAt, usableID: job.id)
            return
        }
        let log = JobLog(base: logger, id: job.id, kind: kind)

        // Idempotency: a job with a final result is never run again.
        let existing: LedgerEntry?
        do {
            if let answer = known?.answer(for: job.id) {
                existing = answer
            } else {
                existing = try await ledger.lookup(job.id)
            }
        } catch {
            log.error("ledger lookup failed; the job goes back to the queue", metadata: ["error": "\(error)"])
            await driver.requeue(delivery)
            return
        }
        if let existing, existing.status == JobStatus.dead.rawValue, delivery.isReplay {
            // `fleet dlq replay`: an operator sent a dead job back; it runs again from attempt 1.
            do {
                try await ledger.forgetDead(job.id)
            } catch {
                log.error("ledger update failed; the job goes back to the queue", metadata: ["error": "\(error)"])
                await driver.requeue(delivery)
                return
            }
            log.info("replayed dead job runs again")
        } else if let existing {
            log.debug("job already finished; re-publishing its result", metadata: ["job.status": "\(existing.status)"])
            metrics.duplicate(kind: kind)
            _ = await driver.finish(delivery, result: JobResultMessage(
                routingKey: "\(existing.kind).\(existing.status)",
                messageID: "\(existing.jobID):\(existing.attempt):\(existing.status)", body: existing.result))
            return
        }

        let attempt = delivery.attempt
        if let deadline = job.deadline, deadline < receivedAt {
            let error = JobError.permanent(JobError.deadlineExceeded, "the deadline \(Timestamp.format(deadline)) has passed")
            await deadLetter(delivery, job: job, attempt: attempt, error: error, receivedAt: receivedAt)
            return
        }
        if let notBefore = job.notBefore, notBefore > receivedAt.addingTimeInterval(0.5) {
            // Waiting is not an attempt: the copy keeps the attempt number, and no result is published.
            if await driver.delay(delivery, by: .seconds(notBefore.timeIntervalSince(receivedAt)), attempt: attempt,
                                    deferrals: delivery.deferrals) {
                _ = await driver.finish(delivery, result: nil)
            }
            return
        }

        guard let handler = handlers[kind] else {
            let error = JobError.permanent(JobError.unknownKind, "this worker has no handler for kind '\(kind)'")
            await deadLetter(delivery, job: nil, attempt: attempt, error: error, receivedAt: receivedAt, usableID: job.id)
            return
        }
        let settings = configuration.settings(forKind: kind)
        let effects = JobEffects(ledger: ledger, jobID: job.id,
                                 fresh: attempt == 1 && !delivery.redelivered && !delivery.isReplay)
        let context = JobContext(
            job: job, attempt: attempt, redelivered: delivery.redelivered, logger: logger, worker: configuration.workerID,
            effects: effects, now: configuration.now, retryStrategy: settings.retryStrategy, deferrals: delivery.deferrals)
        let startedAt = configuration.now()  // includes the wait for a handler slot
        let run = await run(handler, job, context, timeout: settings.timeout)
        // Effect completions go into the commit of a final result; any other end writes them now.
        var completions: [(key: String, result: [UInt8])] = []
        switch run {
        case .outcome(.succeeded), .outcome(.suppressed): completions = effects.takeCompletions()
        default: await effects.flushCompletions()
        }
        if case .cancelled = run {
            // Shutting down: not started, or cancelled after the grace period. Back to the queue.
            log.info("job not finished at shutdown; it goes back to the queue")
            await driver.release(delivery)
            return
        }
        var timings = ResultEnvelope.Timings(
            receivedAt: receivedAt, startedAt: startedAt, finishedAt: configuration.now(),
            queueMilliseconds: queueMilliseconds(job, delivery, receivedAt))
        metrics.ran(kind: kind, seconds: timings.finishedAt.timeIntervalSince(startedAt))
        let uncertain = effects.uncertainCount
        if uncertain > 0 {
            metrics.uncertainEffects(kind: kind, count: uncertain)
            log.warning("effects of an earlier run are uncertain; not repeated", metadata: ["job.effects_uncertain": "\(uncertain)"])
        }

        switch run {
        case .cancelled:
            return
        case .invalidParameters(let error):
            await deadLetter(delivery, job: nil, attempt: attempt, error: error, receivedAt: receivedAt, startedAt: startedAt,
                             usableID: job.id)
        case .outcome(.succeeded(let output)):
            await finish(delivery, ResultEnvelope(
                jobID: job.id, kind: kind, status: .succeeded, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: Self.noting(uncertain, in: output), correlationID: job.correlationID), logger: log,
                effectsDone: completions)
        case .outcome(.suppressed(let reason, let output)):
            var out = output.objectValue ?? JSONObject()
            if output != .null && output.objectValue == nil { out["value"] = output }
            out["reason"] = .string(reason)
            await finish(delivery, ResultEnvelope(
                jobID: job.id, kind: kind, status: .suppressed, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: Self.noting(uncertain, in: .object(out)), correlationID: job.correlationID), logger: log,
                effectsDone: completions)
        case .outcome(.deferred(let until, let reason)):
            let wait = max(1, until.timeIntervalSince(configuration.now()))
            // A deferral is not a failure: the copy counts it, and the retry limit leaves it out.
            guard await driver.delay(delivery, by: .seconds(wait), attempt: attempt + 1, deferrals: delivery.deferrals + 1) else { return }
            timings.finishedAt = configuration.now()
            let envelope = ResultEnvelope(
                jobID: job.id, kind: kind, status: .deferred, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: ["reason": .string(reason)], retryAt: until, correlationID: job.correlationID)
            metrics.finished(kind: kind, status: .deferred)
            _ = await driver.finish(delivery, result: JobResultMessage(envelope))
        case .failure(let error):
            let strategy = settings.retryStrategy
            // Runs that ended `deferred` do not count toward the retry limit.
            let failures = max(1, attempt - delivery.deferrals)
            if strategy.shouldRetry(attempt: failures, error: error) {
                let wait = strategy.delay(afterAttempt: failures, error: error)
                log.info("job failed; retrying", metadata: ["error.code": "\(error.code)", "retry.in_s": "\(wait)"])
                guard await driver.delay(delivery, by: wait, attempt: attempt + 1, deferrals: delivery.deferrals) else { return }
                let envelope = ResultEnvelope(
                    jobID: job.id, kind: kind, status: .failed, attempt: attempt, worker: configuration.workerID,
                    timings: timings, output: error.output, error: error,
                    retryAt: configuration.now().addingTimeInterval(wait.seconds), correlationID: job.correlationID)
                metrics.finished(kind: kind, status: .failed)
                _ = await driver.finish(delivery, result: JobResultMessage(envelope))
            } else {
                var final = error
                if error.retryable {
                    final = JobError(
                        code: JobError.retriesExhausted, message: "gave up after \(failures) attempts; last error \(error.code): \(error.message)",
                        retryable: false, output: error.output)
                }
                await deadLetter(delivery, job: job, attempt: attempt, error: final, receivedAt: receivedAt, startedAt: startedAt)
            }
        }
    }

    /// `output` with `effect_uncertain: count` added when effects of an earlier run were uncertain.
    static func noting(_ uncertain: Int, in output: JSONValue) -> JSONValue {
        guard uncertain > 0 else { return output }
        var o = output.objectValue ?? JSONObject()
        if output != .null && output.objectValue == nil { o["value"] = output }
        o["effect_uncertain"] = .int(Int64(uncertain))
        return .object(o)
    }

    // MARK: - Running the handler

    /// How the handler's run ended; `.cancelled` when the worker is shutting down (not started, or cancelled).
    private func run(_ handler: any JobHandler, _ job: JobEnvelope, _ context: JobContext, timeout: Duration) async -> HandlerRun {
        guard let (result, timedOut) = await handlerSlots.withSlot({ () async -> (HandlerRun?, timedOut: Bool) in
            if stopping.isSet { return (.cancelled, false) }
            return await watchdog.withDeadline(timeout) { await handler.run(job, context: context) }
        }) else { return .cancelled }
        if timedOut { return .failure(.retryable(JobError.timeout, "the job ran longer than \(timeout)")) }
        if Task.isCancelled { return .cancelled }
        if case .failure(let error)? = result, error.code == JobError.cancelled { return .cancelled }
        return result ?? .cancelled
    }

    // MARK: - Outcomes

    /// Final result: ledger first, then the driver's finish (result stored, then ack).
    private func finish(_ delivery: Delivery, _ envelope: ResultEnvelope, logger: JobLog,
                        effectsDone: [(key: String, result: [UInt8])] = []) async {
        let body = envelope.encoded()
        let stored: LedgerEntry
        do {
            stored = try await ledger.record(LedgerEntry(
                jobID: envelope.jobID, kind: envelope.kind, status: envelope.status.rawValue,
                attempt: envelope.attempt, result: body, finishedAt: envelope.timings.finishedAt), effectsDone: effectsDone)
        } catch {
            logger.error("ledger write failed; the job goes back to the queue", metadata: ["error": "\(error)"])
            // The effects did happen: record them on their own (best effort), so that the next run skips them
            // rather than finding them uncertain.
            for effect in effectsDone {
                try? await ledger.recordEffectDone(jobID: envelope.jobID, key: effect.key, result: effect.result)
            }
            await driver.requeue(delivery)
            return
        }
        metrics.finished(kind: envelope.kind, status: envelope.status)
        if stored.result != body {
            // Another worker finished the same job first: its result is the job's one final result.
            logger.info("job was finished by another worker; publishing that result")
            _ = await driver.finish(delivery, result: JobResultMessage(
                routingKey: "\(stored.kind).\(stored.status)", messageID: "\(stored.jobID):\(stored.attempt):\(stored.status)",
                body: stored.result))
            return
        }
        _ = await driver.finish(delivery, result: JobResultMessage(envelope, body: body))
    }

    /// Dead-letters a job: the copy with the reason goes to the dead letters, the `dead` result is recorded (when
    /// the job decoded and ran or reached its deadline) and published, then the delivery is settled.
    ///
    /// - Parameter usableID: the body's id when the job was refused before it ran but its id is usable (the
    ///   result's `job_id`); without a job or such an id, the message id is the result's `job_id`. Only `job`
    ///   is recorded in the ledger, so that a corrected job may reuse the id of a refused one.
    private func deadLetter(_ delivery: Delivery, job: JobEnvelope?, attempt: Int, error: JobError,
                            receivedAt: Date, startedAt: Date? = nil, usableID: String? = nil) async {
        let kind = delivery.kind
        let log = JobLog(base: logger, id: job?.id ?? usableID, kind: kind)
        log.warning("job dead-lettered", metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        metrics.deadLettered(kind: kind, code: error.code)
        guard await driver.deadLetter(delivery, error: error, attempt: attempt) else { return }

        let now = configuration.now()
        let envelope = ResultEnvelope(
            jobID: job?.id ?? usableID ?? delivery.messageID ?? "", kind: kind, status: .dead, attempt: attempt,
            worker: configuration.workerID,
            timings: .init(receivedAt: receivedAt, startedAt: startedAt ?? receivedAt, finishedAt: now,
                           queueMilliseconds: job.flatMap { queueMilliseconds($0, delivery, receivedAt) }),
            output: error.output, error: error, correlationID: delivery.correlationID)
        if job != nil {
            await finish(delivery, envelope, logger: log)
        } else {
            metrics.finished(kind: kind, status: .dead)
            _ = await driver.finish(delivery, result: JobResultMessage(envelope))
        }
    }

    private func queueMilliseconds(_ job: JobEnvelope, _ delivery: Delivery, _ receivedAt: Date) -> Double? {
        if let created = job.createdAt { return receivedAt.timeIntervalSince(created) * 1000 }
        if let published = delivery.publishedAt { return receivedAt.timeIntervalSince(published) * 1000 }
        return nil
    }
}
