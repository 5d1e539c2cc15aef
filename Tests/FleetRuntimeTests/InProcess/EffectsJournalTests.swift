import Clocks
import FleetCore
@testable import FleetRuntime
import FleetStore
import Foundation
import Testing

/// The effects journal (`JobContext.effect`): an external side effect happens once per job across retries and
/// redeliveries, and one whose completion was not recorded is reported, not repeated (unless asked).
@Suite("Effects journal (in process)")
struct EffectsJournalTests {
    struct Refused: EffectNotApplied { var effectNotApplied: Bool { true } }
    struct Lost: Error {}

    static let settings = KindSettings(retry: RetryPolicy(maxAttempts: 3, baseDelay: .seconds(1), jitter: false))

    @Test("a completed effect is not repeated by a retry: the retry gets the stored result")
    func alreadyDone() async throws {
        let sends = Counter()
        let handler = ScriptedHandler { context in
            let effect = try await context.effect("send") { _ in ["n": .int(Int64(sends.increment()))] }
            if context.attempt == 1 { throw JobError.retryable("later", "something after the send failed") }
            guard case .alreadyDone(let stored) = effect else { return .succeeded(output: "ran again") }
            return .succeeded(output: stored)
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("e1"))
            _ = await fleet.delayed("e1", attempt: 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "e1")
            #expect(final.output == ["n": 1])
            #expect(sends.count == 1)
        }
    }

    @Test("an intent without a completion is uncertain: not run again, and the result says effect_uncertain")
    func uncertainSkipped() async throws {
        let sends = Counter()
        let handler = ScriptedHandler { context in
            let effect = try await context.effect("send", recordsIntent: true) { intent in
                sends.increment()
                try await intent.record()
                if context.attempt == 1 { throw Lost() }  // the peer's answer was lost: it may have happened
                return "sent"
            }
            return .succeeded(output: effect == .uncertain ? "not sent again" : "sent")
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("e2"))
            _ = await fleet.delayed("e2", attempt: 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "e2")
            #expect(final.status == .succeeded)
            #expect(final.output["value"] == "not sent again")
            #expect(final.output["effect_uncertain"] == 1)
            #expect(sends.count == 1)
        }
    }

    @Test("one job id published twice, both copies running at once: the intent is a claim, the effect happens once")
    func concurrentCopiesClaim() async throws {
        let sends = Counter()
        let both = Gate()
        let handler = ScriptedHandler { context in
            let effect = try await context.effect("send", recordsIntent: true) { intent in
                // Both copies get here before either claims.
                await both.wait()
                try await intent.record()
                sends.increment()
                return "sent"
            }
            return .succeeded(output: effect == .uncertain ? "not sent: claimed by the other copy" : "sent")
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("twice"))
            fleet.push(RuntimeBehaviourTests.job("twice"))
            await both.arrivals(2)
            both.open()
            let results = await fleet.results(of: "twice", count: 2)
            #expect(sends.count == 1)
            // The first final result wins; the other copy publishes that one.
            #expect(results.map(\.output) == ["sent", "sent"])
            let ledger = try JobLedger(path: fleet.worker.configuration.ledgerPath)
            #expect(try await ledger.effects(jobID: "twice")["send"]?.isDone == true)
            ledger.close()
        }
    }

    @Test("a completion is written in the commit of the job's final result")
    func completionWithFinalResult() async throws {
        let handler = ScriptedHandler { context in
            _ = try await context.effect("send", recordsIntent: true) { intent in
                try await intent.record()
                return ["id": "m1"]
            }
            return .succeeded
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("c1"))
            #expect(await fleet.driver.finalResult(of: "c1").status == .succeeded)
            let ledger = try JobLedger(path: fleet.worker.configuration.ledgerPath)
            let record = try await ledger.effects(jobID: "c1")["send"]
            #expect(record?.isDone == true)
            #expect(record.flatMap(\.result).map { String(decoding: $0, as: UTF8.self) } == #"{"id":"m1"}"#)
            ledger.close()
        }
    }

    @Test("with ifUncertain: .redo an uncertain effect runs again, still reported")
    func uncertainRedone() async throws {
        let sends = Counter()
        let handler = ScriptedHandler { context in
            _ = try await context.effect("push", ifUncertain: .redo) { _ in
                sends.increment()
                if context.attempt == 1 { throw Lost() }
                return "delivered"
            }
            return .succeeded
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("e3"))
            _ = await fleet.delayed("e3", attempt: 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "e3")
            #expect(final.output["effect_uncertain"] == 1)
            #expect(sends.count == 2)
        }
    }

    @Test("an effect the peer refused (EffectNotApplied) leaves no intent: the retry performs it plainly")
    func refusedIsForgotten() async throws {
        let sends = Counter()
        let handler = ScriptedHandler { context in
            _ = try await context.effect("send", recordsIntent: true) { intent in
                sends.increment()
                try await intent.record()
                if context.attempt == 1 { throw Refused() }
                return "sent"
            }
            return .succeeded
        }
        try await InProcessFleet(handlers: [handler], settings: Self.settings).run { fleet in
            fleet.push(RuntimeBehaviourTests.job("e4"))
            _ = await fleet.delayed("e4", attempt: 2)
            await fleet.advance(by: .seconds(1))
            let final = await fleet.driver.finalResult(of: "e4")
            #expect(final.status == .succeeded)
            #expect(final.output["effect_uncertain"] == nil)
            #expect(sends.count == 2)
        }
    }

    @Test("retention: finished jobs and effect records older than the retention are pruned, newer ones kept")
    func retention() async throws {
        let fleet = try InProcessFleet(handlers: [NoopHandler()], retention: .seconds(7 * 86_400))
        defer { try? FileManager.default.removeItem(at: fleet.directory) }
        let ledger = try JobLedger(path: fleet.worker.configuration.ledgerPath)
        let now = fleet.now
        for (id, daysAgo) in [("old", 8.0), ("new", 6.0)] {
            try await ledger.record(LedgerEntry(jobID: id, kind: "noop", status: "succeeded", attempt: 1, result: [0x7B, 0x7D],
                                                finishedAt: now.addingTimeInterval(-daysAgo * 86_400)))
            try await ledger.recordEffectDone(jobID: id, key: "send", result: [0x31])
        }
        ledger.close()
        // Effect records carry the time they were written: age the old one.
        let db = try SQLiteDatabase(path: fleet.worker.configuration.ledgerPath, create: false)
        try db.execute("UPDATE fleet_effects SET updated_at = \(now.addingTimeInterval(-8 * 86_400).timeIntervalSince1970) WHERE job_id = 'old'")
        db.close()
        let reopened = try JobLedger(path: fleet.worker.configuration.ledgerPath)
        let pruned = await fleet.worker.pruneOnce(reopened, retention: .seconds(7 * 86_400))
        #expect(pruned["fleet_job_ledger"] == 1)
        #expect(pruned["fleet_effects"] == 1)
        #expect(try await reopened.lookup("old") == nil)
        #expect(try await reopened.lookup("new") != nil)
        #expect(try await reopened.effects(jobID: "new")["send"]?.isDone == true)
        reopened.close()
    }
}

