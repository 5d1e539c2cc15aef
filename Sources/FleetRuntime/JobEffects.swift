import FleetCore
import FleetStore
import Synchronization

/// The effects journal of one job run, over the ledger's `fleet_effects` table (see
/// ``JobContext/effect(_:ifUncertain:recordsIntent:_:)``).
///
/// - The job's earlier records are read once, at its first effect, unless the run is *fresh* (attempt 1, not a
///   redelivery, not a replay): no earlier run of it can have left one. Jobs without effects never touch the
///   table.
/// - The intent is a claim: its insert finds any record already there, so that two copies of one job id running
///   at once (a scheduler that published it twice) cannot both perform the effect, and a fresh run that skipped
///   the read still meets an earlier record.
/// - Completions wait in the run until it ends: the runtime writes them in the commit of the job's final result
///   (``takeCompletions()``), or on its own right away when the run ends any other way (``flushCompletions()``).
///   One commit per job fewer; a crash before that commit leaves the intent, and the next run treats the effect
///   as uncertain, as a crash just before the completion always did.
final class JobEffects: Sendable {
    private struct State {
        /// The records of earlier runs, by key; nil until read.
        var prior: [String: EffectRecord]?
        var intents: Set<String> = []
        /// The keys found uncertain (each counted once).
        var uncertainKeys: Set<String> = []
        /// Completions not yet written: key and result.
        var completions: [(key: String, result: [UInt8])] = []
    }

    let ledger: any JobLedgerStore
    let jobID: String
    private let state: Mutex<State>

    /// The intent of `key` was claimed before (the record found), and this run did not know it.
    struct Claimed: Error {
        let record: EffectRecord
    }

    init(ledger: any JobLedgerStore, jobID: String, fresh: Bool = false) {
        self.ledger = ledger
        self.jobID = jobID
        state = Mutex(State(prior: fresh ? [:] : nil))
    }

    var uncertainCount: Int { state.withLock { $0.uncertainKeys.count } }

    func run(_ key: String, ifUncertain: UncertainEffectPolicy, recordsIntent: Bool, durable: Bool = false,
             _ body: (EffectIntent) async throws -> JSONValue) async throws -> EffectResult {
        switch try await prior(key) {
        case .some(let record) where record.isDone:
            return .alreadyDone(record.result.flatMap { try? JSONValue(parsing: $0) } ?? .null)
        case .some:
            state.withLock { _ = $0.uncertainKeys.insert(key) }
            if ifUncertain == .skip { return .uncertain }
        case .none:
            break
        }
        let intent = EffectIntent(journal: self, key: key)
        let result: JSONValue
        do {
            if !recordsIntent { try await intent.record() }
            result = try await body(intent)
        } catch let claimed as Claimed {
            // Another run got there first: its record decides, as if it had been read before.
            if claimed.record.isDone { return .alreadyDone(claimed.record.result.flatMap { try? JSONValue(parsing: $0) } ?? .null) }
            state.withLock { _ = $0.uncertainKeys.insert(key) }
            return .uncertain
        } catch {
            if let refused = error as? any EffectNotApplied, refused.effectNotApplied,
               state.withLock({ $0.intents.contains(key) }) {
                try? await ledger.forgetEffect(jobID: jobID, key: key)
                state.withLock { _ = $0.intents.remove(key) }
            }
            throw error
        }
        if durable {
            // Written now, not with the job's result: a crash later in the run still finds it done.
            do {
                try await ledger.recordEffectDone(jobID: jobID, key: key, result: result.serialized())
            } catch {
                throw JobError.converting(error)
            }
        } else {
            state.withLock { $0.completions.append((key, result.serialized())) }
        }
        return .performed(result)
    }

    /// Completions for the commit of the job's final result (taken: written once).
    func takeCompletions() -> [(key: String, result: [UInt8])] {
        state.withLock { s in
            defer { s.completions = [] }
            return s.completions
        }
    }

    /// Writes the completions now (the run ends without a final result: a retry, a deferral, a dead letter,
    /// a shutdown). A completion that cannot be written leaves its intent: the next run finds it uncertain.
    func flushCompletions() async {
        for completion in takeCompletions() {
            try? await ledger.recordEffectDone(jobID: jobID, key: completion.key, result: completion.result)
        }
    }

    /// What earlier runs recorded for `key` (see ``JobContext/recordedEffect(_:)``).
    func recorded(_ key: String) async throws -> EffectResult? {
        guard let record = try await prior(key) else { return nil }
        if record.isDone { return .alreadyDone(record.result.flatMap { try? JSONValue(parsing: $0) } ?? .null) }
        state.withLock { _ = $0.uncertainKeys.insert(key) }
        return .uncertain
    }

    /// The record of `key` from earlier runs, reading the job's records on first use.
    private func prior(_ key: String) async throws -> EffectRecord? {
        if let prior = state.withLock({ $0.prior }) { return prior[key] }
        let loaded: [String: EffectRecord]
        do {
            loaded = try await ledger.effects(jobID: jobID)
        } catch {
            throw JobError.converting(error)
        }
        state.withLock { $0.prior = loaded }
        return loaded[key]
    }

    /// Records the intent of `key` once: a claim. Throws ``Claimed`` when a record was there that this run did not
    /// know of (read before, or skipped as fresh): the effect must not go ahead.
    func recordIntent(_ key: String) async throws {
        guard state.withLock({ $0.intents.insert(key).inserted }) else { return }
        let existing: EffectRecord?
        do {
            existing = try await ledger.recordEffectIntent(jobID: jobID, key: key)
        } catch {
            state.withLock { _ = $0.intents.remove(key) }
            throw JobError.converting(error)
        }
        if let existing, state.withLock({ $0.prior?[key] == nil }) {
            state.withLock { _ = $0.intents.remove(key) }
            throw Claimed(record: existing)
        }
    }
}
