import AMQPClient
import FleetCore
import FleetStore
import Foundation
import Logging

/// Runs one delivery through the job life cycle:
///
/// 1. decode and validate the envelope (malformed → dead-lettered with the reason, acked);
/// 2. look the job id up in the ledger (already final → its stored result is re-published, acked);
/// 3. honour `deadline` (passed → dead) and `not_before` (future → delayed copy, acked);
/// 4. run the handler with the kind's timeout;
/// 5. final outcome → ledger (group commit) → result confirmed by the broker → ack;
///    retryable failure → delayed copy confirmed → `failed` result → ack; permanent failure or retries
///    exhausted → dead-letter copy confirmed → ledger → `dead` result → ack.
///
/// Nothing is acked before what replaces it is confirmed; if the connection dies on the way, the
/// delivery is left to the broker, which redelivers it, and the ledger keeps the second run from
/// doing the work again.
struct JobProcessor: Sendable {
    let connection: AMQPConnection
    let ledger: JobLedger
    let configuration: WorkerConfiguration
    let handlers: [String: any JobHandler]
    /// Queue name → kind.
    let kindsByQueue: [String: String]
    let logger: Logger
    let metrics: WorkerMetrics
    let watchdog: JobWatchdog
    /// Bounds the handlers running at once (the worker's concurrency).
    let handlerSlots: ConcurrencyLimiter
    /// Set at graceful shutdown: jobs still waiting for a slot go back to the queue instead of starting.
    let stopping: StopFlag


