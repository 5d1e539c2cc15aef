import FleetCore
import Foundation
import Logging

/// What a handler knows about the run of a job besides its parameters, and its journal of external effects.
public struct JobContext: Sendable {
    /// The job's envelope (id, kind, timestamps, `data`, the other top-level fields).
    public var job: JobEnvelope
    /// 1 for the first run, one more for each retry or deferral.
    public var attempt: Int
    /// The queue delivered this job before and it was not settled (a worker died, a connection dropped).
    public var redelivered: Bool
    /// `<hostname>:<pid>`.
    public var worker: String
    /// The journal of this job's external effects; nil when the job runs outside a worker (previews,
    /// benchmarks): effects then simply run.
    let effects: JobEffects?
    private let baseLogger: Logger
    private let clock: @Sendable () -> Date
    /// The kind's retry strategy, when the job runs in a worker.
    let retryStrategy: (any JobRetryStrategy)?
    /// Runs of this job that ended deferred (they do not count toward the retry limit).
    let deferrals: Int

    public init(job: JobEnvelope, attempt: Int = 1, redelivered: Bool = false, logger: Logger,
                worker: String = WorkerConfiguration.defaultWorkerID, now: @escaping @Sendable () -> Date = Date.init) {
        self.init(job: job, attempt: attempt, redelivered: redelivered, logger: logger, worker: worker, effects: nil, now: now)
    }

    init(job: JobEnvelope, attempt: Int, redelivered: Bool, logger: Logger, worker: String, effects: JobEffects?,
         now: @escaping @Sendable () -> Date, retryStrategy: (any JobRetryStrategy)? = nil, deferrals: Int = 0) {
        self.retryStrategy = retryStrategy
        self.deferrals = deferrals
        self.job = job
        self.attempt = attempt
        self.redelivered = redelivered
        self.worker = worker
        self.effects = effects
        self.baseLogger = logger
        self.clock = now
    }

    /// The job's id and kind.
    public var jobID: String { job.id }
    public var kind: String { job.kind }
    /// The AMQP correlation id, if the scheduler set one.
    public var correlationID: String? { job.correlationID }

    /// How long the runtime would wait before running the job again if this attempt failed with `error`, or nil
    /// when it would not run it again (the error is not retryable, or this is the last attempt). With the default
    /// policy this is the longest its jittered backoff can draw (or the error's `Retry-After`, if longer). The queue
    /// can hold a retry longer than that: the AMQP driver's delay tiers up to twice it (Docs/contract/README.md).
    public func retryDelay(after error: JobError) -> Duration? {
        guard let strategy = retryStrategy else { return error.retryable ? (error.retryAfter ?? .zero) : nil }
        // Counted as the runtime counts failures: deferred runs are not attempts toward the limit.
        let failures = max(1, attempt - deferrals)
        guard strategy.shouldRetry(attempt: failures, error: error) else { return nil }
        if let policy = strategy as? RetryPolicy { return max(error.retryAfter ?? .zero, policy.backoff(afterAttempt: failures)) }
        return strategy.delay(afterAttempt: failures, error: error)
    }

    /// The worker's clock (injected in tests): use it instead of `Date()` for the job's own decisions (caps,
    /// quiet hours), so that tests can move time.
    public var now: Date { clock() }

    /// A logger with `job.id`, `job.kind` and `job.attempt` metadata. Never log personal data.
    /// (Built on first use: setting metadata costs more than most jobs' work.)
    public var logger: Logger {
        var log = baseLogger
        log[metadataKey: "job.id"] = "\(job.id)"
        log[metadataKey: "job.kind"] = "\(job.kind)"
        log[metadataKey: "job.attempt"] = "\(attempt)"
        return log
    }

    /// How many effects of this run were found uncertain (an intent recorded by an earlier run, no completion).
    public var uncertainEffects: Int { effects?.uncertainCount ?? 0 }

