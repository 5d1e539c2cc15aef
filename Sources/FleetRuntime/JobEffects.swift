import FleetCore
import FleetStore
import Synchronization

/// The effects journal of one job run, over the ledger's `fleet_effects` table (see
/// ``JobContext/effect(_:ifUncertain:recordsIntent:_:)``). The job's earlier records are read once, at its first
/// effect; jobs without effects never touch the table.
final class JobEffects: Sendable {
    private struct State {
        /// The records of earlier runs, by key; nil until read.
        var prior: [String: EffectRecord]?
        var intents: Set<String> = []
        /// The keys found uncertain (each counted once).
        var uncertainKeys: Set<String> = []
    }

    let ledger: JobLedger
    let jobID: String
    private let state = Mutex(State())

    init(ledger: JobLedger, jobID: String) {
        self.ledger = ledger
        self.jobID = jobID
    }

    var uncertainCount: Int { state.withLock { $0.uncertainKeys.count } }

    func run(_ key: String, ifUncertain: UncertainEffectPolicy, recordsIntent: Bool,
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
        if !recordsIntent { try await intent.record() }
        let result: JSONValue
        do {
            result = try await body(intent)
        } catch {
            if let refused = error as? any EffectNotApplied, refused.effectNotApplied,
               state.withLock({ $0.intents.contains(key) }) {
                try? await ledger.forgetEffect(jobID: jobID, key: key)
                state.withLock { _ = $0.intents.remove(key) }
            }
            throw error
        }
        do {
            try await ledger.recordEffectDone(jobID: jobID, key: key, result: result.serialized())
        } catch {
            // It happened, and may not be recorded: the intent (if any) makes a later run treat it as uncertain.
            throw JobError.converting(error)
        }
        return .performed(result)
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

    /// Records the intent of `key` once.
    func recordIntent(_ key: String) async throws {
        guard state.withLock({ $0.intents.insert(key).inserted }) else { return }
        do {
            try await ledger.recordEffectIntent(jobID: jobID, key: key)
        } catch {
            state.withLock { _ = $0.intents.remove(key) }
            throw JobError.converting(error)
        }
    }
}