    /// The ledger's answer for a batch of deliveries, by message id (the job id of a well-formed job), or
    /// nil when the lookup failed (each job then asks on its own).
    func ledgerEntries(for batch: [AMQPDelivery]) async -> KnownEntries? {
        let ids = batch.compactMap { $0.properties.messageID }
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
    func process(_ delivery: AMQPDelivery, known: KnownEntries? = nil) async {
        let receivedAt = Date()
        let kind = kindsByQueue[delivery.queue] ?? delivery.routingKey.split(separator: ".").first.map(String.init) ?? "unknown"
        metrics.received(kind: kind)

        let job: JobEnvelope
        let parsed: JSONValue
        do {
            try JobEnvelope.checkContentType(delivery.properties.contentType)
            parsed = try JobEnvelope.parse(delivery.body, maxBytes: configuration.maxBodyBytes)
        } catch {
            await deadLetter(delivery, kind: kind, job: nil, attempt: attempt(of: delivery), error: error, receivedAt: receivedAt)
            return
        }
        do {
            job = try JobEnvelope.decode(parsed)
        } catch {
            await deadLetter(delivery, kind: kind, job: nil, attempt: attempt(of: delivery), error: error, receivedAt: receivedAt,
                             usableID: JobEnvelope.usableID(in: parsed))
            return
        }
        guard job.kind == kind else {
            let error = JobError.permanent(JobError.unknownKind, "kind '\(job.kind)' arrived on the queue of kind '\(kind)'")
            await deadLetter(delivery, kind: kind, job: nil, attempt: attempt(of: delivery), error: error, receivedAt: receivedAt,
                             usableID: job.id)
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
            await pauseAndRequeue(delivery)
            return
        }
        if let existing, existing.status == JobStatus.dead.rawValue, delivery.properties.headers[FleetHeaders.replay] != nil {
            // `fleet dlq replay`: an operator sent a dead job back; it runs again from attempt 1.
            do {
                try await ledger.forgetDead(job.id)
            } catch {
                log.error("ledger update failed; the job goes back to the queue", metadata: ["error": "\(error)"])
                await pauseAndRequeue(delivery)
                return
            }
            log.info("replayed dead job runs again")
        } else if let existing {
            log.debug("job already finished; re-publishing its result", metadata: ["job.status": "\(existing.status)"])
            metrics.duplicate(kind: kind)
            _ = await publishStoredResult(existing, for: delivery, logger: log)
            return
        }

        let attempt = attempt(of: delivery)
        if let deadline = job.deadline, deadline < receivedAt {
            let error = JobError.permanent(JobError.deadlineExceeded, "the deadline \(Timestamp.format(deadline)) has passed")
            await deadLetter(delivery, kind: kind, job: job, attempt: attempt, error: error, receivedAt: receivedAt)
            return
        }
        if let notBefore = job.notBefore, notBefore > receivedAt.addingTimeInterval(0.5) {
            // Waiting is not an attempt: the copy keeps the attempt number.
            if await delay(delivery, by: notBefore.timeIntervalSince(receivedAt), attempt: attempt, logger: log) {
                connection.ack(delivery)
            }
            return
        }

        guard let handler = handlers[kind] else {
            let error = JobError.permanent(JobError.unknownKind, "this worker has no handler for kind '\(kind)'")
            await deadLetter(delivery, kind: kind, job: nil, attempt: attempt, error: error, receivedAt: receivedAt,
                             usableID: job.id)
            return
        }
        let settings = configuration.settings(forKind: kind)
        let context = JobContext(
            jobID: job.id, kind: kind, attempt: attempt, redelivered: delivery.redelivered,
            correlationID: delivery.properties.correlationID, logger: logger, worker: configuration.workerID)
        let startedAt = Date()  // includes the wait for a handler slot
        guard let result = await run(handler, job, context, timeout: settings.timeout) else {
            // Shutting down: not started, or cancelled after the grace period. Back to the queue.
            log.info("job not finished at shutdown; it goes back to the queue")
            connection.reject(delivery, requeue: true)
            return
        }
        var timings = ResultEnvelope.Timings(
            receivedAt: receivedAt, startedAt: startedAt, finishedAt: Date(),
            queueMilliseconds: queueMilliseconds(job, delivery, receivedAt))
        metrics.ran(kind: kind, seconds: timings.finishedAt.timeIntervalSince(startedAt))

        switch result {
        case .success(.succeeded(let output)):
            let envelope = ResultEnvelope(
                jobID: job.id, kind: kind, status: .succeeded, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: output, correlationID: delivery.properties.correlationID)
            await finish(delivery, envelope, logger: log)
        case .success(.suppressed(let reason, let output)):
            var out = output.objectValue ?? JSONObject()
            if output != .null && output.objectValue == nil { out["value"] = output }
            out["reason"] = .string(reason)
            let envelope = ResultEnvelope(
                jobID: job.id, kind: kind, status: .suppressed, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: .object(out), correlationID: delivery.properties.correlationID)
            await finish(delivery, envelope, logger: log)
        case .success(.deferred(let until, let reason)):
            let seconds = max(1, until.timeIntervalSinceNow)
            guard await delay(delivery, by: seconds, attempt: attempt + 1, logger: log) else { return }
            timings.finishedAt = Date()
            let envelope = ResultEnvelope(
                jobID: job.id, kind: kind, status: .deferred, attempt: attempt, worker: configuration.workerID,
                timings: timings, output: ["reason": .string(reason)], retryAt: until,
                correlationID: delivery.properties.correlationID)
            _ = await publishResult(envelope, for: delivery, logger: log)
        case .failure(let error):
            if error.retryable && settings.retry.shouldRetry(afterAttempt: attempt) {
                let wait = settings.retry.delay(afterAttempt: attempt)
                let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
                log.info("job failed; retrying", metadata: ["error.code": "\(error.code)", "retry.in_s": "\(seconds)"])
                guard await delay(delivery, by: seconds, attempt: attempt + 1, logger: log) else { return }
                let envelope = ResultEnvelope(
                    jobID: job.id, kind: kind, status: .failed, attempt: attempt, worker: configuration.workerID,
                    timings: timings, output: error.output, error: error, retryAt: Date().addingTimeInterval(seconds),
                    correlationID: delivery.properties.correlationID)
                _ = await publishResult(envelope, for: delivery, logger: log)
            } else {
                var final = error
                if error.retryable {
                    final = JobError(
                        code: JobError.retriesExhausted, message: "gave up after \(attempt) attempts; last error \(error.code): \(error.message)",
                        retryable: false, output: error.output)
                }
                await deadLetter(delivery, kind: kind, job: job, attempt: attempt, error: final, receivedAt: receivedAt,
                                 startedAt: startedAt)
            }
        }
    }

    // MARK: - Running the handler

    /// The handler's outcome, a timeout failure, or nil when the task was cancelled (shutdown).
    private func run(_ handler: any JobHandler, _ job: JobEnvelope, _ context: JobContext,
                     timeout: Duration) async -> Result<JobOutcome, JobError>? {
        let (result, timedOut) = await handlerSlots.withSlot { () async -> (Result<JobOutcome, JobError>?, timedOut: Bool) in
            if stopping.isSet { return (nil, false) }
            return await watchdog.withDeadline(timeout) { () async -> Result<JobOutcome, JobError>? in
            do {
                return .success(try await handler.handle(job, context: context))
            } catch let error as JobError {
                return .failure(error)
            } catch is CancellationError {
                return nil
            } catch {
                return .failure(.retryable("handler_error", "the handler failed: \(type(of: error))"))
            }
        } }
        if timedOut { return .failure(.retryable(JobError.timeout, "the job ran longer than \(timeout)")) }
        if Task.isCancelled { return nil }
        return result
    }

    // MARK: - Outcomes

    /// Final result: ledger first, then the result, then the ack.
    private func finish(_ delivery: AMQPDelivery, _ envelope: ResultEnvelope, logger: JobLog) async {
        let body = envelope.encoded()
        let stored: LedgerEntry
        do {
            stored = try await ledger.record(LedgerEntry(
                jobID: envelope.jobID, kind: envelope.kind, status: envelope.status.rawValue,
                attempt: envelope.attempt, result: body, finishedAt: envelope.timings.finishedAt))
        } catch {
            logger.error("ledger write failed; the job goes back to the queue", metadata: ["error": "\(error)"])
            await pauseAndRequeue(delivery)
            return
        }
        metrics.finished(kind: envelope.kind, status: envelope.status)
        if stored.result != body {
            // Another worker finished the same job first: its result is the job's one final result.
            logger.info("job was finished by another worker; publishing that result")
            _ = await publishStoredResult(stored, for: delivery, logger: logger)
            return
        }
        _ = await publishResult(envelope, body: body, for: delivery, logger: logger)
    }

    /// Dead-letters a job: the copy with the reason goes to `<prefix>.dead`, the `dead` result is
    /// recorded (when the job has an id) and published, then the delivery is acked.
    ///
    /// - Parameter usableID: the body's id when the envelope was refused but its id is usable (the result's
    ///   `job_id`); without a job or such an id, the AMQP message id is the result's `job_id`. Only a job that
    ///   decoded is recorded in the ledger, so that a corrected job may reuse the id of a refused one.
    private func deadLetter(_ delivery: AMQPDelivery, kind: String, job: JobEnvelope?, attempt: Int, error: JobError,
                            receivedAt: Date, startedAt: Date? = nil, usableID: String? = nil) async {
        let log = JobLog(base: logger, id: job?.id ?? usableID, kind: kind)
        log.warning("job dead-lettered", metadata: ["error.code": "\(error.code)", "error.message": "\(error.message)"])
        metrics.deadLettered(kind: kind, code: error.code)

        let now = Date()
        var properties = delivery.properties
        properties.expiration = nil
        properties.deliveryMode = 2
        properties.headers[FleetHeaders.errorCode] = .string(error.code)
        properties.headers[FleetHeaders.errorMessage] = .string(error.message)
        properties.headers[FleetHeaders.attempt] = .int(Int64(attempt))
        properties.headers[FleetHeaders.deadAt] = .string(Timestamp.format(now))
        properties.headers[FleetHeaders.worker] = .string(configuration.workerID)
        properties.headers[FleetHeaders.originalRoutingKey] = .string(delivery.routingKey)
        properties.headers[FleetHeaders.queue] = .string(delivery.queue)
        properties.headers[FleetHeaders.delay] = nil
        let routingKey = JobEnvelope.isValidKind(delivery.routingKey.split(separator: ".").first.map(String.init) ?? "")
            ? delivery.routingKey : kind
        guard await publishConfirmed(
            delivery.body, to: configuration.topology.deadExchange, routingKey: routingKey,
            properties: properties, for: delivery, what: "dead letter", logger: log)
        else { return }

        let jobID = job?.id ?? usableID ?? delivery.properties.messageID ?? ""
        let envelope = ResultEnvelope(
            jobID: jobID, kind: kind, status: .dead, attempt: attempt, worker: configuration.workerID,
            timings: .init(receivedAt: receivedAt, startedAt: startedAt ?? receivedAt, finishedAt: now,
                           queueMilliseconds: job.flatMap { queueMilliseconds($0, delivery, receivedAt) }),
            output: error.output, error: error, correlationID: delivery.properties.correlationID)
        if job != nil {
            await finish(delivery, envelope, logger: log)
        } else {
            metrics.finished(kind: kind, status: .dead)
            _ = await publishResult(envelope, for: delivery, logger: log)
        }
    }

    /// Publishes a copy of the job to the delay queues, to come back after `seconds`. True when confirmed.
    private func delay(_ delivery: AMQPDelivery, by seconds: Double, attempt: Int, logger: JobLog) async -> Bool {
        let milliseconds = max(1, Int64((seconds * 1000).rounded()))
        let tier = FleetTopology.delayTier(for: .milliseconds(milliseconds))
        var properties = delivery.properties
        properties.deliveryMode = 2
        properties.expiration = String(milliseconds)
        properties.headers[FleetHeaders.attempt] = .int(Int64(attempt))
        properties.headers[FleetHeaders.delay] = .string("\(tier)s")
        return await publishConfirmed(
            delivery.body, to: configuration.topology.delayExchange, routingKey: delivery.routingKey,
            properties: properties, for: delivery, what: "delayed copy", logger: logger)
    }

    private func publishResult(_ envelope: ResultEnvelope, body: [UInt8]? = nil, for delivery: AMQPDelivery,
                               logger: JobLog) async -> Bool {
        await publishResultBody(
            body ?? envelope.encoded(), routingKey: envelope.routingKey, messageID: envelope.messageID,
            for: delivery, logger: logger)
    }

    private func publishStoredResult(_ entry: LedgerEntry, for delivery: AMQPDelivery, logger: JobLog) async -> Bool {
        await publishResultBody(
            entry.result, routingKey: "\(entry.kind).\(entry.status)",
            messageID: "\(entry.jobID):\(entry.attempt):\(entry.status)", for: delivery, logger: logger)
    }

    /// Publishes a result to the results exchange (and to `reply_to`); true once the broker confirmed.
    /// The delivery is acked by the connection's I/O thread the moment that confirm arrives.
    private func publishResultBody(_ body: [UInt8], routingKey: String, messageID: String, for delivery: AMQPDelivery,
                                   logger: JobLog) async -> Bool {
        var properties = AMQPProperties.persistentJSON(messageID: messageID, type: "fleet.result")
        properties.correlationID = delivery.properties.correlationID
        properties.timestamp = UInt64(Date().timeIntervalSince1970)
        let confirmed = await publishConfirmed(
            body, to: configuration.topology.resultsExchange, routingKey: routingKey, properties: properties,
            for: delivery, what: "result", logger: logger, mustRoute: false, ackOnConfirm: true)
        guard confirmed else { return false }
        if let replyTo = delivery.properties.replyTo, !replyTo.isEmpty {
            // Best effort: a missing reply queue must not hold the job back.
            _ = await publishConfirmed(
                body, to: "", routingKey: replyTo, properties: properties, for: delivery, what: "reply",
                logger: logger, mustRoute: false)
        }
        return true
    }

    /// Publishes with a confirm. False when it was not confirmed: then the delivery was either left to the
    /// broker (connection lost) or rejected for requeueing after a pause (nacked, or returned when it had
    /// to be routed), so the caller must not ack.
    private func publishConfirmed(_ body: [UInt8], to exchange: String, routingKey: String, properties: AMQPProperties,
                                  for delivery: AMQPDelivery, what: String, logger: JobLog,
                                  mustRoute: Bool = true, ackOnConfirm: Bool = false) async -> Bool {
        do {
            let confirm = try await connection.publish(
                body, to: exchange, routingKey: routingKey, properties: properties, mandatory: true,
                ackOnConfirm: ackOnConfirm ? delivery : nil)
            switch confirm {
            case .acked:
                return true
            case .returned(let code, let text):
                if !mustRoute {
                    if exchange != "" { metrics.unroutableResult() }
                    logger.debug("\(what) not routed to any queue", metadata: ["amqp.reply": "\(code) \(text)"])
                    return true
                }
                logger.error("\(what) could not be routed; is the topology applied?",
                             metadata: ["amqp.exchange": "\(exchange)", "amqp.reply": "\(code) \(text)"])
            case .nacked:
                logger.error("the broker refused the \(what)", metadata: ["amqp.exchange": "\(exchange)"])
            }
            await pauseAndRequeue(delivery)
            return false
        } catch {
            logger.warning("\(what) not confirmed; the broker will redeliver the job", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Gives a delivery back to the queue after a short pause, so that a broken dependency does not spin.
    private func pauseAndRequeue(_ delivery: AMQPDelivery) async {
        try? await Task.sleep(for: .seconds(1))
        connection.reject(delivery, requeue: true)
    }

    private func attempt(of delivery: AMQPDelivery) -> Int {
        guard let value = delivery.properties.headers[FleetHeaders.attempt]?.intValue, value >= 1 else { return 1 }
        return Int(min(value, 1_000_000))
    }

    private func queueMilliseconds(_ job: JobEnvelope, _ delivery: AMQPDelivery, _ receivedAt: Date) -> Double? {
        if let created = job.createdAt { return receivedAt.timeIntervalSince(created) * 1000 }
        if let ts = delivery.properties.timestamp, ts > 0 {
            return (receivedAt.timeIntervalSince1970 - Double(ts)) * 1000
        }
        return nil
    }
}