    /// Runs an external side effect (an SMTP send, a push, a paid model call) at most once per job, across
    /// retries, redeliveries, crashes and hosts sharing the ledger.
    ///
    /// The journal keeps, per job and `key` (e.g. `smtp:<recipient hash>`, `apns:<device>`), an *intent*
    /// recorded before the irreversible step and a *completion* (with `body`'s result) recorded after it:
    /// - a completion recorded by an earlier run: `body` does not run; ``EffectResult/alreadyDone(_:)`` with
    ///   its stored result;
    /// - an intent without a completion (the worker died in between, or the peer's answer was lost): uncertain;
    ///   with `ifUncertain: .skip` `body` does not run (``EffectResult/uncertain``, counted in the job's result
    ///   as `effect_uncertain`); with `.redo` it runs again (a push with the same apns-id, which the device
    ///   collapses);
    /// - otherwise `body` runs: ``EffectResult/performed(_:)``.
    ///
    /// The intent is recorded just before `body` runs, unless `recordsIntent` is true: then `body` records it
    /// itself with ``EffectIntent/record()`` at the last moment before the irreversible step (an SMTP client
    /// just before the final `.` of DATA), which keeps the uncertain window as short as the protocol allows.
    /// When `body` throws after the intent was recorded, the effect stays uncertain, unless the error conforms
    /// to ``EffectNotApplied`` (the peer said no: nothing happened), which removes the intent.
    ///
    /// `durable`: the completion is written as soon as `body` returns, instead of with the job's final result (one
    /// commit more): for effects that are paid (a model call) and followed by more work in the same run, so that a
    /// worker dying later in the run does not leave them uncertain.
    public func effect(_ key: String, ifUncertain: UncertainEffectPolicy = .skip, recordsIntent: Bool = false, durable: Bool = false,
                       _ body: (EffectIntent) async throws -> JSONValue) async throws -> EffectResult {
        guard let effects else { return .performed(try await body(EffectIntent(journal: nil, key: key))) }
        return try await effects.run(key, ifUncertain: ifUncertain, recordsIntent: recordsIntent, durable: durable, body)
    }
}

extension JobContext {
    /// What earlier runs of this job recorded for the effect `key`, without running anything:
    /// ``EffectResult/alreadyDone(_:)`` with its result, ``EffectResult/uncertain`` (counted in the job's result as
    /// `effect_uncertain`), or nil (it has not happened). A handler checks this first when what the effect did
    /// must decide the job's outcome before any other step (a mail already sent stays sent, whatever the person's
    /// consent is now).
    public func recordedEffect(_ key: String) async throws -> EffectResult? {
        try await effects?.recorded(key)
    }
}

/// What ``JobContext/effect(_:ifUncertain:recordsIntent:_:)`` does with an intent recorded without a completion.
public enum UncertainEffectPolicy: Sendable, Hashable {
    /// Do not run it again (a marketing mail: a lost one is better than a doubled one).
    case skip
    /// Run it again (a push the device collapses by its id; a transactional mail the template meta resends).
    case redo
}

/// How an effect ended.
public enum EffectResult: Sendable, Hashable {
    /// It ran now; the result `body` returned.
    case performed(JSONValue)
    /// An earlier run completed it; the result that run recorded.
    case alreadyDone(JSONValue)
    /// An earlier run recorded its intent and no completion: it may or may not have happened (not run again).
    case uncertain
}

/// Handed to an effect's body: records the intent at the moment the body chooses.
public struct EffectIntent: Sendable {
    let journal: JobEffects?
    let key: String

    /// Records (durably, once) that the irreversible step is about to happen.
    public func record() async throws {
        try await journal?.recordIntent(key)
    }
}

/// An error meaning the effect did not happen (the peer refused it): the intent is removed, and a later run
/// may try again without it counting as uncertain.
public protocol EffectNotApplied: Error {
    /// False when, for this instance, it is not known whether the effect happened.
    var effectNotApplied: Bool { get }
}
